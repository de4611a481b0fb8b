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
        recipients: rcpts.iter().map(|&s| s.into()).collect(),
        smtputf8: false,
        eight_bit: false,
        body: BodyRef::Inline(body.to_vec()),
        envid: String::new(),
        ret: String::new(),
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

#[test]
fn a_body_prefix_reads_no_more_than_asked_inline_or_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            inline_body_limit: 64,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let small = b"Subject: s\r\n\r\nshort body\r\n".to_vec();
    let large: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for (qid, data) in [(21u64, small), (22, large)] {
        let mut msg = new_message(qid, &["someone@remote.example"], b"");
        msg.body = store.prepare_body(data.clone()).unwrap();
        enqueue(&store, msg);
        let blob = store.queued_message(QueueId(qid)).unwrap().unwrap().blob_id;
        assert_eq!(store.read_blob_prefix(blob, 10).unwrap(), &data[..10]);
        assert_eq!(store.read_blob_prefix(blob, 100_000).unwrap(), data);
        assert_eq!(store.read_blob_prefix(blob, 0).unwrap(), b"");
    }
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
    // While the writer is busy, 8 threads submit 50 messages each; the writer then takes
    // all 400 waiting jobs into one transaction.
    let held = hold_writer(&store);
    let (commits_before, jobs_before) = store.commit_stats();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50u64)
                    .map(|i| {
                        let (tx, rx) = std::sync::mpsc::channel();
                        store.enqueue(
                            new_message(t * 1000 + i + 1, &["x@y.example"], b"b"),
                            move |r| tx.send(r).unwrap(),
                        );
                        rx
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    held.release();
    for rx in results {
        rx.recv().unwrap().unwrap();
    }
    let (commits, jobs) = store.commit_stats();
    assert_eq!(store.queue_entries().unwrap().len(), 400);
    assert_eq!(jobs - jobs_before, 400);
    assert_eq!(commits - commits_before, 1, "400 waiting jobs, one commit");
}

#[test]
fn commits_are_reported_to_the_observer_and_the_queue_is_counted_by_state() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            commit_observer: Some(CommitObserver(Arc::new(move |_took, jobs| {
                s.lock().unwrap().push(jobs)
            }))),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    enqueue(
        &store,
        new_message(1, &["a@y.example", "b@y.example"], b"b"),
    );
    assert_eq!(*seen.lock().unwrap(), vec![1]);
    let counts = store.queue_counts().unwrap();
    assert_eq!(counts[0], (RcptStatus::Pending, 2));
    assert!(counts[1..].iter().all(|(_, n)| *n == 0), "{counts:?}");
}

