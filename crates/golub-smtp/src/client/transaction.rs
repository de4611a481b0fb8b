//! One mail transaction of the client (RFC 5321 §3.3): MAIL, RCPT, DATA and the final
//! reply, pipelined when the server offers PIPELINING (RFC 2920), and the outcome of each
//! recipient. The session (`mod.rs`) decides when a transaction starts and how the
//! connection ends.

use golub_types::{EnhancedCode, Envelope, Reply};

use super::{
    ClientEvent, ClientSession, DotStuffer, Expect, Outcome, Phase, Submitted, Transaction, local,
};

impl ClientSession {
    pub(super) fn mail_replied(&mut self, reply: Reply) {
        let Some(tx) = &mut self.current else {
            return;
        };
        let outcome = Outcome::of(reply);
        let accepted = outcome.is_accepted();
        tx.mail = Some(outcome);
        if accepted {
            self.needs_rset = true;
        }
        if self.extensions.pipelining {
            // RCPT and DATA are already on their way; their replies end it.
            return;
        }
        if accepted {
            self.next_command();
        } else {
            self.end_failed_transaction();
        }
    }

    pub(super) fn rcpt_replied(&mut self, index: usize, reply: Reply) {
        let Some(tx) = &mut self.current else {
            return;
        };
        let last = index + 1 == tx.rcpts.len();
        if !tx.mail.as_ref().is_some_and(Outcome::is_accepted) {
            // Pipelined after a refused MAIL: the MAIL reply decides for everyone.
            if last && tx.bdat {
                // No DATA was pipelined to end it.
                self.end_failed_transaction();
            }
            return;
        }
        let outcome = Outcome::of(reply);
        if let Some(slot) = tx.rcpts.get_mut(index) {
            *slot = Some(outcome.clone());
        }
        let id = tx.msg.id;
        self.events
            .push_back(ClientEvent::RecipientReplied { id, index, outcome });
        if !self.extensions.pipelining {
            self.next_command();
        } else if last && self.current.as_ref().is_some_and(|tx| tx.bdat) {
            self.start_bdat();
        }
    }

    /// Every RCPT is answered: the content goes as BDAT chunks if anyone took it.
    fn start_bdat(&mut self) {
        let Some(tx) = &mut self.current else {
            return;
        };
        if tx.any_accepted() {
            tx.data_sent = true;
            tx.encoder = Some(DotStuffer::for_bdat());
            self.phase = Phase::Body;
            let id = tx.msg.id;
            self.events.push_back(ClientEvent::BodyRequested { id });
        } else {
            self.end_failed_transaction();
        }
    }

    /// A BDAT chunk before the last was answered; a refusal decides the message (the
    /// chunks after it are refused too, RFC 3030 §4.2).
    pub(super) fn bdat_replied(&mut self, reply: Reply) {
        let Some(tx) = &mut self.current else {
            return;
        };
        if !(200..300).contains(&reply.code) && tx.bdat_failed.is_none() {
            tx.bdat_failed = Some(Outcome::of(reply));
        }
    }

    /// Without PIPELINING: the next RCPT, or DATA when some recipient was accepted.
    pub(super) fn next_command(&mut self) {
        let Some(tx) = &mut self.current else {
            return;
        };
        if tx.next_rcpt < tx.msg.envelope.forward_paths.len() {
            let i = tx.next_rcpt;
            let line = rcpt_line(
                &tx.msg.envelope,
                i,
                &tx.msg.envelope.forward_paths[i],
                self.extensions.dsn,
            );
            let expect = Expect::Rcpt(tx.next_rcpt);
            tx.next_rcpt += 1;
            self.command(&line, expect);
        } else if tx.any_accepted() {
            tx.data_sent = true;
            self.command("DATA", Expect::Data);
        } else {
            self.end_failed_transaction();
        }
    }

