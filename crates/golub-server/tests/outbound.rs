//! Outbound delivery end to end: mail submitted to Golub for other domains reaches SMTP
//! sinks on loopback addresses, found through MX records served by a DNS server on
//! 127.0.0.1. Retries, bounces, delay warnings, HELO fallback, required TLS, null MX, MX
//! preference and connection reuse. Every wait polls with a deadline.

use golub_server::config::{HumanDuration, RouteConfig, TlsMode};
use golub_testkit::dns::{DnsServer, Entry};
use golub_testkit::report::{field, status_fields};
use golub_testkit::sink::{Behaviour, Sink};
use golub_testkit::{DEADLINE, SmtpClient, TestServer, base64};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A port free on loopback address `ip` right now.
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server whose outbound mail goes by MX through `dns` to `port`, retrying every second.
async fn server(
    dns: &DnsServer,
    port: u16,
    tweak: impl FnOnce(&mut golub_server::Config),
) -> TestServer {
    let dns = dns.addr;
    TestServer::start_with(move |c| {
        c.delivery.relay_host = None;
        c.delivery.remote_port = port;
        c.dns.servers = vec![dns];
        c.dns.timeout = HumanDuration::secs(2);
        c.auth.allow_plaintext = true;
        c.queue.retry = vec![HumanDuration::secs(1)];
        c.queue.scan_interval = HumanDuration::secs(1);
        tweak(c)
    })
    .await
}

/// Submits a message from alice (authenticated) to `to`; returns the final reply.
async fn submit(t: &TestServer, to: &[&str], subject: &str) -> String {
    submit_at(t.addr("submission"), to, subject).await
}

async fn submit_at(addr: std::net::SocketAddr, to: &[&str], subject: &str) -> String {
    let mut c = SmtpClient::greeted(addr).await;
    let r = c
        .cmd(&format!(
            "AUTH PLAIN {}",
            base64(b"\0alice@example.org\0pw")
        ))
        .await;
    assert!(r.starts_with("235"), "{r}");
    let r = c.cmd("MAIL FROM:<alice@example.org>").await;
    assert!(r.starts_with("250"), "{r}");
    for rcpt in to {
        // "address PARAM=..." sends the parameters after the path.
        let (addr, params) = rcpt.split_once(' ').unwrap_or((rcpt, ""));
        let r = c.cmd(&format!("RCPT TO:<{addr}> {params}")).await;
        assert!(r.starts_with("250"), "{rcpt}: {r}");
    }
    let r = c.cmd("DATA").await;
    assert!(r.starts_with("354"), "{r}");
    c.send(
        format!(
            "From: alice@example.org\r\nSubject: {subject}\r\n\r\nhello\r\n..a line starting with a dot\r\n.\r\n"
        )
        .as_bytes(),
    )
    .await;
    c.reply().await.unwrap_or_default()
}

/// The recipients still in the queue, with their last reply.
fn queued(t: &TestServer) -> Vec<(String, String)> {
    t.store()
        .queue_entries()
        .unwrap()
        .into_iter()
        .flat_map(|m| m.recipients)
        .map(|r| (r.address, r.last_reply))
        .collect()
}

