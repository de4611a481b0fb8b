//! Tests of the IMAP mailbox operations (`imap.rs`).

use super::*;
use std::io::Read;

fn store_with_limit(limit: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            inline_body_limit: limit,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    (dir, store)
}

fn store() -> (tempfile::TempDir, Store) {
    store_with_limit(1024 * 1024)
}

fn user(store: &Store, address: &str) -> User {
    let _ = store.add_domain(address.rsplit_once('@').unwrap().1);
    store
        .add_user(address, "", hash_password("pw").unwrap())
        .unwrap()
}

fn folder(store: &Store, user: &User, name: &str) -> Folder {
    store.folder(user.id, name).unwrap().unwrap()
}

fn append(store: &Store, folder_id: i64, body: &[u8], flags: &[&str]) -> u32 {
    let body = store.prepare_body(body.to_vec()).unwrap();
    let flags = flags.iter().map(|s| s.to_string()).collect();
    store
        .append_message(folder_id, body, flags, 1_700_000_000)
        .unwrap()
        .1
}

fn strings(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|s| s.to_string()).collect()
}

fn hms(store: &Store, folder_id: i64) -> u64 {
    store.folder_highestmodseq(folder_id).unwrap().unwrap()
}

fn uids(store: &Store, folder_id: i64) -> Vec<u32> {
    store
        .message_index(folder_id)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect()
}

fn assert_clean(store: &Store) {
    let report = store.check(false).unwrap();
    assert!(report.is_clean(), "{report}");
}

fn blob_count(store: &Store) -> i64 {
    store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?))
        .unwrap()
}

