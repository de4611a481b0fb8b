//! Messages larger than the store's inline limit are written to their body file while
//! they arrive. Whatever way they come (DATA from smtplib, BDAT chunks with bare LFs cut
//! across chunk boundaries), the stored message is exactly what was sent (bare LFs made
//! CRLF for BDAT), and a transaction that never ends leaves no file behind.

use golub_testkit::{DEADLINE, SmtpClient, TestServer, python_with_input};
use std::time::{Duration, Instant};

/// Small, so that a message of a megabyte or two spills and is written in several batches.
const INLINE_LIMIT: usize = 64 * 1024;

async fn server() -> TestServer {
    TestServer::start_with(|c| c.store.inline_body_limit = INLINE_LIMIT).await
}

/// The files under `blobs/`, partial ones included.
fn blob_files(t: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(t.data_dir().join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Polls until `blobs/` is empty (the server hears of a dropped connection on its own
/// time); panics at the deadline.
async fn wait_for_no_blob_files(t: &TestServer) {
    let start = Instant::now();
    loop {
        let files = blob_files(t);
        if files.is_empty() {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "files left behind: {files:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Plausible text of about `size` octets: lines of varying length, some starting with
/// dots, one long line.
fn text_body(size: usize) -> Vec<u8> {
    let mut msg =
        b"From: carol@remote.example\r\nTo: alice@example.org\r\nSubject: big\r\n\r\n".to_vec();
    let mut n = 0usize;
    while msg.len() < size {
        n += 1;
        if n.is_multiple_of(7) {
            msg.push(b'.');
        }
        let len = if n == 100 { 70_000 } else { 1 + n * 13 % 150 };
        msg.extend((0..len).map(|i| b'a' + ((i + n) % 26) as u8));
        msg.extend_from_slice(b"\r\n");
    }
    msg
}

/// What the store keeps of BDAT content: every bare LF made CRLF.
fn crlf(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &b) in content.iter().enumerate() {
        if b == b'\n' && (i == 0 || content[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The one stored message of alice, and its body file: the message is a file, not a row.
async fn stored_message(t: &TestServer) -> Vec<u8> {
    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    let paths: Vec<Option<String>> = t
        .store()
        .read(|c| {
            let mut stmt = c.prepare("SELECT path FROM blobs")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap();
    assert!(
        matches!(&paths[..], [Some(p)] if p.starts_with("blobs/")),
        "{paths:?}"
    );
    let files = blob_files(t);
    assert!(
        files.len() == 1 && !files[0].starts_with("tmp-"),
        "{files:?}"
    );
    inbox[0].clone()
}

const SMTPLIB_SEND: &str = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=20)
refused = s.sendmail('carol@remote.example', ['alice@example.org'], sys.stdin.buffer.read())
assert refused == {}, refused
s.quit()
print('ok')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_by_data_from_smtplib_is_stored_exactly() {
    let t = server().await;
    let msg = text_body(1_500_000);
    let (ok, out) =
        python_with_input(SMTPLIB_SEND, &[t.smtp.port().to_string()], msg.clone()).await;
    assert!(ok, "smtplib: {out}");
    let stored = stored_message(&t).await;
    assert!(
        stored.ends_with(&msg),
        "stored {} octets, sent {}",
        stored.len(),
        msg.len()
    );
    let head = &stored[..stored.len() - msg.len()];
    assert!(head.starts_with(b"Return-Path: <carol@remote.example>\r\n"));
    assert!(head.ends_with(b"\r\n") && !head.ends_with(b"\r\n\r\n"));
}

async fn start_transaction(c: &mut SmtpClient) {
    assert!(c.reply().await.unwrap().starts_with("220"));
    assert!(c.cmd("EHLO client.example").await.contains("CHUNKING"));
    c.envelope("carol@remote.example", "alice@example.org")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_in_bdat_chunks_with_bare_lfs_across_chunks_is_stored_crlf() {
    let t = server().await;
    // Bare LFs, CRLFs and lone CRs, with chunk boundaries between CR and LF, before a
    // bare LF, after one, and inside a long run: then 1.2 MB more in uneven chunks.
    let mut content =
        b"Subject: chunks\nX-Mixed: a\r\n\r\nline one\nline two\r\nthree\rfour\n".to_vec();
    let mut cuts = vec![15, 16, 27, content.len() - 1];
    content.extend_from_slice(b"ends in CR\r");
    cuts.push(content.len());
    content.extend_from_slice(b"\nstarts with LF");
    cuts.push(content.len());
    content.extend_from_slice(b"\n\nafter two bare LFs\n");
    cuts.push(content.len() - 1);
    let mut n = 0usize;
    while content.len() < 1_200_000 {
        n += 1;
        content.extend((0..n % 97).map(|i| b'A' + (i % 26) as u8));
        content.extend_from_slice(if n.is_multiple_of(3) { b"\n" } else { b"\r\n" });
        if n.is_multiple_of(311) {
            // Cut between the CR and LF of a CRLF, or right before a bare LF.
            cuts.push(content.len() - 1);
        }
    }
    cuts.sort();
    cuts.dedup();
    let mut c = t.connect().await;
    start_transaction(&mut c).await;
    let mut start = 0;
    for &cut in &cuts {
        c.send(format!("BDAT {}\r\n", cut - start).as_bytes()).await;
        c.send(&content[start..cut]).await;
        let r = c.reply().await.unwrap();
        assert!(r.starts_with("250 2.0.0"), "{r}");
        start = cut;
    }
    c.send(format!("BDAT {} LAST\r\n", content.len() - start).as_bytes())
        .await;
    c.send(&content[start..]).await;
    let r = c.reply().await.unwrap();
    assert!(r.starts_with("250 2.0.0 Ok: queued"), "{r}");
    assert!(c.cmd("QUIT").await.starts_with("221"));
    let stored = stored_message(&t).await;
    let want = crlf(&content);
    assert!(
        stored.ends_with(&want),
        "stored {} octets, want {} after the trace headers",
        stored.len(),
        want.len()
    );
    assert!(!stored[..stored.len() - want.len()].ends_with(b"\r\n\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_data_leaves_no_file() {
    let t = server().await;
    let mut c = t.connect().await;
    start_transaction(&mut c).await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(&text_body(800_000)).await;
    // Wait until the server has spilled the content to its partial file.
    let start = Instant::now();
    while blob_files(&t).is_empty() {
        assert!(start.elapsed() < DEADLINE, "no body file was started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(blob_files(&t).iter().all(|f| f.starts_with("tmp-")));
    drop(c);
    wait_for_no_blob_files(&t).await;
    assert_eq!(t.store().check(false).unwrap().orphan_files.count, 0);
    assert_eq!(t.store().queue_pending_count().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rset_mid_bdat_removes_the_partial_file_and_the_session_goes_on() {
    let t = server().await;
    let mut c = t.connect().await;
    start_transaction(&mut c).await;
    let chunk = text_body(400_000);
    c.send(format!("BDAT {}\r\n", chunk.len()).as_bytes()).await;
    c.send(&chunk).await;
    assert!(c.reply().await.unwrap().starts_with("250"));
    assert_eq!(blob_files(&t).len(), 1, "the body went to its file");
    assert!(c.cmd("RSET").await.starts_with("250"));
    assert!(blob_files(&t).is_empty(), "{:?}", blob_files(&t));
    // The same session sends a small message afterwards.
    c.envelope("carol@remote.example", "alice@example.org")
        .await;
    c.send(b"BDAT 22 LAST\r\nSubject: small\r\n\r\nhi\r\n")
        .await;
    assert!(c.reply().await.unwrap().starts_with("250 2.0.0 Ok: queued"));
    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    assert!(inbox[0].ends_with(b"Subject: small\r\n\r\nhi\r\n"));
    assert!(blob_files(&t).is_empty(), "a small message stays inline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_after_spilling_leaves_no_file() {
    let t = server().await;
    let mut c = t.connect().await;
    start_transaction(&mut c).await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    // A bare LF late in a large message: refused at the end, after the spill.
    let mut body = text_body(500_000);
    body.extend_from_slice(b"bare\nLF\r\n.\r\n");
    c.send(&body).await;
    let r = c.reply().await.unwrap();
    assert!(r.starts_with("550 5.6.11"), "{r}");
    assert!(blob_files(&t).is_empty(), "{:?}", blob_files(&t));
    assert!(c.cmd("QUIT").await.starts_with("221"));
}
