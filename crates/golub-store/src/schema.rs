//! The database schema and its migrations, applied in order at open.

use crate::Result;
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: directory, blobs, queue, mailboxes.
    r#"
    CREATE TABLE domains (
        name        TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE users (
        id          INTEGER PRIMARY KEY,
        address     TEXT NOT NULL UNIQUE,
        domain      TEXT NOT NULL REFERENCES domains(name),
        name        TEXT NOT NULL DEFAULT '',
        password    TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE aliases (
        address     TEXT NOT NULL,
        target      TEXT NOT NULL,
        position    INTEGER NOT NULL,
        PRIMARY KEY (address, target)
    );
    CREATE TABLE blobs (
        id          INTEGER PRIMARY KEY,
        size        INTEGER NOT NULL,
        refcount    INTEGER NOT NULL,
        data        BLOB,
        path        TEXT
    );
    CREATE TABLE queue (
        id          INTEGER PRIMARY KEY,
        blob_id     INTEGER NOT NULL REFERENCES blobs(id),
        reverse_path TEXT NOT NULL,
        smtputf8    INTEGER NOT NULL,
        eight_bit   INTEGER NOT NULL,
        received_at INTEGER NOT NULL
    );
    CREATE TABLE queue_rcpts (
        queue_id    INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        address     TEXT NOT NULL,
        orig_address TEXT NOT NULL,
        status      INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_reply  TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (queue_id, idx)
    );
    CREATE INDEX queue_rcpts_due ON queue_rcpts(status, next_attempt);
    CREATE TABLE folders (
        id          INTEGER PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uidnext     INTEGER NOT NULL,
        highestmodseq INTEGER NOT NULL,
        special_use TEXT NOT NULL DEFAULT '',
        subscribed  INTEGER NOT NULL DEFAULT 1,
        UNIQUE (user_id, name)
    );
    CREATE TABLE messages (
        folder_id   INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        uid         INTEGER NOT NULL,
        blob_id     INTEGER NOT NULL REFERENCES blobs(id),
        prefix      BLOB NOT NULL,
        size        INTEGER NOT NULL,
        internal_date INTEGER NOT NULL,
        flags       TEXT NOT NULL DEFAULT '',
        modseq      INTEGER NOT NULL,
        PRIMARY KEY (folder_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX messages_blob ON messages(blob_id);
    "#,
    // 2: quarantine for queue entries that cannot be delivered as they are (their body is
    // gone): kept with envelope and recipients for an operator, out of delivery's way.
    r#"
    CREATE TABLE queue_quarantine (
        id          INTEGER PRIMARY KEY,
        blob_id     INTEGER NOT NULL,
        reverse_path TEXT NOT NULL,
        smtputf8    INTEGER NOT NULL,
        eight_bit   INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        quarantined_at INTEGER NOT NULL,
        reason      TEXT NOT NULL
    );
    CREATE TABLE queue_quarantine_rcpts (
        queue_id    INTEGER NOT NULL REFERENCES queue_quarantine(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        address     TEXT NOT NULL,
        orig_address TEXT NOT NULL,
        status      INTEGER NOT NULL,
        attempts    INTEGER NOT NULL,
        next_attempt INTEGER NOT NULL,
        last_reply  TEXT NOT NULL,
        PRIMARY KEY (queue_id, idx)
    );
    "#,
    // 3: SCRAM-SHA-256 credentials next to the argon2 hash ('' until the password is set
    // again: such users log in with PLAIN and LOGIN only).
    r#"
    ALTER TABLE users ADD COLUMN scram TEXT NOT NULL DEFAULT '';
    "#,
    // 4: whether the sender was told that the message is delayed (one warning each).
    r#"
    ALTER TABLE queue ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: entries put on hold by the administrator (`golub queue hold`) are not tried
    // until released.
    r#"
    ALTER TABLE queue ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    "#,
    // 6: delivery status notification requests (RFC 3461): ENVID and RET for the message,
    // NOTIFY and ORCPT for each recipient ('' when not given).
    r#"
    ALTER TABLE queue ADD COLUMN envid TEXT NOT NULL DEFAULT '';
    ALTER TABLE queue ADD COLUMN ret TEXT NOT NULL DEFAULT '';
    ALTER TABLE queue_rcpts ADD COLUMN notify TEXT NOT NULL DEFAULT '';
    ALTER TABLE queue_rcpts ADD COLUMN orcpt TEXT NOT NULL DEFAULT '';
    "#,
    // 7: what IMAP needs beyond delivery. Messages by modseq (CONDSTORE's CHANGEDSINCE);
    // the UIDs expunged from each folder with the modseq of their removal (QRESYNC's
    // VANISHED, RFC 7162 §3.2.10), kept as long as the folder lives; the last UIDVALIDITY
    // handed out, so that a folder created again under an old name never reuses one.
    r#"
    CREATE INDEX messages_modseq ON messages(folder_id, modseq);
    CREATE TABLE vanished (
        folder_id   INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        uid         INTEGER NOT NULL,
        modseq      INTEGER NOT NULL,
        PRIMARY KEY (folder_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX vanished_modseq ON vanished(folder_id, modseq);
    CREATE TABLE uidvalidity (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        last        INTEGER NOT NULL
    );
    INSERT INTO uidvalidity (id, last) SELECT 1, COALESCE(MAX(uidvalidity), 0) FROM folders;
    "#,
    // 8: IMAP4rev1's \Recent (RFC 3501 §2.3.2): messages from this UID on have not been
    // seen by any session that selected the folder yet.
    r#"
    ALTER TABLE folders ADD COLUMN recent_from INTEGER NOT NULL DEFAULT 1;
    "#,
    // 9: subscriptions by name (RFC 9051 §6.3.7: deleting a mailbox does not remove its
    // name from the subscriptions). `folders.subscribed` mirrors it for existing folders.
    r#"
    CREATE TABLE subscriptions (
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        PRIMARY KEY (user_id, name)
    ) WITHOUT ROWID;
    INSERT INTO subscriptions (user_id, name) SELECT user_id, name FROM folders WHERE subscribed = 1;
    "#,
    // 10: for IMAP, what a body's header section holds, kept apart from the body so that
    // reading it never walks the body's overflow pages: the section's length with its
    // blank line (incremental blob I/O then reads the header alone), and the fields of
    // [`crate::SUMMARY_FIELDS`] as written (SEARCH FROM, SUBJECT and the like read those
    // few hundred octets a message). No row: not known (a body in a file).
    r#"
    CREATE TABLE blob_headers (
        blob_id     INTEGER PRIMARY KEY,
        header_len  INTEGER NOT NULL,
        summary     BLOB NOT NULL
    );
    CREATE TRIGGER blob_headers_follow_blobs AFTER DELETE ON blobs BEGIN
        DELETE FROM blob_headers WHERE blob_id = old.id;
    END;
    "#,
];

/// Brings the schema up to date; each migration commits on its own.
pub fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
