//! TLS and authenticated submission with real clients: Python's smtplib (STARTTLS on the
//! submission port, implicit TLS on submissions, AUTH PLAIN and LOGIN) and lettre (with the
//! self-signed default and with a configured certificate verified against its CA), plus
//! raw sockets for the STARTTLS injection case and login throttling.

use golub_testkit::{SmtpClient, TestServer, python};

const SUBMISSION_SCRIPT: &str = r#"
import smtplib, ssl, sys
sub, subs = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

s = smtplib.SMTP('127.0.0.1', sub, timeout=20)
s.ehlo('laptop.example')
assert s.has_extn('starttls')
assert not s.has_extn('auth'), 'AUTH must not be offered before TLS'
code, text = s.mail('alice@example.org')
assert code == 530, (code, text)
s.rset()
s.starttls(context=ctx)
s.ehlo('laptop.example')
assert not s.has_extn('starttls')
assert 'PLAIN' in s.esmtp_features['auth'] and 'LOGIN' in s.esmtp_features['auth'], s.esmtp_features
try:
    s.login('alice@example.org', 'wrong')
    raise SystemExit('a wrong password was accepted')
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
s.login('alice@example.org', 'pw')
# Relaying is allowed once authenticated; the sender must be the user's own.
refused = s.sendmail('alice@example.org', ['friend@elsewhere.example', 'bob@example.org'],
                     b'Subject: via submission\r\n\r\nhello\r\n')
assert refused == {}, refused
try:
    s.sendmail('carol@remote.example', ['bob@example.org'], b'Subject: forged\r\n\r\nx\r\n')
    raise SystemExit('a foreign sender was accepted')
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 553, e
s.quit()

s = smtplib.SMTP_SSL('127.0.0.1', subs, context=ctx, timeout=20)
s.ehlo('laptop.example')
assert s.has_extn('auth') and not s.has_extn('starttls')
s.user, s.password = 'bob@example.org', 'pw'
code, text = s.auth('LOGIN', s.auth_login, initial_response_ok=False)
assert code == 235, (code, text)
s.sendmail('bob@example.org', ['alice@example.org'], b'Subject: via submissions\r\n\r\nhi\r\n')
s.quit()
print('ok')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtplib_submits_over_starttls_and_implicit_tls() {
    let t = TestServer::start().await;
    let args = vec![
        t.addr("submission").port().to_string(),
        t.addr("submissions").port().to_string(),
    ];
    let (ok, out) = python(SUBMISSION_SCRIPT, &args).await;
    assert!(ok, "{out}");
    let bob = t.wait_for_inbox("bob@example.org", 1).await;
    let text = String::from_utf8_lossy(&bob[0]);
    assert!(text.contains(" with ESMTPSA id "), "{text}");
    assert!(text.contains("\t(using TLSv1."), "{text}");
    let alice = t.wait_for_inbox("alice@example.org", 1).await;
    assert!(String::from_utf8_lossy(&alice[0]).contains(" with ESMTPSA id "));
    // The remote recipient waits in the queue for outbound delivery.
    let queued = t.store().queue_entries().unwrap();
    assert!(
        queued.iter().any(|m| m
            .recipients
            .iter()
            .any(|r| r.address == "friend@elsewhere.example")),
        "{queued:?}"
    );
}

const INJECTION_SCRIPT: &str = r#"
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(('127.0.0.1', port), timeout=20)
f = raw.makefile('rb')
def reply(f):
    lines = []
    while True:
        line = f.readline().decode()
        lines.append(line)
        if len(line) < 4 or line[3] != '-':
            return ''.join(lines)
