//! SASL (RFC 4422) for every protocol that authenticates (SMTP AUTH, POP3 AUTH, IMAP
//! AUTHENTICATE): the server's side of each mechanism as one sans-IO [`Exchange`]
//! (PLAIN, RFC 4616; LOGIN; SCRAM-SHA-256, RFC 7677), and a strict base64 codec
//! (RFC 4648 §4). A protocol frames the challenges and responses in its own way (334
//! replies, "+ " continuations), decodes them, and feeds them to the exchange; the
//! exchange tells it what to send or what to ask its driver.
//!
//! Strict means: the standard alphabet only, padding required to a multiple of four,
//! no whitespace or line breaks, and the unused bits of the last group must be zero, so
//! every input has at most one meaning (RFC 4648 §3.5).

pub mod scram;

use crate::Secret;
use scram::{ClientFirst, ScramCredentials, ScramError};

/// The SASL mechanisms we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// draft-murchison-sasl-login: user name and password, each after a challenge.
    Login,
    /// RFC 7677: the password never crosses the wire, and the server keeps no
    /// password-equivalent.
    ScramSha256,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [Mechanism::Plain, Mechanism::Login, Mechanism::ScramSha256];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => scram::NAME,
        }
    }

    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The configured names we implement, in the configured order, once each.
    pub fn list(names: &[String]) -> Vec<Mechanism> {
        let mut out = Vec::new();
        for m in names.iter().filter_map(|n| Mechanism::from_name(n)) {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }
}

/// What a client proved in an authentication exchange, for the driver to decide on.
#[derive(Debug)]
pub enum Credential {
    /// PLAIN, LOGIN, POP3 USER/PASS: a password to check against the stored hash.
    Password(Secret<String>),
    /// SCRAM: the exchange has checked the proof against the stored credentials.
    Scram { verified: bool },
}

/// Credentials for the driver to decide on.
#[derive(Debug)]
pub struct Attempt {
    /// The identity to act as; empty when the client gave none.
    pub authzid: String,
    /// The identity whose credentials these are.
    pub authcid: String,
    pub credential: Credential,
}

/// What an [`Exchange`] wants next.
#[derive(Debug)]
pub enum Step {
    /// Send this challenge (the protocol base64-encodes it) and pass on the response.
    Challenge(Vec<u8>),
    /// The client has made its case: the driver decides. For SCRAM the proof is
    /// checked already ([`Credential::Scram`]); if the driver accepts, the protocol sends
    /// [`Exchange::server_final`] as a last challenge, whose (empty) response ends the
    /// exchange with [`Step::Done`].
    Attempt(Attempt),
    /// SCRAM needs the user's stored credentials: answer with
    /// [`Exchange::credentials`].
    NeedCredentials { authzid: String, authcid: String },
    /// The client acknowledged the server's last message: authenticated.
    Done,
    /// The response is not what the mechanism expects: the exchange is over.
    Malformed,
}

/// Where an exchange is.
#[derive(Debug)]
enum State {
    Start,
    PlainResponse,
    LoginUsername,
    LoginPassword {
        authcid: String,
    },
    ScramFirst,
    ScramCredentials {
        first: ClientFirst,
    },
    ScramFinal {
        first: ClientFirst,
        server_first: String,
        creds: ScramCredentials,
    },
    ScramVerified {
        server_final: String,
    },
    ScramAck,
    Over,
}

/// LOGIN's challenges.
const LOGIN_USERNAME: &[u8] = b"Username:";
const LOGIN_PASSWORD: &[u8] = b"Password:";

/// The server's side of one SASL authentication exchange, sans-IO.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    state: State,
}

