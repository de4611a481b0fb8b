//! What each command does to the session (RFC 5321 §4.1.1, §4.1.4 for the order).

use golub_types::{ForwardPath, MessageDsn, RcptDsn};

use super::{Event, Greeting, Pending, Phase, Refusal, Session, Transaction, reply};
use crate::body::{ChunkDecoder, DataDecoder};
use crate::codec::command::{BodyType, Command, MailKind, MailParams, RcptParams};

impl Session {
    /// Parses and runs one framed command line (without its CRLF).
    pub(super) fn handle_line(&mut self, line: &str) {
        let smtputf8 = self.transaction.as_ref().is_some_and(|tx| tx.smtputf8);
        match Command::parse(line, smtputf8) {
            Ok(command) => self.handle_command(command),
            Err(e) => self.send(reply::reply_for(&e)),
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Helo { name } => self.hello(name, false),
            Command::Ehlo { name } => self.hello(name, true),
            Command::Mail {
                kind,
                reverse_path,
                params,
            } => self.mail(kind, reverse_path, params),
            Command::Rcpt {
                forward_path,
                params,
            } => self.rcpt(forward_path, params),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                // RFC 5321 §4.1.1.5: abort the transaction, keep the greeting.
                self.drop_transaction();
                self.send(reply::ok());
            }
            Command::Noop => self.send(reply::ok()),
            Command::Quit => {
                self.send(reply::bye());
                self.close();
            }
            Command::Help { topic } => self.send(reply::help(topic.as_deref())),
            Command::Vrfy { query } => {
                self.verify(self.config.vrfy_enabled, Event::Vrfy { query });
            }
            Command::Expn { list } => {
                self.verify(self.config.expn_enabled, Event::Expn { list });
            }
            Command::StartTls => self.starttls(),
            Command::Etrn { node } => self.etrn(node),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(&mechanism, initial_response),
        }
    }

    /// HELO/EHLO: RFC 5321 §4.1.4 says it resets the state like RSET. A successful AUTH
    /// stays: RFC 4954 §4 refuses any further AUTH, so it lasts the session (or until
    /// STARTTLS resets the session).
    fn hello(&mut self, name: String, extended: bool) {
        self.drop_transaction();
        let r = if extended {
            let mut keywords = Vec::new();
            if self.starttls_offered() {
                keywords.push("STARTTLS".to_string());
            }
            if self.auth_offered() {
                keywords.push(self.auth_keyword());
            }
            if self.config.etrn_enabled {
                keywords.push("ETRN".to_string());
            }
            let c = &self.config;
            keywords.extend(c.extra_ehlo.iter().cloned());
            reply::ehlo(&c.hostname, &name, c.max_message_size, &keywords)
        } else {
            reply::helo(&self.config.hostname)
        };
        self.greeting = Some(Greeting {
            name: name.clone(),
            extended,
        });
        self.events.push_back(Event::Greeted { name, extended });
        self.send(r);
    }

    fn mail(&mut self, kind: MailKind, reverse_path: golub_types::ReversePath, params: MailParams) {
        let Some(greeting) = &self.greeting else {
            return self.send(reply::need_helo());
        };
        if self.transaction.is_some() {
            return self.send(reply::nested_mail());
        }
        // RFC 5321 §4.1.1.11: parameters only for extensions announced by EHLO.
        if params.any() && !greeting.extended {
            return self.send(reply::params_need_ehlo());
        }
        if params.auth.is_some() && !self.auth_offered() {
            return self.send(reply::unknown_parameter());
        }
        // RFC 4954 §6, RFC 6409 §4.3: submission wants AUTH before MAIL.
        if self.config.auth_required && self.authenticated.is_none() {
            return self.send(reply::auth_required());
        }
        // RFC 1870 §6.1: refuse a declared size over the limit at once.
        if params
            .size
            .is_some_and(|n| n > self.config.max_message_size as u64)
        {
            return self.send(reply::too_large());
        }
        let eight_bit = params.body == Some(BodyType::EightBitMime);
        self.events.push_back(Event::MailFrom {
            reverse_path: reverse_path.clone(),
            kind,
            size: params.size,
            smtputf8: params.smtputf8,
            eight_bit,
        });
        self.pending = Some(Pending::Mail(Transaction {
            reverse_path,
            kind,
            smtputf8: params.smtputf8,
            eight_bit,
            dsn: MessageDsn {
                ret: params.ret,
                envid: params.envid,
            },
            forward_paths: Vec::new(),
            rcpt_dsn: Vec::new(),
            chunked: false,
            started: false,
            size: 0,
            body: Vec::new(),
        }));
    }

    fn rcpt(&mut self, forward_path: ForwardPath, params: RcptParams) {
        let Some(tx) = &self.transaction else {
            return self.send(reply::need_mail());
        };
        // RFC 5321 §4.1.1.11: parameters only for extensions announced by EHLO.
        if params.any() && !self.greeting.as_ref().is_some_and(|g| g.extended) {
            return self.send(reply::params_need_ehlo());
        }
        if tx.kind == MailKind::Send {
            return self.send(reply::not_at_terminal());
        }
        // RFC 5321 §4.5.3.1.10: 452 for recipients over the limit; the client retries.
        if tx.forward_paths.len() >= self.config.max_recipients {
            return self.send(reply::too_many_recipients());
        }
        self.events.push_back(Event::RcptTo {
            forward_path: forward_path.clone(),
        });
        let dsn = RcptDsn {
            notify: params.notify,
            orcpt: params.orcpt,
        };
        self.pending = Some(Pending::Rcpt(forward_path, dsn));
    }

    fn data(&mut self) {
        let Some(tx) = &self.transaction else {
            return self.send(reply::need_mail());
        };
        if tx.chunked {
            return self.send(reply::data_after_bdat());
        }
        // RFC 5321 §3.3: 554 when no recipient was accepted.
        if tx.forward_paths.is_empty() {
            return self.send(reply::no_recipients());
        }
        self.phase = Phase::Data(DataDecoder::new(
            self.config.max_message_size,
            self.config.max_text_line,
        ));
        self.send(reply::start_data());
        self.message_started();
    }

    /// RFC 3030 §2: the chunk's octets follow the command line whatever its reply will
    /// be, so they are always consumed.
    fn bdat(&mut self, size: u64, last: bool) {
        let max = self.config.max_message_size as u64;
        let refusal = match &mut self.transaction {
            None => Some(Refusal {
                reply: reply::need_mail(),
                reset: false,
            }),
            Some(tx) if tx.forward_paths.is_empty() => Some(Refusal {
                reply: reply::no_recipients(),
                reset: false,
            }),
            Some(tx) if tx.size.saturating_add(size) > max => Some(Refusal {
                reply: reply::too_large(),
                reset: true,
            }),
            Some(tx) => {
                tx.chunked = true;
                None
            }
        };
        if refusal.is_none() && self.transaction.as_ref().is_some_and(|tx| !tx.started) {
            self.message_started();
        }
        self.phase = Phase::Chunk {
            decoder: ChunkDecoder::new(size),
            size,
            last,
            refusal,
        };
    }

    /// VRFY and EXPN: ask the driver when enabled, else 252 (RFC 5321 §3.5.3).
    fn verify(&mut self, enabled: bool, event: Event) {
        if enabled {
            self.events.push_back(event);
            self.pending = Some(Pending::Verify);
        } else {
            self.send(reply::cannot_verify());
        }
    }

    /// ETRN (RFC 1985): after the greeting and outside a transaction, from a client
    /// that may; the driver starts the queue run for the domain.
    fn etrn(&mut self, node: String) {
        if self.greeting.is_none() {
            return self.send(reply::need_helo());
        }
        if self.transaction.is_some() {
            return self.send(reply::etrn_in_transaction());
        }
        if !self.config.etrn_enabled {
            return self.send(reply::etrn_not_allowed(&node));
        }
        // RFC 1985 §3: "#" names a queue, which we do not keep apart from the rest.
        if node.starts_with('#') {
            return self.send(reply::etrn_unable(&node));
        }
        let name = node.strip_prefix('@').unwrap_or(&node);
        match golub_types::Domain::parse(name, false) {
            Ok(d) if d.is_literal() => self.send(reply::etrn_unable(&node)),
            Ok(d) => {
                self.events.push_back(Event::EtrnRequested {
                    domain: d.as_str().to_ascii_lowercase(),
                });
                self.pending = Some(Pending::Etrn);
            }
            Err(_) => self.send(reply::etrn_bad_node()),
        }
    }
}
