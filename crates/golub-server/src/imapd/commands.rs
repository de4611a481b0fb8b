//! The commands on messages: SELECT and EXAMINE, FETCH, STORE, SEARCH, COPY, MOVE,
//! EXPUNGE, CLOSE, UNSELECT, APPEND.

use super::{
    Done, Driver, Resume, Selected, bad, blocking, entry, log_select, no, ok, selected_read_only,
    server_bug,
};
use crate::reads;
use golub_imap::command::{self as cmd, Command, FetchAttr, SearchReturn, SequenceSet, StoreMode};
use golub_imap::view::{Flags, MailboxView, write_flags_fetch, write_uid_set};
use golub_imap::{Session, encode, fetch, mailbox_name, search};
use golub_store::{FlagMode, MessageMeta};

/// Messages whose content one FETCH step reads, at most.
const FETCH_BATCH: usize = 64;
/// Content octets one FETCH step reads, about.
const FETCH_BATCH_BYTES: u64 = 1 << 20;
/// Messages one metadata-only FETCH step answers.
const FETCH_BATCH_LIGHT: usize = 5000;

/// A FETCH being answered in steps.
pub(crate) struct FetchJob {
    pub uid: bool,
    /// UIDs still to answer, ascending.
    uids: Vec<u32>,
    next: usize,
    attrs: Vec<FetchAttr>,
    extra: fetch::Extra,
    sets_seen: bool,
    content: bool,
    /// Some messages could not be read (expunged meanwhile).
    missing: bool,
    /// The one content item when it is the whole message (BODY[], BODY.PEEK[], RFC822):
    /// a large message is then streamed from the store rather than read whole.
    whole: Option<&'static str>,
    /// The message being streamed.
    stream: Option<Stream>,
}

/// A large message on its way out: what is left of its literal.
pub(crate) struct Stream {
    reader: golub_store::MessageReader,
    left: u64,
}

/// Octets of a streamed message written per step.
const STREAM_CHUNK: usize = 256 * 1024;

/// The item name if `attrs` ask for the whole message and otherwise only metadata.
fn whole_message_item(attrs: &[FetchAttr]) -> Option<&'static str> {
    let mut item = None;
    for a in attrs {
        match a {
            FetchAttr::Uid
            | FetchAttr::Flags
            | FetchAttr::InternalDate
            | FetchAttr::Rfc822Size
            | FetchAttr::ModSeq => {}
            FetchAttr::Rfc822 if item.is_none() => item = Some("RFC822"),
            FetchAttr::BodySection {
                section,
                partial: None,
                ..
            } if item.is_none() && section.part.is_empty() && section.text.is_none() => {
                item = Some("BODY[]")
            }
            _ => return None,
        }
    }
    item
}