#[test]
fn a_failing_job_does_not_undo_the_rest_of_its_batch() {
    let (_d, store) = store();
    enqueue(&store, new_message(1, &["x@y.example"], b"a"));
    // One batch: a good job, a job that writes its blob and then fails (the same queue id
    // again: the primary key refuses it), and another good job.
    let held = hold_writer(&store);
    let (commits_before, _) = store.commit_stats();
    let first = submit_enqueue(&store, 2);
    let (tx, dup) = std::sync::mpsc::channel();
    store.submit(
        |t| queue::enqueue(t, &new_message(1, &["x@y.example"], b"dup")),
        move |r| tx.send(r.map(|_| ())).unwrap(),
    );
    let last = submit_enqueue(&store, 3);
    held.release();
    first.recv().unwrap().unwrap();
    assert!(dup.recv().unwrap().is_err());
    last.recv().unwrap().unwrap();
    assert_eq!(store.commit_stats().0 - commits_before, 1, "not one batch");
    assert_eq!(queued_ids(&store), vec![1, 2, 3]);
    let bodies: Vec<Vec<u8>> = store
        .read(|c| {
            let mut stmt = c.prepare("SELECT data FROM blobs ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
        .unwrap();
    assert_eq!(
        bodies,
        vec![b"a".to_vec(), b"b".to_vec(), b"b".to_vec()],
        "the failed job's blob was rolled back"
    );
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

/// Keeps the writer busy with one job until `release`, so that every job submitted in the
/// meantime waits in the channel and the next batch takes them all together.
struct HeldWriter {
    release: std::sync::mpsc::Sender<()>,
}

impl HeldWriter {
    fn release(self) {
        self.release.send(()).unwrap();
    }
}

fn hold_writer(store: &Store) -> HeldWriter {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    store.submit(
        move |_tx| {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok(())
        },
        |r| r.unwrap(),
    );
    // Once the job runs, its batch is formed: later jobs go into the next one.
    started_rx.recv().unwrap();
    HeldWriter {
        release: release_tx,
    }
}

/// Submits an enqueue of message `id`; the receiver gets its completion's result.
fn submit_enqueue(store: &Store, id: u64) -> std::sync::mpsc::Receiver<Result<()>> {
    let (tx, rx) = std::sync::mpsc::channel();
    store.submit(
        move |t| queue::enqueue(t, &new_message(id, &["x@y.example"], b"b")),
        move |r| tx.send(r.map(|_| ())).unwrap(),
    );
    rx
}

fn queued_ids(store: &Store) -> Vec<u64> {
    let entries = store.queue_entries().unwrap();
    entries.iter().map(|m| m.id.0).collect()
}

fn faults(store: &Store) -> &writer::Faults {
    &store.inner.writer.faults
}

#[test]
fn a_batch_whose_begin_fails_runs_none_of_its_jobs() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (_d, store) = store();
    let ran = Arc::new(AtomicUsize::new(0));
    let held = hold_writer(&store);
    let results: Vec<_> = (1..=3u64)
        .map(|id| {
            let (tx, rx) = std::sync::mpsc::channel();
            let ran = ran.clone();
            store.submit(
                move |t| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    queue::enqueue(t, &new_message(id, &["x@y.example"], b"b"))
                },
                move |r| tx.send(r.map(|_| ())).unwrap(),
            );
            rx
        })
        .collect();
    faults(&store).fail_next_begin.store(true, Ordering::SeqCst);
    held.release();
    for rx in results {
        assert!(rx.recv().unwrap().is_err());
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "no job ran without its transaction"
    );
    assert!(queued_ids(&store).is_empty());
    // The next batch begins as usual.
    enqueue(&store, new_message(4, &["x@y.example"], b"b"));
    assert_eq!(queued_ids(&store), vec![4]);
}

#[test]
fn a_job_whose_savepoint_fails_does_not_run_and_the_others_commit() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (_d, store) = store();
    let held = hold_writer(&store);
    let (commits_before, _) = store.commit_stats();
    // The held job's savepoint is already open: the next one to fail is the first job's.
    faults(&store)
        .fail_next_savepoint
        .store(true, Ordering::SeqCst);
    let ran = Arc::new(AtomicBool::new(false));
    let (tx, first) = std::sync::mpsc::channel();
    let r = ran.clone();
    store.submit(
        move |t| {
            r.store(true, Ordering::SeqCst);
            queue::enqueue(t, &new_message(1, &["x@y.example"], b"b"))
        },
        move |r| tx.send(r.map(|_| ())).unwrap(),
    );
    let others = [submit_enqueue(&store, 2), submit_enqueue(&store, 3)];
    held.release();
    assert!(first.recv().unwrap().is_err());
    assert!(
        !ran.load(Ordering::SeqCst),
        "the job ran without its savepoint"
    );
    for rx in others {
        rx.recv().unwrap().unwrap();
    }
    assert_eq!(store.commit_stats().0 - commits_before, 1, "not one batch");
    assert_eq!(queued_ids(&store), vec![2, 3]);
}

#[test]
fn a_failed_job_that_cannot_be_undone_fails_its_whole_batch() {
    use std::sync::atomic::Ordering;
    let (_d, store) = store();
    let held = hold_writer(&store);
    faults(&store)
        .fail_next_rollback_to
        .store(true, Ordering::SeqCst);
    let before = submit_enqueue(&store, 1);
    let (tx, failing) = std::sync::mpsc::channel();
    store.submit(
        |t| {
            queue::enqueue(t, &new_message(2, &["x@y.example"], b"b"))?;
            Err::<(), _>(Error::Invalid("refused after writing".into()))
        },
        move |r| tx.send(r).unwrap(),
    );
    let after = submit_enqueue(&store, 3);
    held.release();
    assert!(before.recv().unwrap().is_err());
    assert!(failing.recv().unwrap().is_err());
    assert!(after.recv().unwrap().is_err());
    assert!(queued_ids(&store).is_empty(), "the broken batch was kept");
    // The writer goes on with the next batch.
    enqueue(&store, new_message(4, &["x@y.example"], b"b"));
    assert_eq!(queued_ids(&store), vec![4]);
}

#[test]
fn a_panicking_job_fails_alone_and_the_writer_goes_on() {
    let (_d, store) = store();
    let held = hold_writer(&store);
    let (commits_before, _) = store.commit_stats();
    let before = submit_enqueue(&store, 1);
    let (tx, panicking) = std::sync::mpsc::channel();
    store.submit(
        |t| {
            queue::enqueue(t, &new_message(2, &["x@y.example"], b"b"))?;
            panic!("a bug in a write job");
        },
        move |r: Result<()>| tx.send(r).unwrap(),
    );
    let after = submit_enqueue(&store, 3);
    held.release();
    before.recv().unwrap().unwrap();
    assert!(matches!(panicking.recv().unwrap(), Err(Error::Internal(_))));
    after.recv().unwrap().unwrap();
    assert_eq!(store.commit_stats().0 - commits_before, 1, "not one batch");
    assert_eq!(
        queued_ids(&store),
        vec![1, 3],
        "the panicking job's row was kept"
    );
    // A later job still finds a writer.
    enqueue(&store, new_message(4, &["x@y.example"], b"b"));
    assert_eq!(queued_ids(&store), vec![1, 3, 4]);
}

#[test]
fn a_panicking_completion_does_not_stop_the_writer() {
    let (_d, store) = store();
    store.submit(
        |t| queue::enqueue(t, &new_message(1, &["x@y.example"], b"b")),
        |_| panic!("a bug in a completion"),
    );
    enqueue(&store, new_message(2, &["x@y.example"], b"b"));
    assert_eq!(queued_ids(&store), vec![1, 2]);
}

#[test]
fn a_failed_job_does_not_remove_files_after_commit() {
    let (d, store) = store();
    let kept = d.path().join("blobs/still-referenced");
    let removed = d.path().join("blobs/unreferenced");
    std::fs::write(&kept, b"k").unwrap();
    std::fs::write(&removed, b"r").unwrap();
    let held = hold_writer(&store);
    let (tx, failing) = std::sync::mpsc::channel();
    let path = kept.clone();
    store.submit(
        move |t| {
            t.remove_after_commit(path);
            Err::<(), _>(Error::Invalid("undone".into()))
        },
        move |r| tx.send(r).unwrap(),
    );
    let (tx, good) = std::sync::mpsc::channel();
    let path = removed.clone();
    store.submit(
        move |t| {
            t.remove_after_commit(path);
            Ok(())
        },
        move |r| tx.send(r).unwrap(),
    );
    held.release();
    assert!(failing.recv().unwrap().is_err());
    good.recv().unwrap().unwrap();
    assert!(kept.exists(), "the undone job's file was removed");
    assert!(!removed.exists());
}

#[test]
fn a_full_database_fails_the_batch_and_every_completion_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            max_database_size: 256 * 1024,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    // Fill the database close to its cap.
    let mut id = 0;
    loop {
        id += 1;
        let body = [b'f'; 4096];
        if store
            .write(move |t| queue::enqueue(t, &new_message(id, &["x@y.example"], &body)))
            .is_err()
        {
            break;
        }
    }
    // One batch: small jobs around one that cannot fit. SQLite rolls the whole
    // transaction back when the database is full, so the small jobs are lost with it;
    // what matters is that none of them runs outside a transaction afterwards, and that
    // each completion tells the truth.
    let held = hold_writer(&store);
    let small: Vec<_> = (0..3).map(|i| submit_enqueue(&store, 10_000 + i)).collect();
    let (tx, big) = std::sync::mpsc::channel();
    store.submit(
        |t| {
            let body = vec![b'g'; 512 * 1024];
            queue::enqueue(t, &new_message(20_000, &["x@y.example"], &body))
        },
        move |r| tx.send(r.map(|_| ())).unwrap(),
    );
    let more: Vec<_> = (3..6).map(|i| submit_enqueue(&store, 10_000 + i)).collect();
    held.release();
    assert!(matches!(big.recv().unwrap(), Err(Error::StorageFull)));
    let ids = queued_ids(&store);
    assert!(!ids.contains(&20_000));
    for (i, rx) in small.into_iter().chain(more).enumerate() {
        let r = rx.recv().unwrap();
        assert!(matches!(r, Ok(()) | Err(Error::StorageFull)), "{r:?}");
        assert_eq!(r.is_ok(), ids.contains(&(10_000 + i as u64)), "job {i}");
    }
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
}

