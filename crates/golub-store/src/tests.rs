use super::*;
use golub_types::QueueId;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn with_user(store: &Store, address: &str) -> User {
    let domain = address.rsplit_once('@').unwrap().1;
    let _ = store.add_domain(domain);
    store
        .add_user(
            address,
            "Test User",
            directory::hash_password("pw").unwrap(),
        )
        .unwrap()
}

fn new_message(id: u64, rcpts: &[&str], body: &[u8]) -> NewMessage {
    NewMessage {
        id: QueueId(id),
        reverse_path: "sender@remote.example".into(),
        recipients: rcpts.iter().map(|s| s.to_string()).collect(),
        smtputf8: false,
        eight_bit: false,
        body: BodyRef::Inline(body.to_vec()),
    }
}

fn enqueue(store: &Store, msg: NewMessage) {
    store.write(move |tx| queue::enqueue(tx, &msg)).unwrap();
}

fn deliver_all_to(store: &Store, qid: u64, user: &User, prefix: &[u8]) {
    let msg = store.queued_message(QueueId(qid)).unwrap().unwrap();
    let outcomes: Vec<_> = msg
        .recipients
        .iter()
        .map(|r| {
            (
                r.idx,
                RcptOutcome::Delivered(vec![(user.id, prefix.to_vec())]),
            )
        })
        .collect();
    let dir = store.dir().to_path_buf();
    store
        .write(move |tx| queue::record_delivery(tx, &dir, &msg, &outcomes, &[]))
        .unwrap();
}

