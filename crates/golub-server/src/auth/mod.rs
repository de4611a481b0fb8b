//! Authentication of users' programs (SMTP AUTH now, POP3 and IMAP later): the password
//! check runs off the async runtime (argon2 is deliberately slow), and failed logins are
//! slowed down and then blocked per client IP and per account.

mod throttle;

pub use throttle::{AuthThrottle, ThrottleConfig, Verdict};

use golub_store::{Store, User};

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