/// Runs `f` on `store`'s reader threads and waits for its result.
fn read_on_threads<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> std::sync::mpsc::Receiver<Result<T>> {
    let (tx, rx) = std::sync::mpsc::channel();
    store.submit_read(f, move |r| {
        let _ = tx.send(r);
    });
    rx
}

#[test]
fn reads_from_many_threads_run_on_the_reader_threads_and_see_commits() {
    let (_d, store) = store();
    for i in 0..20 {
        with_user(&store, &format!("user{i}@example.org"));
    }
    let callers: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let pending: Vec<_> = (0..200)
                    .map(|n| {
                        let address = format!("user{}@example.org", (t + n) % 25);
                        read_on_threads(&store, move |s| {
                            let on = std::thread::current().name().map(String::from);
                            Ok((s.lookup(&address)?.is_some(), on))
                        })
                    })
                    .collect();
                let mut found = 0;
                for (n, rx) in pending.into_iter().enumerate() {
                    let (exists, on) = rx.recv().unwrap().unwrap();
                    assert_eq!(exists, (t + n) % 25 < 20);
                    assert!(on.unwrap().starts_with("golub-store-reader-"));
                    found += exists as usize;
                }
                found
            })
        })
        .collect();
    let found: usize = callers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(found, 8 * 200 * 20 / 25);
    // The reads used the threads' own connections, none of the callers' pool.
    assert!(store.inner.readers.lock().unwrap().is_empty());
}