fn refcount(store: &Store, blob: BlobId) -> i64 {
    store
        .read(|c| {
            Ok(
                c.query_row("SELECT refcount FROM blobs WHERE id = ?1", [blob.0], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap()
}

fn read_all(store: &Store, folder_id: i64, uid: u32) -> Vec<u8> {
    let mut reader = store.open_message(folder_id, uid).unwrap().unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out.len() as u64, reader.size());
    out
}

#[test]
fn a_created_folder_starts_empty_and_a_recreated_one_gets_a_new_uidvalidity() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let work = store.create_folder(alice.id, "Work", "").unwrap();
    assert_eq!((work.uidnext, work.highestmodseq), (1, 1));
    assert!(!work.subscribed);
    assert_eq!(store.folder_by_id(work.id).unwrap().unwrap(), work);
    assert!(work.uidvalidity > folder(&store, &alice, "INBOX").uidvalidity);
    append(&store, work.id, b"a\r\n", &[]);
    append(&store, work.id, b"b\r\n", &[]);

    assert!(matches!(
        store.create_folder(alice.id, "Work", ""),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        store.create_folder(alice.id, "inbox", ""),
        Err(Error::AlreadyExists(_))
    ));
    for bad in ["", "/a", "a/", "a//b"] {
        assert!(matches!(
            store.create_folder(alice.id, bad, ""),
            Err(Error::Invalid(_))
        ));
    }
    assert!(matches!(
        store.create_folder(alice.id, "X", "\\Bogus"),
        Err(Error::Invalid(_))
    ));

    store.delete_folder(alice.id, "Work").unwrap();
    assert!(store.folder(alice.id, "Work").unwrap().is_none());
    assert!(store.folder_by_id(work.id).unwrap().is_none());
    let again = store.create_folder(alice.id, "Work", "").unwrap();
    assert!(
        again.uidvalidity > work.uidvalidity,
        "same second, still new"
    );
    assert_eq!(again.uidnext, 1);
    assert!(store.message_index(again.id).unwrap().is_empty());
    assert_eq!(blob_count(&store), 0);
    assert_clean(&store);

    let sent = store.create_folder(alice.id, "Old Sent", "\\Sent").unwrap();
    assert_eq!(sent.special_use, "\\Sent");
}

#[test]
fn inbox_cannot_be_deleted_and_children_survive_their_parent() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    assert!(matches!(
        store.delete_folder(alice.id, "INBOX"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        store.delete_folder(alice.id, "inbox"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        store.delete_folder(alice.id, "Nope"),
        Err(Error::NotFound(_))
    ));
    store.create_folder(alice.id, "P", "").unwrap();
    store.create_folder(alice.id, "P/C", "").unwrap();
    store.delete_folder(alice.id, "P").unwrap();
    assert!(store.folder(alice.id, "P").unwrap().is_none());
    assert!(store.folder(alice.id, "P/C").unwrap().is_some());
}

#[test]
fn uids_are_never_reused_after_expunge() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    for i in 1..=3 {
        assert_eq!(append(&store, inbox, b"x\r\n", &[]), i);
    }
    store
        .store_flags(inbox, vec![3], FlagMode::Add, strings(&["\\Deleted"]), None)
        .unwrap();
    assert_eq!(store.expunge_deleted(inbox, None).unwrap(), vec![3]);
    assert_eq!(append(&store, inbox, b"y\r\n", &[]), 4);
    assert_eq!(uids(&store, inbox), vec![1, 2, 4]);
    assert_eq!(folder(&store, &alice, "INBOX").uidnext, 5);
}

#[test]
fn each_change_raises_highestmodseq_once_and_no_op_leaves_it() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    let archive = folder(&store, &alice, "Archive").id;
    let mut last = hms(&store, inbox);
    let step = |what: &str, store: &Store, last: &mut u64| {
        let now = hms(store, inbox);
        assert_eq!(now, *last + 1, "{what} raises HIGHESTMODSEQ by one");
        *last = now;
        now
    };
    append(&store, inbox, b"1\r\n", &[]);
    step("append", &store, &mut last);
    append(&store, inbox, b"2\r\n", &["\\Seen"]);
    step("append", &store, &mut last);
    append(&store, inbox, b"3\r\n", &[]);
    step("append", &store, &mut last);

    let out = store
        .store_flags(
            inbox,
            vec![1, 2, 3],
            FlagMode::Add,
            strings(&["\\Seen"]),
            None,
        )
        .unwrap();
    let m = step("store", &store, &mut last);
    // One operation, one modseq: both changed messages share it.
    assert_eq!(
        out.changed
            .iter()
            .map(|c| (c.uid, c.modseq))
            .collect::<Vec<_>>(),
        vec![(1, m), (3, m)]
    );
    assert_eq!(out.unchanged.len(), 1);
    assert_eq!(out.unchanged[0].uid, 2);
    assert!(
        out.unchanged[0].modseq < m,
        "an unchanged message keeps its modseq"
    );

    let out = store
        .store_flags(
            inbox,
            vec![1, 2, 3],
            FlagMode::Add,
            strings(&["\\seen"]),
            None,
        )
        .unwrap();
    assert!(out.changed.is_empty());
    assert_eq!(hms(&store, inbox), last, "a STORE that changes nothing");

    store.copy_messages(inbox, vec![1], archive).unwrap();
    assert_eq!(hms(&store, inbox), last, "COPY leaves the source alone");
    store.move_messages(inbox, vec![1], archive).unwrap();
    step("move out", &store, &mut last);
    store.expunge(inbox, vec![2]).unwrap();
    step("expunge", &store, &mut last);
    store.expunge(inbox, vec![2, 99]).unwrap();
    assert_eq!(hms(&store, inbox), last, "expunging nothing");
    assert!(store.expunge_deleted(inbox, None).unwrap().is_empty());
    assert_eq!(hms(&store, inbox), last);

    // Every message's modseq is at most the folder's.
    for f in [inbox, archive] {
        let h = hms(&store, f);
        assert!(
            store
                .message_index(f)
                .unwrap()
                .iter()
                .all(|m| m.modseq <= h)
        );
    }
    assert_clean(&store);
}

#[test]
fn flags_are_stored_canonical_and_compared_without_case() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    let uid = append(&store, inbox, b"x\r\n", &["$Junk", "\\SEEN", "\\recent"]);
    assert_eq!(store.message_index(inbox).unwrap()[0].flags, "\\Seen $Junk");

    let flags_of = |out: StoreOutcome| out.changed.into_iter().next().map(|m| m.flags);
    let add = |f: &[&str]| {
        store
            .store_flags(inbox, vec![uid], FlagMode::Add, strings(f), None)
            .unwrap()
    };
    assert_eq!(flags_of(add(&["$junk", "\\seen"])), None);
    assert_eq!(
        flags_of(add(&["\\flagged", "Work", "\\Answered"])),
        Some("\\Answered \\Flagged \\Seen $Junk Work".into())
    );
    let out = store
        .store_flags(
            inbox,
            vec![uid],
            FlagMode::Remove,
            strings(&["\\SEEN", "work"]),
            None,
        )
        .unwrap();
    assert_eq!(flags_of(out), Some("\\Answered \\Flagged $Junk".into()));
    let out = store
        .store_flags(
            inbox,
            vec![uid],
            FlagMode::Replace,
            strings(&["\\Draft", "\\answered", "\\Draft"]),
            None,
        )
        .unwrap();
    assert_eq!(flags_of(out), Some("\\Answered \\Draft".into()));
    let out = store
        .store_flags(inbox, vec![uid], FlagMode::Replace, vec![], None)
        .unwrap();
    assert_eq!(flags_of(out), Some(String::new()));

    for bad in ["a b", "", "x\ty"] {
        assert!(matches!(
            store.store_flags(inbox, vec![uid], FlagMode::Add, strings(&[bad]), None),
            Err(Error::Invalid(_))
        ));
    }
    assert_eq!(
        canonical_flags(&strings(&["b", "\\deleted", "B", "a"])).unwrap(),
        "\\Deleted b a"
    );
    // Missing UIDs are skipped; a missing folder is not.
    let out = store
        .store_flags(inbox, vec![77], FlagMode::Add, strings(&["x"]), None)
        .unwrap();
    assert_eq!(out, StoreOutcome::default());
    assert!(matches!(
        store.store_flags(9999, vec![1], FlagMode::Add, strings(&["x"]), None),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn unchangedsince_leaves_messages_changed_after_it_and_reports_them() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    append(&store, inbox, b"1\r\n", &[]);
    append(&store, inbox, b"2\r\n", &[]);
    let before = hms(&store, inbox);
    store
        .store_flags(inbox, vec![1], FlagMode::Add, strings(&["$Work"]), None)
        .unwrap();
    let out = store
        .store_flags(
            inbox,
            vec![1, 2],
            FlagMode::Add,
            strings(&["\\Seen"]),
            Some(before),
        )
        .unwrap();
    assert_eq!(out.modified, vec![1]);
    assert_eq!(out.changed.len(), 1);
    assert_eq!(out.changed[0].uid, 2);
    let index = store.message_index(inbox).unwrap();
    assert_eq!(
        index[0].flags, "$Work",
        "the conflicting message is left alone"
    );
    assert_eq!(index[1].flags, "\\Seen");
    // UNCHANGEDSINCE 0 fails for every message (RFC 7162 §3.1.3).
    let out = store
        .store_flags(inbox, vec![1, 2], FlagMode::Add, strings(&["x"]), Some(0))
        .unwrap();
    assert_eq!(out.modified, vec![1, 2]);
}

#[test]
fn changes_since_reports_changed_new_and_vanished_messages() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    for _ in 0..4 {
        append(&store, inbox, b"x\r\n", &[]);
    }
    let since = hms(&store, inbox);
    let none = store.changes_since(inbox, since).unwrap();
    assert!(none.changed.is_empty() && none.vanished.is_empty());
    assert_eq!(none.highestmodseq, since);

    store
        .store_flags(
            inbox,
            vec![2, 3],
            FlagMode::Add,
            strings(&["\\Deleted"]),
            None,
        )
        .unwrap();
    store
        .store_flags(inbox, vec![4], FlagMode::Add, strings(&["\\Seen"]), None)
        .unwrap();
    assert_eq!(
        store.expunge_deleted(inbox, Some(vec![3, 4])).unwrap(),
        vec![3]
    );
    store.expunge(inbox, vec![1]).unwrap();
    let new = append(&store, inbox, b"y\r\n", &[]);

    let changes = store.changes_since(inbox, since).unwrap();
    assert_eq!(changes.highestmodseq, hms(&store, inbox));
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![2, 4, new]
    );
    assert_eq!(changes.vanished, vec![1, 3]);
    // From before the first message: everything there is, and everything removed.
    let all = store.changes_since(inbox, 0).unwrap();
    assert_eq!(all.changed.len(), 3);
    assert_eq!(all.vanished, vec![1, 3]);
    // Only what came after the expunge of 1.
    let late = store
        .changes_since(inbox, changes.highestmodseq - 1)
        .unwrap();
    assert_eq!(late.vanished, Vec::<u32>::new());
    assert_eq!(late.changed.len(), 1);
    assert!(matches!(
        store.changes_since(9999, 0),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn uid_expunge_removes_only_the_given_deleted_messages() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    for _ in 0..5 {
        append(&store, inbox, b"x\r\n", &["\\Deleted"]);
    }
    append(&store, inbox, b"keep\r\n", &["\\Seen"]);
    assert_eq!(
        store
            .expunge_deleted(inbox, Some(vec![4, 2, 6, 2]))
            .unwrap(),
        vec![2, 4]
    );
    assert_eq!(uids(&store, inbox), vec![1, 3, 5, 6]);
    assert_eq!(store.expunge_deleted(inbox, None).unwrap(), vec![1, 3, 5]);
    assert_eq!(uids(&store, inbox), vec![6]);
    assert_eq!(blob_count(&store), 1);
    assert_clean(&store);
}

#[test]
fn rename_moves_a_folder_and_its_children_and_keeps_uidvalidity() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    for name in ["a", "a/b", "a/b/c", "ab", "a0"] {
        store.create_folder(alice.id, name, "").unwrap();
    }
    store.set_subscribed(alice.id, "a/b", true).unwrap();
    let a = folder(&store, &alice, "a");
    append(&store, a.id, b"x\r\n", &[]);
    store.rename_folder(alice.id, "a", "x/y").unwrap();
    let names: Vec<String> = store
        .folders(alice.id)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    for gone in ["a", "a/b", "a/b/c"] {
        assert!(!names.contains(&gone.to_string()), "{gone} renamed");
    }
    for there in ["x/y", "x/y/b", "x/y/b/c", "ab", "a0"] {
        assert!(names.contains(&there.to_string()), "{there} there");
    }
    let renamed = folder(&store, &alice, "x/y");
    assert_eq!((renamed.id, renamed.uidvalidity), (a.id, a.uidvalidity));
    assert_eq!(uids(&store, renamed.id), vec![1]);
    assert!(folder(&store, &alice, "x/y/b").subscribed);

    assert!(matches!(
        store.rename_folder(alice.id, "ab", "a0"),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        store.rename_folder(alice.id, "ab", "INBOX"),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        store.rename_folder(alice.id, "x", "z"),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.rename_folder(alice.id, "ab", "ab/c"),
        Err(Error::Invalid(_))
    ));
    // A child whose new name is taken stops the whole rename.
    store.create_folder(alice.id, "q", "").unwrap();
    store.create_folder(alice.id, "q/b", "").unwrap();
    assert!(matches!(store.rename_folder(alice.id, "x/y", "q2"), Ok(())));
    store.create_folder(alice.id, "r/b", "").unwrap();
    assert!(matches!(
        store.rename_folder(alice.id, "q2", "r"),
        Err(Error::AlreadyExists(_))
    ));
    assert!(store.folder(alice.id, "q2").unwrap().is_some());
    assert!(store.folder(alice.id, "r").unwrap().is_none());
}

#[test]
fn renaming_inbox_moves_its_messages_to_a_new_folder_and_leaves_it_empty() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX");
    store.create_folder(alice.id, "INBOX/Sub", "").unwrap();
    append(&store, inbox.id, b"1\r\n", &["\\Seen"]);
    append(&store, inbox.id, b"2\r\n", &[]);
    let since = hms(&store, inbox.id);

    store.rename_folder(alice.id, "inbox", "Old").unwrap();
    let old = folder(&store, &alice, "Old");
    assert_ne!(old.uidvalidity, inbox.uidvalidity);
    assert_eq!(uids(&store, old.id), vec![1, 2]);
    assert_eq!(old.uidnext, 3);
    assert_eq!(read_all(&store, old.id, 1), b"1\r\n");
    assert_eq!(store.message_index(old.id).unwrap()[0].flags, "\\Seen");

    let inbox_after = folder(&store, &alice, "INBOX");
    assert_eq!(inbox_after.id, inbox.id);
    assert_eq!(inbox_after.uidvalidity, inbox.uidvalidity);
    assert_eq!(inbox_after.uidnext, 3, "INBOX keeps its UIDNEXT");
    assert!(uids(&store, inbox.id).is_empty());
    assert_eq!(
        store.changes_since(inbox.id, since).unwrap().vanished,
        vec![1, 2]
    );
    assert!(store.folder(alice.id, "INBOX/Sub").unwrap().is_some());
    assert_eq!(append(&store, inbox.id, b"3\r\n", &[]), 3);
    assert!(matches!(
        store.rename_folder(alice.id, "INBOX", "Old"),
        Err(Error::AlreadyExists(_))
    ));
    assert_clean(&store);
}

