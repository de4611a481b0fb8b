//! SCRAM-SHA-256 (RFC 5802, RFC 7677), the server's side: the stored credentials that
//! let a server check a client's proof without knowing the password, and the parsing and
//! checking of the client's messages. No channel binding (the -PLUS variant is not
//! offered). Passwords are used as their UTF-8 octets, without SASLprep: ASCII passwords,
//! the common case, are unaffected.

use super::{InvalidBase64, decode_base64, encode_base64};
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// The mechanism's name as SASL registers it.
pub const NAME: &str = "SCRAM-SHA-256";

/// Iterations of the key derivation for newly set passwords (RFC 7677 §4: at least 4096).
pub const DEFAULT_ITERATIONS: u32 = 4096;

const KEY_LEN: usize = 32;

/// What the server stores for a user (RFC 5802 §2.2, §3): salt, iteration count,
/// StoredKey and ServerKey. Enough to check a proof; not enough to log in as the user.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; KEY_LEN],
    pub server_key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; KEY_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(d.as_ref());
    out
}

impl ScramCredentials {
    /// Derives the credentials of `password` with `salt` (RFC 5802 §3: SaltedPassword,
    /// ClientKey, StoredKey, ServerKey).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramCredentials {
        let iterations = iterations.max(1);
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// Credentials for a user that does not exist (or has no SCRAM keys yet), derived
    /// from `secret` so that the same name always gets the same salt: the exchange then
    /// looks the same as for a real user and fails at the proof.
    pub fn decoy(user: &str, secret: &[u8]) -> ScramCredentials {
        let salt = hmac_sha256(secret, format!("salt\0{user}").as_bytes());
        ScramCredentials {
            salt: salt[..16].to_vec(),
            iterations: DEFAULT_ITERATIONS,
            stored_key: hmac_sha256(secret, format!("stored\0{user}").as_bytes()),
            server_key: hmac_sha256(secret, format!("server\0{user}").as_bytes()),
        }
    }

    /// The stored form, as RFC 5803 writes it:
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
    pub fn to_stored(&self) -> String {
        format!(
            "{NAME}${}:{}${}:{}",
            self.iterations,
            encode_base64(&self.salt),
            encode_base64(&self.stored_key),
            encode_base64(&self.server_key)
        )
    }

    /// Reads [`ScramCredentials::to_stored`]'s form; `None` if it is not that.
    pub fn from_stored(text: &str) -> Option<ScramCredentials> {
        let rest = text.strip_prefix(NAME)?.strip_prefix('$')?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let key = |s: &str| -> Option<[u8; KEY_LEN]> {
            decode_base64(s.as_bytes()).ok()?.try_into().ok()
        };
        Some(ScramCredentials {
            iterations: iterations.parse().ok().filter(|&i| i > 0)?,
            salt: decode_base64(salt.as_bytes())
                .ok()
                .filter(|s| !s.is_empty())?,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }
}

/// Fresh random octets from the system's generator (for salts and nonces); `None` if
/// the system cannot give any.
pub fn random_bytes<const N: usize>() -> Option<[u8; N]> {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut out).ok()?;
    Some(out)
}

/// A server nonce: 18 random octets in base64 (printable, no ',').
pub fn new_nonce() -> Option<String> {
    random_bytes::<18>().map(|b| encode_base64(&b))
}

/// Why a client message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramError {
    /// Not a SCRAM message of the expected kind.
    Malformed,
    /// The client asked for channel binding, which is not offered.
    ChannelBindingUnsupported,
    /// The nonce or the channel binding is not the one of this exchange.
    Mismatch,
}

impl From<InvalidBase64> for ScramError {
    fn from(_: InvalidBase64) -> Self {
        ScramError::Malformed
    }
}

