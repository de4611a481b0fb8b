//! What the sender hears of a message that waits in the queue: one delay report after
//! `warn_after` (RFC 3464 `Action: delayed`), and a bounce once `bounce_after` has passed.
//! Mail for other domains waits in the queue (deferred, 4.4.1) until outbound delivery
//! exists, which makes it the waiting message here. Every wait polls with a deadline.

use golub_server::config::HumanDuration;
use golub_store::{BodyRef, NewMessage};
use golub_testkit::{DEADLINE, TestServer};
use golub_types::QueueId;
use std::time::{Duration, Instant};

async fn queue_remote_message(t: &TestServer, id: u64) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    t.store().enqueue(
        NewMessage {
            id: QueueId(id),
            reverse_path: "alice@example.org".into(),
            recipients: vec!["friend@elsewhere.example".into()],
            smtputf8: false,
            eight_bit: false,
            body: BodyRef::Inline(
                b"From: alice@example.org\r\nSubject: waiting mail\r\n\r\nhello\r\n".to_vec(),
            ),
            envid: String::new(),
            ret: String::new(),
        },
        move |r| {
            let _ = tx.send(r.map(|_| ()));
        },
    );
    rx.await.unwrap().unwrap();
}

/// The attempts made so far for the queued message `id` (0 once it has left the queue).
fn attempts(t: &TestServer, id: u64) -> u32 {
    t.store()
        .queued_message(QueueId(id))
        .unwrap()
        .map(|m| m.recipients.iter().map(|r| r.attempts).max().unwrap_or(0))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_is_told_once_that_a_message_is_delayed() {
    let t = TestServer::start_with(|c| {
        c.queue.retry = vec![HumanDuration::secs(1)];
        c.queue.warn_after = HumanDuration::secs(1);
        c.queue.scan_interval = HumanDuration::secs(1);
        c.queue.bounce_after = HumanDuration::secs(3600);
    })
    .await;
    queue_remote_message(&t, 0x51).await;
    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    let report = String::from_utf8_lossy(&inbox[0]).into_owned();
    assert!(
        report.contains("Subject: Delayed Mail (still being retried)"),
        "{report}"
    );
    assert!(
        report.contains("Action: delayed\r\nStatus: 4.4.1\r\n"),
        "{report}"
    );
    assert!(report.contains("Will-Retry-Until: "), "{report}");
    assert!(report.contains("Final-Recipient: rfc822; friend@elsewhere.example"));
    assert!(
        report.contains("Subject: waiting mail"),
        "the original's headers"
    );
    assert!(report.starts_with("Return-Path: <>\r\n"), "{report}");
    // More attempts follow; none of them warns again.
    let start = Instant::now();
    let seen = attempts(&t, 0x51);
    while attempts(&t, 0x51) < seen + 2 {
        assert!(start.elapsed() < DEADLINE, "no further attempts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(t.inbox("alice@example.org").len(), 1, "one warning only");
    assert!(
        t.store()
            .queued_message(QueueId(0x51))
            .unwrap()
            .unwrap()
            .warned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_waited_bounce_after_goes_back_to_its_sender() {
    let t = TestServer::start_with(|c| {
        c.queue.retry = vec![HumanDuration::secs(1)];
        c.queue.warn_after = HumanDuration::secs(0);
        c.queue.scan_interval = HumanDuration::secs(1);
        c.queue.bounce_after = HumanDuration::secs(2);
    })
    .await;
    queue_remote_message(&t, 0x52).await;
    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    let report = String::from_utf8_lossy(&inbox[0]).into_owned();
    assert!(
        report.contains("Subject: Undelivered Mail Returned to Sender"),
        "{report}"
    );
    assert!(report.contains("Action: failed"), "{report}");
    assert!(report.contains("message expired in queue"), "{report}");
    assert!(
        !report.contains("Action: delayed"),
        "warnings are off: {report}"
    );
    t.wait_for_empty_queue().await;
    assert!(t.store().queued_message(QueueId(0x52)).unwrap().is_none());
}