#[test]
fn copies_share_the_body_and_outlive_the_original() {
    let (d, store) = store_with_limit(64);
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    let archive = folder(&store, &alice, "Archive");
    let large: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    append(&store, inbox, b"small\r\n", &["\\Flagged", "$Work"]);
    append(&store, inbox, &large, &[]);
    append(&store, inbox, b"third\r\n", &[]);
    let blob_of = |f: i64, uid: u32| store.message_prefix_and_blob(f, uid).unwrap().unwrap().1;

    let out = store
        .copy_messages(inbox, vec![2, 1, 99, 1], archive.id)
        .unwrap();
    assert_eq!(out.uidvalidity, archive.uidvalidity);
    assert_eq!(out.pairs, vec![(1, 1), (2, 2)]);
    assert_eq!(refcount(&store, blob_of(inbox, 2)), 2);
    assert_eq!(blob_of(inbox, 2), blob_of(archive.id, 2));
    let copied = &store.message_index(archive.id).unwrap()[0];
    assert_eq!(copied.flags, "\\Flagged $Work");
    assert_eq!(copied.modseq, hms(&store, archive.id));
    let original = &store.messages(inbox).unwrap()[0];
    assert_eq!(
        store.messages(archive.id).unwrap()[0].internal_date,
        original.internal_date
    );
    assert_clean(&store);

    // The originals go: the copies still read.
    store.expunge(inbox, vec![1, 2]).unwrap();
    assert_eq!(read_all(&store, archive.id, 1), b"small\r\n");
    assert_eq!(read_all(&store, archive.id, 2), large);
    assert_eq!(refcount(&store, blob_of(archive.id, 2)), 1);
    assert_clean(&store);

    // Both go: so do the bodies and the file.
    store.delete_folder(alice.id, "Archive").unwrap();
    assert_eq!(blob_count(&store), 1, "only the third message's body");
    let files = std::fs::read_dir(d.path().join("blobs")).unwrap().count();
    assert_eq!(files, 0);
    assert_clean(&store);
}

