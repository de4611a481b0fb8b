//! SCRAM-SHA-256 with a client written independently of Golub: Python's hashlib and hmac
//! do the RFC 5802 client side (and check the server's signature) over smtplib on
//! submissions and poplib on pop3s. Users whose password predates SCRAM keep logging in
//! with PLAIN until their password is set again.

use golub_store::hash_password;
use golub_testkit::{TestServer, python};

const SCRAM_SCRIPT: &str = r#"
import base64, hashlib, hmac, os, poplib, smtplib, ssl, sys

subs, pop3s, user, password, expect = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
b64 = lambda b: base64.b64encode(b).decode()

class Scram:
    """The client side of RFC 5802 with SHA-256 (RFC 7677), no channel binding."""
    def __init__(self, user, password):
        self.password = password.encode()
        self.nonce = b64(os.urandom(18))
        name = user.replace('=', '=3D').replace(',', '=2C')
        self.first_bare = 'n=%s,r=%s' % (name, self.nonce)
    def first(self):
        return b64(('n,,' + self.first_bare).encode())
    def final(self, challenge):
        server_first = base64.b64decode(challenge).decode()
        attrs = dict(a.split('=', 1) for a in server_first.split(','))
        assert attrs['r'].startswith(self.nonce) and len(attrs['r']) > len(self.nonce), attrs
        salted = hashlib.pbkdf2_hmac('sha256', self.password, base64.b64decode(attrs['s']), int(attrs['i']))
        client_key = hmac.new(salted, b'Client Key', 'sha256').digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = 'c=%s,r=%s' % (b64(b'n,,'), attrs['r'])
        auth_message = ','.join([self.first_bare, server_first, without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, 'sha256').digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b'Server Key', 'sha256').digest()
        self.server_signature = hmac.new(server_key, auth_message, 'sha256').digest()
        return b64((without_proof + ',p=' + b64(proof)).encode())
    def check_server_final(self, challenge):
        text = base64.b64decode(challenge).decode()
        assert text == 'v=' + b64(self.server_signature), 'the server signature is wrong: %r' % text

def smtp_login():
    s = smtplib.SMTP_SSL('127.0.0.1', subs, context=ctx, timeout=20)
    s.ehlo('laptop.example')
    assert 'SCRAM-SHA-256' in s.esmtp_features['auth'].split(), s.esmtp_features
    c = Scram(user, password)
    code, text = s.docmd('AUTH', 'SCRAM-SHA-256 ' + c.first())
    assert code == 334, (code, text)
    code, text = s.docmd(c.final(text))
    if code == 535:
        s.quit()
        return 'refused'
    assert code == 334, (code, text)
    c.check_server_final(text)
    code, text = s.docmd('')
    assert code == 235, (code, text)
    # Authenticated: MAIL as the user is accepted (no 530).
    code, text = s.docmd('MAIL', 'FROM:<%s>' % user)
    assert code == 250, (code, text)
    s.quit()
    return 'ok'

def pop3_login():
    p = poplib.POP3_SSL('127.0.0.1', pop3s, context=ctx, timeout=20)
    assert 'SCRAM-SHA-256' in p.capa()['SASL'], p.capa()
    c = Scram(user, password)
    resp = p._shortcmd('AUTH SCRAM-SHA-256 ' + c.first()).decode()
    assert resp.startswith('+ '), resp
    try:
        resp = p._shortcmd(c.final(resp[2:])).decode()
    except poplib.error_proto as e:
        assert b'[AUTH]' in e.args[0], e
        return 'refused'
    assert resp.startswith('+ '), resp
    c.check_server_final(resp[2:])
    resp = p._shortcmd('').decode()
    assert resp.startswith('+OK'), resp
    count, size = p.stat()
    p.quit()
    return 'ok'

got = (smtp_login(), pop3_login())
assert got == (expect, expect), (got, expect)
print('ok')
"#;

async fn scram_login(t: &TestServer, user: &str, password: &str, expect: &str) {
    let args = vec![
        t.addr("submissions").port().to_string(),
        t.addr("pop3s").port().to_string(),
        user.to_string(),
        password.to_string(),
        expect.to_string(),
    ];
    let (ok, out) = python(SCRAM_SCRIPT, &args).await;
    assert!(ok, "{user} / {expect}: {out}");
}

/// Empties a user's SCRAM credentials, as for a user made before they were kept.
async fn forget_scram(t: &TestServer, user: &str) {
    let db = t.data_dir().join("golub.db");
    let (ok, out) = python(
        "import sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1])\n\
         n = c.execute(\"UPDATE users SET scram = '' WHERE address = ?\", (sys.argv[2],)).rowcount\n\
         c.commit()\n\
         assert n == 1, n\n",
        &[db.display().to_string(), user.to_string()],
    )
    .await;
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_256_logs_in_on_smtp_and_pop3_without_sending_the_password() {
    let t = TestServer::start_with(|c| c.auth.failure_delay_ms = 1).await;
    scram_login(&t, "alice@example.org", "pw", "ok").await;
    scram_login(&t, "alice@example.org", "wrong", "refused").await;
    // An unknown user gets the same exchange and fails at the proof.
    scram_login(&t, "nobody@example.org", "pw", "refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_without_scram_keys_use_plain_until_their_password_is_set_again() {
    let t = TestServer::start_with(|c| c.auth.failure_delay_ms = 1).await;
    forget_scram(&t, "bob@example.org").await;
    scram_login(&t, "bob@example.org", "pw", "refused").await;
    // PLAIN still works for bob (smtplib's login picks it).
    let (ok, out) = python(
        "import smtplib, ssl, sys\n\
         ctx = ssl.create_default_context()\n\
         ctx.check_hostname = False\n\
         ctx.verify_mode = ssl.CERT_NONE\n\
         s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)\n\
         s.login('bob@example.org', 'pw')\n\
         s.quit()\n",
        &[t.addr("submissions").port().to_string()],
    )
    .await;
    assert!(ok, "{out}");
    // `golub user passwd` sets both hashes: SCRAM works from then on.
    t.store()
        .set_password("bob@example.org", hash_password("new-pw").unwrap())
        .unwrap();
    scram_login(&t, "bob@example.org", "new-pw", "ok").await;
}
