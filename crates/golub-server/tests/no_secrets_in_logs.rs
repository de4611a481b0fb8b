//! Passwords never reach the logs: this binary installs a TRACE subscriber that writes
//! into a buffer, runs right and wrong logins over SMTP (AUTH PLAIN, AUTH LOGIN) and POP3
//! (USER/PASS, AUTH PLAIN), and then searches the buffer for the passwords in every form
//! the client sent them. Alone in its file: a global subscriber is per process.

use golub_store::hash_password;
use golub_testkit::{Pop3Client, SmtpClient, TestServer, base64};
use std::io::Write;
use std::sync::{Arc, Mutex};

const USER: &str = "carol@example.org";
const RIGHT: &str = "Corr3ct-H0rse-Battery";
const WRONG: &str = "Wr0ng-Guess-Staple";

fn plain(user: &str, password: &str) -> String {
    base64(format!("\0{user}\0{password}").as_bytes())
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_reach_the_logs() {
    let logs = Buffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let t = TestServer::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.auth.failure_delay_ms = 1;
        c.auth.max_failures = 100;
    })
    .await;
    t.store()
        .add_user(USER, "Carol", hash_password(RIGHT).unwrap())
        .unwrap();

    // SMTP AUTH PLAIN, with the initial response and after a 334.
    for (password, code) in [(WRONG, "535"), (RIGHT, "235")] {
        let mut c = SmtpClient::connect(t.addr("submission")).await;
        assert_eq!(c.code().await, Some(220));
        assert!(c.cmd("EHLO laptop.example").await.contains("AUTH"));
        let r = c
            .cmd(&format!("AUTH PLAIN {}", plain(USER, password)))
            .await;
        assert!(r.starts_with(code), "{r}");
        let mut c = SmtpClient::connect(t.addr("submission")).await;
        assert_eq!(c.code().await, Some(220));
        assert!(c.cmd("EHLO laptop.example").await.starts_with("250"));
        assert!(c.cmd("AUTH PLAIN").await.starts_with("334"));
        let r = c.cmd(&plain(USER, password)).await;
        assert!(r.starts_with(code), "{r}");
    }
    // SMTP AUTH LOGIN.
    for (password, code) in [(WRONG, "535"), (RIGHT, "235")] {
        let mut c = SmtpClient::connect(t.addr("submission")).await;
        assert_eq!(c.code().await, Some(220));
        assert!(c.cmd("EHLO laptop.example").await.starts_with("250"));
        assert!(c.cmd("AUTH LOGIN").await.starts_with("334"));
        assert!(c.cmd(&base64(USER.as_bytes())).await.starts_with("334"));
        let r = c.cmd(&base64(password.as_bytes())).await;
        assert!(r.starts_with(code), "{r}");
    }
    // POP3 USER/PASS and AUTH PLAIN.
    for (password, ok) in [(WRONG, false), (RIGHT, true)] {
        let mut c = Pop3Client::connect(t.addr("pop3")).await;
        assert!(c.cmd(&format!("USER {USER}")).await.starts_with("+OK"));
        let r = c.cmd(&format!("PASS {password}")).await;
        assert_eq!(r.starts_with("+OK"), ok, "{r}");
        if ok {
            assert!(c.cmd("QUIT").await.starts_with("+OK"));
        }
        let mut c = Pop3Client::connect(t.addr("pop3")).await;
        let r = c
            .cmd(&format!("AUTH PLAIN {}", plain(USER, password)))
            .await;
        assert_eq!(r.starts_with("+OK"), ok, "{r}");
        if ok {
            assert!(c.cmd("QUIT").await.starts_with("+OK"));
        }
    }

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    // The logs were captured: logins and failures are there, with the user.
    assert!(text.contains("login succeeded"), "{text}");
    assert!(text.contains(USER), "{text}");
    let mut secrets = Vec::new();
    for pw in [RIGHT, WRONG] {
        secrets.push(pw.to_string());
        secrets.push(base64(pw.as_bytes()));
        secrets.push(plain(USER, pw));
        // The password's own base64 characters at each of the three alignments it can
        // have inside a longer encoding (the middle, which no neighbour changes).
        for k in 0..3 {
            let mut raw = vec![b'x'; k];
            raw.extend_from_slice(pw.as_bytes());
            let enc = base64(&raw);
            secrets.push(enc[4..enc.len() - 4].to_string());
        }
    }
    for secret in secrets {
        assert!(
            !text.contains(&secret),
            "the logs contain {secret:?}:\n{text}"
        );
    }
    eprintln!(
        "no_secrets_in_logs: {} bytes, {} lines of TRACE logs searched",
        text.len(),
        text.lines().count()
    );
}