#[test]
fn move_takes_messages_out_of_the_source_in_one_step() {
    let (_d, store) = store_with_limit(64);
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    let trash = folder(&store, &alice, "Trash");
    for _ in 0..3 {
        append(&store, inbox, &[b'm'; 200], &["\\Seen"]);
    }
    let since = hms(&store, inbox);
    let out = store.move_messages(inbox, vec![3, 1], trash.id).unwrap();
    assert_eq!(out.uidvalidity, trash.uidvalidity);
    assert_eq!(out.pairs, vec![(1, 1), (3, 2)]);
    assert_eq!(uids(&store, inbox), vec![2]);
    assert_eq!(uids(&store, trash.id), vec![1, 2]);
    assert_eq!(
        store.changes_since(inbox, since).unwrap().vanished,
        vec![1, 3]
    );
    let moved = store.message_prefix_and_blob(trash.id, 1).unwrap().unwrap();
    assert_eq!(refcount(&store, moved.1), 1);
    assert_eq!(moved.2, 200);
    assert_clean(&store);

    // Within one folder a move gives new UIDs.
    let out = store.move_messages(trash.id, vec![1], trash.id).unwrap();
    assert_eq!(out.pairs, vec![(1, 3)]);
    assert_eq!(uids(&store, trash.id), vec![2, 3]);
    // Nothing to move: nothing changes.
    let before = hms(&store, trash.id);
    let out = store.move_messages(inbox, vec![42], trash.id).unwrap();
    assert!(out.pairs.is_empty());
    assert_eq!(hms(&store, trash.id), before);
    assert!(matches!(
        store.copy_messages(inbox, vec![2], 9999),
        Err(Error::NotFound(_))
    ));
    assert_clean(&store);
}

