//! `golub check-store` on a data directory: a sound store passes, a broken one is
//! reported with exit 1 and left as it is, and `--repair` makes it pass again.

use golub_store::{NewMessage, Store};
use golub_types::QueueId;
use std::path::Path;
use std::process::Output;

fn golub(config: &Path, args: &[&str]) -> Output {
    golub_testkit::serve::run_golub(env!("CARGO_BIN_EXE_golub"), config, args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_store_reports_then_repairs_a_broken_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("golub.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", data.display())).unwrap();
    assert!(
        golub(&config, &["domain", "add", "example.org"])
            .status
            .success()
    );
    assert!(
        golub(
            &config,
            &["user", "add", "alice@example.org", "--password", "pw"]
        )
        .status
        .success()
    );

    let o = golub(&config, &["check-store"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).ends_with("the store is consistent\n"),
        "{}",
        stdout(&o)
    );

    // One queued message, then two faults: its refcount is off, and a stray file sits in
    // blobs/.
    {
        let store = Store::open(&data).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        store.enqueue(
            NewMessage {
                id: QueueId(0x42),
                reverse_path: "sender@remote.example".into(),
                recipients: vec!["alice@example.org".into()],
                smtputf8: false,
                eight_bit: false,
                body: store
                    .prepare_body(b"Subject: x\r\n\r\nbody\r\n".to_vec())
                    .unwrap(),
                envid: String::new(),
                ret: String::new(),
            },
            move |r| tx.send(r).unwrap(),
        );
        rx.recv().unwrap().unwrap();
        store
            .write(|tx| Ok(tx.conn().execute("UPDATE blobs SET refcount = 4", [])?))
            .unwrap();
    }
    let stray = data.join("blobs/stray-file");
    std::fs::write(&stray, b"no row names me").unwrap();

    let o = golub(&config, &["check-store"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("wrong refcounts: 1\n"), "{out}");
    assert!(out.contains("blob 1: refcount 4, 1 reference(s)"), "{out}");
    assert!(
        out.contains("orphan files: 1\n    blobs/stray-file\n"),
        "{out}"
    );
    assert!(out.ends_with("2 problem(s) remain\n"), "{out}");
    assert!(stray.exists(), "a check without --repair changes nothing");

    let o = golub(&config, &["check-store", "--repair"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("wrong refcounts: 1 (set to the real count)"),
        "{out}"
    );
    assert!(out.contains("orphan files: 1 (deleted)"), "{out}");
    assert!(
        out.ends_with("repaired: the store is consistent\n"),
        "{out}"
    );
    assert!(!stray.exists());

    let o = golub(&config, &["check-store"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let store = Store::open(&data).unwrap();
    assert_eq!(
        store.queue_entries().unwrap().len(),
        1,
        "the queued message is kept"
    );
}