/// A sink on 127.0.0.2 answering as `behaviour`, and a DNS server in which `domain`'s MX
/// is that address; the port is the one the server under test must deliver to.
async fn mx_to_sink(domain: &str, behaviour: Behaviour) -> (u16, Sink, DnsServer) {
    let sink = Sink::start("127.0.0.2:0", behaviour).await;
    let port = sink.addr.port();
    let mx = format!("mx.{domain}");
    let dns = DnsServer::start(vec![Entry::mx(domain, 10, &mx), Entry::a(&mx, "127.0.0.2")]).await;
    (port, sink, dns)
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "waited too long for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_to_the_most_preferred_mx_that_answers() {
    let sink = Sink::start("127.0.0.2:0", Behaviour::default()).await;
    let port = sink.addr.port();
    let dns = DnsServer::start(vec![
        Entry::mx("remote.example", 10, "mx.remote.example"),
        Entry::a("mx.remote.example", "127.0.0.2"),
        // The preferred MX of fallback.example listens nowhere; the next one takes it.
        Entry::mx("fallback.example", 5, "dead.fallback.example"),
        Entry::mx("fallback.example", 20, "live.fallback.example"),
        Entry::a("dead.fallback.example", "127.0.0.3"),
        Entry::a("live.fallback.example", "127.0.0.2"),
    ])
    .await;
    let t = server(&dns, port, |_| {}).await;
    let r = submit(
        &t,
        &[
            "friend@remote.example",
            "bob@example.org",
            "other@fallback.example",
        ],
        "outbound one",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    t.wait_for_inbox("bob@example.org", 1).await;
    let got = sink.wait_for(2).await;
    let mut to: Vec<String> = got.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, ["friend@remote.example", "other@fallback.example"]);
    for m in &got {
        assert_eq!(m.from, "alice@example.org");
        let text = String::from_utf8_lossy(&m.data);
        assert!(text.contains("Subject: outbound one\r\n"), "{text}");
        assert!(
            text.contains("\r\n.a line starting with a dot\r\n"),
            "dot-stuffing survives the trip: {text}"
        );
        assert!(text.starts_with("Received: "), "{text}");
    }
    t.wait_for_empty_queue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_refusal_is_retried_and_then_delivered() {
    let (port, sink, dns) = mx_to_sink(
        "remote.example",
        Behaviour {
            rcpt: Arc::new(|_, seen| {
                if seen == 0 {
                    "451 4.7.1 greylisted, come back later".into()
                } else {
                    "250 2.1.5 ok".into()
                }
            }),
            ..Behaviour::default()
        },
    )
    .await;
    let t = server(&dns, port, |_| {}).await;
    assert!(
        submit(&t, &["later@remote.example"], "retry me")
            .await
            .starts_with("250")
    );
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].to, ["later@remote.example"]);
    assert_eq!(
        sink.rcpts(),
        ["later@remote.example", "later@remote.example"]
    );
    t.wait_for_empty_queue().await;
    assert!(t.inbox("alice@example.org").is_empty(), "no report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_bounces_with_the_remote_reply() {
    let (port, sink, dns) = mx_to_sink(
        "remote.example",
        Behaviour {
            rcpt: Arc::new(|addr, _| {
                if addr.starts_with("nobody") {
                    "550 5.1.1 no such user here".into()
                } else {
                    "250 2.1.5 ok".into()
                }
            }),
            ..Behaviour::default()
        },
    )
    .await;
    let t = server(&dns, port, |_| {}).await;
    let r = submit(
        &t,
        &["nobody@remote.example", "friend@remote.example"],
        "half of it bounces",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].to, ["friend@remote.example"]);
    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    let report = String::from_utf8_lossy(&inbox[0]).into_owned();
    assert!(
        report.contains("Subject: Undelivered Mail Returned to Sender"),
        "{report}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&inbox[0])
        .unwrap();
    let groups = status_fields(&parsed);
    assert_eq!(groups.len(), 2, "one recipient reported: {report}");
    let rcpt = &groups[1];
    assert_eq!(
        field(rcpt, "Final-Recipient"),
        Some("rfc822; nobody@remote.example")
    );
    assert_eq!(field(rcpt, "Action"), Some("failed"));
    assert_eq!(field(rcpt, "Status"), Some("5.1.1"));
    assert_eq!(field(rcpt, "Remote-MTA"), Some("dns; mx.remote.example"));
    assert_eq!(
        field(rcpt, "Diagnostic-Code"),
        Some("smtp; 550 5.1.1 no such user here")
    );
    assert!(!report.contains("friend@remote.example"), "{report}");
    assert!(
        report.contains("Remote-MTA: dns; mx.remote.example\r\n")
            && report.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user here\r\n")
            && report.contains("host mx.remote.example said: 550 5.1.1 no such user here"),
        "the remote server and its words: {report}"
    );
    assert!(report.contains("Subject: half of it bounces"), "{report}");
    t.wait_for_empty_queue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_destination_defers_and_warns_the_sender() {
    let port = free_port("127.0.0.4");
    let dns = DnsServer::start(vec![
        Entry::mx("down.example", 10, "mx.down.example"),
        Entry::a("mx.down.example", "127.0.0.4"),
    ])
    .await;
    let t = server(&dns, port, |c| {
        c.queue.warn_after = HumanDuration::secs(1);
    })
    .await;
    assert!(
        submit(&t, &["x@down.example"], "waiting")
            .await
            .starts_with("250")
    );
    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    let report = String::from_utf8_lossy(&inbox[0]).into_owned();
    assert!(
        report.contains("Action: delayed\r\nStatus: 4.4.1\r\n"),
        "{report}"
    );
    assert!(report.contains("127.0.0.4"), "{report}");
    let q = queued(&t);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].1.starts_with("4.4.1 "), "{q:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helo_is_used_when_ehlo_is_refused() {
    let (port, sink, dns) = mx_to_sink(
        "old.example",
        Behaviour {
            refuse_ehlo: true,
            ..Behaviour::default()
        },
    )
    .await;
    let t = server(&dns, port, |_| {}).await;
    assert!(
        submit(&t, &["a@old.example"], "helo")
            .await
            .starts_with("250")
    );
    assert_eq!(sink.wait_for(1).await[0].to, ["a@old.example"]);
    t.wait_for_empty_queue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_defers_when_the_peer_has_no_starttls() {
    let (port, sink, dns) = mx_to_sink("plain.example", Behaviour::default()).await;
    let t = server(&dns, port, |c| c.delivery.tls = TlsMode::Require).await;
    assert!(
        submit(&t, &["a@plain.example"], "tls")
            .await
            .starts_with("250")
    );
    wait_until("a deferral", || {
        queued(&t).iter().any(|(_, r)| r.contains("STARTTLS"))
    })
    .await;
    assert!(sink.messages().is_empty());
    let q = queued(&t);
    assert!(q[0].1.starts_with("4.7.0"), "{q:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_mx_and_an_unknown_domain_bounce_at_once() {
    let dns = DnsServer::start(vec![Entry::mx("nomail.example", 0, ".")]).await;
    let t = server(&dns, 25, |_| {}).await;
    let r = submit(&t, &["a@nomail.example", "b@nxdomain.example"], "nowhere").await;
    assert!(r.starts_with("250"), "{r}");
    let start = Instant::now();
    let mut reports = Vec::new();
    while reports.len() < 2 {
        assert!(start.elapsed() < DEADLINE, "{reports:?}");
        reports = t
            .inbox("alice@example.org")
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        let both = reports
            .iter()
            .any(|r| r.contains("nomail.example") && r.contains("nxdomain.example"));
        if both {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = reports.join("\n");
    assert!(all.contains("Status: 5.1.10"), "{all}");
    assert!(all.contains("Status: 5.1.2"), "{all}");
    t.wait_for_empty_queue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_one_destination_share_connections() {
    let (port, sink, dns) = mx_to_sink("busy.example", Behaviour::default()).await;
    let t = server(&dns, port, |c| {
        c.delivery.max_connections_per_domain = 2;
        c.delivery.idle_timeout = HumanDuration::secs(5);
    })
    .await;
    for i in 0..20 {
        let to = format!("user{i}@busy.example");
        assert!(
            submit(&t, &[&to], &format!("n{i}"))
                .await
                .starts_with("250")
        );
    }
    let got = sink.wait_for(20).await;
    assert_eq!(got.len(), 20);
    assert!(
        sink.connections() <= 2,
        "20 messages over {} connections",
        sink.connections()
    );
    t.wait_for_empty_queue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_domain_is_relayed_for_anyone_to_its_host() {
    let sink = Sink::start("127.0.0.2:0", Behaviour::default()).await;
    let dns = DnsServer::start(Vec::new()).await;
    let host = format!("127.0.0.2:{}", sink.addr.port());
    let t = server(&dns, 25, |c| {
        c.routes
            .insert("behind.example".into(), RouteConfig::Host(host));
    })
    .await;
    // Port 25, no AUTH: a routed domain is accepted, any other remote one is not.
    let mut c = SmtpClient::greeted(t.smtp).await;
    let r = c
        .send_message(
            "someone@outside.example",
            "user@behind.example",
            "Subject: routed\r\n\r\nhi",
        )
        .await;
    assert!(r.starts_with("250"), "{r}");
    c.cmd("MAIL FROM:<someone@outside.example>").await;
    let r = c.cmd("RCPT TO:<user@elsewhere.example>").await;
    assert!(r.starts_with("554"), "{r}");
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].to, ["user@behind.example"]);
    assert_eq!(got[0].from, "someone@outside.example");
    t.wait_for_empty_queue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_success_brings_a_relayed_and_a_delivered_report() {
    let (port, sink, dns) = mx_to_sink("remote.example", Behaviour::default()).await;
    let t = server(&dns, port, |_| {}).await;
    let r = submit(
        &t,
        &[
            "friend@remote.example NOTIFY=SUCCESS,FAILURE",
            "bob@example.org NOTIFY=SUCCESS",
            "other@remote.example",
        ],
        "tell me",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    sink.wait_for(1).await;
    let inbox = t.wait_for_inbox("alice@example.org", 2).await;
    let reports: Vec<String> = inbox
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    let relayed = reports
        .iter()
        .find(|r| r.contains("Action: relayed"))
        .expect("a relayed report");
    assert!(
        relayed.contains("Final-Recipient: rfc822; friend@remote.example"),
        "{relayed}"
    );
    assert!(!relayed.contains("other@remote.example"), "{relayed}");
    assert!(
        relayed.contains("Remote-MTA: dns; mx.remote.example"),
        "{relayed}"
    );
    let delivered = reports
        .iter()
        .find(|r| r.contains("Action: delivered"))
        .expect("a delivered report");
    assert!(
        delivered.contains("Final-Recipient: rfc822; bob@example.org"),
        "{delivered}"
    );
    t.wait_for_empty_queue().await;
    assert_eq!(t.inbox("alice@example.org").len(), 2, "no more reports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_deliver_to_each_other_by_mx_and_through_a_smart_host_with_auth() {
    let port = free_port("127.0.0.5");
    let dns = DnsServer::start(vec![
        Entry::mx("b.example", 10, "mx.b.example"),
        Entry::a("mx.b.example", "127.0.0.5"),
    ])
    .await;
    // B: the destination of b.example, listening on 127.0.0.5 at the port A delivers to.
    let b = server(&dns, port, |c| {
        c.hostname = "mx.b.example".into();
        c.listen.smtp = vec![format!("127.0.0.5:{port}").parse().unwrap()];
    })
    .await;
    b.store().add_domain("b.example").unwrap();
    b.store()
        .add_user(
            "carol@b.example",
            "Carol",
            golub_store::hash_password("pw").unwrap(),
        )
        .unwrap();
    let a = server(&dns, port, |_| {}).await;
    let r = submit(&a, &["carol@b.example"], "from a to b").await;
    assert!(r.starts_with("250"), "{r}");
    let got = b.wait_for_inbox("carol@b.example", 1).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("Subject: from a to b"), "{text}");
    assert!(
        text.contains("by mx.b.example (Golub) with ESMTP"),
        "{text}"
    );
    a.wait_for_empty_queue().await;

    // C relays everything through B's submission port, logging in as alice@example.org
    // (over plaintext: B is on this machine).
    let relay = b.addr("submission").to_string();
    let c = server(&dns, port, move |c| {
        c.delivery.relay_host = Some(relay);
        c.delivery.relay_user = Some("alice@example.org".into());
        c.delivery.relay_password = Some("pw".into());
    })
    .await;
    let r = submit(&c, &["carol@b.example"], "through the smart host").await;
    assert!(r.starts_with("250"), "{r}");
    let got = b.wait_for_inbox("carol@b.example", 2).await;
    let text = String::from_utf8_lossy(&got[1]);
    assert!(text.contains("Subject: through the smart host"), "{text}");
    assert!(
        text.contains(" with ESMTPSA "),
        "over TLS, authenticated at B: {text}"
    );
    c.wait_for_empty_queue().await;
}

/// Postfix's smtp-sink as the peer: a server nobody here wrote. Skipped with a message
/// where it is not installed (`.ci/run` installs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_to_postfix_smtp_sink() {
    let bin = "/usr/sbin/smtp-sink";
    if !std::path::Path::new(bin).exists() {
        eprintln!("skipped: {bin} is not installed (apt-get install postfix)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // smtp-sink drops root privileges to -u's user, which must be able to write the dump.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let dump = dir.path().join("dump");
    let port = free_port("127.0.0.1");
    let mut cmd = std::process::Command::new(bin);
    if std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    {
        cmd.args(["-u", "nobody"]);
    }
    let sink = Killed(
        cmd.arg("-D")
            .arg(&dump)
            .arg(format!("127.0.0.1:{port}"))
            .arg("50")
            .spawn()
            .unwrap(),
    );
    let dns = DnsServer::start(Vec::new()).await;
    let t = server(&dns, 25, move |c| {
        c.routes.insert(
            "postfix.example".into(),
            RouteConfig::Host(format!("127.0.0.1:{port}")),
        );
    })
    .await;
    // smtp-sink may take a moment to listen; the first attempts may defer and retry.
    for i in 0..30 {
        let to = format!("user{i}@postfix.example");
        let r = submit(&t, &[&to], &format!("to the sink {i}")).await;
        assert!(r.starts_with("250"), "{r}");
    }
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&dump).unwrap_or_default();
        let n = (0..30)
            .filter(|i| text.contains(&format!("Subject: to the sink {i}\n")))
            .count();
        if n == 30 {
            assert!(
                text.contains("X-Rcpt-Args: <user7@postfix.example>"),
                "{text}"
            );
            break;
        }
        assert!(start.elapsed() < DEADLINE, "smtp-sink has {n} of 30");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.wait_for_empty_queue().await;
    drop(sink);
}

/// A child process killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_the_peer_closed_is_replaced_without_deferring() {
    let (port, sink, dns) = mx_to_sink(
        "remote.example",
        Behaviour {
            close_after_message: true,
            ..Behaviour::default()
        },
    )
    .await;
    // A deferral would wait an hour: the second message must go through at once.
    let t = server(&dns, port, |c| {
        c.queue.retry = vec![HumanDuration::secs(3600)];
        c.delivery.idle_timeout = HumanDuration::secs(10);
    })
    .await;
    assert!(
        submit(&t, &["one@remote.example"], "first")
            .await
            .starts_with("250")
    );
    sink.wait_for(1).await;
    // Give the client time to have the closed connection waiting for the next message.
    wait_until("the sink to see the close", || sink.connections() == 1).await;
    assert!(
        submit(&t, &["two@remote.example"], "second")
            .await
            .starts_with("250")
    );
    let got = sink.wait_for(2).await;
    assert_eq!(got[1].to, ["two@remote.example"]);
    assert_eq!(sink.connections(), 2);
    t.wait_for_empty_queue().await;
}