#[test]
fn appended_messages_are_stored_as_given_and_read_by_streaming() {
    let (d, store) = store_with_limit(64);
    let alice = user(&store, "alice@example.org");
    let drafts = folder(&store, &alice, "Drafts");
    let large: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = store.create_body().unwrap();
    w.write(&large[..50_000]).unwrap();
    w.write(&large[50_000..]).unwrap();
    let body = w.finish().unwrap();
    let (uidvalidity, uid) = store
        .append_message(drafts.id, body, strings(&["\\Draft"]), 1_600_000_000)
        .unwrap();
    assert_eq!((uidvalidity, uid), (drafts.uidvalidity, 1));
    assert_eq!(read_all(&store, drafts.id, uid), large);
    assert_eq!(store.message_content(drafts.id, uid).unwrap(), large);
    let meta = &store.messages(drafts.id).unwrap()[0];
    assert_eq!((meta.size, meta.internal_date), (100_000, 1_600_000_000));
    let (prefix, _, size) = store
        .message_prefix_and_blob(drafts.id, uid)
        .unwrap()
        .unwrap();
    assert!(prefix.is_empty());
    assert_eq!(size, 100_000);
    assert!(store.open_message(drafts.id, 2).unwrap().is_none());
    assert!(
        store
            .message_prefix_and_blob(drafts.id, 2)
            .unwrap()
            .is_none()
    );

    // A reader opened before the expunge reads to the end.
    let mut reader = store.open_message(drafts.id, uid).unwrap().unwrap();
    store.expunge(drafts.id, vec![uid]).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, large);

    // An APPEND that fails leaves no file behind.
    let body = store.prepare_body(vec![b'z'; 1000]).unwrap();
    assert!(matches!(
        store.append_message(9999, body, vec![], 0),
        Err(Error::NotFound(_))
    ));
    let files = std::fs::read_dir(d.path().join("blobs")).unwrap().count();
    assert_eq!(files, 0);
    assert_clean(&store);
}

