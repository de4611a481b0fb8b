//! Crash safety of the real binary: `golub serve` is killed with SIGKILL while clients are
//! sending and local delivery is running, then restarted. Every message whose 250 a client
//! saw must end up in its mailbox exactly once, and the store must stay consistent.

use golub_store::Store;
use golub_testkit::blocking::SmtpClient;
use golub_testkit::serve::GolubProcess;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// Sends messages over one connection until an error; records the Message-IDs acked.
fn client(port: u16, tag: String, acked: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
    client_to(port, "alice@example.org", tag, acked, stop)
}

fn client_to(
    port: u16,
    to: &str,
    tag: String,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let Ok(mut c) = SmtpClient::connect(("127.0.0.1", port)) else {
        return;
    };
    let mut step = || -> std::io::Result<()> {
        if c.code()? != 220 {
            return Err(std::io::ErrorKind::Other.into());
        }
        c.cmd("EHLO crash.test")?;
        for i in 0..10_000 {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let id = format!("{tag}.{i}@crash.test");
            c.send(
                format!("MAIL FROM:<load@crash.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes(),
            )?;
            for _ in 0..3 {
                c.reply()?;
            }
            let body = format!(
                "Message-ID: <{id}>\r\nSubject: crash test\r\n\r\n{}\r\n.\r\n",
                vec!["z".repeat(70); 30].join("\r\n")
            );
            c.send(body.as_bytes())?;
            if c.code()? == 250 {
                acked.lock().unwrap().push(id);
            }
        }
        Ok(())
    };
    let _ = step();
}

fn message_ids(store: &Store) -> HashMap<String, usize> {
    count_ids(golub_testkit::inbox(store, "alice@example.org").iter())
}

/// How many times each Message-ID occurs among `messages`.
fn count_ids<'a>(messages: impl Iterator<Item = &'a Vec<u8>>) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in messages {
        let text = String::from_utf8_lossy(m);
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: <"))
            .and_then(|l| l.strip_suffix('>'))
            .expect("every stored message has its Message-ID")
            .to_string();
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

#[test]
fn sigkill_during_load_loses_nothing_acknowledged_and_duplicates_nothing() {
    let mut server = GolubProcess::new(env!("CARGO_BIN_EXE_golub"));
    server.seed();
    let port = server.smtp_port;

    let acked = Arc::new(Mutex::new(Vec::new()));
    let rounds = 10;
    for round in 0..rounds {
        server.start();
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..8)
            .map(|t| {
                let acked = acked.clone();
                let stop = stop.clone();
                std::thread::spawn(move || client(port, format!("r{round}t{t}"), acked, stop))
            })
            .collect();
        // Kill at a different point each round: after some more acknowledgements.
        let target = acked.lock().unwrap().len() + 40 + 25 * round;
        let start = Instant::now();
        while acked.lock().unwrap().len() < target {
            assert!(start.elapsed() < DEADLINE, "clients made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        server.kill(); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
    }

    // A last start finishes whatever the queue holds.
    server.start();
    let store = Store::open(server.data_dir()).unwrap();
    let start_wait = Instant::now();
    while store.queue_pending_count().unwrap() > 0 {
        assert!(
            start_wait.elapsed() < DEADLINE,
            "queue did not drain after restart"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = message_ids(&store);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40 * rounds);
    for id in &acked {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "{id} was acknowledged; it must be there exactly once"
        );
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "no message is delivered twice"
    );
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
    let (dangling, miscounted): (i64, i64) = store
        .read(|c| {
            let dangling = c.query_row(
                "SELECT COUNT(*) FROM messages WHERE blob_id NOT IN (SELECT id FROM blobs)",
                [],
                |r| r.get(0),
            )?;
            let miscounted = c.query_row(
                "SELECT COUNT(*) FROM blobs b WHERE refcount !=
                    (SELECT COUNT(*) FROM messages m WHERE m.blob_id = b.id)
                  + (SELECT COUNT(*) FROM queue q WHERE q.blob_id = b.id)",
                [],
                |r| r.get(0),
            )?;
            Ok((dangling, miscounted))
        })
        .unwrap();
    assert_eq!(
        (dangling, miscounted),
        (0, 0),
        "every reference has its blob and every blob its count"
    );
    server.kill();
}

/// The files under `blobs/`.
/// Outbound: mail for a routed domain is relayed to a sink while the server is killed
/// again and again. Every message a client saw 250 for reaches the sink; only what was in
/// flight at a kill (sent, its outcome not yet committed) may reach it twice.
#[test]
fn sigkill_during_remote_delivery_loses_nothing_acknowledged() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sink = rt.block_on(async {
        golub_testkit::sink::Sink::start("127.0.0.1:0", Default::default()).await
    });
    let mut server = GolubProcess::new(env!("CARGO_BIN_EXE_golub"));
    server.add_config(&format!("[routes]\n\"relay.test\" = \"{}\"\n", sink.addr));
    server.seed();
    let port = server.smtp_port;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let rounds = 5;
    for round in 0..rounds {
        server.start();
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..8)
            .map(|t| {
                let acked = acked.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    client_to(
                        port,
                        "user@relay.test",
                        format!("r{round}t{t}"),
                        acked,
                        stop,
                    )
                })
            })
            .collect();
        // Kill once the sink is busy: after more acknowledgements each round.
        let target = acked.lock().unwrap().len() + 100 + 50 * round;
        let start = Instant::now();
        while acked.lock().unwrap().len() < target || sink.messages().is_empty() {
            assert!(start.elapsed() < DEADLINE, "clients made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        server.kill(); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
    }
    server.start();
    let acked = acked.lock().unwrap().clone();
    let start = Instant::now();
    let seen = loop {
        let got = sink.messages();
        let seen = count_ids(got.iter().map(|m| &m.data));
        if acked.iter().all(|id| seen.contains_key(id)) {
            break seen;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{} of {} acknowledged messages reached the sink",
            acked.iter().filter(|id| seen.contains_key(*id)).count(),
            acked.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let store = Store::open(server.data_dir()).unwrap();
    let start = Instant::now();
    while store.queue_pending_count().unwrap() > 0 {
        assert!(start.elapsed() < DEADLINE, "queue did not drain");
        std::thread::sleep(Duration::from_millis(10));
    }
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "{} acknowledged, {} at the sink, {duplicates} sent twice over {rounds} kills",
        acked.len(),
        seen.len()
    );
    // In flight at a kill: up to 10 connections, each with the messages whose 250 came
    // in while their outcome waited for the next group commit.
    assert!(
        duplicates <= rounds * 100,
        "{duplicates} duplicates over {rounds} kills"
    );
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
    server.kill();
}

fn blob_files(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("blobs"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigkill_mid_upload_of_a_large_message_leaves_nothing_check_store_reports() {
    let mut server = GolubProcess::new(env!("CARGO_BIN_EXE_golub"));
    server.seed();
    server.start();
    let data = server.data_dir().to_path_buf();
    let mut c = SmtpClient::connect(("127.0.0.1", server.smtp_port)).unwrap();
    assert_eq!(c.code().unwrap(), 220);
    for (cmd, code) in [
        ("EHLO client.example", "250"),
        ("MAIL FROM:<carol@remote.example>", "250"),
        ("RCPT TO:<alice@example.org>", "250"),
        ("DATA", "354"),
    ] {
        let r = c.cmd(cmd).unwrap();
        assert!(r.starts_with(code), "{cmd}: {r}");
    }
    // 3 MB, past the 1 MiB inline limit: the server is writing it to a partial file.
    let line = [b"x".repeat(998).as_slice(), b"\r\n"].concat();
    for _ in 0..3000 {
        c.send(&line).unwrap();
    }
    let start_wait = Instant::now();
    while !blob_files(&data).iter().any(|f| f.starts_with("tmp-")) {
        assert!(start_wait.elapsed() < DEADLINE, "no partial body file");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill(); // SIGKILL
    drop(c);
    assert!(blob_files(&data).iter().all(|f| f.starts_with("tmp-")));

    let o = server.command().arg("check-store").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.ends_with("the store is consistent\n"), "{out}");
    assert_eq!(
        blob_files(&data),
        Vec::<String>::new(),
        "opening removed it"
    );
    let store = Store::open(&data).unwrap();
    assert_eq!(store.queue_pending_count().unwrap(), 0);
}
