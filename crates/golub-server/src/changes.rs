//! Mailbox change notices: whoever changes a user's mailboxes (local delivery, an IMAP or
//! POP3 session) bumps that user's counter after the change has committed, and the IMAP
//! sessions of that user wake up and look for what changed (new messages for IDLE, flags
//! and expunges of other sessions). Only users with a session watching have a counter.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// Per-user change counters.
#[derive(Debug, Default)]
pub struct MailboxChanges {
    users: Mutex<HashMap<i64, watch::Sender<u64>>>,
}

impl MailboxChanges {
    /// A receiver woken by every later change of `user`'s mailboxes.
    pub fn watch(&self, user: i64) -> watch::Receiver<u64> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        // Forget users nobody watches any more, so the map stays as small as the
        // number of logged-in users.
        if users.len() > 64 && users.len().is_power_of_two() {
            users.retain(|_, tx| tx.receiver_count() > 0);
        }
        users
            .entry(user)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// `user`'s mailboxes changed.
    pub fn changed(&self, user: i64) {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = users.get(&user) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_only_that_users_watchers() {
        let changes = MailboxChanges::default();
        let mut a = changes.watch(1);
        let mut b = changes.watch(2);
        changes.changed(1);
        changes.changed(3);
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        a.borrow_and_update();
        assert!(!a.has_changed().unwrap());
        changes.changed(2);
        b.changed().await.unwrap();
    }
}
