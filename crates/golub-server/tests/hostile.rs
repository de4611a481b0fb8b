//! Hostile clients against the whole server: lines that never end, floods without a line
//! end, connection floods, absurd headers, and every address form that has opened a relay
//! somewhere. The server must answer within its limits, keep its memory bounded, and go on
//! serving everyone else.
//!
//! "Memory stays bounded" is read from this process's VmRSS (the server runs in-process),
//! with a generous margin: tests of this binary run in parallel.

use golub_testkit::{DEADLINE, SmtpClient, TestServer};
use std::time::{Duration, Instant};

/// Growth of resident memory a test tolerates, in kB.
const RSS_MARGIN_KB: u64 = 200 * 1024;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A whole transaction to alice; returns the reply to the end of DATA.
async fn send_one(c: &mut SmtpClient, subject: &str) -> String {
    let body = format!("Subject: {subject}\r\n\r\nbody");
    c.send_message("sender@remote.example", "alice@example.org", &body)
        .await
}

/// After an over-long line the session goes on (or, at the server's choice, is closed).
async fn still_usable_or_closed(c: &mut SmtpClient) {
    c.send(b"NOOP\r\n").await;
    // None: closed, which is allowed after a flood.
    if let Some(r) = c.reply().await {
        assert!(r.starts_with("250"), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_line_that_never_ends_is_refused_without_growing_memory() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    let before = rss_kb();
    // 4 KiB in small writes, eight times the command line limit, and no LF.
    for i in 0..512 {
        c.send(format!("{:08}", i).as_bytes()).await;
        if i % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Another client is served while the line is open.
    let mut other = SmtpClient::greeted(t.smtp).await;
    assert!(send_one(&mut other, "meanwhile").await.starts_with("250"));
    c.send(b"\r\n").await;
    let r = c.reply().await.expect("a reply");
    assert!(r.starts_with("500 5.5.0"), "{r}");
    still_usable_or_closed(&mut c).await;
    let grew = rss_kb().saturating_sub(before);
    assert!(grew < RSS_MARGIN_KB, "memory grew by {grew} kB");
    t.wait_for_inbox("alice@example.org", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_megabytes_without_a_line_end_do_not_stall_the_server() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    let before = rss_kb();
    let chunk = vec![b'A'; 64 * 1024];
    for _ in 0..80 {
        c.send(&chunk).await;
    }
    // Half-way through the flood another client sends a whole message.
    let mut other = SmtpClient::greeted(t.smtp).await;
    assert!(send_one(&mut other, "meanwhile").await.starts_with("250"));
    for _ in 0..80 {
        c.send(&chunk).await;
    }
    c.send(b"\r\n").await;
    let grew = rss_kb().saturating_sub(before);
    // No reply: closed, which is allowed.
    if let Some(r) = c.reply().await {
        assert!(r.starts_with("500 5.5.0"), "{r}");
        still_usable_or_closed(&mut c).await;
    }
    assert!(grew < RSS_MARGIN_KB, "memory grew by {grew} kB");
    t.wait_for_inbox("alice@example.org", 1).await;
    assert!(other.cmd("NOOP").await.starts_with("250"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_past_the_limit_get_421_and_the_others_are_served() {
    let t = TestServer::start_with(|c| c.limits.max_connections = 20).await;
    let mut open = Vec::new();
    for _ in 0..20 {
        let mut c = SmtpClient::connect(t.smtp).await;
        assert_eq!(c.code().await, Some(220));
        open.push(c);
    }
    let mut extra = SmtpClient::connect(t.smtp).await;
    let r = extra.reply().await.expect("a reply");
    assert!(r.starts_with("421 4.7.0"), "{r}");
    assert!(extra.is_closed().await);
    // Every admitted session still works.
    for c in open.iter_mut() {
        assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    }
    assert!(
        send_one(&mut open[0], "at the limit")
            .await
            .starts_with("250")
    );
    // One leaves; its place is free again once its session has ended.
    let mut leaving = open.pop().unwrap();
    assert!(leaving.cmd("QUIT").await.starts_with("221"));
    assert!(leaving.is_closed().await);
    let start = Instant::now();
    let mut again = loop {
        let mut c = SmtpClient::connect(t.smtp).await;
        match c.code().await {
            Some(220) => break c,
            Some(421) => {}
            other => panic!("unexpected greeting {other:?}"),
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the freed place is never given out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(again.cmd("EHLO client.example").await.starts_with("250"));
    assert!(send_one(&mut again, "after").await.starts_with("250"));
    t.wait_for_inbox("alice@example.org", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_header_with_half_a_million_addresses_is_handled() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    let before = rss_kb();
    let mut msg = String::from("Subject: everyone\r\nTo: ");
    let mut on_line = 0;
    for i in 0..500_000 {
        if i > 0 {
            msg.push(',');
            on_line += 1;
        }
        if on_line == 30 {
            // Folded (RFC 5322 §2.2.3) so that no line passes the 1000-octet limit.
            msg.push_str("\r\n ");
            on_line = 0;
        }
        msg.push_str(&format!("r{i}@remote.example"));
    }
    msg.push_str("\r\n\r\nhello all\r\n.\r\n");
    assert!(msg.len() < 25 * 1024 * 1024, "within max_message_size");
    assert!(
        c.cmd("MAIL FROM:<sender@remote.example>")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(msg.as_bytes()).await;
    let r = c.reply().await.expect("a reply");
    eprintln!("500,000 addresses in {} bytes: {}", msg.len(), r.trim_end());
    assert!(r.starts_with("250") || r.starts_with("552"), "{r}");
    if r.starts_with("250") {
        let inbox = t.wait_for_inbox("alice@example.org", 1).await;
        assert!(inbox[0].ends_with(b"r499999@remote.example\r\n\r\nhello all\r\n"));
    }
    // The session and the server go on.
    assert!(c.cmd("NOOP").await.starts_with("250"));
    let mut other = SmtpClient::greeted(t.smtp).await;
    assert!(send_one(&mut other, "next").await.starts_with("250"));
    let grew = rss_kb().saturating_sub(before);
    assert!(grew < RSS_MARGIN_KB, "memory grew by {grew} kB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_levels_of_mime_nesting_are_stored_and_delivered_whole() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    let mut msg = String::from("Subject: nested\r\nMIME-Version: 1.0\r\n");
    for level in 0..1000 {
        msg.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
        ));
    }
    msg.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
    for level in (0..1000).rev() {
        msg.push_str(&format!("--b{level}--\r\n"));
    }
    msg.push_str(".\r\n");
    assert!(
        c.cmd("MAIL FROM:<sender@remote.example>")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(msg.as_bytes()).await;
    assert!(c.reply().await.expect("a reply").starts_with("250"));
    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    let body = &msg[..msg.len() - 3];
    assert!(inbox[0].ends_with(body.as_bytes()), "stored byte for byte");
    assert!(c.cmd("NOOP").await.starts_with("250"));
}

/// The domain of a stored recipient address, lowercase and without a final dot.
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("")
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn assert_queue_is_local(t: &TestServer, after: &str) {
    for m in t.store().queue_entries().unwrap() {
        for r in &m.recipients {
            assert_eq!(
                domain_of(&r.address),
                "example.org",
                "after RCPT TO:{after}, a queued recipient is outside the local domain: {r:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_address_form_relays_without_auth_on_port_25() {
    let t = TestServer::start().await;
    let mut forms = Vec::new();
    // Each with a local part that does not exist here and with one that does: an
    // accepted address must then be a local delivery, never a relay.
    for user in ["user", "alice"] {
        for f in [
            format!("<{user}%other.example@example.org>"),
            format!("<{user}@other.example@example.org>"),
            format!("<@example.org:{user}@other.example>"),
            format!("<@example.org,@other.example:{user}@other.example>"),
            format!("<@[127.0.0.1]:{user}@other.example>"),
            format!("<@other.example:{user}@example.org>"),
            format!("<\"{user}@other.example\"@example.org>"),
            format!("<{user}@other.example.>"),
            format!("<{}@OTHER.EXAMPLE>", user.to_uppercase()),
            format!("<{user}@[192.0.2.1]>"),
            format!("<{user}@[IPv6:2001:db8::1]>"),
            format!("<{user}@xn--bcher-kva.example>"),
            format!("<{user}@bücher.example>"),
            format!("<{user}@example.org.>"),
            format!("<{user}@other.example>"),
            format!("<<{user}@other.example>>"),
            format!("{user}@other.example"),
            format!("<{user}@other.example> NOTIFY=NEVER"),
            format!("<{user}!other.example@example.org>"),
            format!("<other.example!{user}@example.org>"),
        ] {
            forms.push(f);
        }
    }
    let mut refused = 0;
    let mut by_reply = std::collections::BTreeMap::<String, usize>::new();
    let mut accepted = Vec::new();
    for utf8 in [false, true] {
        for rcpt in &forms {
            // A session per probe: refused recipients count towards the error limit.
            let mut c = SmtpClient::greeted(t.smtp).await;
            let mail = if utf8 {
                "MAIL FROM:<sender@remote.example> SMTPUTF8"
            } else {
                "MAIL FROM:<sender@remote.example>"
            };
            assert!(c.cmd(mail).await.starts_with("250"), "{mail}");
            let r = c.cmd(&format!("RCPT TO:{rcpt}")).await;
            let code = &r[..3.min(r.len())];
            *by_reply
                .entry(r.get(..9).unwrap_or(&r).to_string())
                .or_insert(0) += 1;
            match code {
                "550" | "553" | "554" | "501" | "555" => refused += 1,
                "250" => {
                    assert!(c.cmd("DATA").await.starts_with("354"));
                    let d = c.cmd("Subject: relay probe\r\n\r\nprobe\r\n.").await;
                    assert!(d.starts_with("250"), "{rcpt}: {d}");
                    assert_queue_is_local(&t, rcpt);
                    accepted.push(format!("{rcpt} (smtputf8: {utf8})"));
                }
                _ => panic!("RCPT TO:{rcpt} (smtputf8: {utf8}) got an unexpected reply: {r}"),
            }
            assert!(c.cmd("QUIT").await.starts_with("221"));
        }
    }
    eprintln!(
        "relay matrix: {} probes, {refused} refused ({by_reply:?}), {} accepted as local: \
         {accepted:#?}",
        forms.len() * 2,
        accepted.len()
    );
    // Whatever was accepted is delivered locally and leaves nothing queued for elsewhere.
    t.wait_for_empty_queue().await;
    assert_queue_is_local(&t, "(all)");
    assert!(t.store().queue_entries().unwrap().is_empty());
    assert_eq!(
        t.inbox("alice@example.org").len(),
        accepted.len(),
        "every accepted probe went to alice"
    );
}