impl Exchange {
    pub fn new(mechanism: Mechanism) -> Exchange {
        Exchange {
            mechanism,
            state: State::Start,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Starts without an initial response: the first challenge.
    pub fn start(&mut self) -> Step {
        let (state, challenge) = match self.mechanism {
            Mechanism::Plain => (State::PlainResponse, Vec::new()),
            Mechanism::Login => (State::LoginUsername, LOGIN_USERNAME.to_vec()),
            Mechanism::ScramSha256 => (State::ScramFirst, Vec::new()),
        };
        self.state = state;
        Step::Challenge(challenge)
    }

    /// Takes the client's next (decoded) response; at the start, its initial response.
    pub fn respond(&mut self, response: Vec<u8>) -> Step {
        let state = std::mem::replace(&mut self.state, State::Over);
        let state = match (state, self.mechanism) {
            (State::Start, Mechanism::Plain) => State::PlainResponse,
            (State::Start, Mechanism::Login) => State::LoginUsername,
            (State::Start, Mechanism::ScramSha256) => State::ScramFirst,
            (s, _) => s,
        };
        match state {
            State::PlainResponse => match parse_plain(response) {
                Some((authzid, authcid, password)) => Step::Attempt(Attempt {
                    authzid,
                    authcid,
                    credential: Credential::Password(password),
                }),
                None => Step::Malformed,
            },
            State::LoginUsername => match non_empty_utf8(response) {
                Some(authcid) => {
                    self.state = State::LoginPassword { authcid };
                    Step::Challenge(LOGIN_PASSWORD.to_vec())
                }
                None => Step::Malformed,
            },
            State::LoginPassword { authcid } => match non_empty_utf8(response) {
                Some(password) => Step::Attempt(Attempt {
                    authzid: String::new(),
                    authcid,
                    credential: Credential::Password(Secret::new(password)),
                }),
                None => Step::Malformed,
            },
            State::ScramFirst => match scram::parse_client_first(&response) {
                Ok(first) => {
                    let step = Step::NeedCredentials {
                        authzid: first.authzid.clone(),
                        authcid: first.username.clone(),
                    };
                    self.state = State::ScramCredentials { first };
                    step
                }
                Err(_) => Step::Malformed,
            },
            State::ScramFinal {
                first,
                server_first,
                creds,
            } => match scram::check_client_final(&response, &first, &server_first, &creds) {
                Ok(verified) => {
                    let step = Step::Attempt(Attempt {
                        authzid: first.authzid.clone(),
                        authcid: first.username.clone(),
                        credential: Credential::Scram {
                            verified: verified.is_some(),
                        },
                    });
                    if let Some(server_final) = verified {
                        self.state = State::ScramVerified { server_final };
                    }
                    step
                }
                Err(ScramError::Malformed | ScramError::Mismatch)
                | Err(ScramError::ChannelBindingUnsupported) => Step::Malformed,
            },
            // RFC 5802 §5: the client's answer to the server-final message is empty.
            State::ScramAck if response.is_empty() => Step::Done,
            _ => Step::Malformed,
        }
    }

    /// Gives SCRAM the user's stored credentials (a decoy for an unknown user) and the
    /// server's part of the nonce (random, printable, no ','): the server-first challenge.
    pub fn credentials(&mut self, creds: ScramCredentials, server_nonce: &str) -> Step {
        match std::mem::replace(&mut self.state, State::Over) {
            State::ScramCredentials { first } => {
                let server_first = scram::server_first(&first, server_nonce, &creds);
                let challenge = server_first.clone().into_bytes();
                self.state = State::ScramFinal {
                    first,
                    server_first,
                    creds,
                };
                Step::Challenge(challenge)
            }
            _ => Step::Malformed,
        }
    }

    /// After a verified proof that the driver accepted: the server-final message, to send
    /// as the last challenge. `None` for mechanisms that have none.
    pub fn server_final(&mut self) -> Option<Vec<u8>> {
        match std::mem::replace(&mut self.state, State::Over) {
            State::ScramVerified { server_final } => {
                self.state = State::ScramAck;
                Some(server_final.into_bytes())
            }
            other => {
                self.state = other;
                None
            }
        }
    }
}

/// Encodes `bytes` in standard base64 with padding (RFC 4648 §4).
pub fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why a string is not base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidBase64;

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes `text`; the empty string decodes to no octets.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, InvalidBase64> {
    if !text.len().is_multiple_of(4) {
        return Err(InvalidBase64);
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (i, group) in text.chunks_exact(4).enumerate() {
        // Padding only in the last group: "xx==" or "xxx=".
        let pad = match group {
            [_, _, b'=', b'='] => 2,
            [_, _, _, b'='] => 1,
            _ => 0,
        };
        if pad > 0 && i + 1 != groups {
            return Err(InvalidBase64);
        }
        let mut n = 0u32;
        for &c in &group[..4 - pad] {
            n = (n << 6) | value(c).ok_or(InvalidBase64)?;
        }
        n <<= 6 * pad;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // RFC 4648 §3.5: the bits that padding leaves over must be zero.
        let unused_bits = match pad {
            2 => n & 0xffff,
            1 => n & 0xff,
            _ => 0,
        };
        if unused_bits != 0 {
            return Err(InvalidBase64);
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

/// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`, UTF-8, authcid and passwd not empty.
pub fn parse_plain(message: Vec<u8>) -> Option<(String, String, Secret<String>)> {
    let message = String::from_utf8(message).ok()?;
    let mut parts = message.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    Some((
        authzid.to_string(),
        authcid.to_string(),
        Secret::new(password.to_string()),
    ))
}

/// A LOGIN field: non-empty UTF-8.
pub fn non_empty_utf8(response: Vec<u8>) -> Option<String> {
    String::from_utf8(response).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_base64_decodes() {
        // RFC 4648 §10 test vectors, and SASL PLAIN examples.
        let table: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"Zg==", b"f"),
            (b"Zm8=", b"fo"),
            (b"Zm9v", b"foo"),
            (b"Zm9vYg==", b"foob"),
            (b"Zm9vYmE=", b"fooba"),
            (b"Zm9vYmFy", b"foobar"),
            (b"AA==", b"\0"),
            (b"//8=", b"\xff\xff"),
            (b"+/+/", b"\xfb\xff\xbf"),
            (
                b"AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==",
                b"\0alice@example.org\0secret",
            ),
            (b"VXNlcm5hbWU6", b"Username:"),
            (b"UGFzc3dvcmQ6", b"Password:"),
        ];
        for (text, want) in table {
            assert_eq!(
                decode_base64(text).as_deref(),
                Ok(*want),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn invalid_base64_is_refused() {
        let table: &[&[u8]] = &[
            b"Z",
            b"Zg",
            b"Zg=",
            b"Zm9",
            b"Zg===",
            b"====",
            b"Z===",
            b"=Zg=",
            b"Zg==Zg==",
            b"Zm9v\r\n",
            b"Zm9v ",
            b" Zm9v",
            b"Zm 9v",
            b"Zm9-",
            b"Zm9_",
            b"Zm9*",
            b"Zm\x009",
            b"Zm9v\xc3\xa9",
            // Non-zero bits under the padding (RFC 4648 §3.5).
            b"Zh==",
            b"Zm9=",
            b"*",
        ];
        for text in table {
            assert_eq!(
                decode_base64(text),
                Err(InvalidBase64),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn every_octet_value_survives_a_round_trip() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let data: Vec<u8> = (0..=255).collect();
        for len in 0..data.len() {
            let input = &data[..len];
            let mut text = Vec::new();
            for chunk in input.chunks(3) {
                let mut b = [0u8; 3];
                b[..chunk.len()].copy_from_slice(chunk);
                let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
                for i in 0..4 {
                    if i <= chunk.len() {
                        text.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
                    } else {
                        text.push(b'=');
                    }
                }
            }
            assert_eq!(decode_base64(&text).as_deref(), Ok(input), "length {len}");
        }
    }

    #[test]
    fn encoding_round_trips() {
        let data: Vec<u8> = (0..=255).collect();
        for len in 0..data.len() {
            let text = encode_base64(&data[..len]);
            assert_eq!(decode_base64(text.as_bytes()).as_deref(), Ok(&data[..len]));
        }
        assert_eq!(encode_base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
    }

    #[test]
    fn login_and_plain_exchanges_yield_passwords() {
        let mut e = Exchange::new(Mechanism::Login);
        assert!(matches!(e.start(), Step::Challenge(c) if c == b"Username:"));
        assert!(matches!(e.respond(b"alice".to_vec()), Step::Challenge(c) if c == b"Password:"));
        match e.respond(b"pw".to_vec()) {
            Step::Attempt(Attempt {
                authcid,
                credential: Credential::Password(password),
                ..
            }) => {
                assert_eq!(authcid, "alice");
                assert_eq!(password.expose(), "pw");
            }
            other => panic!("{other:?}"),
        }
        let mut e = Exchange::new(Mechanism::Plain);
        assert!(matches!(e.respond(b"\0bob\0pw".to_vec()), Step::Attempt(_)));
        let mut e = Exchange::new(Mechanism::Plain);
        assert!(matches!(e.respond(b"nonsense".to_vec()), Step::Malformed));
        assert_eq!(
            Mechanism::from_name("scram-sha-256"),
            Some(Mechanism::ScramSha256)
        );
        let names = ["LOGIN", "x", "PLAIN", "login"].map(String::from);
        assert_eq!(
            Mechanism::list(&names),
            vec![Mechanism::Login, Mechanism::Plain]
        );
    }

    #[test]
    fn a_scram_exchange_runs_to_the_end() {
        // The RFC 7677 §3 example, through the exchange.
        let mut e = Exchange::new(Mechanism::ScramSha256);
        match e.respond(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO".to_vec()) {
            Step::NeedCredentials { authcid, authzid } => {
                assert_eq!((authcid.as_str(), authzid.as_str()), ("user", ""));
            }
            other => panic!("{other:?}"),
        }
        let salt = decode_base64(b"W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let creds = ScramCredentials::derive("pencil", &salt, 4096);
        assert!(matches!(
            e.credentials(creds, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"),
            Step::Challenge(_)
        ));
        let last = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert!(matches!(
            e.respond(last.to_vec()),
            Step::Attempt(Attempt {
                credential: Credential::Scram { verified: true },
                ..
            })
        ));
        assert_eq!(
            e.server_final().as_deref(),
            Some(&b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="[..])
        );
        assert!(matches!(e.respond(Vec::new()), Step::Done));
    }

    #[test]
    fn plain_messages_split_into_three_fields() {
        let ok = |m: &[u8]| parse_plain(m.to_vec()).map(|(z, c, p)| (z, c, p.expose().clone()));
        let s = |a: &str, b: &str, c: &str| Some((a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(ok(b"\0alice\0secret"), s("", "alice", "secret"));
        assert_eq!(ok(b"bob\0alice\0secret"), s("bob", "alice", "secret"));
        assert_eq!(ok("\0zoë\0pässword".as_bytes()), s("", "zoë", "pässword"));
        for bad in [
            &b""[..],
            b"alice",
            b"alice\0secret",
            b"\0\0secret",
            b"\0alice\0",
            b"\0alice\0secret\0",
            b"\0alice\0sec\0ret",
            b"\0al\xffice\0secret",
        ] {
            assert_eq!(ok(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