#[test]
fn status_counts_a_few_thousand_messages_in_one_query() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    const N: u32 = 3000;
    let uid = alice.id;
    store
        .write(move |tx| {
            let blob = blob::insert(tx, &BodyRef::Inline(b"0123456789".to_vec()))?;
            for _ in 0..N {
                mailbox::append(tx, uid, "INBOX", blob, 10, b"P: 1\r\n", 0)?;
            }
            blob::add_refs(tx, blob, N as i64 - 1)
        })
        .unwrap();
    let every = |k: u32| (1..=N).filter(|u| u % k == 0).collect::<Vec<u32>>();
    store
        .store_flags(inbox, every(3), FlagMode::Add, strings(&["\\Seen"]), None)
        .unwrap();
    store
        .store_flags(
            inbox,
            every(5),
            FlagMode::Add,
            strings(&["\\Deleted", "Seen"]),
            None,
        )
        .unwrap();
    // A keyword that only looks like a system flag counts for nothing.
    store
        .store_flags(
            inbox,
            every(7),
            FlagMode::Add,
            strings(&["$Seen", "Deleted"]),
            None,
        )
        .unwrap();

    let status = store.folder_status(inbox).unwrap();
    let f = folder(&store, &alice, "INBOX");
    assert_eq!(
        status,
        FolderStatus {
            messages: N,
            recent: N,
            unseen: N - N / 3,
            deleted: N / 5,
            size: N as u64 * 16,
            uidnext: N + 1,
            uidvalidity: f.uidvalidity,
            highestmodseq: f.highestmodseq,
        }
    );
    // The first session to claim \Recent gets them all; the next one none.
    assert_eq!(store.claim_recent(inbox, N - 9).unwrap(), 1);
    assert_eq!(store.folder_status(inbox).unwrap().recent, 10);
    assert_eq!(store.claim_recent(inbox, N + 1).unwrap(), N - 9);
    assert_eq!(store.claim_recent(inbox, N + 1).unwrap(), N + 1);
    assert_eq!(store.recent_from(inbox).unwrap(), N + 1);
    assert_eq!(store.folder_status(inbox).unwrap().recent, 0);
    let index = store.message_index(inbox).unwrap();
    assert_eq!(index.len(), N as usize);
    assert!(index.windows(2).all(|w| w[0].uid < w[1].uid));
    assert_eq!(index[14].flags, "\\Deleted \\Seen Seen");

    let empty = store
        .folder_status(folder(&store, &alice, "Junk").id)
        .unwrap();
    assert_eq!((empty.messages, empty.unseen, empty.size), (0, 0, 0));
    assert!(matches!(store.folder_status(9999), Err(Error::NotFound(_))));
    assert_clean(&store);
}