#[test]
fn a_panicking_read_fails_alone_and_the_reader_threads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            reader_threads: 2,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store.add_domain("example.org").unwrap();
    for _ in 0..5 {
        let rx = read_on_threads(&store, |s| -> Result<()> {
            // Panic in the middle of a statement, with rows still to step through.
            s.read(|c| {
                let mut stmt = c.prepare("SELECT name FROM domains")?;
                let _rows = stmt.query([])?;
                panic!("a read went wrong");
            })
        });
        assert!(matches!(rx.recv().unwrap(), Err(Error::Internal(_))));
    }
    for _ in 0..5 {
        store.submit_read(
            |_| Ok(()),
            |_: Result<()>| panic!("a completion went wrong"),
        );
    }
    // Both threads are still there: two reads that wait for each other both finish.
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let both: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            read_on_threads(&store, move |s| {
                barrier.wait();
                s.is_local_domain("example.org")
            })
        })
        .collect();
    for rx in both {
        assert!(rx.recv().unwrap().unwrap());
    }
}

#[test]
fn dsn_requests_are_queued_read_back_and_kept_by_expanded_recipients() {
    let (_d, store) = store();
    let mut msg = new_message(11, &[], b"Subject: dsn\r\n\r\nbody\r\n");
    msg.envid = "abc+def".into();
    msg.ret = "HDRS".into();
    msg.recipients = vec![
        NewRecipient {
            address: "list@example.org".into(),
            notify: "SUCCESS,FAILURE".into(),
            orcpt: "rfc822;List@example.org".into(),
        },
        "plain@example.org".into(),
    ];
    let queued = store.write(move |tx| queue::enqueue(tx, &msg)).unwrap();
    let read = store.queued_message(QueueId(11)).unwrap().unwrap();
    for m in [&queued, &read] {
        assert_eq!((m.envid.as_str(), m.ret.as_str()), ("abc+def", "HDRS"));
        let r = &m.recipients;
        assert_eq!(r[0].notify, "SUCCESS,FAILURE");
        assert_eq!(r[0].orcpt, "rfc822;List@example.org");
        assert_eq!((r[1].notify.as_str(), r[1].orcpt.as_str()), ("", ""));
    }
    // The list expands to two members: both keep its requests and original address.
    let outcomes = vec![(
        0,
        RcptOutcome::Expanded {
            copies: Vec::new(),
            added: vec!["a@elsewhere.example".into(), "b@elsewhere.example".into()],
        },
    )];
    let dir = store.dir().to_path_buf();
    store
        .write(move |tx| queue::record_delivery(tx, &dir, &read, &outcomes, &[]))
        .unwrap();
    let after = store.queued_message(QueueId(11)).unwrap().unwrap();
    let added: Vec<_> = after
        .recipients
        .iter()
        .filter(|r| r.address.ends_with("@elsewhere.example"))
        .collect();
    assert_eq!(added.len(), 2);
    for r in added {
        assert_eq!(r.orig_address, "list@example.org");
        assert_eq!(r.notify, "SUCCESS,FAILURE");
        assert_eq!(r.orcpt, "rfc822;List@example.org");
    }
}

