//! The commands on mailboxes: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (with
//! RFC 5258 selection and return options and RFC 5819 STATUS), LSUB and STATUS.

use super::{Done, Driver, bad, blocking, no, ok, server_bug};
use crate::reads;
use golub_imap::command::{List, ListReturn, ListSelect, StatusItem};
use golub_imap::{Session, encode, mailbox_name};
use golub_store::{Folder, FolderStatus};

/// The hierarchy delimiter.
const DELIMITER: char = '/';

impl Driver<'_> {
    pub(super) async fn create(
        &mut self,
        session: &mut Session,
        raw: &[u8],
        special_use: Vec<String>,
    ) -> Done {
        let Some(name) = self.folder_name(session, raw) else {
            return bad("Invalid mailbox name");
        };
        if name.eq_ignore_ascii_case("INBOX") {
            return no(Some("ALREADYEXISTS"), "INBOX always exists");
        }
        if name.split(DELIMITER).any(str::is_empty) || name.len() > 1000 {
            return bad("Invalid mailbox name");
        }
        let known = [
            "\\Sent",
            "\\Drafts",
            "\\Trash",
            "\\Junk",
            "\\Archive",
            "\\All",
            "\\Flagged",
        ];
        let mut uses = Vec::new();
        for u in &special_use {
            match known.iter().find(|k| k.eq_ignore_ascii_case(u)) {
                Some(k) => uses.push(*k),
                None => return no(Some("USEATTR"), "Unsupported special-use attribute"),
            }
        }
        let user = self.user_id();
        let special = uses.join(" ");
        let result = blocking(&self.shared.store, move |s| {
            if s.folder(user, &name)?.is_some() {
                return Ok(false);
            }
            // The levels above a new name exist too, so that every name has a parent.
            let mut parent = String::new();
            let levels: Vec<&str> = name.split(DELIMITER).collect();
            for (i, level) in levels.iter().enumerate() {
                if i > 0 {
                    parent.push(DELIMITER);
                }
                parent.push_str(level);
                let last = i + 1 == levels.len();
                if !last && s.folder(user, &parent)?.is_some() {
                    continue;
                }
                s.create_folder(user, &parent, if last { &special } else { "" })?;
            }
            Ok(true)
        })
        .await;
        match result {
            Ok(true) => {
                self.changed();
                ok("CREATE completed")
            }
            Ok(false) => no(Some("ALREADYEXISTS"), "Mailbox exists"),
            Err(e) => server_bug(e),
        }
    }

    pub(super) async fn delete(&mut self, session: &mut Session, raw: &[u8]) -> Done {
        let Some(name) = self.folder_name(session, raw) else {
            return no(Some("NONEXISTENT"), "No such mailbox");
        };
        if name == "INBOX" {
            return no(None, "INBOX cannot be deleted");
        }
        let user = self.user_id();
        let target = name.clone();
        let result = blocking(&self.shared.store, move |s| {
            let Some(f) = s.folder(user, &target)? else {
                return Ok(None);
            };
            s.delete_folder(user, &target)?;
            Ok(Some(f.id))
        })
        .await;
        match result {
            Ok(Some(id)) => {
                if self.selected.as_ref().is_some_and(|s| s.folder_id == id) {
                    self.selected = None;
                    session.unselect();
                }
                self.changed();
                ok("DELETE completed")
            }
            Ok(None) => no(Some("NONEXISTENT"), "No such mailbox"),
            Err(e) => server_bug(e),
        }
    }

    pub(super) async fn rename(&mut self, session: &mut Session, from: &[u8], to: &[u8]) -> Done {
        let (Some(from), Some(to)) = (
            self.folder_name(session, from),
            self.folder_name(session, to),
        ) else {
            return no(Some("NONEXISTENT"), "No such mailbox");
        };
        if to == "INBOX" || to.split(DELIMITER).any(str::is_empty) {
            return no(Some("CANNOT"), "Invalid new name");
        }
        let user = self.user_id();
        let result = blocking(&self.shared.store, move |s| {
            if s.folder(user, &from)?.is_none() {
                return Ok(Err(no(Some("NONEXISTENT"), "No such mailbox")));
            }
            if s.folder(user, &to)?.is_some() {
                return Ok(Err(no(Some("ALREADYEXISTS"), "The new name exists")));
            }
            s.rename_folder(user, &from, &to)?;
            Ok(Ok(()))
        })
        .await;
        match result {
            Ok(Ok(())) => {
                self.changed();
                ok("RENAME completed")
            }
            Ok(Err(done)) => done,
            Err(e) => server_bug(e),
        }
    }

    pub(super) async fn subscribe(&mut self, session: &mut Session, raw: &[u8], on: bool) -> Done {
        let Some(name) = self.folder_name(session, raw) else {
            return no(Some("NONEXISTENT"), "No such mailbox");
        };
        let user = self.user_id();
        let result = blocking(&self.shared.store, move |s| {
            // A name stays subscribed after its folder is gone; it can be unsubscribed.
            if on && s.folder(user, &name)?.is_none() {
                return Ok(false);
            }
            s.set_subscribed(user, &name, on)?;
            Ok(true)
        })
        .await;
        match result {
            Ok(true) => ok(if on {
                "SUBSCRIBE completed"
            } else {
                "UNSUBSCRIBE completed"
            }),
            // RFC 9051 §6.3.7: unsubscribing a name that is not there is no error.
            Ok(false) if !on => ok("UNSUBSCRIBE completed"),
            Ok(false) => no(Some("NONEXISTENT"), "No such mailbox"),
            Err(e) => server_bug(e),
        }
    }

    pub(super) async fn list(&mut self, session: &mut Session, l: List) -> Done {
        let utf8 = session.utf8_names();
        let Some(reference) = mailbox_name::decode(&l.reference, utf8)
            .or_else(|| l.reference.is_empty().then(String::new))
        else {
            return bad("Invalid reference name");
        };
        let recursive = l.selection.contains(&ListSelect::RecursiveMatch);
        if recursive
            && !l.selection.contains(&ListSelect::Subscribed)
            && !l.selection.contains(&ListSelect::SpecialUse)
        {
            return bad("RECURSIVEMATCH needs another selection option");
        }
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter.
        if l.patterns.len() == 1 && l.patterns[0].is_empty() {
            session
                .output()
                .extend_from_slice(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            return ok("LIST completed");
        }
        let mut patterns = Vec::new();
        for p in &l.patterns {
            let Some(p) = decode_pattern(p, utf8) else {
                return bad("Invalid pattern");
            };
            patterns.push(format!("{reference}{p}"));
        }
        let subscribed_only = l.selection.contains(&ListSelect::Subscribed);
        let special_only = l.selection.contains(&ListSelect::SpecialUse);
        let ret_subscribed = subscribed_only || l.returns.contains(&ListReturn::Subscribed);
        let status_items: Vec<StatusItem> = l
            .returns
            .iter()
            .find_map(|r| match r {
                ListReturn::Status(items) => Some(items.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let user = self.user_id();
        let read = reads::read(&self.shared.store, move |s| {
            Ok((s.folders(user)?, s.subscriptions(user)?))
        })
        .await;
        let (folders, subscriptions) = match read {
            Ok(x) => x,
            Err(e) => return server_bug(e),
        };
        let mut out = Vec::new();
        let mut statuses = Vec::new();
        // RFC 5258 §3.1: subscribed names whose folder is gone are listed too.
        if subscribed_only {
            for name in subscriptions.iter().filter(|n| {
                !folders.iter().any(|f| &f.name == *n) && patterns.iter().any(|p| matches(p, n))
            }) {
                out.extend_from_slice(b"* LIST (\\NonExistent \\Subscribed) \"/\" ");
                encode::astring(&mut out, mailbox_name::encode(name, utf8).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for f in &folders {
            let matched = patterns.iter().any(|p| matches(p, &f.name));
            let has_children = folders.iter().any(|c| is_child(&f.name, &c.name));
            // RFC 5258 §3.5: CHILDINFO for a name whose descendants meet the selection
            // without matching the pattern themselves.
            let child_selected = recursive
                && folders.iter().any(|c| {
                    is_child(&f.name, &c.name)
                        && (!subscribed_only || c.subscribed)
                        && (!special_only || !c.special_use.is_empty())
                        && !patterns.iter().any(|p| matches(p, &c.name))
                });
            if !matched {
                continue;
            }
            let selected_itself =
                (!subscribed_only || f.subscribed) && (!special_only || !f.special_use.is_empty());
            if !selected_itself && !child_selected {
                continue;
            }
            out.extend_from_slice(b"* LIST (");
            let mut attrs: Vec<&str> = Vec::new();
            // Listed only for a selected child (RFC 5258 §3.5): the name itself exists
            // but does not meet the selection, so it carries no attributes of its own
            // but those asked for by RETURN (CHILDREN).
            if !selected_itself && l.returns.contains(&ListReturn::Children) {
                attrs.push(if has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
            }
            if selected_itself {
                attrs.push(if has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                if ret_subscribed && f.subscribed {
                    attrs.push("\\Subscribed");
                }
                attrs.extend(f.special_use.split_ascii_whitespace());
            }
            out.extend_from_slice(attrs.join(" ").as_bytes());
            out.extend_from_slice(b") \"/\" ");
            encode::astring(&mut out, mailbox_name::encode(&f.name, utf8).as_bytes());
            if child_selected && recursive {
                out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            out.extend_from_slice(b"\r\n");
            if !status_items.is_empty() && selected_itself {
                statuses.push((f.clone(), out.len()));
            }
        }
        // RFC 9051 §6.3.9: when `%` ends a pattern, a level of hierarchy it matches is
        // listed even where no folder of that name exists (one was deleted, or a child
        // was created alone), so that a client walking the tree finds what is below.
        if !subscribed_only && !special_only {
            let mut levels: Vec<&str> = Vec::new();
            for f in &folders {
                let mut at = 0;
                while let Some(i) = f.name[at..].find(DELIMITER) {
                    let level = &f.name[..at + i];
                    at += i + 1;
                    if !level.is_empty()
                        && !levels.contains(&level)
                        && !folders.iter().any(|g| g.name == level)
                        && patterns
                            .iter()
                            .any(|p| p.ends_with('%') && matches(p, level))
                    {
                        levels.push(level);
                    }
                }
            }
            for level in levels {
                out.extend_from_slice(b"* LIST (\\Noselect \\HasChildren) \"/\" ");
                encode::astring(&mut out, mailbox_name::encode(level, utf8).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        if statuses.is_empty() {
            session.output().extend_from_slice(&out);
            return ok("LIST completed");
        }
        // RFC 5819: each STATUS right after its LIST line.
        let ids: Vec<i64> = statuses.iter().map(|(f, _)| f.id).collect();
        let read = reads::read(&self.shared.store, move |s| {
            ids.iter()
                .map(|id| s.folder_status(*id))
                .collect::<golub_store::Result<Vec<_>>>()
        })
        .await;
        let st = match read {
            Ok(st) => st,
            Err(e) => return server_bug(e),
        };
        let mut at = 0;
        let w = session.output();
        for ((f, end), status) in statuses.iter().zip(st) {
            w.extend_from_slice(&out[at..*end]);
            at = *end;
            write_status(w, &f.name, utf8, &status, &status_items);
        }
        w.extend_from_slice(&out[at..]);
        ok("LIST completed")
    }

    pub(super) async fn lsub(
        &mut self,
        session: &mut Session,
        reference: &[u8],
        pattern: &[u8],
    ) -> Done {
        let utf8 = session.utf8_names();
        let reference = mailbox_name::decode(reference, utf8).unwrap_or_default();
        let Some(pattern) = decode_pattern(pattern, utf8) else {
            return bad("Invalid pattern");
        };
        let pattern = format!("{reference}{pattern}");
        let user = self.user_id();
        let subscriptions =
            match reads::read(&self.shared.store, move |s| s.subscriptions(user)).await {
                Ok(f) => f,
                Err(e) => return server_bug(e),
            };
        // RFC 3501 §6.3.9: a name that is not subscribed but has subscribed names below
        // it is listed as \Noselect when `%` stops at its level.
        let mut names: Vec<(String, bool)> = Vec::new();
        for sub in &subscriptions {
            let mut at = 0;
            while let Some(i) = sub[at..].find(DELIMITER) {
                let parent = &sub[..at + i];
                let subscribed = subscriptions.iter().any(|g| g == parent);
                if !subscribed && !names.iter().any(|(n, _)| n == parent) {
                    names.push((parent.to_string(), true));
                }
                at += i + 1;
            }
            if !names.iter().any(|(n, _)| n == sub) {
                names.push((sub.clone(), false));
            }
        }
        let out = session.output();
        for (name, noselect) in names.iter().filter(|(n, _)| matches(&pattern, n)) {
            out.extend_from_slice(if *noselect {
                b"* LSUB (\\Noselect) \"/\" ".as_slice()
            } else {
                b"* LSUB () \"/\" ".as_slice()
            });
            encode::astring(out, mailbox_name::encode(name, utf8).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        ok("LSUB completed")
    }

    pub(super) async fn status(
        &mut self,
        session: &mut Session,
        raw: &[u8],
        items: &[StatusItem],
    ) -> Done {
        let Some(name) = self.folder_name(session, raw) else {
            return no(Some("NONEXISTENT"), "No such mailbox");
        };
        let user = self.user_id();
        let read = reads::read(&self.shared.store, move |s| {
            let Some(f): Option<Folder> = s.folder(user, &name)? else {
                return Ok(None);
            };
            let st = s.folder_status(f.id)?;
            Ok(Some((f, st)))
        })
        .await;
        match read {
            Ok(Some((f, st))) => {
                if items.contains(&StatusItem::HighestModSeq) {
                    let _ = session.enable_condstore();
                }
                let utf8 = session.utf8_names();
                write_status(session.output(), &f.name, utf8, &st, items);
                ok("STATUS completed")
            }
            Ok(None) => no(Some("NONEXISTENT"), "No such mailbox"),
            Err(e) => server_bug(e),
        }
    }
}

/// `* STATUS name (MESSAGES 2 ...)`.
fn write_status(
    out: &mut Vec<u8>,
    name: &str,
    utf8: bool,
    st: &FolderStatus,
    items: &[StatusItem],
) {
    out.extend_from_slice(b"* STATUS ");
    encode::astring(out, mailbox_name::encode(name, utf8).as_bytes());
    out.extend_from_slice(b" (");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let (label, n) = match item {
            StatusItem::Messages => ("MESSAGES", st.messages as u64),
            StatusItem::Recent => ("RECENT", st.recent as u64),
            StatusItem::UidNext => ("UIDNEXT", st.uidnext as u64),
            StatusItem::UidValidity => ("UIDVALIDITY", st.uidvalidity as u64),
            StatusItem::Unseen => ("UNSEEN", st.unseen as u64),
            StatusItem::Deleted => ("DELETED", st.deleted as u64),
            StatusItem::Size => ("SIZE", st.size),
            StatusItem::HighestModSeq => ("HIGHESTMODSEQ", st.highestmodseq),
        };
        out.extend_from_slice(label.as_bytes());
        out.push(b' ');
        encode::number(out, n);
    }
    out.extend_from_slice(b")\r\n");
}

/// A list pattern as the client sent it, decoded like a name but keeping `*` and `%`.
fn decode_pattern(raw: &[u8], utf8: bool) -> Option<String> {
    if raw.is_empty() {
        return Some(String::new());
    }
    // A pattern that is not valid modified UTF-7 can still match names that are: take
    // it as it was written, as Dovecot does.
    mailbox_name::decode(raw, utf8).or_else(|| String::from_utf8(raw.to_vec()).ok())
}

/// Whether `child` is below `parent` in the hierarchy.
fn is_child(parent: &str, child: &str) -> bool {
    child.len() > parent.len() + 1
        && child.starts_with(parent)
        && child[parent.len()..].starts_with(DELIMITER)
}

/// RFC 9051 §6.3.9 wildcards: `*` matches anything, `%` anything but the delimiter.
/// INBOX matches case-insensitively. Iterative, with backtracking bounded by the
/// pattern's stars: no exponential blow-up.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    // The store keeps INBOX in upper case; a pattern may spell it any way.
    let folded;
    let pattern = match pattern.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("INBOX") => {
            folded = format!("INBOX{}", &pattern[5..]);
            folded.as_str()
        }
        _ => pattern,
    };
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Classic dynamic programming over (pattern, name) positions: O(|p|·|n|).
    let mut dp = vec![false; n.len() + 1];
    dp[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' => {
                let mut any = false;
                for j in 0..=n.len() {
                    any |= dp[j];
                    next[j] = any;
                }
            }
            '%' => {
                for j in 0..=n.len() {
                    if dp[j] {
                        next[j] = true;
                        let mut k = j;
                        while k < n.len() && n[k] != DELIMITER {
                            k += 1;
                            next[k] = true;
                        }
                    }
                }
            }
            c => {
                for j in 0..n.len() {
                    if dp[j] && n[j] == c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        dp = next;
    }
    dp[n.len()]
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches("*", "INBOX"));
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "Sent"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("Inbox/*", "INBOX/x"));
        assert!(!matches("sent", "Sent"));
        assert!(matches("S*t", "Sent"));
        assert!(matches(&"*".repeat(50), &"a".repeat(200)));
    }
}