/// The parts of the client-first-message (RFC 5802 §7) the server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The GS2 header, repeated (base64) in the client's final message.
    pub gs2_header: String,
    /// The authorization identity (empty: act as the authentication identity).
    pub authzid: String,
    /// The authentication identity, unescaped.
    pub username: String,
    pub client_nonce: String,
    /// The message without the GS2 header, for the AuthMessage.
    pub bare: String,
}

/// Undoes saslname escaping (`=2C` is `,`, `=3D` is `=`); any other `=` is an error.
fn unescape_name(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed);
    }
    Ok(out)
}

/// A nonce is printable ASCII without ','.
fn valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Parses the client-first-message.
pub fn parse_client_first(message: &[u8]) -> Result<ClientFirst, ScramError> {
    let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed)?;
    let mut parts = text.splitn(3, ',');
    let (flag, authzid, bare) = (
        parts.next().ok_or(ScramError::Malformed)?,
        parts.next().ok_or(ScramError::Malformed)?,
        parts.next().ok_or(ScramError::Malformed)?,
    );
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBindingUnsupported),
        _ => return Err(ScramError::Malformed),
    }
    let authzid = match authzid {
        "" => String::new(),
        a => unescape_name(a.strip_prefix("a=").ok_or(ScramError::Malformed)?)?,
    };
    let mut attrs = bare.split(',');
    let username = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or(ScramError::Malformed)?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| valid_nonce(n))
        .ok_or(ScramError::Malformed)?;
    // Extensions: attr-val, an ALPHA then "=".
    if !attrs
        .all(|a| a.len() >= 2 && a.as_bytes()[0].is_ascii_alphabetic() && a.as_bytes()[1] == b'=')
    {
        return Err(ScramError::Malformed);
    }
    Ok(ClientFirst {
        gs2_header: text[..text.len() - bare.len()].to_string(),
        authzid,
        username: unescape_name(username)?,
        client_nonce: nonce.to_string(),
        bare: bare.to_string(),
    })
}

/// The server-first-message for `first`, with the server's part of the nonce.
pub fn server_first(first: &ClientFirst, server_nonce: &str, creds: &ScramCredentials) -> String {
    format!(
        "r={}{},s={},i={}",
        first.client_nonce,
        server_nonce,
        encode_base64(&creds.salt),
        creds.iterations
    )
}