#[test]
fn subscriptions_live_on_existing_folders() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    store.create_folder(alice.id, "Lists", "").unwrap();
    store.set_subscribed(alice.id, "Lists", true).unwrap();
    assert!(folder(&store, &alice, "Lists").subscribed);
    store.set_subscribed(alice.id, "Lists", false).unwrap();
    assert!(!folder(&store, &alice, "Lists").subscribed);
    store.set_subscribed(alice.id, "inbox", false).unwrap();
    assert!(!folder(&store, &alice, "INBOX").subscribed);
    assert!(matches!(
        store.set_subscribed(alice.id, "Nope", true),
        Err(Error::NotFound(_))
    ));
    // A subscription outlives its folder (RFC 9051 §6.3.7), comes back with a folder of
    // that name, and moves with a rename.
    store.set_subscribed(alice.id, "Lists", true).unwrap();
    store.delete_folder(alice.id, "Lists").unwrap();
    assert!(
        store
            .subscriptions(alice.id)
            .unwrap()
            .contains(&"Lists".to_string())
    );
    assert!(
        store
            .create_folder(alice.id, "Lists", "")
            .unwrap()
            .subscribed
    );
    store.rename_folder(alice.id, "Lists", "Groups").unwrap();
    let subs = store.subscriptions(alice.id).unwrap();
    assert!(subs.contains(&"Groups".to_string()) && !subs.contains(&"Lists".to_string()));
    assert!(folder(&store, &alice, "Groups").subscribed);
    store.delete_folder(alice.id, "Groups").unwrap();
    store.set_subscribed(alice.id, "Groups", false).unwrap();
    assert!(
        !store
            .subscriptions(alice.id)
            .unwrap()
            .contains(&"Groups".to_string())
    );
}

