//! Password guessing against an account must not lock its owner out: after a guessing
//! run from one address is blocked, the right password from another address logs in, on
//! SMTP submission, POP3 and IMAP alike: the three share one throttle.

use golub_testkit::{ImapClient, Pop3Client, SmtpClient, TestServer};
use std::net::{IpAddr, SocketAddr};

fn plain(user: &str, password: &str) -> String {
    golub_testkit::base64(format!("\0{user}\0{password}").as_bytes())
}

/// One SMTP AUTH PLAIN attempt on a new connection from `from`; the reply.
async fn smtp_attempt(addr: SocketAddr, from: IpAddr, password: &str) -> String {
    let mut c = SmtpClient::connect_from(addr, from).await;
    assert_eq!(c.code().await, Some(220));
    assert!(c.cmd("EHLO laptop.example").await.starts_with("250"));
    c.cmd(&format!(
        "AUTH PLAIN {}",
        plain("alice@example.org", password)
    ))
    .await
}

/// One POP3 USER/PASS attempt on a new connection from `from`; the answer to PASS.
async fn pop3_attempt(addr: SocketAddr, from: IpAddr, password: &str) -> String {
    let mut c = Pop3Client::connect_from(addr, from).await;
    assert!(c.cmd("USER alice@example.org").await.starts_with("+OK"));
    c.cmd(&format!("PASS {password}")).await
}

/// One IMAP LOGIN attempt on a new connection from `from`; the tagged answer.
async fn imap_attempt(addr: SocketAddr, from: IpAddr, password: &str) -> String {
    let mut c = ImapClient::connect_from(addr, from).await;
    let r = c.cmd(&format!("LOGIN alice@example.org {password}")).await;
    r.last().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_guesser_does_not_lock_the_user_out() {
    let t = TestServer::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.auth.failure_delay_ms = 1;
        c.auth.max_failures = 10;
        c.limits.max_connections_per_ip = 200;
    })
    .await;
    let smtp = t.addr("submission");
    let pop3 = t.addr("pop3");
    let imap = t.addr("imap");
    let guesser: IpAddr = "127.0.0.2".parse().unwrap();
    let owner: IpAddr = "127.0.0.3".parse().unwrap();

    // 50 wrong passwords from one address, over the three protocols.
    let mut blocked = 0;
    for i in 0..50 {
        let r = match i % 3 {
            0 => smtp_attempt(smtp, guesser, "guess").await,
            1 => pop3_attempt(pop3, guesser, "guess").await,
            _ => imap_attempt(imap, guesser, "guess").await,
        };
        if r.starts_with("421")
            || r.contains("[AUTH]") && r.contains("too many")
            || r.contains("Too many failed logins")
        {
            blocked += 1;
        } else {
            assert!(
                r.starts_with("535")
                    || r.starts_with("-ERR")
                    || r.contains("NO [AUTHENTICATIONFAILED] Authentication failed"),
                "{r}"
            );
        }
    }
    assert_eq!(blocked, 40, "the guesser is blocked after 10 failures");
    // The guesser stays blocked even with the right password.
    assert!(smtp_attempt(smtp, guesser, "pw").await.starts_with("421"));
    let r = pop3_attempt(pop3, guesser, "pw").await;
    assert!(r.starts_with("-ERR"), "{r}");
    let r = imap_attempt(imap, guesser, "pw").await;
    assert!(r.contains("NO [AUTHENTICATIONFAILED] Too many"), "{r}");

    // The owner, from an address that has not been failing, logs in on both.
    let r = smtp_attempt(smtp, owner, "pw").await;
    assert!(r.starts_with("235 2.7.0"), "{r}");
    let r = pop3_attempt(pop3, owner, "pw").await;
    assert!(r.starts_with("+OK"), "{r}");
    let r = imap_attempt(imap, owner, "pw").await;
    assert!(r.contains(" OK [CAPABILITY "), "{r}");
    // A typo from the owner's address is an ordinary failure, not a block.
    let r = smtp_attempt(smtp, owner, "typo").await;
    assert!(r.starts_with("535 5.7.8"), "{r}");
}
