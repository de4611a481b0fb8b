//! Crash safety of IMAP's writes: `golub serve` is killed with SIGKILL while clients
//! APPEND, STORE flags and EXPUNGE, then restarted. Everything the server answered OK to
//! is there after the restart (appended messages, flags), everything it expunged is gone,
//! and no change is half applied: the store stays consistent.

use golub_store::Store;
use golub_testkit::serve::GolubProcess;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// A blocking IMAP client: tagged commands, the lines up to the tagged response.
struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Imap {
    fn login(port: u16) -> std::io::Result<Imap> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut c = Imap {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            tag: 0,
        };
        c.line()?;
        let r = c.cmd(b"LOGIN alice@example.org pw")?;
        if !r.last().is_some_and(|l| l.contains(" OK ")) {
            return Err(std::io::ErrorKind::PermissionDenied.into());
        }
        c.cmd(b"SELECT INBOX")?;
        Ok(c)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        if self.reader.read_line(&mut l)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(l.trim_end().to_string())
    }

    fn cmd(&mut self, cmd: &[u8]) -> std::io::Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let mut out = format!("{tag} ").into_bytes();
        out.extend_from_slice(cmd);
        out.extend_from_slice(b"\r\n");
        self.writer.write_all(&out)?;
        let mut lines = Vec::new();
        loop {
            let l = self.line()?;
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return Ok(lines);
            }
        }
    }
}

fn ok(r: &[String]) -> bool {
    r.last().is_some_and(|l| l.split(' ').nth(1) == Some("OK"))
}

#[derive(Default)]
struct Acked {
    /// Message-ID → UID of each APPEND answered OK.
    appended: HashMap<String, u32>,
    /// UIDs whose `UID STORE +FLAGS (\Flagged)` was answered OK.
    flagged: HashSet<u32>,
    /// UIDs a `UID EXPUNGE` answered OK removed.
    expunged: HashSet<u32>,
    /// UIDs a `UID EXPUNGE` was sent for: one cut off by the kill may or may not have
    /// been applied, so these may be gone without an answer having said so.
    expunge_sent: HashSet<u32>,
}

/// Appends messages until stopped or cut off.
fn appender(port: u16, tag: String, acked: Arc<Mutex<Acked>>, stop: Arc<AtomicBool>) {
    let Ok(mut c) = Imap::login(port) else {
        return;
    };
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let id = format!("{tag}.{i}@crash.test");
        let msg = format!(
            "Message-ID: <{id}>\r\nSubject: imap crash\r\n\r\n{}\r\n",
            "y".repeat(500)
        );
        let mut cmd = format!("APPEND INBOX {{{}+}}\r\n", msg.len()).into_bytes();
        cmd.extend_from_slice(msg.as_bytes());
        let Ok(r) = c.cmd(&cmd) else { return };
        // OK [APPENDUID uidvalidity uid]
        if ok(&r)
            && let Some(uid) = r
                .last()
                .and_then(|l| l.split("APPENDUID ").nth(1))
                .and_then(|t| t.split([' ', ']']).nth(1))
                .and_then(|u| u.parse().ok())
        {
            acked.lock().unwrap().appended.insert(id, uid);
        }
    }
}

/// Flags messages, and deletes and expunges every third one, until stopped or cut off.
fn flagger(port: u16, acked: Arc<Mutex<Acked>>, stop: Arc<AtomicBool>) {
    let Ok(mut c) = Imap::login(port) else {
        return;
    };
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let Ok(r) = c.cmd(b"UID SEARCH UNFLAGGED") else {
            return;
        };
        let uids: Vec<u32> = r
            .iter()
            .find_map(|l| l.strip_prefix("* SEARCH"))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|u| u.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        for uid in uids.into_iter().take(20) {
            n += 1;
            if n.is_multiple_of(3) {
                let Ok(r) = c.cmd(format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)").as_bytes())
                else {
                    return;
                };
                if !ok(&r) {
                    continue;
                }
                acked.lock().unwrap().expunge_sent.insert(uid);
                let Ok(r) = c.cmd(format!("UID EXPUNGE {uid}").as_bytes()) else {
                    return;
                };
                if ok(&r) && r.iter().any(|l| l.ends_with(" EXPUNGE")) {
                    acked.lock().unwrap().expunged.insert(uid);
                }
            } else {
                let Ok(r) = c.cmd(format!("UID STORE {uid} +FLAGS.SILENT (\\Flagged)").as_bytes())
                else {
                    return;
                };
                if ok(&r) {
                    acked.lock().unwrap().flagged.insert(uid);
                }
            }
        }
    }
}

#[test]
fn sigkill_during_append_store_and_expunge_loses_nothing_acknowledged() {
    let mut server = GolubProcess::new(env!("CARGO_BIN_EXE_golub"));
    server.add_config("[auth]\nallow_plaintext = true\n");
    server.seed();
    let port = server.imap_port;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let rounds = 6;
    for round in 0..rounds {
        server.start();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<_> = (0..4)
            .map(|t| {
                let (acked, stop) = (acked.clone(), stop.clone());
                std::thread::spawn(move || appender(port, format!("r{round}t{t}"), acked, stop))
            })
            .collect();
        let (a, s) = (acked.clone(), stop.clone());
        threads.push(std::thread::spawn(move || flagger(port, a, s)));
        // Kill at a different point each round.
        let target = acked.lock().unwrap().appended.len() + 50 + 30 * round;
        let start = Instant::now();
        while acked.lock().unwrap().appended.len() < target {
            assert!(start.elapsed() < DEADLINE, "clients made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
    }
    server.start();
    server.kill();

    let store = Store::open(server.data_dir()).unwrap();
    let alice = store.user("alice@example.org").unwrap().unwrap();
    let inbox = store.folder(alice.id, "INBOX").unwrap().unwrap();
    let messages = store.messages(inbox.id).unwrap();
    let by_uid: HashMap<u32, &golub_store::MessageMeta> =
        messages.iter().map(|m| (m.uid, m)).collect();
    let acked = acked.lock().unwrap();
    assert!(acked.appended.len() >= 50 * rounds);
    assert!(!acked.flagged.is_empty() && !acked.expunged.is_empty());
    for (id, uid) in &acked.appended {
        if acked.expunged.contains(uid) {
            assert!(!by_uid.contains_key(uid), "{uid} was expunged; it is back");
            continue;
        }
        let Some(m) = by_uid.get(uid) else {
            assert!(
                acked.expunge_sent.contains(uid),
                "{id} (UID {uid}) was appended; it is gone"
            );
            continue;
        };
        let content = store.message_content(inbox.id, m.uid).unwrap();
        assert!(
            String::from_utf8_lossy(&content).contains(id.as_str()),
            "UID {uid} holds another message than {id}"
        );
    }
    for uid in &acked.flagged {
        if let Some(m) = by_uid.get(uid) {
            assert!(m.flags.contains("\\Flagged"), "{uid} lost \\Flagged");
        }
    }
    // UIDs are never reused: every UID below UIDNEXT.
    assert!(messages.iter().all(|m| m.uid < inbox.uidnext));
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
    let report = store.check(false).unwrap();
    assert!(report.is_clean(), "{report:?}");
}