#[test]
fn delivery_appends_follow_the_modseq_rule_and_removing_a_user_leaves_no_vanished_rows() {
    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let bob = user(&store, "bob@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    let before = hms(&store, inbox);
    let (a, b) = (alice.id, bob.id);
    store
        .write(move |tx| {
            let blob = blob::insert(tx, &BodyRef::Inline(b"x\r\n".to_vec()))?;
            mailbox::append(tx, a, "INBOX", blob, 3, b"", 0)?;
            mailbox::append(tx, a, "INBOX", blob, 3, b"", 0)?;
            mailbox::append(tx, b, "INBOX", blob, 3, b"", 0)?;
            blob::add_refs(tx, blob, 2)
        })
        .unwrap();
    let index = store.message_index(inbox).unwrap();
    assert_eq!(
        index.iter().map(|m| m.modseq).collect::<Vec<_>>(),
        vec![before + 1, before + 2]
    );
    store.expunge(inbox, vec![1]).unwrap();
    store.remove_user("alice@example.org").unwrap();
    let vanished: i64 = store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM vanished", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(vanished, 0);
    assert_eq!(blob_count(&store), 1, "bob's copy keeps the body");
    assert_clean(&store);
}

#[test]
fn the_header_section_is_found_and_searched_alone() {
    use crate::blob::header_len;
    assert_eq!(header_len(b"A: b\r\n\r\nbody"), Some(8));
    assert_eq!(header_len(b"A: b\n\nbody"), Some(6));
    assert_eq!(header_len(b"\r\nbody"), Some(2));
    assert_eq!(header_len(b"A: b\r\nC: d\r\n"), Some(12));
    assert_eq!(header_len(&vec![b'x'; 100_000]), None);

    let (_d, store) = store();
    let alice = user(&store, "alice@example.org");
    let inbox = folder(&store, &alice, "INBOX").id;
    let uid = append(
        &store,
        inbox,
        b"Subject: hi\r\nFrom: a@b\r\n\r\nthe body\r\n",
        &[],
    );
    let big = format!("Subject: big\r\n\r\n{}", "y".repeat(2 * 1024 * 1024));
    let body = store.prepare_body(big.into_bytes()).unwrap();
    let (_, big_uid) = store.append_message(inbox, body, vec![], 0).unwrap();
    let got = store.message_headers(inbox, &[uid, big_uid]).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].1.as_deref(),
        Some(&b"Subject: hi\r\nFrom: a@b\r\n\r\n"[..])
    );
    // A body in a file: not cached, the caller reads the content.
    assert_eq!(got[1].1, None);

    let uid2 = append(
        &store,
        inbox,
        b"Received: x\r\nSUBJECT: folded\r\n  on two lines\r\nX-Spam: no\r\n\
          from: a@b\r\n\r\nFrom: not a header\r\n",
        &[],
    );
    let got = store
        .message_summaries(inbox, &[uid, big_uid, uid2])
        .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0].1.as_deref(),
        Some(&b"Subject: hi\r\nFrom: a@b\r\n\r\n"[..])
    );
    assert_eq!(got[1].1, None);
    assert_eq!(
        got[2].1.as_deref(),
        Some(&b"SUBJECT: folded\r\n  on two lines\r\nfrom: a@b\r\n\r\n"[..])
    );

    // The header rows go with their bodies.
    let header_rows = |store: &Store| -> i64 {
        store
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM blob_headers", [], |r| r.get(0))?))
            .unwrap()
    };
    assert_eq!(header_rows(&store), 2);
    store.expunge(inbox, vec![uid, big_uid, uid2]).unwrap();
    assert_eq!(blob_count(&store), 0);
    assert_eq!(header_rows(&store), 0);
    assert_clean(&store);
}
