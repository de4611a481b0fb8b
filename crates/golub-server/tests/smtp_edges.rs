//! The server end to end with a raw socket, for what real clients will not send:
//! smuggling attempts, pipelining, BDAT, limits, full storage, shutdown.

use golub_testkit::{SmtpClient, TestServer};
use std::net::IpAddr;

#[tokio::test]
async fn smuggled_second_message_is_never_accepted() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    for end in ["\n.\r\n", "\r\n.\n", "\n.\n", "\r.\r\n", "\r\n.\r"] {
        assert!(
            c.cmd("MAIL FROM:<mallory@remote.example>")
                .await
                .starts_with("250")
        );
        assert!(
            c.cmd("RCPT TO:<alice@example.org>")
                .await
                .starts_with("250")
        );
        assert!(c.cmd("DATA").await.starts_with("354"));
        let attack = format!(
            "Subject: innocent\r\n\r\nhello{end}MAIL FROM:<ceo@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
        );
        c.send(attack.as_bytes()).await;
        let reply = c.reply().await.unwrap();
        assert!(reply.starts_with("550 5.6.11"), "{end:?}: {reply}");
        // The session goes on and nothing was split off into a second message.
        assert!(c.cmd("NOOP").await.starts_with("250"), "{end:?}");
    }
    assert!(c.cmd("QUIT").await.starts_with("221"));
    assert!(t.inbox("alice@example.org").is_empty());
    assert!(t.inbox("bob@example.org").is_empty());
    assert!(t.store().queue_entries().unwrap().is_empty());
}

#[tokio::test]
async fn pipelined_transactions_get_their_replies_in_order() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    assert_eq!(c.code().await, Some(220));
    c.send(
        b"EHLO client.example\r\nMAIL FROM:<carol@remote.example>\r\nRCPT TO:<nobody@example.org>\r\n\
          RCPT TO:<alice@example.org>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\n",
    )
    .await;
    assert!(c.reply().await.unwrap().starts_with("250-"));
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(c.code().await.unwrap());
    }
    assert_eq!(codes, vec![250, 550, 250, 554, 354]);
    c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
        .await;
    assert!(c.reply().await.unwrap().starts_with("250 2.0.0"));
    assert_eq!(c.code().await, Some(250));
    assert_eq!(c.code().await, Some(250));
    assert_eq!(c.code().await, Some(354));
    c.send(b"Subject: bounce-like\r\n\r\n.\r\nQUIT\r\n").await;
    assert_eq!(c.code().await, Some(250));
    assert_eq!(c.code().await, Some(221));
    let a = t.wait_for_inbox("alice@example.org", 1).await;
    assert!(String::from_utf8_lossy(&a[0]).ends_with("Subject: pipelined\r\n\r\nbody\r\n"));
    let b = t.wait_for_inbox("bob@example.org", 1).await;
    assert!(String::from_utf8_lossy(&b[0]).starts_with("Return-Path: <>\r\n"));
}

#[tokio::test]
async fn bdat_chunks_arrive_as_one_message() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    assert!(
        c.cmd("MAIL FROM:<carol@remote.example> BODY=8BITMIME")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .await
            .starts_with("250")
    );
    let part1 = b"Subject: chunked\r\n\r\nfirst ";
    let part2 = b"second\n.\r\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes()).await;
    c.send(part1).await;
    assert_eq!(c.code().await, Some(250));
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes())
        .await;
    c.send(part2).await;
    assert!(c.reply().await.unwrap().starts_with("250 2.0.0"));
    let a = t.wait_for_inbox("alice@example.org", 1).await;
    // The bare LF of the chunk is stored as CRLF, so every stored line ends the same way.
    assert!(a[0].ends_with(b"Subject: chunked\r\n\r\nfirst second\r\n.\r\n"));
}

#[tokio::test]
async fn legacy_send_recipients_are_not_at_a_terminal() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    assert!(
        c.cmd("SEND FROM:<carol@remote.example>")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .await
            .starts_with("450 4.2.1")
    );
    assert!(c.cmd("RSET").await.starts_with("250"));
    assert!(
        c.cmd("SAML FROM:<carol@remote.example>")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"Subject: saml\r\n\r\n.\r\n").await;
    assert_eq!(c.code().await, Some(250));
    t.wait_for_inbox("alice@example.org", 1).await;
}

