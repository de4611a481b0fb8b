//! Crash safety of the real binary: `golub serve` is killed with SIGKILL while clients are
//! sending and local delivery is running, then restarted. Every message whose 250 a client
//! saw must end up in its mailbox exactly once, and the store must stay consistent.

use golub_store::Store;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

fn golub(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_golub"));
    c.arg("--config").arg(config);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the server and waits until it says it is listening.
fn start(config: &Path) -> Child {
    let mut child = golub(config)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("server printed its listeners").unwrap();
        if line.contains("listening for smtp") {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

fn read_reply(r: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| std::io::ErrorKind::InvalidData.into());
        }
    }
}

/// Sends messages over one connection until an error; records the Message-IDs acked.
fn client(port: u16, tag: String, acked: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut step = || -> std::io::Result<()> {
        if read_reply(&mut r)? != 220 {
            return Err(std::io::ErrorKind::Other.into());
        }
        w.write_all(b"EHLO crash.test\r\n")?;
        read_reply(&mut r)?;
        for i in 0..10_000 {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let id = format!("{tag}.{i}@crash.test");
            w.write_all(b"MAIL FROM:<load@crash.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")?;
            for _ in 0..3 {
                read_reply(&mut r)?;
            }
            let body = format!(
                "Message-ID: <{id}>\r\nSubject: crash test\r\n\r\n{}\r\n.\r\n",
                vec!["z".repeat(70); 30].join("\r\n")
            );
            w.write_all(body.as_bytes())?;
            if read_reply(&mut r)? == 250 {
                acked.lock().unwrap().push(id);
            }
        }
        Ok(())
    };
    let _ = step();
}

fn message_ids(store: &Store) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in golub_testkit::inbox(store, "alice@example.org") {
        let text = String::from_utf8_lossy(&m);
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
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("golub.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mx.example.org\"\ndata_dir = \"{}\"\n[listen]\nsmtp = [\"127.0.0.1:{port}\"]\nsubmission = []\nsubmissions = []\nimap = []\nimaps = []\npop3 = []\npop3s = []\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    assert!(
        golub(&config)
            .args(["domain", "add", "example.org"])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        golub(&config)
            .args(["user", "add", "alice@example.org", "--password", "pw"])
            .status()
            .unwrap()
            .success()
    );

    let acked = Arc::new(Mutex::new(Vec::new()));
    let rounds = 10;
    for round in 0..rounds {
        let mut server = start(&config);
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
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
    }

    // A last start finishes whatever the queue holds.
    let mut server = start(&config);
    let store = Store::open(dir.path().join("data")).unwrap();
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
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The files under `blobs/`.
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
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let config = dir.path().join("golub.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mx.example.org\"\ndata_dir = \"{}\"\n[listen]\nsmtp = [\"127.0.0.1:{port}\"]\nsubmission = []\nsubmissions = []\nimap = []\nimaps = []\npop3 = []\npop3s = []\n",
            data.display()
        ),
    )
    .unwrap();
    assert!(
        golub(&config)
            .args(["domain", "add", "example.org"])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        golub(&config)
            .args(["user", "add", "alice@example.org", "--password", "pw"])
            .status()
            .unwrap()
            .success()
    );
    let mut server = start(&config);
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    assert_eq!(read_reply(&mut r).unwrap(), 220);
    for (cmd, code) in [
        ("EHLO client.example", 250),
        ("MAIL FROM:<carol@remote.example>", 250),
        ("RCPT TO:<alice@example.org>", 250),
        ("DATA", 354),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut r).unwrap(), code, "{cmd}");
    }
    // 3 MB, past the 1 MiB inline limit: the server is writing it to a partial file.
    let line = [b"x".repeat(998).as_slice(), b"\r\n"].concat();
    for _ in 0..3000 {
        w.write_all(&line).unwrap();
    }
    let start_wait = Instant::now();
    while !blob_files(&data).iter().any(|f| f.starts_with("tmp-")) {
        assert!(start_wait.elapsed() < DEADLINE, "no partial body file");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    drop(w);
    assert!(blob_files(&data).iter().all(|f| f.starts_with("tmp-")));

    let o = golub(&config).arg("check-store").output().unwrap();
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
