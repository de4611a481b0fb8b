//! The testkit's own clients against a whole server: the blocking SMTP client sends a
//! message, the blocking POP3 client reads it back byte for byte, the async ones log in.

use golub_testkit::{Pop3Client, TestServer, blocking};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_clients_send_and_read_back_a_message() {
    let t = TestServer::start_with(|c| c.auth.allow_plaintext = true).await;
    let (smtp, pop3) = (t.smtp, t.addr("pop3"));
    tokio::task::spawn_blocking(move || {
        let mut c = blocking::SmtpClient::greeted(smtp).unwrap();
        assert!(
            c.cmd("MAIL FROM:<carol@remote.example>")
                .unwrap()
                .starts_with("250")
        );
        assert!(
            c.cmd("RCPT TO:<alice@example.org>")
                .unwrap()
                .starts_with("250")
        );
        assert_eq!(c.cmd("DATA").unwrap().get(..3), Some("354"));
        c.send(b"Subject: kit\r\n\r\n.dot\r\n.\r\n").unwrap();
        assert_eq!(c.code().unwrap(), 250);
        assert_eq!(c.cmd("QUIT").unwrap().get(..3), Some("221"));
    })
    .await
    .unwrap();
    let stored = t.wait_for_inbox("alice@example.org", 1).await;
    let got = tokio::task::spawn_blocking(move || {
        let mut c = blocking::Pop3Client::connect(pop3).unwrap();
        let r = c.login("alice@example.org", "pw").unwrap();
        assert!(r.starts_with("+OK"), "{r}");
        c.multi("RETR 1").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(got, stored[0]);
    assert!(String::from_utf8_lossy(&got).ends_with("Subject: kit\r\n\r\ndot\r\n"));

    let mut c = Pop3Client::connect(pop3).await;
    assert!(c.cmd("USER alice@example.org").await.starts_with("+OK"));
    assert!(c.cmd("PASS pw").await.starts_with("+OK"));
    assert!(c.cmd("STAT").await.starts_with("+OK 1 "));
}
