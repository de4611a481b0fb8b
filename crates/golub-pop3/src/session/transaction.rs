//! The TRANSACTION state (RFC 1939 §5, §7): STAT, LIST, RETR, DELE, NOOP, RSET, TOP,
//! UIDL.
//!
//! Message numbers are 1-based and never change during the session; a message marked
//! deleted is gone for every command until RSET (RFC 1939 §5). Nothing is removed here:
//! that is UPDATE's, after QUIT.

use super::{Event, Maildrop, Pending, Session, State, reply};

/// Why a message number does not name a message.
enum Lookup {
    NoSuchMessage,
    AlreadyDeleted,
}

impl Maildrop {
    /// The 0-based index of message number `n`, if it exists and is not deleted.
    fn index(&self, n: u64) -> Result<usize, Lookup> {
        let index = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| i < self.messages.len())
            .ok_or(Lookup::NoSuchMessage)?;
        if self.deleted.get(index).copied().unwrap_or(true) {
            return Err(Lookup::AlreadyDeleted);
        }
        Ok(index)
    }

    /// The messages not marked deleted, with their 1-based numbers.
    fn live(&self) -> impl Iterator<Item = (usize, &super::MessageInfo)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted.get(*i).copied().unwrap_or(true))
            .map(|(i, m)| (i + 1, m))
    }

    /// Count and total size of the messages not marked deleted.
    fn totals(&self) -> (usize, u64) {
        self.live().fold((0, 0), |(n, size), (_, m)| {
            (n + 1, size.saturating_add(m.size))
        })
    }
}

impl Session {
    /// The maildrop, or "-ERR" when not in TRANSACTION state.
    fn maildrop(&mut self) -> Option<&Maildrop> {
        if matches!(self.state, State::Authorization { .. }) {
            self.err(reply::WRONG_STATE);
        }
        match &self.state {
            State::Transaction(m) => Some(m),
            State::Authorization { .. } => None,
        }
    }

    /// The index of message number `n` for a command that reads it; "-ERR" if none.
    fn message(&mut self, n: u64) -> Option<usize> {
        match self.maildrop()?.index(n) {
            Ok(i) => Some(i),
            Err(_) => {
                self.err(reply::NO_SUCH_MESSAGE);
                None
            }
        }
    }

    pub(super) fn stat(&mut self) {
        let Some(m) = self.maildrop() else { return };
        let (count, size) = m.totals();
        self.ok(&format!("{count} {size}"));
    }

    pub(super) fn list(&mut self, n: Option<u64>) {
        let Some(n) = n else {
            let Some(m) = self.maildrop() else { return };
            let (count, size) = m.totals();
            let lines: Vec<String> = m.live().map(|(n, m)| format!("{n} {}", m.size)).collect();
            self.ok(&format!("{count} messages ({size} octets)"));
            return self.multiline_list(&lines);
        };
        let Some(i) = self.message(n) else { return };
        let size = self.size_of(i);
        self.ok(&format!("{n} {size}"));
    }

    pub(super) fn uidl(&mut self, n: Option<u64>) {
        let Some(n) = n else {
            let Some(m) = self.maildrop() else { return };
            let lines: Vec<String> = m.live().map(|(n, m)| format!("{n} {}", m.uid)).collect();
            self.ok(reply::UIDL_FOLLOWS);
            return self.multiline_list(&lines);
        };
        let Some(i) = self.message(n) else { return };
        let uid = match &self.state {
            State::Transaction(m) => m.messages.get(i).map(|m| m.uid.clone()),
            State::Authorization { .. } => None,
        };
        self.ok(&format!("{n} {}", uid.unwrap_or_default()));
    }

    pub(super) fn retr(&mut self, n: u64) {
        if let Some(index) = self.message(n) {
            self.content_needed(index, None);
        }
    }

    pub(super) fn top(&mut self, n: u64, lines: u64) {
        if let Some(index) = self.message(n) {
            self.content_needed(index, Some(lines));
        }
    }

    pub(super) fn dele(&mut self, n: u64) {
        let Some(m) = self.maildrop() else { return };
        match m.index(n) {
            Ok(i) => {
                if let State::Transaction(m) = &mut self.state
                    && let Some(d) = m.deleted.get_mut(i)
                {
                    *d = true;
                }
                self.ok(&format!("message {n} deleted"));
            }
            Err(Lookup::AlreadyDeleted) => self.err(reply::ALREADY_DELETED),
            Err(Lookup::NoSuchMessage) => self.err(reply::NO_SUCH_MESSAGE),
        }
    }

    pub(super) fn noop(&mut self) {
        if self.maildrop().is_some() {
            self.ok("");
        }
    }

    pub(super) fn rset(&mut self) {
        if self.maildrop().is_none() {
            return;
        }
        let State::Transaction(m) = &mut self.state else {
            return;
        };
        m.deleted.fill(false);
        let (count, size) = m.totals();
        self.ok(&format!("maildrop has {count} messages ({size} octets)"));
    }

    fn size_of(&self, index: usize) -> u64 {
        match &self.state {
            State::Transaction(m) => m.messages.get(index).map_or(0, |m| m.size),
            State::Authorization { .. } => 0,
        }
    }

    /// RETR or TOP of an existing message: ask the driver for it.
    fn content_needed(&mut self, index: usize, top: Option<u64>) {
        self.events.push_back(Event::ContentNeeded { index, top });
        self.pending = Some(Pending::Content { index, top });
    }
}
