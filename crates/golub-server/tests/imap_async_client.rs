//! IMAP with a Rust client nobody here wrote (async-imap): login, select, fetch with
//! envelope and body, search, store, append, copy, move, expunge, and IDLE woken by an
//! SMTP delivery.

use futures_util::TryStreamExt;
use golub_testkit::TestServer;
use std::time::Duration;

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
}

async fn session(t: &TestServer) -> async_imap::Session<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(t.addr("imap"))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(stream);
    client.read_response().await.unwrap().expect("greeting");
    client
        .login("alice@example.org", "pw")
        .await
        .map_err(|(e, _)| e)
        .expect("login")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_imap_reads_and_changes_a_mailbox() {
    let t = TestServer::start_with(|c| c.auth.allow_plaintext = true).await;
    t.deliver("alice@example.org", &message("alpha", "First body"))
        .await;
    t.deliver("alice@example.org", &message("beta", "Second body"))
        .await;
    t.wait_for_inbox("alice@example.org", 2).await;

    let mut s = session(&t).await;
    let mailbox = s.select("INBOX").await.unwrap();
    assert_eq!(mailbox.exists, 2);
    assert!(mailbox.uid_validity.is_some());
    assert_eq!(mailbox.uid_next, Some(3));

    let fetched: Vec<_> = s
        .fetch("1:*", "(UID FLAGS ENVELOPE BODY.PEEK[])")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(fetched.len(), 2);
    let subjects: Vec<Vec<u8>> = fetched
        .iter()
        .map(|f| {
            f.envelope()
                .and_then(|e| e.subject.clone())
                .unwrap()
                .to_vec()
        })
        .collect();
    assert_eq!(subjects, [b"alpha".to_vec(), b"beta".to_vec()]);
    let stored = t.inbox("alice@example.org");
    assert_eq!(fetched[1].body(), Some(stored[1].as_slice()));
    assert_eq!(fetched[0].uid, Some(1));

    let found = s.uid_search("SUBJECT beta").await.unwrap();
    assert_eq!(found.into_iter().collect::<Vec<_>>(), [2]);

    let stored_flags: Vec<_> = s
        .store("1", "+FLAGS (\\Seen \\Flagged)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let flags: Vec<String> = stored_flags[0].flags().map(|f| format!("{f:?}")).collect();
    assert!(flags.contains(&"Seen".to_string()), "{flags:?}");
    assert!(flags.contains(&"Flagged".to_string()), "{flags:?}");

    s.append("Drafts", Some("(\\Draft)"), None, message("gamma", "Draft"))
        .await
        .unwrap();
    let status = s.status("Drafts", "(MESSAGES)").await.unwrap();
    assert_eq!(status.exists, 1);

    s.copy("1", "Archive").await.unwrap();
    s.mv("2", "Trash").await.unwrap();
    let trash = s.examine("Trash").await.unwrap();
    assert_eq!(trash.exists, 1);
    s.select("INBOX").await.unwrap();
    s.store("1", "+FLAGS.SILENT (\\Deleted)")
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let gone: Vec<_> = s.expunge().await.unwrap().try_collect().await.unwrap();
    assert_eq!(gone, [1]);
    let names: Vec<String> = s
        .list(Some(""), Some("*"))
        .await
        .unwrap()
        .map_ok(|n| n.name().to_string())
        .try_collect()
        .await
        .unwrap();
    for want in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    s.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_imap_idle_is_woken_by_delivery() {
    let t = TestServer::start_with(|c| c.auth.allow_plaintext = true).await;
    let mut s = session(&t).await;
    s.select("INBOX").await.unwrap();
    let mut idle = s.idle();
    idle.init().await.unwrap();
    let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(30));
    let deliver = async {
        t.deliver("alice@example.org", &message("ping", "Wake up"))
            .await;
    };
    let (response, ()) = tokio::join!(wait, deliver);
    match response.unwrap() {
        async_imap::extensions::idle::IdleResponse::NewData(data) => {
            let text = format!("{:?}", data.parsed());
            assert!(text.contains("Exists(1)"), "{text}");
        }
        other => panic!("IDLE ended without news: {other:?}"),
    }
    let mut s = idle.done().await.unwrap();
    s.logout().await.unwrap();
}