    pub(super) fn data_replied(&mut self, reply: Reply) {
        let Some(tx) = &mut self.current else {
            return;
        };
        let wanted = tx.mail.as_ref().is_some_and(Outcome::is_accepted) && tx.any_accepted();
        if reply.code == 354 {
            if wanted {
                tx.encoder = Some(DotStuffer::new());
                self.phase = Phase::Body;
                let id = tx.msg.id;
                self.events.push_back(ClientEvent::BodyRequested { id });
            } else {
                // RFC 2920 §3.1: an empty message ends what the server started.
                self.output.extend_from_slice(b".\r\n");
                self.expect.push_back(Expect::DotIgnored);
            }
            return;
        }
        if reply.code < 400 {
            self.fail(local(
                421,
                EnhancedCode(4, 5, 0),
                "unexpected reply to DATA",
            ));
        } else if wanted {
            self.finish(Outcome::of(reply));
        } else {
            self.end_failed_transaction();
        }
    }

    pub(super) fn dot_replied(&mut self, reply: Reply) {
        self.needs_rset = false;
        let failed = self.current.as_mut().and_then(|tx| tx.bdat_failed.take());
        self.finish(failed.unwrap_or_else(|| Outcome::of(reply)));
    }

    /// The transaction ended without content: MAIL refused, or no recipient accepted.
    pub(super) fn end_failed_transaction(&mut self) {
        let Some(tx) = &mut self.current else {
            return;
        };
        if tx.mail.as_ref().is_some_and(|o| !o.is_accepted()) {
            tx.rcpts.iter_mut().for_each(|o| *o = None);
        }
        let outcome = match &tx.mail {
            Some(o) if !o.is_accepted() => o.clone(),
            _ => {
                let refused: Vec<&Outcome> = tx.rcpts.iter().flatten().collect();
                let temporary = refused.iter().find(|o| matches!(o, Outcome::Temporary(_)));
                match temporary.or(refused.last()) {
                    Some(o) => (*o).clone(),
                    None => Outcome::Temporary(local(
                        451,
                        EnhancedCode(4, 5, 0),
                        "transaction ended without a reply",
                    )),
                }
            }
        };
        self.finish(outcome);
    }

    /// The current transaction is over with `outcome` for every recipient that has none.
    pub(super) fn finish(&mut self, outcome: Outcome) {
        let Some(tx) = self.current.take() else {
            return;
        };
        if self.phase == Phase::Body {
            self.phase = Phase::Ready;
        }
        let recipients = tx
            .msg
            .envelope
            .forward_paths
            .iter()
            .zip(tx.rcpts)
            .map(|(path, o)| match o {
                Some(o) if !o.is_accepted() => (path.clone(), o),
                _ => (path.clone(), outcome.clone()),
            })
            .collect::<Vec<_>>();
        self.events.push_back(ClientEvent::MessageCompleted {
            id: tx.msg.id,
            outcome,
            recipients,
        });
        self.pump();
    }

    /// Completes a message that never started a transaction.
    pub(super) fn complete(&mut self, msg: Submitted, outcome: Outcome) {
        let recipients = msg
            .envelope
            .forward_paths
            .iter()
            .map(|p| (p.clone(), outcome.clone()))
            .collect();
        self.events.push_back(ClientEvent::MessageCompleted {
            id: msg.id,
            outcome,
            recipients,
        });
    }

    /// Starts the next transaction, or QUIT, when the session is idle.
    pub(super) fn pump(&mut self) {
        while self.phase == Phase::Ready && self.current.is_none() && self.expect.is_empty() {
            let Some(msg) = self.queue.pop_front() else {
                if self.quit_asked {
                    self.phase = Phase::Quitting;
                    self.command("QUIT", Expect::Quit);
                }
                return;
            };
            if let Some(refusal) = self.refusal(&msg) {
                self.complete(msg, Outcome::Permanent(refusal));
                continue;
            }
            if self.needs_rset {
                // RFC 5321 §4.1.1.5; waits for its reply, as RSET is not always pipelined.
                self.needs_rset = false;
                self.queue.push_front(msg);
                self.command("RSET", Expect::Rset);
                return;
            }
            self.start(msg);
        }
    }

