//! ETRN (RFC 1985) against a running server: a client in `[smtp] etrn_networks` sees it
//! in EHLO and starts the queue run for a domain at once; any other client gets 459.
//! Mail for another domain waits in the queue, which makes it the mail to run.

use golub_server::config::HumanDuration;
use golub_store::{BodyRef, NewMessage};
use golub_testkit::{DEADLINE, SmtpClient, TestServer};
use golub_types::QueueId;
use std::time::{Duration, Instant};

async fn queue_remote_message(t: &TestServer, id: u64, to: &str) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    t.store().enqueue(
        NewMessage {
            id: QueueId(id),
            reverse_path: "alice@example.org".into(),
            recipients: vec![to.into()],
            smtputf8: false,
            eight_bit: false,
            body: BodyRef::Inline(b"Subject: waiting\r\n\r\nhello\r\n".to_vec()),
            envid: String::new(),
            ret: String::new(),
        },
        move |r| {
            let _ = tx.send(r.map(|_| ()));
        },
    );
    rx.await.unwrap().unwrap();
}

fn attempts(t: &TestServer, id: u64) -> u32 {
    t.store()
        .queued_message(QueueId(id))
        .unwrap()
        .map(|m| m.recipients.iter().map(|r| r.attempts).sum())
        .unwrap_or(0)
}

async fn wait_for_attempts(t: &TestServer, id: u64, n: u32) {
    let start = Instant::now();
    while attempts(t, id) < n {
        assert!(
            start.elapsed() < DEADLINE,
            "{id:x}: fewer than {n} attempts"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The greeting, then EHLO's reply (all its lines).
async fn ehlo(c: &mut SmtpClient) -> String {
    assert_eq!(c.code().await, Some(220));
    c.cmd("EHLO relay.example").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etrn_from_an_allowed_network_runs_the_domains_queue_now() {
    let t = TestServer::start_with(|c| {
        c.smtp.etrn_networks = vec!["127.0.0.0/8".parse().unwrap()];
        c.queue.retry = vec![HumanDuration::secs(3600)];
        // The first attempts come from the scan; the retries would wait an hour.
        c.queue.scan_interval = HumanDuration::secs(1);
    })
    .await;
    queue_remote_message(&t, 0xE1, "friend@far.example").await;
    queue_remote_message(&t, 0xE2, "friend@other.example").await;
    wait_for_attempts(&t, 0xE1, 1).await;
    wait_for_attempts(&t, 0xE2, 1).await;

    let mut c = t.connect().await;
    let lines = ehlo(&mut c).await;
    assert!(lines.contains("ETRN"), "{lines}");
    let r = c.cmd("ETRN far.example").await;
    assert_eq!(r, "250 2.0.0 Queuing for node far.example started\r\n");
    wait_for_attempts(&t, 0xE1, 2).await;
    let r = c.cmd("ETRN @Far.Example").await;
    assert!(r.starts_with("250 "), "{r}");
    wait_for_attempts(&t, 0xE1, 3).await;
    assert_eq!(attempts(&t, 0xE2), 1, "another domain's mail still waits");
    let r = c.cmd("ETRN #queue").await;
    assert!(r.starts_with("458 4.3.0"), "{r}");
    let r = c.cmd("ETRN no..domain").await;
    assert!(r.starts_with("501 "), "{r}");
    assert!(c.cmd("QUIT").await.starts_with("221"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etrn_is_neither_offered_nor_allowed_by_default() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    let lines = ehlo(&mut c).await;
    assert!(!lines.contains("ETRN"), "{lines}");
    let r = c.cmd("ETRN far.example").await;
    assert!(
        r.starts_with("459 4.7.1 Node far.example not allowed"),
        "{r}"
    );
}