#[test]
fn enqueued_message_is_due_and_delivery_empties_the_queue() {
    let (_d, store) = store();
    let user = with_user(&store, "alice@example.org");
    enqueue(
        &store,
        new_message(7, &["alice@example.org"], b"Subject: hi\r\n\r\nbody\r\n"),
    );
    let due = store.due_messages(unix_now(), 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].recipients[0].address, "alice@example.org");

    deliver_all_to(
        &store,
        7,
        &user,
        b"Return-Path: <sender@remote.example>\r\n",
    );
    assert!(store.queued_message(QueueId(7)).unwrap().is_none());
    let inbox = store.folder(user.id, "INBOX").unwrap().unwrap();
    assert_eq!(inbox.uidnext, 2);
    let msgs = store.messages(inbox.id).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].uid, 1);
    let content = store.message_content(inbox.id, 1).unwrap();
    assert_eq!(
        content,
        b"Return-Path: <sender@remote.example>\r\nSubject: hi\r\n\r\nbody\r\n"
    );
    assert_eq!(msgs[0].size, content.len() as u64);
    // The queue's reference is gone, the mailbox's remains.
    let refs: i64 = store
        .read(|c| Ok(c.query_row("SELECT refcount FROM blobs", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(refs, 1);
}

#[test]
fn body_is_stored_once_for_many_recipients() {
    let (_d, store) = store();
    let a = with_user(&store, "a@example.org");
    let b = with_user(&store, "b@example.org");
    enqueue(
        &store,
        new_message(1, &["a@example.org", "b@example.org"], b"x\r\n"),
    );
    let msg = store.queued_message(QueueId(1)).unwrap().unwrap();
    let outcomes = vec![
        (
            0,
            RcptOutcome::Delivered(vec![(a.id, b"P: a\r\n".to_vec())]),
        ),
        (
            1,
            RcptOutcome::Delivered(vec![(b.id, b"P: b\r\n".to_vec())]),
        ),
    ];
    let dir = store.dir().to_path_buf();
    store
        .write(move |tx| queue::record_delivery(tx, &dir, &msg, &outcomes, &[]))
        .unwrap();
    let (blobs, refs): (i64, i64) = store
        .read(|c| {
            Ok(
                c.query_row("SELECT COUNT(*), SUM(refcount) FROM blobs", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
        .unwrap();
    assert_eq!((blobs, refs), (1, 2));
}

#[test]
fn expunging_the_last_copy_removes_the_body() {
    let (_d, store) = store();
    let user = with_user(&store, "alice@example.org");
    enqueue(&store, new_message(3, &["alice@example.org"], b"x\r\n"));
    deliver_all_to(&store, 3, &user, b"");
    let inbox = store.folder(user.id, "INBOX").unwrap().unwrap();
    assert_eq!(store.expunge(inbox.id, vec![1]).unwrap(), 1);
    let blobs: i64 = store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(blobs, 0);
    // UIDs are never reused.
    enqueue(&store, new_message(4, &["alice@example.org"], b"y\r\n"));
    deliver_all_to(&store, 4, &user, b"");
    assert_eq!(store.messages(inbox.id).unwrap()[0].uid, 2);
}

#[test]
fn large_bodies_go_to_files_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            inline_body_limit: 16,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let user = with_user(&store, "alice@example.org");
    let data = vec![b'z'; 1000];
    let body = store.prepare_body(data.clone()).unwrap();
    assert!(matches!(body, BodyRef::File { .. }));
    let mut msg = new_message(9, &["alice@example.org"], b"");
    msg.body = body;
    enqueue(&store, msg);
    deliver_all_to(&store, 9, &user, b"");
    let inbox = store.folder(user.id, "INBOX").unwrap().unwrap();
    assert_eq!(store.message_content(inbox.id, 1).unwrap(), data);
    store.expunge(inbox.id, vec![1]).unwrap();
    let files = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert_eq!(files, 0, "the file goes with its last reference");
}

fn blob_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_streamed_body_is_a_partial_file_until_finished_then_stored() {
    let (dir, store) = store();
    let user = with_user(&store, "alice@example.org");
    let mut w = store.create_body().unwrap();
    w.write(b"Subject: big\r\n\r\n").unwrap();
    w.write(&[b'y'; 5000]).unwrap();
    let names = blob_names(dir.path());
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with("tmp-"), "{names:?}");
    assert_eq!(store.check(false).unwrap().orphan_files.count, 0);
    let body = w.finish().unwrap();
    assert_eq!(body.size(), 5016);
    let names = blob_names(dir.path());
    assert!(
        names.len() == 1 && !names[0].starts_with("tmp-"),
        "{names:?}"
    );
    let mut msg = new_message(11, &["alice@example.org"], b"");
    msg.body = body;
    enqueue(&store, msg);
    deliver_all_to(&store, 11, &user, b"");
    let inbox = store.folder(user.id, "INBOX").unwrap().unwrap();
    let content = store.message_content(inbox.id, 1).unwrap();
    assert_eq!(&content[..16], b"Subject: big\r\n\r\n");
    assert_eq!(content.len(), 5016);
}

#[test]
fn a_dropped_body_writer_leaves_no_file_and_open_removes_crash_leftovers() {
    let (dir, store) = store();
    let mut w = store.create_body().unwrap();
    w.write(b"cut off").unwrap();
    drop(w);
    assert!(blob_names(dir.path()).is_empty());
    // What a crash mid-upload leaves: gone at the next open, never an orphan.
    std::fs::write(dir.path().join("blobs/tmp-left-by-a-crash"), b"x").unwrap();
    assert_eq!(store.check(false).unwrap().orphan_files.count, 0);
    drop(store);
    let _store = Store::open(dir.path()).unwrap();
    assert!(blob_names(dir.path()).is_empty());
}

#[test]
fn concurrent_writes_share_commits() {
    let (_d, store) = store();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    let (tx, rx) = std::sync::mpsc::channel();
                    store.enqueue(
                        new_message(t * 1000 + i + 1, &["x@y.example"], b"b"),
                        move |r| tx.send(r).unwrap(),
                    );
                    rx.recv().unwrap().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (commits, jobs) = store.commit_stats();
    assert_eq!(store.queue_entries().unwrap().len(), 400);
    assert!(jobs >= 400);
    assert!(commits <= jobs);
}

#[test]
fn a_failing_job_does_not_undo_the_rest_of_its_batch() {
    let (_d, store) = store();
    enqueue(&store, new_message(1, &["x@y.example"], b"b"));
    // Same id again: the primary key refuses it, and only that job fails.
    let dup = store.write(move |tx| queue::enqueue(tx, &new_message(1, &["x@y.example"], b"c")));
    assert!(dup.is_err());
    enqueue(&store, new_message(2, &["x@y.example"], b"d"));
    assert_eq!(store.queue_entries().unwrap().len(), 2);
    let blobs: i64 = store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(blobs, 2, "the failed job's blob was rolled back");
}

#[test]
fn passwords_verify_and_wrong_ones_do_not() {
    let (_d, store) = store();
    with_user(&store, "alice@example.org");
    assert!(
        store
            .verify_password("Alice@Example.org", "pw")
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .verify_password("alice@example.org", "nope")
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .verify_password("bob@example.org", "pw")
            .unwrap()
            .is_none()
    );
    let phc: String = store
        .read(|c| Ok(c.query_row("SELECT password FROM users", [], |r| r.get(0))?))
        .unwrap();
    assert!(phc.starts_with("$argon2id$"));
}

#[test]
fn aliases_lists_and_users_do_not_collide() {
    let (_d, store) = store();
    with_user(&store, "alice@example.org");
    store
        .add_alias(
            "team@example.org",
            &["alice@example.org".into(), "bob@elsewhere.example".into()],
        )
        .unwrap();
    assert_eq!(
        store.lookup("team@example.org").unwrap(),
        Some(Recipient::Alias(vec![
            "alice@example.org".into(),
            "bob@elsewhere.example".into()
        ]))
    );
    assert!(
        store
            .add_alias("alice@example.org", &["x@y.example".into()])
            .is_err()
    );
    assert!(matches!(
        store.lookup("ALICE@example.org").unwrap(),
        Some(Recipient::User(_))
    ));
    assert!(store.lookup("nobody@example.org").unwrap().is_none());
    assert!(store.remove_domain("example.org").is_err());
    store.remove_alias("team@example.org", &[]).unwrap();
    store.remove_user("alice@example.org").unwrap();
    store.remove_domain("example.org").unwrap();
    assert!(store.list_domains().unwrap().is_empty());
}

#[test]
fn store_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.add_domain("example.org").unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.list_domains().unwrap(),
        vec!["example.org".to_string()]
    );
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
}
