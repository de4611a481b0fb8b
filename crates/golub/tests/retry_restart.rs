//! A restart in the middle of a retry schedule: mail for a routed domain is deferred by
//! the next hop, `golub serve` is killed before the retry is due, and after the restart
//! the retry happens on schedule and the message is delivered once.

use golub_store::Store;
use golub_testkit::blocking::SmtpClient;
use golub_testkit::serve::GolubProcess;
use golub_testkit::sink::{Behaviour, Sink};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_deferred_message_is_retried_after_a_restart_and_delivered_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sink = rt.block_on(Sink::start(
        "127.0.0.1:0",
        Behaviour {
            rcpt: Arc::new(|_, seen| {
                if seen == 0 {
                    "451 4.3.2 try again later".into()
                } else {
                    "250 2.1.5 ok".into()
                }
            }),
            ..Behaviour::default()
        },
    ));
    let mut server = GolubProcess::new(env!("CARGO_BIN_EXE_golub"));
    server.add_config(&format!(
        "[queue]\nretry = [\"3s\"]\nscan_interval = \"1s\"\n[routes]\n\"relay.test\" = \"{}\"\n",
        sink.addr
    ));
    server.seed();
    server.start();
    let mut c = SmtpClient::connect(("127.0.0.1", server.smtp_port)).unwrap();
    assert_eq!(c.code().unwrap(), 220);
    c.cmd("EHLO restart.test").unwrap();
    c.send(b"MAIL FROM:<a@restart.test>\r\nRCPT TO:<user@relay.test>\r\nDATA\r\n")
        .unwrap();
    for _ in 0..3 {
        c.reply().unwrap();
    }
    c.send(b"Message-ID: <once@restart.test>\r\nSubject: retry me\r\n\r\nhello\r\n.\r\n")
        .unwrap();
    assert_eq!(c.code().unwrap(), 250);
    wait_until("the first, refused attempt", || sink.rcpts().len() == 1);
    // The deferral is recorded before the kill: its reply is in the queue.
    let store = Store::open(server.data_dir()).unwrap();
    wait_until("the deferral to be recorded", || {
        store.queue_entries().unwrap().iter().any(|m| {
            m.recipients
                .iter()
                .any(|r| r.attempts == 1 && r.last_reply.contains("try again later"))
        })
    });
    server.kill(); // SIGKILL, well before the retry is due
    assert!(sink.messages().is_empty());
    server.start();
    wait_until("the retry after the restart", || sink.messages().len() == 1);
    wait_until("an empty queue", || {
        store.queue_pending_count().unwrap() == 0
    });
    let got = sink.messages();
    assert_eq!(got.len(), 1, "delivered once");
    assert!(String::from_utf8_lossy(&got[0].data).contains("Subject: retry me"));
    assert_eq!(sink.rcpts().len(), 2, "one refused attempt, one accepted");
    server.kill();
}
