//! The control socket of a running server: hold, release, flush and delete queue entries
//! as `golub queue ...` does. Mail for another domain, submitted by an authenticated
//! user, waits in the queue, which makes it the entry to work on. Every wait polls with a
//! deadline.

use golub_server::config::HumanDuration;
use golub_testkit::{DEADLINE, SmtpClient, TestServer};
use golub_types::QueueId;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `\0alice@example.org\0pw`
const ALICE_PW: &str = "AGFsaWNlQGV4YW1wbGUub3JnAHB3";

/// A server whose deferred recipients wait an hour, so that only the control socket
/// makes them due again.
async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.queue.retry = vec![HumanDuration::secs(3600)];
    })
    .await
}

/// Alice submits a message to `to` (another domain's addresses); its queue id.
async fn submit(t: &TestServer, to: &[&str]) -> QueueId {
    let mut c = SmtpClient::connect(t.addr("submission")).await;
    assert_eq!(c.code().await, Some(220));
    assert!(c.cmd("EHLO laptop.example").await.starts_with("250"));
    let r = c.cmd(&format!("AUTH PLAIN {ALICE_PW}")).await;
    assert!(r.starts_with("235"), "{r}");
    assert!(
        c.cmd("MAIL FROM:<alice@example.org>")
            .await
            .starts_with("250")
    );
    for rcpt in to {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert!(r.starts_with("250"), "{r}");
    }
    assert!(c.cmd("DATA").await.starts_with("354"));
    let r = c
        .cmd("From: alice@example.org\r\nSubject: for far away\r\n\r\nhello\r\n.")
        .await;
    assert!(r.starts_with("250"), "{r}");
    let id = r.trim_end().rsplit(' ').next().unwrap();
    id.parse().unwrap()
}

/// One request over the control socket; the reply line.
async fn control(t: &TestServer, request: &str) -> String {
    let path = golub_server::control::socket_path(t.data_dir());
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    s.write_all(format!("{request}\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    tokio::time::timeout(DEADLINE, s.read_to_string(&mut reply))
        .await
        .expect("a reply within the deadline")
        .unwrap();
    reply
}

/// Attempts made so far on queue entry `id`'s recipients, together.
fn attempts(t: &TestServer, id: QueueId) -> u32 {
    t.store()
        .queued_message(id)
        .unwrap()
        .map(|m| m.recipients.iter().map(|r| r.attempts).sum())
        .unwrap_or(0)
}

/// Polls until entry `id` has had `n` attempts in all.
async fn wait_for_attempts(t: &TestServer, id: QueueId, n: u32) {
    let start = Instant::now();
    while attempts(t, id) < n {
        assert!(
            start.elapsed() < DEADLINE,
            "{id}: {} attempt(s), expected {n}",
            attempts(t, id)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_release_and_flush_over_the_control_socket() {
    let t = server().await;
    let path = golub_server::control::socket_path(t.data_dir());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the server's user may connect");
    }
    let id = submit(&t, &["friend@far.example"]).await;
    wait_for_attempts(&t, id, 1).await;

    let r = control(&t, &format!("HOLD {id}")).await;
    assert_eq!(r, format!("OK {id} held\n"));
    assert!(t.store().queued_message(id).unwrap().unwrap().held);
    let r = control(&t, &format!("FLUSH {id}")).await;
    assert!(r.starts_with("ERR ") && r.contains("on hold"), "{r}");
    let r = control(&t, "FLUSH").await;
    assert_eq!(
        r, "OK 0 recipient(s) due now\n",
        "a held entry is left alone"
    );

    let r = control(&t, &format!("RELEASE {id}")).await;
    assert_eq!(r, format!("OK {id} released\n"));
    assert!(!t.store().queued_message(id).unwrap().unwrap().held);
    wait_for_attempts(&t, id, 2).await;

    let r = control(&t, "FLUSH-DOMAIN far.example").await;
    assert_eq!(r, "OK far.example: 1 recipient(s) due now\n");
    wait_for_attempts(&t, id, 3).await;
    let r = control(&t, "FLUSH-DOMAIN elsewhere.example").await;
    assert_eq!(r, "OK elsewhere.example: 0 recipient(s) due now\n");

    let r = control(&t, &format!("FLUSH {id}")).await;
    assert_eq!(r, format!("OK {id}: 1 recipient(s) due now\n"));
    wait_for_attempts(&t, id, 4).await;
    let r = control(&t, "FLUSH").await;
    assert_eq!(r, "OK 1 recipient(s) due now\n");
    wait_for_attempts(&t, id, 5).await;

    for bad in ["HOLD 00000000000000ff", "RELEASE 00000000000000ff"] {
        let r = control(&t, bad).await;
        assert!(
            r.starts_with("ERR ") && r.contains("no such message"),
            "{r}"
        );
    }
    let r = control(&t, "HOLD nonsense").await;
    assert!(r.starts_with("ERR ") && r.contains("not a queue id"), "{r}");
    let r = control(&t, "REBOOT").await;
    assert!(r.starts_with("ERR unknown request"), "{r}");

    // The socket goes with the server.
    t.server.shutdown().await;
    assert!(!path.exists(), "control.sock removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_bounces_to_its_sender() {
    let t = server().await;
    let id = submit(&t, &["friend@far.example", "other@far.example"]).await;
    wait_for_attempts(&t, id, 2).await;
    let r = control(&t, &format!("DELETE {id}")).await;
    assert!(r.starts_with(&format!("OK {id} deleted, bounce ")), "{r}");
    assert!(r.contains("<alice@example.org>"), "{r}");
    assert!(t.store().queued_message(id).unwrap().is_none());

    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    let report = String::from_utf8_lossy(&inbox[0]).into_owned();
    assert!(report.starts_with("Return-Path: <>\r\n"), "{report}");
    assert!(
        report.contains("Subject: Undelivered Mail Returned to Sender"),
        "{report}"
    );
    for rcpt in ["friend@far.example", "other@far.example"] {
        assert!(
            report.contains(&format!(
                "Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\n"
            )),
            "{report}"
        );
    }
    assert!(
        report.contains("5.0.0 deleted from the queue by the administrator"),
        "{report}"
    );
    assert!(
        report.contains("Subject: for far away"),
        "the original's headers"
    );
    t.wait_for_empty_queue().await;

    let r = control(&t, &format!("DELETE {id}")).await;
    assert!(
        r.starts_with("ERR ") && r.contains("no such message"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_delete_sends_no_report() {
    let t = server().await;
    let id = submit(&t, &["friend@far.example"]).await;
    let r = control(&t, &format!("DELETE-SILENT {id}")).await;
    assert_eq!(r, format!("OK {id} deleted, no report sent\n"));
    // A report would have been queued before the reply: the queue is empty already.
    assert!(t.store().queue_entries().unwrap().is_empty());
    assert!(t.inbox("alice@example.org").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_directory_is_refused() {
    let t = server().await;
    let second = golub_server::Server::start(t.server.config().clone()).await;
    let Err(e) = second else {
        panic!("a second server started on the same data directory");
    };
    assert!(e.to_string().contains("another server"), "{e}");
    // The first one still answers.
    let r = control(&t, "FLUSH").await;
    assert!(r.starts_with("OK "), "{r}");
}