/// Makes every open recipient of `qid` wait an hour, as a deferral would.
fn defer_all(store: &Store, qid: u64) {
    store
        .write(move |tx| {
            tx.conn().execute(
                "UPDATE queue_rcpts SET status = 1, next_attempt = ?2 WHERE queue_id = ?1",
                rusqlite::params![qid as i64, unix_now() + 3600],
            )?;
            Ok(())
        })
        .unwrap();
}

fn due_ids(store: &Store) -> Vec<u64> {
    store
        .due_messages(unix_now(), 100)
        .unwrap()
        .iter()
        .map(|m| m.id.0)
        .collect()
}

#[test]
fn a_held_entry_is_not_due_until_released_and_release_makes_it_due_now() {
    let (_d, store) = store();
    enqueue(&store, new_message(1, &["a@far.example"], b"x\r\n"));
    enqueue(&store, new_message(2, &["b@far.example"], b"y\r\n"));
    assert!(store.hold_message(QueueId(1)).unwrap());
    assert!(!store.hold_message(QueueId(99)).unwrap(), "no such entry");
    assert_eq!(due_ids(&store), vec![2]);
    let held = store.queued_message(QueueId(1)).unwrap().unwrap();
    assert!(held.held);

    defer_all(&store, 1);
    assert!(store.release_message(QueueId(1)).unwrap());
    assert!(!store.release_message(QueueId(99)).unwrap());
    let released = store.queued_message(QueueId(1)).unwrap().unwrap();
    assert!(!released.held);
    assert!(released.recipients[0].next_attempt <= unix_now());
    assert_eq!(due_ids(&store), vec![1, 2]);
}

#[test]
fn flush_by_domain_touches_only_that_domains_open_recipients_of_entries_not_held() {
    let (_d, store) = store();
    enqueue(
        &store,
        new_message(1, &["a@far.example", "b@other.example"], b"x\r\n"),
    );
    enqueue(&store, new_message(2, &["c@FAR.example"], b"y\r\n"));
    enqueue(&store, new_message(3, &["d@far.example"], b"z\r\n"));
    enqueue(&store, new_message(4, &["e@notfar.example"], b"w\r\n"));
    for id in 1..=4 {
        defer_all(&store, id);
    }
    store.hold_message(QueueId(3)).unwrap();
    assert!(due_ids(&store).is_empty());

    let n = store
        .flush_messages(queue::Flush::Domain("far.example".into()))
        .unwrap();
    assert_eq!(n, 2, "a@ and c@, not the held d@ nor e@notfar.example");
    assert_eq!(due_ids(&store), vec![1, 2]);
    let one = store.queued_message(QueueId(1)).unwrap().unwrap();
    assert!(one.recipients[0].next_attempt <= unix_now());
    assert!(
        one.recipients[1].next_attempt > unix_now(),
        "b@other.example still waits"
    );

    assert_eq!(
        store
            .flush_messages(queue::Flush::Message(QueueId(4)))
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .flush_messages(queue::Flush::Message(QueueId(3)))
            .unwrap(),
        0,
        "a held entry stays held"
    );
    assert_eq!(store.flush_messages(queue::Flush::All).unwrap(), 4);
    assert_eq!(due_ids(&store), vec![1, 2, 4]);
}