#[tokio::test]
async fn oversized_message_gets_552_and_session_goes_on() {
    let t = TestServer::start_with(|c| c.limits.max_message_size = 2048).await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    assert!(c.cmd("EHLO client.example").await.contains("SIZE 2048"));
    assert!(
        c.cmd("MAIL FROM:<carol@remote.example> SIZE=4096")
            .await
            .starts_with("552 5.3.4")
    );
    assert!(
        c.cmd("MAIL FROM:<carol@remote.example>")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<alice@example.org>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    let big = format!(
        "Subject: big\r\n\r\n{}\r\n.\r\n",
        "x".repeat(900)
            .repeat(4)
            .chars()
            .collect::<Vec<_>>()
            .chunks(900)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("\r\n")
    );
    c.send(big.as_bytes()).await;
    assert!(c.reply().await.unwrap().starts_with("552 5.3.4"));
    assert!(c.cmd("NOOP").await.starts_with("250"));
    assert!(t.store().queue_entries().unwrap().is_empty());
}

#[tokio::test]
async fn long_lines_and_bad_commands_get_500_then_too_many_errors_close() {
    let t = TestServer::start_with(|c| c.limits.max_errors = 3).await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    let long = format!("NOOP {}", "a".repeat(600));
    assert!(c.cmd(&long).await.starts_with("500 5.5.0"));
    assert!(
        c.cmd("NOOP").await.starts_with("250"),
        "the session survives a long line"
    );
    c.send(b"NOOP\n").await;
    assert!(c.reply().await.unwrap().starts_with("500 5.5.2"));
    assert!(c.cmd("FROB").await.starts_with("500 5.5.1"));
    // The fourth error is answered, then the session is closed with 421.
    assert!(c.cmd("FROB").await.starts_with("500 5.5.1"));
    let last = c.reply().await.unwrap();
    assert!(last.starts_with("421 4.7.0"), "{last}");
    assert!(c.is_closed().await);
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_get_421() {
    let t = TestServer::start_with(|c| c.limits.max_connections_per_ip = 2).await;
    let untrusted: IpAddr = "127.0.0.2".parse().unwrap();
    let mut a = SmtpClient::connect_from(t.smtp, untrusted).await;
    let mut b = SmtpClient::connect_from(t.smtp, untrusted).await;
    assert_eq!(a.code().await, Some(220));
    assert_eq!(b.code().await, Some(220));
    let mut c = SmtpClient::connect_from(t.smtp, untrusted).await;
    assert!(c.reply().await.unwrap().starts_with("421 4.7.0"));
    assert!(c.is_closed().await);
    // The first two are still served.
    assert!(a.cmd("NOOP").await.starts_with("250"));
    // One leaves with QUIT: its place is free by the time it has read the 221.
    assert!(b.cmd("QUIT").await.starts_with("221"));
    let mut d = SmtpClient::connect_from(t.smtp, untrusted).await;
    assert_eq!(d.code().await, Some(220));
    // The trusted default (127.0.0.1) is exempt from the per-address limit.
    let mut local = Vec::new();
    for _ in 0..5 {
        let mut c = t.connect().await;
        assert_eq!(c.code().await, Some(220));
        local.push(c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnecting_in_a_loop_at_the_per_ip_limit_are_never_refused() {
    // 50 clients from one untrusted address, each opening 20 sessions one after the
    // other: never more than 50 open at once, so none may see 421.
    let t = TestServer::start_with(|c| c.limits.max_connections_per_ip = 50).await;
    let addr = t.smtp;
    let untrusted: IpAddr = "127.0.0.2".parse().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        tasks.spawn(async move {
            let mut refused = 0;
            for i in 0..20 {
                let mut c = SmtpClient::connect_from(addr, untrusted).await;
                match c.code().await {
                    Some(220) => {
                        assert!(c.cmd("EHLO loop.example").await.starts_with("250"));
                        // Every other session ends with QUIT; the rest just hang up.
                        if i % 2 == 0 {
                            assert!(c.cmd("QUIT").await.starts_with("221"));
                        }
                    }
                    _ => refused += 1,
                }
            }
            refused
        });
    }
    let mut refused = 0;
    while let Some(r) = tasks.join_next().await {
        refused += r.unwrap();
    }
    assert_eq!(refused, 0, "sessions refused while at most 50 were open");
}

#[tokio::test]
async fn vrfy_and_expn_answer_when_enabled() {
    let t = TestServer::start_with(|c| {
        c.smtp.vrfy = true;
        c.smtp.expn = true;
    })
    .await;
    t.store()
        .add_alias(
            "team@example.org",
            &["alice@example.org".into(), "bob@example.org".into()],
        )
        .unwrap();
    let mut c = SmtpClient::greeted(t.smtp).await;
    assert_eq!(
        c.cmd("VRFY alice@example.org").await,
        "250 2.1.5 Alice Liddell <alice@example.org>\r\n"
    );
    assert!(
        c.cmd("VRFY nobody@example.org")
            .await
            .starts_with("550 5.1.1")
    );
    assert_eq!(
        c.cmd("EXPN team@example.org").await,
        "250-2.1.5 <alice@example.org>\r\n250 2.1.5 <bob@example.org>\r\n"
    );
}

#[tokio::test]
async fn vrfy_and_expn_are_off_by_default() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    assert!(
        c.cmd("VRFY alice@example.org")
            .await
            .starts_with("252 2.5.0")
    );
    assert!(
        c.cmd("EXPN team@example.org")
            .await
            .starts_with("252 2.5.0")
    );
}

#[tokio::test]
async fn lists_expand_and_alias_loops_bounce_to_the_sender() {
    let t = TestServer::start().await;
    let s = t.store();
    s.add_alias(
        "team@example.org",
        &["alice@example.org".into(), "bob@example.org".into()],
    )
    .unwrap();
    s.add_alias("loop1@example.org", &["loop2@example.org".into()])
        .unwrap();
    s.add_alias("loop2@example.org", &["loop1@example.org".into()])
        .unwrap();
    let mut c = SmtpClient::greeted(t.smtp).await;
    assert!(
        c.send_message(
            "carol@remote.example",
            "team@example.org",
            "Subject: to the team\r\n\r\nhi"
        )
        .await
        .starts_with("250")
    );
    t.wait_for_inbox("alice@example.org", 1).await;
    let b = t.wait_for_inbox("bob@example.org", 1).await;
    assert!(String::from_utf8_lossy(&b[0]).contains("Delivered-To: bob@example.org\r\n"));

    assert!(
        c.send_message(
            "bob@example.org",
            "loop1@example.org",
            "Subject: round and round\r\n\r\nhi"
        )
        .await
        .starts_with("250")
    );
    let b = t.wait_for_inbox("bob@example.org", 2).await;
    let bounce = String::from_utf8_lossy(&b[1]);
    assert!(bounce.starts_with("Return-Path: <>\r\n"), "{bounce}");
    let report = mail_parser::MessageParser::default().parse(&b[1]).unwrap();
    let ct = mail_parser::MimeHeaders::content_type(&report).unwrap();
    assert_eq!(
        (ct.subtype(), ct.attribute("report-type")),
        (Some("report"), Some("delivery-status")),
        "{bounce}"
    );
    assert!(bounce.contains("Status: 5.4.6"), "{bounce}");
    assert!(bounce.contains("Subject: round and round"), "{bounce}");
    t.wait_for_empty_queue().await;
}

#[tokio::test]
async fn postmaster_is_always_accepted_and_reaches_the_configured_mailbox() {
    let t = TestServer::start_with(|c| c.postmaster = Some("alice@example.org".into())).await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    assert!(
        c.send_message(
            "carol@remote.example",
            "Postmaster",
            "Subject: bare\r\n\r\nhi"
        )
        .await
        .starts_with("250")
    );
    assert!(
        c.send_message(
            "carol@remote.example",
            "postmaster@example.org",
            "Subject: domain\r\n\r\nhi"
        )
        .await
        .starts_with("250")
    );
    let a = t.wait_for_inbox("alice@example.org", 2).await;
    assert!(String::from_utf8_lossy(&a[0]).contains("Subject: bare"));
}

#[tokio::test]
async fn full_storage_gets_452_and_keeps_what_was_accepted() {
    let t = TestServer::start_with(|c| c.store.max_database_size = 400 * 1024).await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    let body = format!(
        "Subject: filler\r\n\r\n{}",
        vec!["y".repeat(70); 100].join("\r\n")
    );
    let mut accepted = 0;
    let mut full = None;
    for _ in 0..200 {
        let r = c
            .send_message("carol@remote.example", "alice@example.org", &body)
            .await;
        if r.starts_with("250") {
            accepted += 1;
        } else {
            full = Some(r);
            break;
        }
    }
    let full = full.expect("the store filled up within 200 messages");
    assert!(full.starts_with("452 4.3.1"), "{full}");
    assert!(accepted > 0);
    // The session survives, and every accepted message is intact.
    assert!(c.cmd("NOOP").await.starts_with("250"));
    let start = std::time::Instant::now();
    loop {
        let n = t.inbox("alice@example.org").len() + t.store().queue_entries().unwrap().len();
        if n >= accepted {
            break;
        }
        assert!(start.elapsed() < golub_testkit::DEADLINE);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for m in t.inbox("alice@example.org") {
        assert!(
            m.ends_with(format!("{body}\r\n").as_bytes()),
            "a delivered copy is whole"
        );
    }
    assert_eq!(t.store().integrity_check().unwrap(), vec!["ok".to_string()]);
}

#[tokio::test]
async fn shutdown_tells_open_sessions_421() {
    let t = TestServer::start().await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    let TestServer { server, .. } = t;
    let stop = tokio::spawn(server.shutdown());
    let r = c.reply().await.unwrap();
    assert!(r.starts_with("421 4.3.2"), "{r}");
    assert!(c.is_closed().await);
    stop.await.unwrap();
}

#[tokio::test]
async fn large_bodies_are_kept_as_files_and_arrive_whole() {
    let t = TestServer::start_with(|c| c.store.inline_body_limit = 8 * 1024).await;
    let mut c = SmtpClient::greeted(t.smtp).await;
    let body = format!(
        "Subject: large\r\n\r\n{}",
        vec!["L".repeat(76); 1000].join("\r\n")
    );
    assert!(
        c.send_message("carol@remote.example", "alice@example.org", &body)
            .await
            .starts_with("250")
    );
    let a = t.wait_for_inbox("alice@example.org", 1).await;
    assert!(a[0].ends_with(format!("{body}\r\n").as_bytes()));
    let files: i64 = t
        .store()
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM blobs WHERE path IS NOT NULL",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(files, 1);
}

#[tokio::test]
async fn utf8_addresses_need_smtputf8_and_are_traced_as_utf8smtp() {
    let t = TestServer::start().await;
    t.store()
        .add_alias("jörg@example.org", &["alice@example.org".into()])
        .unwrap();
    let mut c = SmtpClient::greeted(t.smtp).await;
    assert!(
        c.cmd("MAIL FROM:<müller@remote.example>")
            .await
            .starts_with("553 5.6.7")
    );
    assert!(
        c.cmd("MAIL FROM:<müller@remote.example> SMTPUTF8")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<jörg@example.org>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send("Subject: grüße\r\n\r\nhallo\r\n.\r\n".as_bytes())
        .await;
    assert_eq!(c.code().await, Some(250));
    let a = t.wait_for_inbox("alice@example.org", 1).await;
    let text = String::from_utf8(a[0].clone()).unwrap();
    assert!(text.contains(" with UTF8SMTP id "), "{text}");
    assert!(
        text.contains("Return-Path: <müller@remote.example>"),
        "{text}"
    );
}
