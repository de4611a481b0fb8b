//! Authentication of users' programs, one path for every protocol (SMTP AUTH, POP3, and
//! IMAP): the throttle decides first, the password check runs off the async runtime
//! (argon2 is deliberately slow, so on tokio's blocking threads rather than the store's
//! few reader threads), directory reads run on the store's reader threads, and every
//! outcome is logged and counted the same way.

mod cache;
mod throttle;

pub use cache::LoginCache;

pub use throttle::{AuthThrottle, ThrottleConfig, Verdict};

use crate::Shared;
use crate::reads;
use golub_store::{Store, User};
use golub_types::sasl::Credential;
use golub_types::sasl::scram::{self, ScramCredentials};
use std::net::IpAddr;
use std::time::Instant;
use tracing::{info, warn};

/// Checks a password without blocking the runtime. `Ok(None)`: wrong user or password.
pub async fn verify(
    store: &Store,
    user: &str,
    password: &str,
) -> golub_store::Result<Option<User>> {
    let store = store.clone();
    let user = user.to_string();
    let password = password.to_string();
    tokio::task::spawn_blocking(move || store.verify_password(&user, &password))
        .await
        .unwrap_or(Err(golub_store::Error::WriterGone))
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Too many failures from this client address lately: refused unchecked; protocols
    /// close the session.
    Blocked,
    /// Unknown user, wrong password, or an authorization identity other than the user.
    Invalid,
    /// The directory could not be read; try again later.
    TempFail,
}

/// One login attempt as a protocol session reports it.
pub struct Attempt<'a> {
    pub proto: &'static str,
    pub ip: IpAddr,
    pub mechanism: &'a str,
    /// The identity to act as (SASL authzid); empty or the user's own.
    pub authzid: &'a str,
    /// The identity whose password this is (SASL authcid).
    pub authcid: &'a str,
    pub credential: &'a Credential,
}

/// A secret for SCRAM decoys, made once per process.
fn decoy_secret() -> &'static [u8; 32] {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| scram::random_bytes::<32>().unwrap_or([0x5a; 32]))
}

/// SCRAM's first step: the stored credentials of `authcid` and a fresh server nonce. A
/// user that does not exist, or has no SCRAM credentials yet (its password predates
/// them), gets a decoy that fails at the proof, so the exchange does not tell which. An
/// address blocked by the throttle is refused here already.
pub async fn scram_credentials(
    shared: &Shared,
    proto: &'static str,
    ip: IpAddr,
    authcid: &str,
) -> Result<(ScramCredentials, String), LoginFailure> {
    if shared.auth_throttle.check(ip, authcid, Instant::now()) == Verdict::Blocked {
        warn!(proto, user = %authcid, ip = %ip, "login refused: too many failures from this address");
        return Err(LoginFailure::Blocked);
    }
    let address = authcid.to_string();
    let creds = match reads::read(&shared.store, move |s| s.scram_credentials(&address)).await {
        Ok(Some((_, creds))) => creds,
        Ok(None) => ScramCredentials::decoy(&authcid.to_lowercase(), decoy_secret()),
        Err(e) => {
            warn!(proto, user = %authcid, error = %e, "cannot read scram credentials");
            return Err(LoginFailure::TempFail);
        }
    };
    let nonce = scram::new_nonce().ok_or(LoginFailure::TempFail)?;
    Ok((creds, nonce))
}

/// The login flow of every protocol: throttle, authorization identity, password, and
/// the failure delay. A failed attempt is answered only after the throttle's delay.
pub async fn login(shared: &Shared, a: Attempt<'_>) -> Result<User, LoginFailure> {
    let Attempt {
        proto,
        ip,
        mechanism,
        authzid,
        authcid,
        credential,
    } = a;
    let failure_delay = match shared.auth_throttle.check(ip, authcid, Instant::now()) {
        Verdict::Allow { failure_delay } => failure_delay,
        Verdict::Blocked => {
            warn!(proto, user = %authcid, ip = %ip, "login refused: too many failures from this address");
            return Err(LoginFailure::Blocked);
        }
    };
    // Acting as someone else is not supported: such an attempt fails like a wrong
    // password, and counts as one.
    let checked = if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
        warn!(proto, user = %authcid, authzid = %authzid, ip = %ip, "authorization identity differs");
        Ok(None)
    } else {
        match credential {
            Credential::Password(password) => {
                let now = Instant::now();
                match shared.login_cache.get(authcid, password.expose(), now) {
                    Some(user) => Ok(Some(user)),
                    None => {
                        let checked = verify(&shared.store, authcid, password.expose()).await;
                        if let Ok(Some(user)) = &checked {
                            shared
                                .login_cache
                                .put(authcid, password.expose(), user, now);
                        }
                        checked
                    }
                }
            }
            // The exchange checked the proof against the stored keys.
            Credential::Scram { verified: true } => {
                let address = authcid.to_string();
                reads::read(&shared.store, move |s| s.user(&address)).await
            }
            Credential::Scram { verified: false } => Ok(None),
        }
    };
    match checked {
        Ok(Some(user)) => {
            info!(proto, user = %user.address, ip = %ip, mechanism, "login succeeded");
            shared.metrics.auth(proto, true);
            shared.auth_throttle.succeeded(authcid);
            Ok(user)
        }
        Ok(None) => {
            shared.login_cache.forget(authcid);
            warn!(proto, user = %authcid, ip = %ip, mechanism, "login failed");
            shared.metrics.auth(proto, false);
            shared.auth_throttle.failed(ip, authcid, Instant::now());
            tokio::time::sleep(failure_delay).await;
            Err(LoginFailure::Invalid)
        }
        Err(e) => {
            warn!(proto, user = %authcid, error = %e, "password check failed");
            Err(LoginFailure::TempFail)
        }
    }
}
