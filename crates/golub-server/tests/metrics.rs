//! The metrics endpoint, scraped with curl: a submission with one failed and one good
//! AUTH, a refused and an accepted recipient, a POP3 login, and the delivery that follows
//! show up as counters; other paths get 404; the endpoint stops with the server.

use golub_testkit::{DEADLINE, Pop3Client, SmtpClient, TestServer};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// `\0alice@example.org\0pw` and `\0alice@example.org\0guess` in base64 (RFC 4616).
const ALICE_PW: &str = "AGFsaWNlQGV4YW1wbGUub3JnAHB3";
const ALICE_GUESS: &str = "AGFsaWNlQGV4YW1wbGUub3JnAGd1ZXNz";

/// GETs `path` with curl: (HTTP status, content type, body).
async fn curl(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let url = format!("http://{addr}{path}");
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-w",
                "\n%{http_code} %{content_type}",
            ])
            .arg(&url)
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, trailer) = text.rsplit_once('\n').expect("curl's -w trailer");
        let (code, ctype) = trailer.split_once(' ').unwrap_or((trailer, ""));
        (
            code.parse().expect("status code"),
            ctype.to_string(),
            body.to_string(),
        )
    })
    .await
    .expect("curl task")
}

/// The value of the sample written exactly as `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counters_follow_a_submission_and_its_delivery() {
    let t = TestServer::start_with(|c| {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        c.auth.allow_plaintext = true;
        c.auth.failure_delay_ms = 1;
    })
    .await;
    let metrics = t.addr("metrics");

    let mut c = SmtpClient::connect(t.addr("submission")).await;
    assert_eq!(c.code().await, Some(220));
    assert!(c.cmd("EHLO laptop.example").await.starts_with("250"));
    let r = c.cmd(&format!("AUTH PLAIN {ALICE_GUESS}")).await;
    assert!(r.starts_with("535"), "{r}");
    let r = c.cmd(&format!("AUTH PLAIN {ALICE_PW}")).await;
    assert!(r.starts_with("235"), "{r}");
    let r = c.cmd("MAIL FROM:<alice@example.org>").await;
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd("RCPT TO:<nobody@example.org>").await;
    assert!(r.starts_with('5'), "{r}");
    let r = c.cmd("RCPT TO:<bob@example.org>").await;
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: counted\r\n\r\nhello\r\n.\r\n").await;
    assert_eq!(c.code().await, Some(250));
    assert!(c.cmd("QUIT").await.starts_with("221"));
    t.wait_for_inbox("bob@example.org", 1).await;

    let mut p = Pop3Client::connect(t.addr("pop3")).await;
    assert!(p.cmd("USER bob@example.org").await.starts_with("+OK"));
    assert!(p.cmd("PASS pw").await.starts_with("+OK"));
    assert!(p.cmd("QUIT").await.starts_with("+OK"));

    // The delivery is counted when its commit completes, just after bob's INBOX shows it.
    let start = Instant::now();
    let (status, ctype, text) = loop {
        let (status, ctype, text) = curl(metrics, "/metrics").await;
        let delivered = value(
            &text,
            r#"golub_delivery_recipients_total{outcome="delivered"}"#,
        );
        if delivered == Some(1.0) || start.elapsed() > DEADLINE {
            break (status, ctype, text);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let at_least = |series: &str, min: f64| {
        let v = value(&text, series);
        assert!(v.is_some_and(|v| v >= min), "{series} = {v:?} in:\n{text}");
    };
    let exactly = |series: &str, want: f64| {
        assert_eq!(value(&text, series), Some(want), "{series} in:\n{text}");
    };
    exactly(r#"golub_smtp_messages_total{class="2xx"}"#, 1.0);
    exactly(r#"golub_smtp_recipients_refused_total{class="5xx"}"#, 1.0);
    exactly(
        r#"golub_delivery_recipients_total{outcome="delivered"}"#,
        1.0,
    );
    exactly(r#"golub_auth_total{protocol="smtp",result="failure"}"#, 1.0);
    exactly(r#"golub_auth_total{protocol="smtp",result="success"}"#, 1.0);
    exactly(r#"golub_auth_total{protocol="pop3",result="success"}"#, 1.0);
    exactly(r#"golub_queue_recipients{state="pending"}"#, 0.0);
    at_least(r#"golub_connections_total{listener="submission"}"#, 1.0);
    at_least(r#"golub_connections_total{listener="pop3"}"#, 1.0);
    at_least("golub_store_commit_duration_seconds_count", 1.0);
    at_least("golub_store_commit_batch_size_count", 1.0);
    assert!(text.ends_with("# EOF\n"), "{text}");

    let (status, _, _) = curl(metrics, "/other").await;
    assert_eq!(status, 404);

    t.server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(metrics).await.is_err(),
        "the metrics endpoint still listens after shutdown"
    );
}