assert reply(f).startswith('220')
raw.sendall(b'EHLO attacker.example\r\n')
assert reply(f).startswith('250')
# The injected command rides in the same packet as STARTTLS.
raw.sendall(b'STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\n')
assert reply(f).startswith('220'), 'starttls accepted'
tls = ctx.wrap_socket(raw, server_hostname='mx.example.org')
g = tls.makefile('rb')
tls.sendall(b'EHLO attacker.example\r\n')
r = reply(g)
assert r.startswith('250-'), 'the first reply after TLS is the EHLO one: ' + r
tls.sendall(b'RCPT TO:<alice@example.org>\r\n')
r = reply(g)
assert r.startswith('503'), 'the injected MAIL was discarded: ' + r
tls.sendall(b'QUIT\r\n')
print('ok')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_injected_after_starttls_are_discarded() {
    let t = TestServer::start().await;
    for proto in ["smtp", "submission"] {
        let (ok, out) = python(INJECTION_SCRIPT, &[t.addr(proto).port().to_string()]).await;
        assert!(ok, "{proto}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_sends_with_starttls_and_the_self_signed_default() {
    use lettre::transport::smtp::authentication::{Credentials, Mechanism};
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let t = TestServer::start().await;
    let tls = TlsParameters::builder("mx.example.org".into())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .unwrap();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(t.addr("submission").port())
        .tls(Tls::Required(tls))
        .credentials(Credentials::new("alice@example.org".into(), "pw".into()))
        .authentication(vec![Mechanism::Plain])
        .build();
    let email = Message::builder()
        .from("alice@example.org".parse().unwrap())
        .to("bob@example.org".parse().unwrap())
        .subject("lettre starttls")
        .body(String::from("over STARTTLS\r\n"))
        .unwrap();
    mailer
        .send(email)
        .await
        .expect("lettre sends over STARTTLS");
    let bob = t.wait_for_inbox("bob@example.org", 1).await;
    assert!(String::from_utf8_lossy(&bob[0]).contains("Subject: lettre starttls"));
}

/// A new CA and a certificate for mx.example.org signed by it, written as PEM files.
fn issue(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["mx.example.org".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca.pem(), cert_path, key_path)
}

async fn connects_trusting(t: &TestServer, ca_pem: &str) -> bool {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let tls = TlsParameters::builder("mx.example.org".into())
        .add_root_certificate(Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build_rustls()
        .unwrap();
    let mailer: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(t.addr("submissions").port())
            .tls(Tls::Wrapper(tls))
            .build();
    mailer.test_connection().await.unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_used_after_reload_without_restart() {
    let pki = tempfile::tempdir().unwrap();
    let (old_ca, cert, key) = issue(pki.path());
    let (c, k) = (cert.clone(), key.clone());
    let t = TestServer::start_with(move |config| {
        config.tls.cert = Some(c);
        config.tls.key = Some(k);
    })
    .await;
    assert!(connects_trusting(&t, &old_ca).await);
    let (new_ca, _, _) = issue(pki.path());
    // Until the reload the old certificate is served; after it, the new one.
    assert!(!connects_trusting(&t, &new_ca).await);
    t.server.reload_tls().unwrap();
    assert!(connects_trusting(&t, &new_ca).await);
    assert!(!connects_trusting(&t, &old_ca).await);
    // A broken file keeps the current certificate.
    std::fs::write(&cert, "not a certificate").unwrap();
    assert!(t.server.reload_tls().is_err());
    assert!(connects_trusting(&t, &new_ca).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_certificate_is_verified_by_a_client_given_its_ca() {
    use lettre::transport::smtp::authentication::{Credentials, Mechanism};
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    let pki = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["mx.example.org".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let cert_path = pki.path().join("cert.pem");
    let key_path = pki.path().join("key.pem");
    std::fs::write(&cert_path, format!("{}{}", server_cert.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, server_key.serialize_pem()).unwrap();

    let (c, k) = (cert_path.clone(), key_path.clone());
    let t = TestServer::start_with(move |config| {
        config.tls.cert = Some(c);
        config.tls.key = Some(k);
    })
    .await;
    let tls = TlsParameters::builder("mx.example.org".into())
        .add_root_certificate(Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build_rustls()
        .unwrap();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(t.addr("submissions").port())
        .tls(Tls::Wrapper(tls))
        .credentials(Credentials::new("bob@example.org".into(), "pw".into()))
        .authentication(vec![Mechanism::Login])
        .build();
    let email = Message::builder()
        .from("bob@example.org".parse().unwrap())
        .to("alice@example.org".parse().unwrap())
        .subject("verified tls")
        .body(String::from("the chain checks out\r\n"))
        .unwrap();
    mailer
        .send(email)
        .await
        .expect("the configured certificate verifies");
    t.wait_for_inbox("alice@example.org", 1).await;

    // A client that trusts another CA refuses the connection.
    let other = CertifiedIssuer::self_signed(
        {
            let mut p = CertificateParams::new(vec![]).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p
        },
        KeyPair::generate().unwrap(),
    )
    .unwrap();
    let tls = TlsParameters::builder("mx.example.org".into())
        .add_root_certificate(Certificate::from_pem(other.pem().as_bytes()).unwrap())
        .build_rustls()
        .unwrap();
    let mailer: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(t.addr("submissions").port())
            .tls(Tls::Wrapper(tls))
            .build();
    assert!(mailer.test_connection().await.is_err());
}

fn plain(user: &str, password: &str) -> String {
    // RFC 4616: authzid NUL authcid NUL password, in base64 (RFC 4648).
    golub_testkit::base64(format!("\0{user}\0{password}").as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_slowed_down_then_blocked() {
    let t = TestServer::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.auth.failure_delay_ms = 200;
        c.auth.max_failures = 3;
    })
    .await;
    let mut c = SmtpClient::connect(t.addr("submission")).await;
    assert_eq!(c.code().await, Some(220));
    assert!(
        c.cmd("EHLO laptop.example")
            .await
            .contains("AUTH PLAIN LOGIN")
    );
    let mut took = Vec::new();
    for _ in 0..2 {
        let start = std::time::Instant::now();
        let r = c
            .cmd(&format!(
                "AUTH PLAIN {}",
                plain("alice@example.org", "guess")
            ))
            .await;
        assert!(r.starts_with("535 5.7.8"), "{r}");
        took.push(start.elapsed());
    }
    // The delay doubles: at least 200 ms for the first failure, 400 ms for the second.
    assert!(took[0] >= std::time::Duration::from_millis(200), "{took:?}");
    assert!(took[1] >= std::time::Duration::from_millis(400), "{took:?}");
    let r = c
        .cmd(&format!(
            "AUTH PLAIN {}",
            plain("alice@example.org", "guess")
        ))
        .await;
    assert!(r.starts_with("535"), "{r}");
    // Past the limit even the right password is refused, with 421, from any connection
    // of this address.
    let mut d = SmtpClient::connect(t.addr("submission")).await;
    assert_eq!(d.code().await, Some(220));
    assert!(d.cmd("EHLO laptop.example").await.starts_with("250"));
    let r = d
        .cmd(&format!("AUTH PLAIN {}", plain("alice@example.org", "pw")))
        .await;
    assert!(r.starts_with("421 4.7.0"), "{r}");
    assert!(d.is_closed().await);
    // Another account from another connection of the same IP is blocked too.
    let mut e = SmtpClient::connect(t.addr("submission")).await;
    assert_eq!(e.code().await, Some(220));
    assert!(e.cmd("EHLO laptop.example").await.starts_with("250"));
    let r = e
        .cmd(&format!("AUTH PLAIN {}", plain("bob@example.org", "pw")))
        .await;
    assert!(r.starts_with("421"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_25_offers_starttls_but_never_relays_without_auth() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    assert_eq!(c.code().await, Some(220));
    let ehlo = c.cmd("EHLO other-mta.example").await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert!(
        c.cmd("MAIL FROM:<alice@example.org>")
            .await
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<friend@elsewhere.example>")
            .await
            .starts_with("554 5.7.1")
    );
    assert!(
        c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHB3")
            .await
            .starts_with("5")
    );
}
