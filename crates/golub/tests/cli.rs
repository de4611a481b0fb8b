//! The `golub` command as an administrator uses it: exit codes, error texts, and the
//! domain, user, alias and queue commands on a data directory.

use std::path::Path;
use std::process::Output;

fn golub(config: &Path, args: &[&str]) -> Output {
    golub_testkit::serve::run_golub(env!("CARGO_BIN_EXE_golub"), config, args)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("golub.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n", dir.path().join("data").display()),
    )
    .unwrap();
    (dir, config)
}

#[test]
fn admin_commands_manage_domains_users_and_aliases() {
    let (_d, c) = setup();
    assert!(
        golub(&c, &["domain", "add", "Example.ORG"])
            .status
            .success()
    );
    let (out, _) = text(&golub(&c, &["domain", "list"]));
    assert_eq!(out, "example.org\n");
    let o = golub(
        &c,
        &[
            "user",
            "add",
            "alice@example.org",
            "--password",
            "s3cret",
            "--name",
            "Alice Liddell",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&golub(&c, &["user", "list"]));
    assert_eq!(out, "alice@example.org\tAlice Liddell\n");
    assert!(
        golub(
            &c,
            &["user", "passwd", "alice@example.org", "--password", "new"]
        )
        .status
        .success()
    );
    let o = golub(
        &c,
        &[
            "alias",
            "add",
            "team@example.org",
            "alice@example.org",
            "bob@remote.example",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&golub(&c, &["alias", "list"]));
    assert_eq!(
        out,
        "team@example.org\talice@example.org, bob@remote.example\n"
    );
    assert!(
        golub(&c, &["alias", "remove", "team@example.org"])
            .status
            .success()
    );
    let (out, _) = text(&golub(&c, &["alias", "list"]));
    assert_eq!(out, "");
    let (out, _) = text(&golub(&c, &["queue", "list"]));
    assert_eq!(out, "0 message(s) in the queue\n");
    // A domain with users cannot go; once they are gone it can.
    let o = golub(&c, &["domain", "remove", "example.org"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        golub(&c, &["user", "remove", "alice@example.org"])
            .status
            .success()
    );
    assert!(
        golub(&c, &["domain", "remove", "example.org"])
            .status
            .success()
    );
}

#[test]
fn passwords_are_stored_as_argon2_hashes_only() {
    let (d, c) = setup();
    assert!(
        golub(&c, &["domain", "add", "example.org"])
            .status
            .success()
    );
    assert!(
        golub(
            &c,
            &[
                "user",
                "add",
                "alice@example.org",
                "--password",
                "plain-secret-123"
            ]
        )
        .status
        .success()
    );
    let db = std::fs::read(d.path().join("data/golub.db")).unwrap();
    let wal = std::fs::read(d.path().join("data/golub.db-wal")).unwrap_or_default();
    let needle = b"plain-secret-123";
    assert!(!db.windows(needle.len()).any(|w| w == needle));
    assert!(!wal.windows(needle.len()).any(|w| w == needle));
    let store = golub_store::Store::open(d.path().join("data")).unwrap();
    assert!(
        store
            .verify_password("alice@example.org", "plain-secret-123")
            .unwrap()
            .is_some()
    );
}

#[test]
fn bad_arguments_exit_1_with_a_clear_message() {
    let (_d, c) = setup();
    let o = golub(&c, &["user", "add", "not-an-address", "--password", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("not an address"), "{:?}", text(&o));
    let o = golub(
        &c,
        &["user", "add", "alice@unknown.example", "--password", "x"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("golub domain add unknown.example"),
        "{:?}",
        text(&o)
    );
    let o = golub(&c, &["domain", "add", "bad..domain"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    let (_d, c) = setup();
    assert_eq!(golub(&c, &["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        golub(&c, &["alias", "add", "only@example.org"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn bad_config_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("bad.toml");
    std::fs::write(&c, "[limits]\nmax_mesage_size = 10\n").unwrap();
    let o = golub(&c, &["domain", "list"]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(
        err.contains("bad.toml") && err.contains("max_mesage_size"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let o = golub(&dir.path().join("missing.toml"), &["domain", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("missing.toml"));
}

#[test]
fn queue_list_json_and_queue_show_describe_a_waiting_message() {
    let (dir, c) = setup();
    let (out, _) = text(&golub(&c, &["queue", "list", "--json"]));
    assert_eq!(out.trim(), "[]");
    // A message for a remote recipient waits in the queue (no server runs to deliver it).
    let id = golub_types::QueueId(0x0123_4567_89AB);
    {
        let store = golub_store::Store::open(dir.path().join("data")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        store.enqueue(
            golub_store::NewMessage {
                id,
                reverse_path: "carol@example.org".into(),
                recipients: vec!["dave@remote.example".into(), "e\"ve@remote.example".into()],
                smtputf8: false,
                eight_bit: false,
                body: golub_store::BodyRef::Inline(
                    b"Subject: waiting\r\nFrom: carol@example.org\r\n\r\nthe body\r\n".to_vec(),
                ),
                envid: String::new(),
                ret: String::new(),
            },
            move |r| tx.send(r.map(|_| ())).unwrap(),
        );
        rx.recv().unwrap().unwrap();
    }
    // The JSON is read back by Python's json module.
    let o = golub(&c, &["queue", "list", "--json"]);
    assert!(o.status.success());
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys\n\
             d = json.load(sys.stdin)\n\
             assert len(d) == 1, d\n\
             m = d[0]\n\
             assert m['id'] == '000000123456789AB'[-16:], m\n\
             assert m['sender'] == 'carol@example.org' and m['size'] > 0, m\n\
             assert [r['address'] for r in m['recipients']] == ['dave@remote.example', 'e\"ve@remote.example'], m\n\
             assert all(r['state'] == 'pending' and r['attempts'] == 0 for r in m['recipients']), m\n",
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&o.stdout)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let (out, err) = text(&golub(&c, &["queue", "show", &id.to_string()]));
    assert!(out.contains("sender:    <carol@example.org>"), "{out}{err}");
    assert!(
        out.contains("recipient: <dave@remote.example>  pending"),
        "{out}"
    );
    assert!(out.contains("Subject: waiting\r\n"), "{out}");
    assert!(!out.contains("the body"), "only the header section: {out}");
    let o = golub(&c, &["queue", "show", "FFFFFFFFFFFFFFFF"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("no such message"), "{:?}", text(&o));
    let o = golub(&c, &["queue", "show", "nonsense"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("not a queue id"), "{:?}", text(&o));
}