impl Driver<'_> {
    /// Turns CONDSTORE on for a command that implies it; if the mailbox is selected, the
    /// client hears its HIGHESTMODSEQ (RFC 7162 §3.1.2.1).
    fn condstore_on(&mut self, session: &mut Session) {
        if session.enable_condstore()
            && let Some(sel) = &self.selected
        {
            let line = format!(
                "* OK [HIGHESTMODSEQ {}] Highest\r\n",
                sel.view.highestmodseq
            );
            session.output().extend_from_slice(line.as_bytes());
        }
    }

    /// Runs one command; `None` when it goes on in parts.
    pub(super) async fn run(&mut self, session: &mut Session, command: Command) -> Option<Done> {
        Some(match command {
            Command::Noop | Command::Check => ok("Completed"),
            Command::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                self.select(session, &mailbox, read_only, condstore, qresync)
                    .await
            }
            Command::Close => {
                if let Some(sel) = self.selected.take()
                    && !sel.read_only
                {
                    let folder = sel.folder_id;
                    // RFC 9051 §6.4.1: expunge silently.
                    match blocking(&self.shared.store, move |s| s.expunge_deleted(folder, None))
                        .await
                    {
                        Ok(removed) if !removed.is_empty() => self.changed(),
                        Ok(_) => {}
                        Err(e) => {
                            session.unselect();
                            return Some(server_bug(e));
                        }
                    }
                }
                session.unselect();
                ok("CLOSE completed")
            }
            Command::Unselect => {
                self.selected = None;
                session.unselect();
                ok("UNSELECT completed")
            }
            Command::Expunge { uids } => self.expunge(session, uids).await,
            Command::Fetch(f) => return self.fetch(session, f).await,
            Command::Store(s) => self.store(session, s).await,
            Command::Search(s) => self.search(session, s).await,
            Command::Copy { uid, set, mailbox } => {
                self.copy(session, uid, &set, &mailbox, false).await
            }
            Command::Move { uid, set, mailbox } => {
                self.copy(session, uid, &set, &mailbox, true).await
            }
            Command::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(session, &mailbox, flags, date, message).await,
            Command::Create {
                mailbox,
                special_use,
            } => self.create(session, &mailbox, special_use).await,
            Command::Delete(mailbox) => self.delete(session, &mailbox).await,
            Command::Rename { from, to } => self.rename(session, &from, &to).await,
            Command::Subscribe(m) => self.subscribe(session, &m, true).await,
            Command::Unsubscribe(m) => self.subscribe(session, &m, false).await,
            Command::List(l) => self.list(session, l).await,
            Command::Lsub { reference, pattern } => self.lsub(session, &reference, &pattern).await,
            Command::Namespace => {
                session
                    .output()
                    .extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                ok("NAMESPACE completed")
            }
            Command::Status { mailbox, items } => self.status(session, &mailbox, &items).await,
            Command::GetQuota(_) | Command::GetQuotaRoot(_) => no(None, "Quotas are not supported"),
            // The session answers these itself.
            Command::Capability
            | Command::Logout
            | Command::StartTls
            | Command::Authenticate { .. }
            | Command::Login { .. }
            | Command::Enable(_)
            | Command::Id(_)
            | Command::Idle => bad("Unexpected command"),
        })
    }

    /// The folder name a client gave, as the store keeps it.
    pub(super) fn folder_name(&self, session: &Session, raw: &[u8]) -> Option<String> {
        let name = mailbox_name::decode(raw, session.utf8_names())?;
        let name = name.trim_end_matches('/').to_string();
        (!name.is_empty()).then_some(name)
    }

    async fn select(
        &mut self,
        session: &mut Session,
        raw: &[u8],
        read_only: bool,
        condstore: bool,
        qresync: Option<cmd::Qresync>,
    ) -> Done {
        // RFC 9051 §6.3.2: a SELECT first deselects, whether or not it succeeds.
        if self.selected.take().is_some()
            && (session.enabled().qresync || session.enabled().imap4rev2)
        {
            session
                .output()
                .extend_from_slice(b"* OK [CLOSED] Previous mailbox closed\r\n");
        }
        session.unselect();
        if condstore {
            self.condstore_on(session);
        }
        if qresync.is_some() && !session.enabled().qresync {
            return bad("Enable QRESYNC first");
        }
        let Some(name) = self.folder_name(session, raw) else {
            return no(Some("NONEXISTENT"), "No such mailbox");
        };
        let user = self.user_id();
        let lookup = name.clone();
        let rev2 = session.enabled().imap4rev2;
        // SELECT claims \Recent for this session; EXAMINE only looks (RFC 3501 §6.3.2).
        let loaded = blocking(&self.shared.store, move |s| {
            let Some(folder) = s.folder(user, &lookup)? else {
                return Ok(None);
            };
            let index = s.message_index(folder.id)?;
            let recent_from = if rev2 {
                // IMAP4rev2 has no \Recent: such a session neither sees nor claims it.
                u32::MAX
            } else if read_only {
                s.recent_from(folder.id)?
            } else {
                // Up to what this session loaded, which may be past the UIDNEXT read
                // just before it.
                let upto = index.last().map_or(folder.uidnext, |m| {
                    folder.uidnext.max(m.uid.saturating_add(1))
                });
                s.claim_recent(folder.id, upto)?
            };
            Ok(Some((folder, (index, recent_from))))
        })
        .await;
        let (folder, (index, recent_from)) = match loaded {
            Ok(Some(x)) => x,
            Ok(None) => return no(Some("NONEXISTENT"), "No such mailbox"),
            Err(e) => return server_bug(e),
        };
        let entries: Vec<_> = index.iter().map(entry).collect();
        let mut view = MailboxView::new(
            folder.uidvalidity,
            folder.uidnext,
            folder.highestmodseq,
            entries,
        );
        view.set_read_only(read_only);
        view.mark_recent(recent_from);
        let out = session.output();
        view.write_flags(out);
        out.extend_from_slice(format!("* {} EXISTS\r\n", view.len()).as_bytes());
        if !session.enabled().imap4rev2 {
            let recent = format!("* {} RECENT\r\n", view.recent_count());
            session.output().extend_from_slice(recent.as_bytes());
            if let Some(i) = view.first_unseen() {
                session.output().extend_from_slice(
                    format!("* OK [UNSEEN {}] First unseen\r\n", i + 1).as_bytes(),
                );
            }
        }
        let out = session.output();
        out.extend_from_slice(
            format!(
                "* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] Predicted next UID\r\n* OK [HIGHESTMODSEQ {}] Highest\r\n",
                view.uidvalidity, view.uidnext, view.highestmodseq
            )
            .as_bytes(),
        );
        if session.enabled().imap4rev2 {
            let out = session.output();
            out.extend_from_slice(b"* LIST () \"/\" ");
            encode::astring(out, mailbox_name::encode(&name, true).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let mut sel = Selected {
            folder_id: folder.id,
            read_only,
            view,
            saved: Vec::new(),
        };
        if let Some(q) = qresync
            && q.uidvalidity == sel.view.uidvalidity
            && let Err(e) = self.qresync(session, &mut sel, &q).await
        {
            return server_bug(e);
        }
        log_select(
            self.user.as_ref().map_or("", |u| u.address.as_str()),
            &name,
            sel.view.len(),
        );
        self.selected = Some(sel);
        self.dirty = false;
        session.select(read_only);
        if read_only {
            ok_code("READ-ONLY", "EXAMINE completed")
        } else {
            ok_code("READ-WRITE", "SELECT completed")
        }
    }

    /// RFC 7162 §3.2.5: what changed since the client's modseq, VANISHED (EARLIER) first.
    async fn qresync(
        &mut self,
        session: &mut Session,
        sel: &mut Selected,
        q: &cmd::Qresync,
    ) -> golub_store::Result<()> {
        let (folder, since) = (sel.folder_id, q.modseq);
        let changes =
            reads::read(&self.shared.store, move |s| s.changes_since(folder, since)).await?;
        let largest = sel
            .view
            .largest_uid()
            .max(changes.vanished.last().copied().unwrap_or(0));
        let vanished: Vec<u32> = changes
            .vanished
            .iter()
            .copied()
            .filter(|u| {
                q.known_uids
                    .as_ref()
                    .is_none_or(|k| k.contains(*u, largest))
            })
            .collect();
        let out = session.output();
        if !vanished.is_empty() {
            out.extend_from_slice(b"* VANISHED (EARLIER) ");
            write_uid_set(out, &vanished);
            out.extend_from_slice(b"\r\n");
        }
        for c in &changes.changed {
            if let Some(i) = sel.view.index_of(c.uid) {
                write_flags_fetch(out, i + 1, &sel.view.entry(i), true, true);
            }
        }
        Ok(())
    }

    async fn expunge(&mut self, session: &mut Session, uids: Option<SequenceSet>) -> Done {
        if selected_read_only(session) {
            return no(Some("READ-ONLY"), "Mailbox is read-only");
        }
        let report = self.report(session, true);
        let Some(sel) = &mut self.selected else {
            return bad("No mailbox selected");
        };
        let only = uids.map(|set| {
            sel.view
                .resolve(&set, true)
                .into_iter()
                .map(|i| sel.view.uid(i))
                .collect::<Vec<_>>()
        });
        let folder = sel.folder_id;
        match blocking(&self.shared.store, move |s| s.expunge_deleted(folder, only)).await {
            Ok(removed) => {
                sel.view.expunged(&removed, report, session.output());
                if !removed.is_empty() {
                    self.changed();
                }
                ok("EXPUNGE completed")
            }
            Err(e) => server_bug(e),
        }
    }

    async fn fetch(&mut self, session: &mut Session, f: cmd::Fetch) -> Option<Done> {
        let Some(sel) = &self.selected else {
            return Some(bad("No mailbox selected"));
        };
        if !f.uid && !sel.view.valid_seqs(&f.set) {
            return Some(bad("Invalid message sequence number"));
        }
        if f.vanished && !(f.uid && session.enabled().qresync && f.changed_since.is_some()) {
            return Some(bad("VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE"));
        }
        let wants_modseq =
            f.changed_since.is_some() || f.attrs.iter().any(|a| matches!(a, FetchAttr::ModSeq));
        if wants_modseq {
            self.condstore_on(session);
        }
        let sel = self.selected.as_ref()?;
        let mut indexes = sel.view.resolve(&f.set, f.uid);
        if let Some(since) = f.changed_since {
            indexes.retain(|&i| sel.view.modseq(i) > since);
            if f.vanished {
                let folder = sel.folder_id;
                let largest = sel.view.largest_uid();
                let set = f.set.clone();
                match reads::read(&self.shared.store, move |s| s.changes_since(folder, since)).await
                {
                    Ok(c) => {
                        let v: Vec<u32> = c
                            .vanished
                            .into_iter()
                            .filter(|u| set.contains(*u, largest))
                            .collect();
                        if !v.is_empty() {
                            let out = session.output();
                            out.extend_from_slice(b"* VANISHED (EARLIER) ");
                            write_uid_set(out, &v);
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                    Err(e) => return Some(server_bug(e)),
                }
            }
        }
        let sel = self.selected.as_ref()?;
        let uids = indexes.iter().map(|&i| sel.view.uid(i)).collect();
        let job = FetchJob {
            uid: f.uid,
            uids,
            next: 0,
            sets_seen: fetch::sets_seen(&f.attrs) && !sel.read_only,
            content: fetch::needs_content(&f.attrs),
            extra: fetch::Extra {
                uid: f.uid,
                modseq: session.enabled().condstore,
                flags: false,
            },
            whole: whole_message_item(&f.attrs),
            attrs: f.attrs,
            missing: false,
            stream: None,
        };
        self.fetch_more(session, job).await
    }

    /// Answers the next step of a FETCH; `None` when more steps follow.
    pub(super) async fn fetch_more(
        &mut self,
        session: &mut Session,
        mut job: FetchJob,
    ) -> Option<Done> {
        let shared = self.shared;
        if let Some(stream) = job.stream.take() {
            return self.stream_more(session, job, stream).await;
        }
        let sel = self.selected.as_mut()?;
        let folder = sel.folder_id;
        let start = job.next;
        let limit = if job.content || needs_meta(&job.attrs) {
            FETCH_BATCH
        } else {
            FETCH_BATCH_LIGHT
        };
        let end = (start + limit).min(job.uids.len());
        let batch: Vec<u32> = job.uids[start..end].to_vec();
        job.next = end;
        // \Seen first, so that the FLAGS in the answer show it.
        let mut seen_now: Vec<u32> = Vec::new();
        if job.sets_seen {
            let unseen: Vec<u32> = batch
                .iter()
                .copied()
                .filter(|u| {
                    sel.view
                        .index_of(*u)
                        .is_some_and(|i| !sel.view.entry(i).flags.seen())
                })
                .collect();
            if !unseen.is_empty() {
                let r = blocking(&shared.store, move |s| {
                    s.store_flags(
                        folder,
                        unseen,
                        FlagMode::Add,
                        vec!["\\Seen".to_string()],
                        None,
                    )
                })
                .await;
                match r {
                    Ok(outcome) => {
                        for m in &outcome.changed {
                            if let Some(i) = sel.view.index_of(m.uid) {
                                sel.view.set(i, Flags::from_store(&m.flags), m.modseq);
                                seen_now.push(m.uid);
                            }
                        }
                        if !outcome.changed.is_empty() {
                            shared
                                .changes
                                .changed(self.user.as_ref().map_or(-1, |u| u.id));
                        }
                    }
                    Err(e) => return Some(server_bug(e)),
                }
            }
        }
        let sel = self.selected.as_ref()?;
        let want_meta = job.content || needs_meta(&job.attrs);
        let metas: Vec<(MessageMeta, Option<Vec<u8>>)> = if want_meta {
            let wanted = batch.clone();
            let content = job.content;
            // Header items alone (what a message list shows) read header sections only.
            let headers_only = content && !fetch::needs_body(&job.attrs);
            let inline_limit = shared.store.options().inline_body_limit as u64;
            let read = reads::read(&shared.store, move |s| {
                if headers_only {
                    return s.message_headers(folder, &wanted);
                }
                let mut bytes = 0u64;
                read_messages(s, folder, &wanted, |m| {
                    let read = content && m.size <= inline_limit && bytes < FETCH_BATCH_BYTES;
                    if read {
                        bytes += m.size;
                    }
                    read
                })
            })
            .await;
            match read {
                Ok(v) => v,
                Err(e) => return Some(server_bug(e)),
            }
        } else {
            Vec::new()
        };
        let mut metas = metas.into_iter().peekable();
        for (k, uid) in batch.into_iter().enumerate() {
            let Some(i) = sel.view.index_of(uid) else {
                continue;
            };
            let e = sel.view.entry(i);
            let mut msg = fetch::Message {
                seq: i as u32 + 1,
                entry: &e,
                internal_date: 0,
                size: 0,
                content: None,
            };
            let mut body_holder: Option<Vec<u8>> = None;
            if want_meta {
                while metas.peek().is_some_and(|(m, _)| m.uid < uid) {
                    metas.next();
                }
                match metas.peek() {
                    Some((m, _)) if m.uid == uid => {
                        let (m, body) = metas.next()?;
                        msg.internal_date = m.internal_date;
                        msg.size = m.size;
                        if job.content {
                            body_holder = match body {
                                Some(b) => Some(b),
                                None if job.whole.is_some() => {
                                    let extra = fetch::Extra {
                                        flags: seen_now.contains(&uid),
                                        ..job.extra
                                    };
                                    job.next = start + k + 1;
                                    let (seq, entry) = (msg.seq, msg.entry.clone());
                                    let (date, size) = (msg.internal_date, msg.size);
                                    return self
                                        .stream_start(session, job, (seq, entry, date, size), extra)
                                        .await;
                                }
                                // Too large to read with the batch: on its own, off the
                                // reader threads.
                                None => match blocking(&shared.store, move |s| {
                                    s.message_content(folder, uid)
                                })
                                .await
                                {
                                    Ok(b) => Some(b),
                                    Err(_) => {
                                        job.missing = true;
                                        continue;
                                    }
                                },
                            };
                        }
                    }
                    _ => {
                        // Expunged by another session since the view last looked.
                        job.missing = true;
                        continue;
                    }
                }
            }
            msg.content = body_holder.as_deref();
            let extra = fetch::Extra {
                flags: seen_now.contains(&uid),
                ..job.extra
            };
            if fetch::write(session.output(), &msg, &job.attrs, extra).is_err() {
                return Some(no(Some("UNKNOWN-CTE"), "Cannot decode the part's content"));
            }
        }
        if job.next < job.uids.len() {
            self.resume = Some(Resume::Fetch(job));
            session.resume_later();
            return None;
        }
        Some(if job.missing {
            no(
                Some("EXPUNGEISSUED"),
                "Some of the requested messages no longer exist",
            )
        } else {
            ok("FETCH completed")
        })
    }

    /// Starts streaming a large message: its FETCH response up to the literal's
    /// announcement now, the octets in steps.
    async fn stream_start(
        &mut self,
        session: &mut Session,
        mut job: FetchJob,
        (seq, entry, internal_date, size): (u32, golub_imap::view::Entry, i64, u64),
        extra: fetch::Extra,
    ) -> Option<Done> {
        let item = job.whole?;
        let msg = fetch::Message {
            seq,
            entry: &entry,
            internal_date,
            size,
            content: None,
        };
        let (folder, uid) = (self.selected.as_ref()?.folder_id, entry.uid);
        let meta: Vec<FetchAttr> = job
            .attrs
            .iter()
            .filter(|a| !matches!(a, FetchAttr::Rfc822 | FetchAttr::BodySection { .. }))
            .cloned()
            .collect();
        let mut head = Vec::new();
        // Metadata items never fail.
        let _ = fetch::write(&mut head, &msg, &meta, extra);
        let opened = blocking(&self.shared.store, move |s| s.open_message(folder, uid)).await;
        let reader = match opened {
            Ok(Some(r)) => r,
            Ok(None) => {
                job.missing = true;
                return self.fetch_continue(session, job);
            }
            Err(e) => return Some(server_bug(e)),
        };
        head.truncate(head.len().saturating_sub(3));
        if !head.ends_with(b"(") {
            head.push(b' ');
        }
        head.extend_from_slice(item.as_bytes());
        head.push(b' ');
        let left = reader.size();
        encode::literal_header(&mut head, left);
        session.output().extend_from_slice(&head);
        self.stream_more(session, job, Stream { reader, left })
            .await
    }

    /// Writes the next part of a streamed message.
    async fn stream_more(
        &mut self,
        session: &mut Session,
        mut job: FetchJob,
        stream: Stream,
    ) -> Option<Done> {
        let Stream { mut reader, left } = stream;
        let want = (left as usize).min(STREAM_CHUNK);
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = vec![0u8; want];
            let mut got = 0;
            while got < want {
                match reader.read(&mut buf[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            buf.truncate(got);
            (reader, buf)
        })
        .await;
        let Ok((reader, mut buf)) = read else {
            return Some(server_bug(golub_store::Error::Internal(
                "a message read stopped".into(),
            )));
        };
        if buf.len() < want {
            // The literal's length is promised: keep the protocol in step.
            tracing::warn!("imap: a streamed message ended early");
            buf.resize(want, b' ');
        }
        session.output().extend_from_slice(&buf);
        let left = left - want as u64;
        if left > 0 {
            job.stream = Some(Stream { reader, left });
        } else {
            session.output().extend_from_slice(b")\r\n");
        }
        self.fetch_continue(session, job)
    }

    /// Goes on with the FETCH in the next step, or ends it.
    fn fetch_continue(&mut self, session: &mut Session, job: FetchJob) -> Option<Done> {
        if job.stream.is_some() || job.next < job.uids.len() {
            self.resume = Some(Resume::Fetch(job));
            session.resume_later();
            return None;
        }
        Some(if job.missing {
            no(
                Some("EXPUNGEISSUED"),
                "Some of the requested messages no longer exist",
            )
        } else {
            ok("FETCH completed")
        })
    }

    async fn store(&mut self, session: &mut Session, st: cmd::Store) -> Done {
        if selected_read_only(session) {
            return no(Some("READ-ONLY"), "Mailbox is read-only");
        }
        if st.unchanged_since.is_some() {
            self.condstore_on(session);
        }
        let condstore = session.enabled().condstore;
        let shared = self.shared;
        let Some(sel) = &mut self.selected else {
            return bad("No mailbox selected");
        };
        if !st.uid && !sel.view.valid_seqs(&st.set) {
            return bad("Invalid message sequence number");
        }
        let indexes = sel.view.resolve(&st.set, st.uid);
        let uids: Vec<u32> = indexes.iter().map(|&i| sel.view.uid(i)).collect();
        let folder = sel.folder_id;
        let mode = match st.mode {
            StoreMode::Replace => FlagMode::Replace,
            StoreMode::Add => FlagMode::Add,
            StoreMode::Remove => FlagMode::Remove,
        };
        let flags = st.flags.clone();
        let unchanged_since = st.unchanged_since;
        let outcome = match blocking(&shared.store, move |s| {
            s.store_flags(folder, uids, mode, flags, unchanged_since)
        })
        .await
        {
            Ok(o) => o,
            Err(e) => return server_bug(e),
        };
        for m in &outcome.changed {
            if let Some(i) = sel.view.index_of(m.uid) {
                let flags = Flags::from_store(&m.flags);
                sel.view.announce(&flags, session.output());
                sel.view.set(i, flags, m.modseq);
            }
        }
        if !outcome.changed.is_empty() {
            shared
                .changes
                .changed(self.user.as_ref().map_or(-1, |u| u.id));
        }
        let out = session.output();
        for &i in &indexes {
            let e = sel.view.entry(i);
            let changed = outcome.changed.iter().any(|m| m.uid == e.uid);
            let failed = outcome.modified.contains(&e.uid);
            // RFC 7162 §3.1.3: with UNCHANGEDSINCE, a silent store still reports the
            // new MODSEQ of what changed.
            if failed || (st.silent && !(changed && unchanged_since.is_some())) {
                continue;
            }
            write_flags_fetch(out, i + 1, &e, condstore, st.uid);
        }
        if outcome.modified.is_empty() {
            ok("STORE completed")
        } else {
            let mut numbers: Vec<u32> = if st.uid {
                outcome.modified.clone()
            } else {
                outcome
                    .modified
                    .iter()
                    .filter_map(|u| sel.view.index_of(*u).map(|i| i as u32 + 1))
                    .collect()
            };
            numbers.sort_unstable();
            let mut set = Vec::new();
            write_uid_set(&mut set, &numbers);
            let code = format!("MODIFIED {}", String::from_utf8_lossy(&set));
            ok_code(&code, "Conditional STORE failed for some messages")
        }
    }

    async fn search(&mut self, session: &mut Session, s: cmd::Search) -> Done {
        if let Some(c) = &s.charset
            && c != "US-ASCII"
            && c != "UTF-8"
        {
            return no(Some("BADCHARSET (US-ASCII UTF-8)"), "Unsupported charset");
        }
        let shared = self.shared;
        let Some(sel) = &mut self.selected else {
            return bad("No mailbox selected");
        };
        let ctx_saved = sel.saved.clone();
        let ctx = search::Context {
            messages: sel.view.len() as u32,
            largest_uid: sel.view.largest_uid(),
            saved: &ctx_saved,
        };
        let needs_content = search::needs_content(&s.keys);
        // Keys on headers alone are answered from the header sections, without bodies.
        let headers_only = needs_content && !search::needs_body(&s.keys);
        // ... and keys on the fields the store keeps apart, from those alone.
        let summary_only = headers_only
            && search::header_fields(&s.keys).iter().all(|name| {
                golub_store::SUMMARY_FIELDS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(name))
            });
        let needs_meta = needs_content || keys_need_meta(&s.keys);
        let folder = sel.folder_id;
        let mut hits: Vec<usize> = Vec::new();
        if needs_meta {
            let uids: Vec<u32> = sel.view.uids().to_vec();
            for chunk in uids.chunks(if headers_only { 2048 } else { 256 }) {
                let wanted = chunk.to_vec();
                let read = reads::read(&shared.store, move |st| {
                    if headers_only {
                        let mut out = if summary_only {
                            st.message_summaries(folder, &wanted)?
                        } else {
                            st.message_headers(folder, &wanted)?
                        };
                        let unknown: Vec<u32> = out
                            .iter()
                            .filter(|(_, h)| h.is_none())
                            .map(|(m, _)| m.uid)
                            .collect();
                        if summary_only && !unknown.is_empty() {
                            let mut headers = st.message_headers(folder, &unknown)?.into_iter();
                            for (m, header) in &mut out {
                                if header.is_none()
                                    && let Some((_, h)) = headers.find(|(h, _)| h.uid == m.uid)
                                {
                                    *header = h;
                                }
                            }
                        }
                        for (m, header) in &mut out {
                            if header.is_none() {
                                match st.message_content(folder, m.uid) {
                                    Ok(b) => *header = Some(b),
                                    Err(golub_store::Error::NotFound(_)) => {}
                                    Err(e) => return Err(e),
                                }
                            }
                        }
                        return Ok(out);
                    }
                    read_messages(st, folder, &wanted, |_| needs_content)
                })
                .await;
                let metas = match read {
                    Ok(v) => v,
                    Err(e) => return server_bug(e),
                };
                for (m, body) in &metas {
                    let Some(i) = sel.view.index_of(m.uid) else {
                        continue;
                    };
                    let c = search::Candidate {
                        seq: i as u32 + 1,
                        entry: &sel.view.entry(i),
                        internal_date: m.internal_date,
                        size: m.size,
                        content: body.as_deref(),
                    };
                    if search::matches(&s.keys, &c, &ctx) {
                        hits.push(i);
                    }
                }
            }
        } else {
            for i in 0..sel.view.len() {
                let c = search::Candidate {
                    seq: i as u32 + 1,
                    entry: &sel.view.entry(i),
                    internal_date: 0,
                    size: 0,
                    content: None,
                };
                if search::matches(&s.keys, &c, &ctx) {
                    hits.push(i);
                }
            }
        }
        let numbers: Vec<u32> = hits
            .iter()
            .map(|&i| if s.uid { sel.view.uid(i) } else { i as u32 + 1 })
            .collect();
        // RFC 7162 §3.1.5: the highest modseq of the messages returned; with only MIN
        // and/or MAX, of those messages (RFC 4731 §3.2).
        let reported: Vec<usize> = match &s.returns {
            Some(r)
                if !r.is_empty()
                    && r.iter()
                        .all(|x| matches!(x, SearchReturn::Min | SearchReturn::Max)) =>
            {
                let mut v = Vec::new();
                if r.contains(&SearchReturn::Min) {
                    v.extend(hits.first().copied());
                }
                if r.contains(&SearchReturn::Max) {
                    v.extend(hits.last().copied());
                }
                v
            }
            _ => hits.clone(),
        };
        let modseq = search::uses_modseq(&s.keys).then(|| {
            reported
                .iter()
                .map(|&i| sel.view.modseq(i))
                .max()
                .unwrap_or(0)
        });
        if modseq.is_some() && session.enable_condstore() {
            let line = format!(
                "* OK [HIGHESTMODSEQ {}] Highest\r\n",
                sel.view.highestmodseq
            );
            session.output().extend_from_slice(line.as_bytes());
        }
        let tag = session.current_tag().unwrap_or("*").to_string();
        match &s.returns {
            // RFC 9051 §7.3.4: IMAP4rev2 has no SEARCH response; without RETURN, ESEARCH
            // answers with ALL.
            None if session.enabled().imap4rev2 => {
                search::write_esearch(session.output(), &tag, s.uid, &[], &numbers, modseq)
            }
            None => search::write_search(session.output(), &numbers, modseq),
            Some(returns) => {
                if returns.contains(&SearchReturn::Save) {
                    sel.saved = hits.iter().map(|&i| sel.view.uid(i)).collect();
                }
                let only_save =
                    !returns.is_empty() && returns.iter().all(|r| *r == SearchReturn::Save);
                if !only_save {
                    search::write_esearch(session.output(), &tag, s.uid, returns, &numbers, modseq);
                }
            }
        }
        ok("SEARCH completed")
    }

    async fn copy(
        &mut self,
        session: &mut Session,
        uid: bool,
        set: &SequenceSet,
        raw: &[u8],
        moving: bool,
    ) -> Done {
        if moving && selected_read_only(session) {
            return no(Some("READ-ONLY"), "Mailbox is read-only");
        }
        let report = self.report(session, true);
        let Some(name) = self.folder_name(session, raw) else {
            return no(Some("TRYCREATE"), "No such mailbox");
        };
        let user = self.user_id();
        let shared = self.shared;
        let Some(sel) = &mut self.selected else {
            return bad("No mailbox selected");
        };
        if !uid && !sel.view.valid_seqs(set) {
            return bad("Invalid message sequence number");
        }
        let uids: Vec<u32> = sel
            .view
            .resolve(set, uid)
            .into_iter()
            .map(|i| sel.view.uid(i))
            .collect();
        let src = sel.folder_id;
        let dst = match reads::read(&shared.store, move |s| s.folder(user, &name)).await {
            Ok(Some(f)) => f,
            Ok(None) => return no(Some("TRYCREATE"), "No such mailbox"),
            Err(e) => return server_bug(e),
        };
        if uids.is_empty() {
            return ok(if moving {
                "MOVE completed"
            } else {
                "COPY completed"
            });
        }
        let dst_id = dst.id;
        let result = blocking(&shared.store, move |s| {
            if moving {
                s.move_messages(src, uids, dst_id)
            } else {
                s.copy_messages(src, uids, dst_id)
            }
        })
        .await;
        let outcome = match result {
            Ok(o) => o,
            Err(e) => return server_bug(e),
        };
        shared.changes.changed(user);
        let mut from = Vec::new();
        let mut to = Vec::new();
        let src_uids: Vec<u32> = outcome.pairs.iter().map(|p| p.0).collect();
        let dst_uids: Vec<u32> = outcome.pairs.iter().map(|p| p.1).collect();
        write_uid_set(&mut from, &src_uids);
        write_uid_set(&mut to, &dst_uids);
        let code = format!(
            "COPYUID {} {} {}",
            outcome.uidvalidity,
            String::from_utf8_lossy(&from),
            String::from_utf8_lossy(&to)
        );
        if moving {
            // RFC 6851 §4.3: COPYUID in an untagged OK before the expunges.
            let out = session.output();
            out.extend_from_slice(format!("* OK [{code}] Moved\r\n").as_bytes());
            sel.view.expunged(&src_uids, report, session.output());
            ok("MOVE completed")
        } else {
            ok_code(&code, "COPY completed")
        }
    }

    async fn append(
        &mut self,
        session: &mut Session,
        raw: &[u8],
        flags: Vec<String>,
        date: Option<i64>,
        message: Vec<u8>,
    ) -> Done {
        let Some(name) = self.folder_name(session, raw) else {
            return no(Some("TRYCREATE"), "No such mailbox");
        };
        if message.is_empty() {
            return no(None, "Empty message");
        }
        let user = self.user_id();
        let shared = self.shared;
        let folder = match reads::read(&shared.store, move |s| s.folder(user, &name)).await {
            Ok(Some(f)) => f,
            Ok(None) => return no(Some("TRYCREATE"), "No such mailbox"),
            Err(e) => return server_bug(e),
        };
        let date = date.unwrap_or_else(golub_store::unix_now);
        let folder_id = folder.id;
        // Binary parts holding NUL are kept as base64 (RFC 3516 §4.4).
        let message = golub_imap::mime::encode_binary_parts(&message).unwrap_or(message);
        let result = blocking(&shared.store, move |s| {
            let body = s.prepare_body(message)?;
            s.append_message(folder_id, body, flags, date)
        })
        .await;
        match result {
            Ok((uidvalidity, uid)) => {
                shared.changes.changed(user);
                ok_code(
                    &format!("APPENDUID {uidvalidity} {uid}"),
                    "APPEND completed",
                )
            }
            Err(e) => server_bug(e),
        }
    }
}

/// A streamed APPEND: the message goes straight into a body file as it arrives.
pub(crate) struct AppendJob {
    folder_id: i64,
    flags: Vec<String>,
    date: i64,
    size: u64,
    writer: golub_store::BlobWriter,
    /// A write failed: the rest is dropped and the APPEND fails.
    failed: bool,
}

impl Driver<'_> {
    /// A streamed APPEND announced its message: check the mailbox, open a body file.
    pub(super) async fn append_start(
        &mut self,
        session: &mut Session,
        raw: &[u8],
        flags: Vec<String>,
        date: Option<i64>,
        size: u64,
    ) {
        self.append = None;
        let Some(name) = self.folder_name(session, raw) else {
            return session.append_refuse(
                golub_imap::Status::No,
                Some("TRYCREATE"),
                "No such mailbox",
            );
        };
        let user = self.user_id();
        let opened = blocking(&self.shared.store, move |s| {
            let Some(folder) = s.folder(user, &name)? else {
                return Ok(None);
            };
            Ok(Some((folder.id, s.create_body()?)))
        })
        .await;
        match opened {
            Ok(Some((folder_id, writer))) => {
                self.append = Some(AppendJob {
                    folder_id,
                    flags,
                    date: date.unwrap_or_else(golub_store::unix_now),
                    size,
                    writer,
                    failed: false,
                });
                session.append_accept();
            }
            Ok(None) => {
                session.append_refuse(golub_imap::Status::No, Some("TRYCREATE"), "No such mailbox")
            }
            Err(e) => {
                let (status, code, text) = server_bug(e);
                session.append_refuse(status, code.as_deref(), &text);
            }
        }
    }

    /// The next octets of a streamed APPEND, written as they come (the file is synced
    /// once, at the end).
    pub(super) fn append_data(&mut self, data: &[u8]) {
        if let Some(job) = &mut self.append
            && !job.failed
            && let Err(e) = job.writer.write(data)
        {
            tracing::warn!(error = %e, "imap: cannot write an appended message");
            job.failed = true;
        }
    }

    /// The streamed message is complete: store it.
    pub(super) async fn append_end(&mut self, ok: bool) -> Done {
        let Some(job) = self.append.take() else {
            return bad("No APPEND in progress");
        };
        if !ok {
            return bad("Unexpected data after the message");
        }
        if job.failed || job.writer.size() != job.size {
            return no(Some("SERVERBUG"), "The message could not be stored");
        }
        let user = self.user_id();
        let AppendJob {
            folder_id,
            flags,
            date,
            writer,
            ..
        } = job;
        let result = blocking(&self.shared.store, move |s| {
            let body = writer.finish()?;
            s.append_message(folder_id, body, flags, date)
        })
        .await;
        match result {
            Ok((uidvalidity, uid)) => {
                self.shared.changes.changed(user);
                ok_code(
                    &format!("APPENDUID {uidvalidity} {uid}"),
                    "APPEND completed",
                )
            }
            Err(e) => server_bug(e),
        }
    }
}

/// The metadata of the messages `uids` (ascending) with the content of those `content`
/// picks. A message expunged between the two reads is left out.
fn read_messages(
    store: &golub_store::Store,
    folder: i64,
    uids: &[u32],
    mut content: impl FnMut(&MessageMeta) -> bool,
) -> golub_store::Result<Vec<(MessageMeta, Option<Vec<u8>>)>> {
    let metas = store.message_meta(folder, uids)?;
    let mut out = Vec::with_capacity(metas.len());
    for m in metas {
        let body = if content(&m) {
            match store.message_content(folder, m.uid) {
                Ok(b) => Some(b),
                Err(golub_store::Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        out.push((m, body));
    }
    Ok(out)
}

pub(super) fn ok_code(code: &str, text: &str) -> Done {
    (
        golub_imap::Status::Ok,
        Some(code.to_string()),
        text.to_string(),
    )
}

/// Whether FETCH items need the size or date of each message.
fn needs_meta(attrs: &[FetchAttr]) -> bool {
    attrs
        .iter()
        .any(|a| matches!(a, FetchAttr::InternalDate | FetchAttr::Rfc822Size))
}

/// Whether search keys need the size or internal date of each message.
fn keys_need_meta(keys: &[cmd::SearchKey]) -> bool {
    use cmd::SearchKey::*;
    keys.iter().any(|k| match k {
        Before(_) | On(_) | Since(_) | Larger(_) | Smaller(_) => true,
        Not(k) => keys_need_meta(std::slice::from_ref(k)),
        Or(a, b) => {
            keys_need_meta(std::slice::from_ref(a)) || keys_need_meta(std::slice::from_ref(b))
        }
        And(keys) => keys_need_meta(keys),
        _ => false,
    })
}