#[test]
fn deleting_an_entry_drops_its_body_when_no_mailbox_holds_a_copy() {
    let (_d, store) = store();
    let big = vec![b'x'; store.options().inline_body_limit + 10];
    let body = store.prepare_body(big).unwrap();
    let mut msg = new_message(1, &["a@far.example"], b"");
    msg.body = body;
    enqueue(&store, msg);
    assert_eq!(blob_names(store.dir()).len(), 1);

    let gone = store.delete_message(QueueId(1)).unwrap().unwrap();
    assert_eq!(gone.recipients[0].address, "a@far.example");
    assert_eq!(gone.reverse_path, "sender@remote.example");
    assert!(store.queued_message(QueueId(1)).unwrap().is_none());
    assert!(store.delete_message(QueueId(1)).unwrap().is_none());
    assert!(blob_names(store.dir()).is_empty(), "the body file went");
    let blobs: i64 = store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(blobs, 0);
    assert!(store.check(false).unwrap().is_clean());
}

#[test]
fn a_delivery_recorded_after_its_entry_was_deleted_changes_nothing() {
    let (_d, store) = store();
    let user = with_user(&store, "alice@example.org");
    enqueue(
        &store,
        new_message(1, &["alice@example.org", "a@far.example"], b"x\r\n"),
    );
    // Delivery took its snapshot; then the administrator deletes the entry.
    let snapshot = store.queued_message(QueueId(1)).unwrap().unwrap();
    store.delete_message(QueueId(1)).unwrap().unwrap();
    let outcomes = vec![
        (
            0,
            RcptOutcome::Delivered(vec![(user.id, b"P: 1\r\n".to_vec())]),
        ),
        (
            1,
            RcptOutcome::Bounced {
                reply: "5.1.1 no".into(),
            },
        ),
    ];
    let report = new_message(2, &["sender@remote.example"], b"report\r\n");
    let dir = store.dir().to_path_buf();
    store
        .write(move |tx| queue::record_delivery(tx, &dir, &snapshot, &outcomes, &[report]))
        .unwrap();
    let inbox = store.folder(user.id, "INBOX").unwrap().unwrap();
    assert!(store.messages(inbox.id).unwrap().is_empty(), "no copy");
    assert!(store.queue_entries().unwrap().is_empty(), "no report");
    let blobs: i64 = store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(blobs, 0);
    assert!(store.check(false).unwrap().is_clean());
}

#[test]
fn deleting_an_entry_whose_body_a_mailbox_holds_keeps_the_body() {
    let (_d, store) = store();
    let user = with_user(&store, "alice@example.org");
    enqueue(
        &store,
        new_message(1, &["alice@example.org", "a@far.example"], b"x\r\n"),
    );
    let msg = store.queued_message(QueueId(1)).unwrap().unwrap();
    let outcomes = vec![(0, RcptOutcome::Delivered(vec![(user.id, Vec::new())]))];
    let dir = store.dir().to_path_buf();
    store
        .write(move |tx| queue::record_delivery(tx, &dir, &msg, &outcomes, &[]))
        .unwrap();
    store.delete_message(QueueId(1)).unwrap().unwrap();
    let inbox = store.folder(user.id, "INBOX").unwrap().unwrap();
    assert_eq!(store.message_content(inbox.id, 1).unwrap(), b"x\r\n");
    assert!(store.check(false).unwrap().is_clean());
}