/// Checks the client-final-message. `Ok(Some(server_final))` when the proof is right,
/// `Ok(None)` when it is wrong, `Err` when the message is not a valid final message of
/// this exchange.
pub fn check_client_final(
    message: &[u8],
    first: &ClientFirst,
    server_first: &str,
    creds: &ScramCredentials,
) -> Result<Option<String>, ScramError> {
    let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed)?;
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or(ScramError::Malformed)?;
    let mut attrs = without_proof.split(',');
    let binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or(ScramError::Malformed)?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed)?;
    if decode_base64(binding.as_bytes())? != first.gs2_header.as_bytes() {
        return Err(ScramError::Mismatch);
    }
    let expected_nonce = server_first
        .strip_prefix("r=")
        .and_then(|s| s.split(',').next())
        .ok_or(ScramError::Malformed)?;
    if nonce != expected_nonce {
        return Err(ScramError::Mismatch);
    }
    let proof = decode_base64(proof.as_bytes())?;
    if proof.len() != KEY_LEN {
        return Err(ScramError::Malformed);
    }
    let auth_message = format!("{},{},{}", first.bare, server_first, without_proof);
    let signature = hmac_sha256(&creds.stored_key, auth_message.as_bytes());
    let mut client_key = [0u8; KEY_LEN];
    for (i, k) in client_key.iter_mut().enumerate() {
        *k = proof[i] ^ signature[i];
    }
    // Compared in constant time: the comparison must not tell how much of a guess is right.
    let candidate = sha256(&client_key);
    let differs = candidate
        .iter()
        .zip(creds.stored_key.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if differs != 0 {
        return Ok(None);
    }
    let server_signature = hmac_sha256(&creds.server_key, auth_message.as_bytes());
    Ok(Some(format!("v={}", encode_base64(&server_signature))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: the example exchange for user "user", password "pencil".
    #[test]
    fn the_rfc_7677_example_checks_out() {
        let client_first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let first = parse_client_first(client_first).unwrap();
        assert_eq!(first.username, "user");
        assert_eq!(first.gs2_header, "n,,");
        let salt = decode_base64(b"W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let creds = ScramCredentials::derive("pencil", &salt, 4096);
        let sf = server_first(&first, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", &creds);
        assert_eq!(
            sf,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let server_final = check_client_final(client_final, &first, &sf, &creds).unwrap();
        assert_eq!(
            server_final.as_deref(),
            Some("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        );
        // The same exchange with another password's credentials: a wrong proof.
        let other = ScramCredentials::derive("pencil2", &salt, 4096);
        let sf2 = server_first(&first, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", &other);
        assert_eq!(
            check_client_final(client_final, &first, &sf2, &other),
            Ok(None)
        );
    }

    #[test]
    fn stored_form_round_trips_and_bad_forms_are_refused() {
        let c = ScramCredentials::derive("pw", b"0123456789abcdef", 4096);
        let text = c.to_stored();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        assert_eq!(ScramCredentials::from_stored(&text), Some(c));
        for bad in [
            "",
            "SCRAM-SHA-1$4096:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$0:MDEyMw==$AAAA:AAAA",
            "SCRAM-SHA-256$4096:MDEyMw==$AAAA:AAAA",
            "SCRAM-SHA-256$x:MDEyMw==$AAAA:AAAA",
        ] {
            assert_eq!(ScramCredentials::from_stored(bad), None, "{bad}");
        }
    }

    #[test]
    fn client_messages_that_are_not_scram_are_refused() {
        assert_eq!(
            parse_client_first(b"p=tls-unique,,n=user,r=abc"),
            Err(ScramError::ChannelBindingUnsupported)
        );
        for bad in [
            &b""[..],
            b"n",
            b"n,,",
            b"x,,n=user,r=abc",
            b"n,,r=abc,n=user",
            b"n,,n=,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,,n=user,r=",
            b"n,,n=user,r=a,b",
            b"n,b=x,n=user,r=abc",
            b"n,,n=user,r=ab\xff",
        ] {
            assert!(
                parse_client_first(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let first = parse_client_first(b"y,a=bob=2Cx,n=al=3Dice,r=abc").unwrap();
        assert_eq!(first.authzid, "bob,x");
        assert_eq!(first.username, "al=ice");
        assert_eq!(first.gs2_header, "y,a=bob=2Cx,");
        let creds = ScramCredentials::derive("pw", b"salt", 1);
        let sf = server_first(&first, "xyz", &creds);
        let cb = encode_base64(b"y,a=bob=2Cx,");
        let zeros = encode_base64(&[0u8; 32]);
        // Wrong nonce, wrong channel binding, no proof, short proof.
        for bad in [
            format!("c={cb},r=abcxyZ,p={zeros}"),
            format!("c=biws,r=abcxyz,p={zeros}"),
            format!("c={cb},r=abcxyz"),
            format!("c={cb},r=abcxyz,p=AAAA"),
        ] {
            assert!(
                check_client_final(bad.as_bytes(), &first, &sf, &creds).is_err(),
                "{bad}"
            );
        }
        // The right form with a wrong proof is a failed login, not a malformed message.
        let right_form = format!("c={cb},r=abcxyz,p={zeros}");
        assert_eq!(
            check_client_final(right_form.as_bytes(), &first, &sf, &creds),
            Ok(None)
        );
    }

    #[test]
    fn decoys_are_stable_per_name() {
        let a = ScramCredentials::decoy("nobody@example.org", b"secret");
        assert_eq!(a, ScramCredentials::decoy("nobody@example.org", b"secret"));
        assert_ne!(
            a.salt,
            ScramCredentials::decoy("other@example.org", b"secret").salt
        );
    }
}
