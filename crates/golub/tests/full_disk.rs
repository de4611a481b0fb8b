//! A full disk under the real binary: `golub serve` keeps its data on a small tmpfs and a
//! client sends until the server says `452 4.3.1`. The session must survive, every message
//! acknowledged before must be intact, the database must pass its integrity check, and
//! once space is freed new mail must be accepted again without a restart.
//!
//! Mounting needs root (CI runs the tests as root). Without the permission the test says
//! so loudly and returns; any other mount failure is a failure.

use golub_store::Store;
use golub_testkit::blocking::SmtpClient;
use golub_testkit::serve::GolubProcess;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(120);
/// Messages sent at most before the disk must have filled (8 MiB / 16 KiB is about 500).
const MAX_MESSAGES: usize = 5000;

/// The tmpfs and the server on it; dropping kills the server and unmounts, even when an
/// assertion failed half-way.
struct Fixture {
    mount: PathBuf,
    server: GolubProcess,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.server.kill();
        // A store this process opened closes its files when its writer thread ends,
        // a moment after the drop: poll until the mount is no longer busy.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let unmounted = Command::new("umount")
                .arg(&self.mount)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if unmounted {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "full_disk: {} stays busy; unmounting lazily",
            self.mount.display()
        );
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Mounts a tmpfs of `size` at `dir`; `None` (after a loud message) without permission.
fn mount_tmpfs(dir: &Path, size: &str) -> Option<()> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .expect("the mount command runs");
    if out.status.success() {
        return Some(());
    }
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    if err.contains("permission denied")
        || err.contains("operation not permitted")
        || err.contains("must be superuser")
        || err.contains("only root")
    {
        eprintln!(
            "\n\n*** full_disk: SKIPPED: cannot mount a tmpfs here ({}); run the tests as root \
             to check full-disk behaviour ***\n\n",
            err.trim()
        );
        return None;
    }
    panic!("mount failed: {err}");
}

fn remount(dir: &Path, size: &str) {
    let st = Command::new("mount")
        .args(["-o", &format!("remount,size={size}")])
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "remount to {size}");
}

/// An SMTP session past EHLO that sends recognisable messages.
struct Client(SmtpClient);

impl Client {
    fn connect(port: u16) -> Client {
        Client(SmtpClient::greeted(("127.0.0.1", port)).unwrap())
    }

    fn cmd(&mut self, c: &str) -> String {
        self.0.cmd(c).unwrap()
    }

    /// One transaction; returns the first reply that is not a success, or the final 250.
    fn send(&mut self, id: &str) -> String {
        for c in [
            "MAIL FROM:<load@full.test>".to_string(),
            "RCPT TO:<alice@example.org>".to_string(),
        ] {
            let r = self.cmd(&c);
            if !r.starts_with("250") {
                return r;
            }
        }
        let r = self.cmd("DATA");
        if !r.starts_with("354") {
            return r;
        }
        self.0.send(&message(id)).unwrap();
        self.0.send(b".\r\n").unwrap();
        self.0.reply().unwrap()
    }
}

/// The body for `id`: recognisable, 16 KiB, different per message.
fn body(id: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..230 {
        b.extend_from_slice(format!("{id} line {i:04} {}\r\n", "f".repeat(40)).as_bytes());
    }
    b
}

fn message(id: &str) -> Vec<u8> {
    let mut m = format!("Message-ID: <{id}>\r\nSubject: full disk\r\n\r\n").into_bytes();
    m.extend_from_slice(&body(id));
    m
}

fn id_of(content: &[u8]) -> String {
    String::from_utf8_lossy(content)
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: <"))
        .and_then(|l| l.strip_suffix('>'))
        .expect("every stored message has its Message-ID")
        .to_string()
}

/// Every stored copy of a message (INBOX or still queued), by Message-ID; panics when a
/// body is not byte for byte what was sent.
fn stored(store: &Store) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    let mut contents = golub_testkit::inbox(store, "alice@example.org");
    for m in store.queue_entries().unwrap() {
        contents.push(store.read_blob(m.blob_id).unwrap());
    }
    for c in contents {
        let id = id_of(&c);
        assert!(c.ends_with(&message(&id)), "{id} is stored intact");
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

fn integrity_ok(data: &Path) {
    let store = Store::open(data).unwrap();
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
}

#[test]
fn full_disk_answers_452_keeps_what_was_acked_and_resumes_when_space_returns() {
    let server = GolubProcess::new(env!("CARGO_BIN_EXE_golub"));
    let data = server.data_dir().to_path_buf();
    std::fs::create_dir(&data).unwrap();
    if mount_tmpfs(&data, "8m").is_none() {
        return;
    }
    let mut fx = Fixture {
        mount: data.clone(),
        server,
    };
    fx.server.seed();
    fx.server.start();
    let port = fx.server.smtp_port;

    let mut c = Client::connect(port);
    let mut acked = Vec::new();
    let started = Instant::now();
    let refusal = loop {
        assert!(started.elapsed() < DEADLINE, "the disk never filled");
        assert!(
            acked.len() < MAX_MESSAGES,
            "{MAX_MESSAGES} messages fit in 8 MiB?"
        );
        let id = format!("m{}@full.test", acked.len());
        let r = c.send(&id);
        if r.starts_with("250") {
            acked.push(id);
        } else {
            break r;
        }
    };
    eprintln!(
        "full_disk: {} messages acknowledged before the refusal: {}",
        acked.len(),
        refusal.trim_end()
    );
    assert!(
        refusal.starts_with("452 4.3.1"),
        "a full disk is a temporary 452 4.3.1, got: {refusal}\nserver log:\n{}",
        fx.server.log()
    );
    // The session goes on.
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("NOOP").starts_with("250"));

    {
        let store = Store::open(&data).unwrap();
        let seen = stored(&store);
        for id in &acked {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "{id} was acknowledged; it must be kept once"
            );
        }
        assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
    }

    // Space comes back: mail is accepted again by the same server, on the same session.
    remount(&data, "64m");
    let resumed = Instant::now();
    let mut n = 0;
    loop {
        let id = format!("after{n}@full.test");
        let r = c.send(&id);
        if r.starts_with("250") {
            acked.push(id);
            break;
        }
        assert!(r.starts_with("452"), "while recovering: {r}");
        assert!(
            resumed.elapsed() < DEADLINE,
            "mail is not accepted again: {r}"
        );
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..20 {
        let id = format!("more{i}@full.test");
        let r = c.send(&id);
        assert!(r.starts_with("250"), "{r}");
        acked.push(id);
    }
    assert!(c.cmd("QUIT").starts_with("221"));

    // Delivery catches up with everything, each message once.
    let store = Store::open(&data).unwrap();
    let waited = Instant::now();
    while store.queue_pending_count().unwrap() > 0 {
        assert!(
            waited.elapsed() < DEADLINE,
            "queue did not drain after space returned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = stored(&store);
    for id in &acked {
        assert_eq!(seen.get(id), Some(&1), "{id} must be in the INBOX once");
    }
    assert!(seen.values().all(|&n| n == 1));
    drop(store);
    integrity_ok(&data);
    eprintln!(
        "full_disk: {} acknowledged messages checked intact, {} 452 replies while recovering",
        acked.len(),
        n
    );
    assert!(fx.server.is_running(), "server still runs");
}