    /// Why a message cannot be sent to this server at all (checked before MAIL).
    pub(super) fn refusal(&self, msg: &Submitted) -> Option<Reply> {
        let env = &msg.envelope;
        if env.forward_paths.is_empty() {
            return Some(local(554, EnhancedCode(5, 5, 1), "no recipients"));
        }
        if needs_smtputf8(env) && !self.extensions.smtputf8 {
            // RFC 6531 §3.2: without SMTPUTF8 the message cannot go as it is.
            return Some(local(
                553,
                EnhancedCode(5, 6, 7),
                "server does not support SMTPUTF8",
            ));
        }
        match (self.extensions.size, msg.size) {
            // RFC 1870 §6: a message over the server's fixed limit is not sent.
            (Some(max), Some(size)) if max > 0 && size > max => Some(local(
                552,
                EnhancedCode(5, 3, 4),
                "message exceeds the server's size limit",
            )),
            _ => None,
        }
    }

    /// MAIL, then (with PIPELINING) every RCPT and DATA in the same flush (RFC 2920 §3.1).
    pub(super) fn start(&mut self, msg: Submitted) {
        let mut line = format!("MAIL FROM:{}", msg.envelope.reverse_path);
        if let (Some(_), Some(size)) = (self.extensions.size, msg.size) {
            line.push_str(&format!(" SIZE={size}"));
        }
        let utf8 = needs_smtputf8(&msg.envelope);
        // RFC 6152 §3: 8-bit content is sent as is when 8BITMIME is not offered, as most
        // MTAs do; there is nothing to convert it with here.
        if (msg.envelope.eight_bit || utf8) && self.extensions.eight_bit_mime {
            line.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            line.push_str(" SMTPUTF8");
        }
        // RFC 3461 §5.2: a server offering DSN gets the sender's requests as they came.
        let dsn = self.extensions.dsn;
        if dsn {
            if let Some(ret) = msg.envelope.dsn.ret {
                line.push_str(&format!(" RET={}", ret.as_str()));
            }
            if let Some(envid) = &msg.envelope.dsn.envid {
                line.push_str(&format!(" ENVID={}", golub_types::dsn::xtext_encode(envid)));
            }
        }
        let n = msg.envelope.forward_paths.len();
        self.current = Some(Transaction {
            msg,
            mail: None,
            rcpts: vec![None; n],
            next_rcpt: 0,
            data_sent: false,
            encoder: None,
            // RFC 3030 §4.2: chunks are pipelined, so only with PIPELINING too.
            bdat: self.extensions.chunking && self.extensions.pipelining,
            bdat_failed: None,
        });
        self.command(&line, Expect::Mail);
        if self.extensions.pipelining
            && let Some(tx) = &mut self.current
        {
            let lines: Vec<String> = tx
                .msg
                .envelope
                .forward_paths
                .iter()
                .enumerate()
                .map(|(i, p)| rcpt_line(&tx.msg.envelope, i, p, dsn))
                .collect();
            tx.next_rcpt = n;
            let bdat = tx.bdat;
            tx.data_sent = !bdat;
            for (i, l) in lines.iter().enumerate() {
                self.command(l, Expect::Rcpt(i));
            }
            if !bdat {
                self.command("DATA", Expect::Data);
            }
        }
    }
}

/// `RCPT TO:` for recipient `i`, with its NOTIFY and ORCPT when the server takes DSN.
fn rcpt_line(env: &Envelope, i: usize, path: &golub_types::ForwardPath, dsn: bool) -> String {
    let mut line = format!("RCPT TO:{path}");
    if dsn {
        let d = env.rcpt_dsn(i);
        if let Some(n) = d.notify {
            line.push_str(&format!(" NOTIFY={n}"));
        }
        if let Some(o) = d.orcpt {
            line.push_str(&format!(" ORCPT={}", o.to_wire()));
        }
    }
    line
}

/// The message has non-ASCII addresses, or its envelope asks for SMTPUTF8.
fn needs_smtputf8(env: &Envelope) -> bool {
    env.smtputf8
        || env.reverse_path.mailbox().is_some_and(|m| m.is_utf8())
        || env
            .forward_paths
            .iter()
            .any(|p| p.mailbox().is_some_and(|m| m.is_utf8()))
}
