//! Parses one SMTP command line (RFC 5321 §4.1) into a [`Command`].
//!
//! The session frames lines first (CRLF, length cap, UTF-8) and hands the line here
//! without its CRLF. Verbs and parameter keywords are case-insensitive (RFC 5321 §2.4);
//! addresses go to `golub_types`, which keeps local parts exactly as sent.

use golub_types::dsn::{self, Notify, Orcpt, Ret};
use golub_types::{ForwardPath, ReversePath};

use crate::error::Error;

/// Which verb opened the mail transaction (RFC 821 §3.4 for SEND, SOML and SAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Mail,
    Send,
    Soml,
    Saml,
}

/// The `BODY=` parameter of MAIL (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    SevenBit,
    EightBitMime,
}

/// The ESMTP parameters we implement on MAIL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870); a number too big for u64 is kept as `u64::MAX`.
    pub size: Option<u64>,
    pub body: Option<BodyType>,
    /// `SMTPUTF8` (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// `AUTH=<>` or `AUTH=xtext` (RFC 4954 §5), as sent; the session ignores it.
    pub auth: Option<String>,
    /// `RET=FULL|HDRS` (RFC 3461 §4.3).
    pub ret: Option<Ret>,
    /// `ENVID=xtext` (RFC 3461 §4.4), decoded.
    pub envid: Option<String>,
}

impl MailParams {
    /// True when any parameter was given (they need EHLO, RFC 5321 §4.1.1.11).
    pub fn any(&self) -> bool {
        self.size.is_some()
            || self.body.is_some()
            || self.smtputf8
            || self.auth.is_some()
            || self.ret.is_some()
            || self.envid.is_some()
    }
}

/// The ESMTP parameters we implement on RCPT: DSN's (RFC 3461 §4.1, §4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// The address decoded.
    pub orcpt: Option<Orcpt>,
}

impl RcptParams {
    /// True when any parameter was given (they need EHLO, RFC 5321 §4.1.1.11).
    pub fn any(&self) -> bool {
        self.notify.is_some() || self.orcpt.is_some()
    }
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo {
        name: String,
    },
    Ehlo {
        name: String,
    },
    Mail {
        kind: MailKind,
        reverse_path: ReversePath,
        params: MailParams,
    },
    Rcpt {
        forward_path: ForwardPath,
        params: RcptParams,
    },
    Data,
    /// `BDAT <size> [LAST]` (RFC 3030 §2).
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Help {
        topic: Option<String>,
    },
    Vrfy {
        query: String,
    },
    Expn {
        list: String,
    },
    /// `STARTTLS` (RFC 3207 §4).
    StartTls,
    /// `ETRN node` (RFC 1985 §3): the node as given (`domain`, `@domain` or `#queue`).
    Etrn {
        node: String,
    },
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4); the response is still base64,
    /// `=` for an empty one.
    Auth {
        mechanism: String,
        initial_response: Option<String>,
    },
}

impl Command {
    /// Parses `line` (without CRLF). `smtputf8` says whether the current transaction was
    /// opened with SMTPUTF8, which decides whether RCPT may carry UTF-8 (RFC 6531 §3.4).
    pub fn parse(line: &str, smtputf8: bool) -> Result<Command, Error> {
        let line = line.trim_end_matches([' ', '\t']);
        let (verb, args) = match line.split_once(' ') {
            Some((verb, args)) => (verb, Some(args)),
            None => (line, None),
        };
        let is = |name: &str| verb.eq_ignore_ascii_case(name);
        if is("HELO") || is("EHLO") {
            let name = args
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .ok_or(Error::Syntax("helo and ehlo need a domain"))?
                .to_string();
            return Ok(if is("HELO") {
                Command::Helo { name }
            } else {
                Command::Ehlo { name }
            });
        }
        let kind = [
            ("MAIL", MailKind::Mail),
            ("SEND", MailKind::Send),
            ("SOML", MailKind::Soml),
            ("SAML", MailKind::Saml),
        ]
        .into_iter()
        .find_map(|(name, kind)| is(name).then_some(kind));
        if let Some(kind) = kind {
            return parse_mail(kind, args.unwrap_or(""));
        }
        if is("RCPT") {
            return parse_rcpt(args.unwrap_or(""), smtputf8);
        }
        if is("BDAT") {
            return parse_bdat(args.unwrap_or(""));
        }
        if is("AUTH") {
            return parse_auth(args.unwrap_or(""));
        }
        let no_args = |cmd: Command| match args {
            None => Ok(cmd),
            Some(_) => Err(Error::Syntax("no arguments allowed")),
        };
        let text = |what: &'static str| {
            args.map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .ok_or(Error::Syntax(what))
        };
        if is("DATA") {
            no_args(Command::Data)
        } else if is("RSET") {
            no_args(Command::Rset)
        } else if is("QUIT") {
            no_args(Command::Quit)
        } else if is("STARTTLS") {
            // RFC 3207 §4: "STARTTLS" with no parameters; 501 otherwise.
            no_args(Command::StartTls)
        } else if is("NOOP") {
            // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
            Ok(Command::Noop)
        } else if is("HELP") {
            let topic = args.map(str::trim).filter(|a| !a.is_empty());
            Ok(Command::Help {
                topic: topic.map(str::to_string),
            })
        } else if is("VRFY") {
            Ok(Command::Vrfy {
                query: text("vrfy needs an argument")?,
            })
        } else if is("EXPN") {
            Ok(Command::Expn {
                list: text("expn needs an argument")?,
            })
        } else if is("ETRN") {
            let node = text("etrn needs a node name")?;
            if node.contains([' ', '\t']) {
                return Err(Error::Syntax("etrn takes one node name"));
            }
            Ok(Command::Etrn { node })
        } else {
            Err(Error::UnknownCommand)
        }
    }
}

/// Strips `keyword:` (case-insensitive) and the space some clients put after the colon.
fn strip_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = &args[keyword.len()..];
    // Postfix tolerates "MAIL FROM: <a@b>"; so do we (one or more spaces).
    Some(rest.trim_start_matches(' '))
}

/// Splits `<path> params` at the `>` that closes the path, skipping quoted strings.
fn split_path(s: &str) -> Option<(&str, &str)> {
    if !s.starts_with('<') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut quoted = false;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some((&s[..=i], &s[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits the text after the path into `keyword[=value]` items.
fn params(rest: &str) -> Result<impl Iterator<Item = (&str, Option<&str>)>, Error> {
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(Error::Syntax("expected a space after the path"));
    }
    Ok(rest
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        }))
}

/// A parameter's value; an error when it has none or was given before.
fn value_once<'a, T>(
    slot: &Option<T>,
    value: Option<&'a str>,
    needs_value: &'static str,
    given_twice: &'static str,
) -> Result<&'a str, Error> {
    let v = value.ok_or(Error::Syntax(needs_value))?;
    if slot.is_some() {
        return Err(Error::Syntax(given_twice));
    }
    Ok(v)
}

fn parse_mail(kind: MailKind, args: &str) -> Result<Command, Error> {
    let rest = strip_keyword(args, "FROM:").ok_or(Error::Syntax("expected from:<address>"))?;
    let (path, rest) = split_path(rest).ok_or(Error::Syntax("expected from:<address>"))?;
    let mut p = MailParams::default();
    for (key, value) in params(rest)? {
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        if is("SIZE") {
            let v = value_once(&p.size, value, "size needs a value", "size given twice")?;
            // RFC 1870 §6: size-value ::= 1*20DIGIT.
            if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::Syntax("bad size value"));
            }
            p.size = Some(v.parse().unwrap_or(u64::MAX));
        } else if is("BODY") {
            let v = value_once(&p.body, value, "body needs a value", "body given twice")?;
            p.body = Some(if v.eq_ignore_ascii_case("7BIT") {
                BodyType::SevenBit
            } else if v.eq_ignore_ascii_case("8BITMIME") {
                BodyType::EightBitMime
            } else {
                return Err(Error::Syntax("body must be 7bit or 8bitmime"));
            });
        } else if is("SMTPUTF8") {
            if value.is_some() || p.smtputf8 {
                return Err(Error::Syntax("smtputf8 takes no value"));
            }
            p.smtputf8 = true;
        } else if is("AUTH") {
            let v = value_once(&p.auth, value, "auth needs a value", "auth given twice")?;
            if v != "<>" && !is_xtext(v) {
                return Err(Error::Syntax("bad auth value"));
            }
            p.auth = Some(v.to_string());
        } else if is("RET") {
            let v = value_once(&p.ret, value, "ret needs a value", "ret given twice")?;
            p.ret = Some(Ret::parse(v).map_err(dsn_syntax)?);
        } else if is("ENVID") {
            let v = value_once(&p.envid, value, "envid needs a value", "envid given twice")?;
            p.envid = Some(dsn::parse_envid(v).map_err(dsn_syntax)?);
        } else {
            return Err(Error::UnknownParameter(key.to_string()));
        }
    }
    let reverse_path = ReversePath::parse(path, p.smtputf8).map_err(Error::BadSender)?;
    Ok(Command::Mail {
        kind,
        reverse_path,
        params: p,
    })
}

/// RFC 3461 §4: `xtext = *( xchar / hexchar )`, where xchar is printable ASCII but "+"
/// and "=", and hexchar is "+" and two upper-case hex digits. Here at least one.
fn is_xtext(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex =
                    |c: Option<&u8>| c.is_some_and(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'));
                if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                    return false;
                }
                i += 3;
            }
            b'!'..=b'~' if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    !b.is_empty()
}

/// `AUTH mechanism [initial-response]` (RFC 4954 §4). The mechanism name is at most 20
/// upper-case letters, digits, "-" and "_" (RFC 4422 §3.1); we take it case-insensitively.
fn parse_auth(args: &str) -> Result<Command, Error> {
    let mut words = args.split(' ');
    let mechanism = words
        .next()
        .filter(|m| {
            !m.is_empty()
                && m.len() <= 20
                && m.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or(Error::Syntax("auth needs a mechanism"))?
        .to_ascii_uppercase();
    let initial_response = match words.next() {
        None => None,
        Some("") => return Err(Error::Syntax("expected one space before the response")),
        Some(r) => Some(r.to_string()),
    };
    if words.next().is_some() {
        return Err(Error::Syntax("too many arguments to auth"));
    }
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

fn parse_rcpt(args: &str, smtputf8: bool) -> Result<Command, Error> {
    let rest = strip_keyword(args, "TO:").ok_or(Error::Syntax("expected to:<address>"))?;
    let (path, rest) = split_path(rest).ok_or(Error::Syntax("expected to:<address>"))?;
    let mut p = RcptParams::default();
    for (key, value) in params(rest)? {
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        if is("NOTIFY") {
            let v = value_once(
                &p.notify,
                value,
                "notify needs a value",
                "notify given twice",
            )?;
            p.notify = Some(Notify::parse(v).map_err(dsn_syntax)?);
        } else if is("ORCPT") {
            let v = value_once(&p.orcpt, value, "orcpt needs a value", "orcpt given twice")?;
            p.orcpt = Some(Orcpt::parse(v).map_err(dsn_syntax)?);
        } else {
            return Err(Error::UnknownParameter(key.to_string()));
        }
    }
    let forward_path = ForwardPath::parse(path, smtputf8).map_err(Error::BadRecipient)?;
    Ok(Command::Rcpt {
        forward_path,
        params: p,
    })
}

/// A refused DSN parameter (RFC 3461 §4) is a syntax error (501 5.5.4) saying which.
fn dsn_syntax(e: dsn::DsnError) -> Error {
    Error::Syntax(e.as_str())
}

fn parse_bdat(args: &str) -> Result<Command, Error> {
    let mut words = args.split(' ');
    let size = words
        .next()
        .filter(|s| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(Error::Syntax("bdat needs a chunk size"))?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(Error::Syntax("expected last after the chunk size")),
    };
    if words.next().is_some() {
        return Err(Error::Syntax("too many arguments to bdat"));
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;
    use golub_types::AddressError;

    fn parse(line: &[u8]) -> Result<Command, Error> {
        Command::parse(std::str::from_utf8(line).unwrap(), false)
    }

    fn mail_path(line: &[u8]) -> String {
        match parse(line).unwrap() {
            Command::Mail { reverse_path, .. } => reverse_path.to_string(),
            other => panic!("not a mail command: {other:?}"),
        }
    }

    #[test]
    fn simple_verbs_are_case_insensitive() {
        let table: &[(&[u8], Command)] = &[
            (b"DATA", Command::Data),
            (b"data", Command::Data),
            (b"RsEt", Command::Rset),
            (b"QUIT", Command::Quit),
            (b"quit ", Command::Quit),
            (b"NOOP", Command::Noop),
            (b"noop anything at all", Command::Noop),
            (b"HELP", Command::Help { topic: None }),
            (
                b"help send",
                Command::Help {
                    topic: Some("send".into()),
                },
            ),
            (
                b"EHLO client.example",
                Command::Ehlo {
                    name: "client.example".into(),
                },
            ),
            (
                b"helo client.example",
                Command::Helo {
                    name: "client.example".into(),
                },
            ),
            (
                b"VRFY joe",
                Command::Vrfy {
                    query: "joe".into(),
                },
            ),
            (
                b"expn staff",
                Command::Expn {
                    list: "staff".into(),
                },
            ),
            (
                b"BDAT 0 LAST",
                Command::Bdat {
                    size: 0,
                    last: true,
                },
            ),
            (
                b"bdat 1000 last",
                Command::Bdat {
                    size: 1000,
                    last: true,
                },
            ),
            (
                b"BDAT 12",
                Command::Bdat {
                    size: 12,
                    last: false,
                },
            ),
        ];
        for (line, want) in table {
            assert_eq!(
                parse(line).as_ref(),
                Ok(want),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn bad_arguments_are_syntax_errors() {
        let table: &[&[u8]] = &[
            b"HELO",
            b"EHLO ",
            b"DATA now",
            b"RSET x",
            b"QUIT please",
            b"VRFY",
            b"EXPN ",
            b"BDAT",
            b"BDAT x",
            b"BDAT -1",
            b"BDAT 10 FIRST",
            b"BDAT 10 LAST more",
            b"BDAT 99999999999999999999999",
            b"MAIL",
            b"MAIL TO:<a@b.example>",
            b"MAIL FROM:a@b.example",
            b"MAIL FROM:<a@b.example",
            b"MAIL FROM:<a@b.example>SIZE=10",
            b"MAIL FROM:<a@b.example> SIZE=",
            b"MAIL FROM:<a@b.example> SIZE=ten",
            b"MAIL FROM:<a@b.example> SIZE=-1",
            b"MAIL FROM:<a@b.example> SIZE",
            b"MAIL FROM:<a@b.example> SIZE=1 SIZE=2",
            b"MAIL FROM:<a@b.example> BODY=BINARYMIME",
            b"MAIL FROM:<a@b.example> BODY",
            b"MAIL FROM:<a@b.example> SMTPUTF8=yes",
            b"RCPT",
            b"RCPT FROM:<a@b.example>",
            b"RCPT TO:",
        ];
        for line in table {
            assert!(
                matches!(parse(line), Err(Error::Syntax(_))),
                "{:?} gave {:?}",
                String::from_utf8_lossy(line),
                parse(line)
            );
        }
    }

    #[test]
    fn etrn_takes_one_node_name() {
        assert_eq!(
            parse(b"etrn @Example.ORG"),
            Ok(Command::Etrn {
                node: "@Example.ORG".into()
            })
        );
        for line in [&b"ETRN"[..], b"ETRN  ", b"ETRN a.example b.example"] {
            assert!(matches!(parse(line), Err(Error::Syntax(_))), "{line:?}");
        }
    }

    #[test]
    fn unknown_verbs_are_unknown() {
        for line in [&b"FOO"[..], b"", b"MAILFROM:<a@b.example>", b"\xc3\xa9"] {
            assert_eq!(parse(line), Err(Error::UnknownCommand));
        }
    }

    #[test]
    fn mail_accepts_paths_and_parameters() {
        assert_eq!(mail_path(b"MAIL FROM:<a@b.example>"), "<a@b.example>");
        assert_eq!(mail_path(b"mail from:<a@B.example>"), "<a@b.example>");
        assert_eq!(mail_path(b"MAIL FROM: <a@b.example>"), "<a@b.example>");
        assert_eq!(mail_path(b"MAIL FROM:<>"), "<>");
        assert_eq!(
            mail_path(b"MAIL FROM:<\"a > b\"@x.example>"),
            "<\"a > b\"@x.example>"
        );
        assert_eq!(
            mail_path(b"MAIL FROM:<@r.example:a@x.example>"),
            "<a@x.example>"
        );
        assert_eq!(
            mail_path(b"MAIL FROM:<Joe.Q@x.example>"),
            "<Joe.Q@x.example>"
        );
        let cmd = parse(b"MAIL FROM:<a@b.example> size=100 body=8bitmime SMTPUTF8").unwrap();
        let Command::Mail { kind, params, .. } = cmd else {
            panic!("not mail");
        };
        assert_eq!(kind, MailKind::Mail);
        assert_eq!(
            params,
            MailParams {
                size: Some(100),
                body: Some(BodyType::EightBitMime),
                smtputf8: true,
                auth: None,
                ret: None,
                envid: None,
            }
        );
        let huge = parse(b"MAIL FROM:<a@b.example> SIZE=99999999999999999999").unwrap();
        assert!(matches!(
            huge,
            Command::Mail {
                params: MailParams {
                    size: Some(u64::MAX),
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn legacy_verbs_open_transactions_of_their_kind() {
        for (line, want) in [
            (&b"SEND FROM:<a@b.example>"[..], MailKind::Send),
            (b"soml from:<a@b.example>", MailKind::Soml),
            (b"SAML FROM:<a@b.example>", MailKind::Saml),
        ] {
            assert!(matches!(parse(line), Ok(Command::Mail { kind, .. }) if kind == want));
        }
    }

    #[test]
    fn address_errors_say_which_path() {
        assert!(matches!(
            parse(b"MAIL FROM:<a b@x.example>"),
            Err(Error::BadSender(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:<@x.example>"),
            Err(Error::BadRecipient(_))
        ));
        assert_eq!(
            Command::parse("MAIL FROM:<jörg@x.example>", false),
            Err(Error::BadSender(AddressError::Utf8NotAllowed))
        );
        assert!(Command::parse("MAIL FROM:<jörg@x.example> SMTPUTF8", false).is_ok());
        assert_eq!(
            Command::parse("RCPT TO:<jörg@x.example>", false),
            Err(Error::BadRecipient(AddressError::Utf8NotAllowed))
        );
        assert!(Command::parse("RCPT TO:<jörg@x.example>", true).is_ok());
    }

    #[test]
    fn unknown_parameters_are_reported() {
        assert_eq!(
            parse(b"MAIL FROM:<a@b.example> MT-PRIORITY=3"),
            Err(Error::UnknownParameter("MT-PRIORITY".into()))
        );
        assert_eq!(
            parse(b"RCPT TO:<a@b.example> RRVS=2030-01-01T00:00:00Z"),
            Err(Error::UnknownParameter("RRVS".into()))
        );
    }

    #[test]
    fn rcpt_accepts_postmaster_and_source_routes() {
        assert_eq!(
            parse(b"RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt {
                forward_path: ForwardPath::Postmaster,
                params: RcptParams::default(),
            })
        );
        let Ok(Command::Rcpt { forward_path, .. }) =
            parse(b"rcpt to: <@a.example,@b.example:Joe@c.example>")
        else {
            panic!("rcpt did not parse");
        };
        assert_eq!(forward_path.to_string(), "<Joe@c.example>");
    }

    #[test]
    fn starttls_and_auth_parse() {
        assert_eq!(parse(b"STARTTLS"), Ok(Command::StartTls));
        assert_eq!(parse(b"starttls "), Ok(Command::StartTls));
        assert!(matches!(parse(b"STARTTLS now"), Err(Error::Syntax(_))));
        assert_eq!(
            parse(b"auth plain"),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: None
            })
        );
        assert_eq!(
            parse(b"AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("AGFsaWNlAHNlY3JldA==".into())
            })
        );
        assert_eq!(
            parse(b"AUTH SCRAM-SHA-256 ="),
            Ok(Command::Auth {
                mechanism: "SCRAM-SHA-256".into(),
                initial_response: Some("=".into())
            })
        );
        for line in [
            &b"AUTH"[..],
            b"AUTH ",
            b"AUTH PL@IN",
            b"AUTH ABCDEFGHIJKLMNOPQRSTU",
            b"AUTH PLAIN  AGFs",
            b"AUTH PLAIN AGFs more",
        ] {
            assert!(
                matches!(parse(line), Err(Error::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn mail_auth_parameter_takes_xtext_or_empty() {
        let auth = |line: &[u8]| match parse(line) {
            Ok(Command::Mail { params, .. }) => Ok(params.auth),
            Ok(other) => panic!("not mail: {other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            auth(b"MAIL FROM:<a@b.example> AUTH=<>"),
            Ok(Some("<>".into()))
        );
        assert_eq!(
            auth(b"MAIL FROM:<a@b.example> auth=e+3Dmc2@b.example"),
            Ok(Some("e+3Dmc2@b.example".into()))
        );
        for line in [
            &b"MAIL FROM:<a@b.example> AUTH"[..],
            b"MAIL FROM:<a@b.example> AUTH=",
            b"MAIL FROM:<a@b.example> AUTH=a+3d",
            b"MAIL FROM:<a@b.example> AUTH=a+3",
            b"MAIL FROM:<a@b.example> AUTH=a=b",
            b"MAIL FROM:<a@b.example> AUTH=<> AUTH=<>",
        ] {
            assert!(
                matches!(parse(line), Err(Error::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn mail_takes_dsn_ret_and_envid() {
        let Ok(Command::Mail { params, .. }) =
            parse(b"MAIL FROM:<a@b.example> ret=hdrs ENVID=abc+2Bdef")
        else {
            panic!("mail did not parse");
        };
        assert_eq!(params.ret, Some(Ret::Hdrs));
        assert_eq!(params.envid.as_deref(), Some("abc+def"));
        assert!(params.any());
        let Ok(Command::Mail { params, .. }) = parse(b"MAIL FROM:<> RET=FULL") else {
            panic!("mail did not parse");
        };
        assert_eq!(params.ret, Some(Ret::Full));
        let table: &[(&[u8], &str)] = &[
            (
                b"MAIL FROM:<a@b.example> RET=BODY",
                "ret must be full or hdrs",
            ),
            (b"MAIL FROM:<a@b.example> RET", "ret needs a value"),
            (
                b"MAIL FROM:<a@b.example> RET=FULL RET=HDRS",
                "ret given twice",
            ),
            (
                b"MAIL FROM:<a@b.example> ENVID=",
                "envid must be xtext of printable ascii",
            ),
            (
                b"MAIL FROM:<a@b.example> ENVID=a+2b",
                "envid must be xtext of printable ascii",
            ),
            (
                b"MAIL FROM:<a@b.example> ENVID=a+0D+0Ab",
                "envid must be xtext of printable ascii",
            ),
            (
                b"MAIL FROM:<a@b.example> ENVID=a ENVID=b",
                "envid given twice",
            ),
        ];
        for (line, why) in table {
            assert_eq!(
                parse(line),
                Err(Error::Syntax(why)),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let long = format!("MAIL FROM:<a@b.example> ENVID={}", "x".repeat(101));
        assert_eq!(
            parse(long.as_bytes()),
            Err(Error::Syntax("envid longer than 100 characters"))
        );
    }

    #[test]
    fn rcpt_takes_dsn_notify_and_orcpt() {
        let rcpt = |line: &[u8]| match parse(line) {
            Ok(Command::Rcpt { params, .. }) => Ok(params),
            Ok(other) => panic!("not rcpt: {other:?}"),
            Err(e) => Err(e),
        };
        let p = rcpt(b"RCPT TO:<a@b.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+2By@c.example")
            .unwrap();
        assert_eq!(
            p.notify,
            Some(Notify {
                success: true,
                failure: false,
                delay: true
            })
        );
        let orcpt = p.orcpt.unwrap();
        assert_eq!(
            (orcpt.addr_type.as_str(), orcpt.address.as_str()),
            ("rfc822", "x+y@c.example")
        );
        assert_eq!(
            rcpt(b"RCPT TO:<a@b.example> notify=never").unwrap().notify,
            Some(Notify::NEVER)
        );
        assert_eq!(rcpt(b"RCPT TO:<a@b.example>"), Ok(RcptParams::default()));
        let notify = "notify must be never, or a list of success, failure and delay";
        let table: &[(&[u8], &str)] = &[
            (b"RCPT TO:<a@b.example> NOTIFY=NEVER,SUCCESS", notify),
            (b"RCPT TO:<a@b.example> NOTIFY=", notify),
            (b"RCPT TO:<a@b.example> NOTIFY=FAILURE,FAILURE", notify),
            (b"RCPT TO:<a@b.example> NOTIFY", "notify needs a value"),
            (
                b"RCPT TO:<a@b.example> NOTIFY=NEVER NOTIFY=NEVER",
                "notify given twice",
            ),
            (
                b"RCPT TO:<a@b.example> ORCPT=a@b.example",
                "orcpt must be addr-type;xtext",
            ),
            (
                b"RCPT TO:<a@b.example> ORCPT=rfc822;",
                "orcpt must be addr-type;xtext",
            ),
            (
                b"RCPT TO:<a@b.example> ORCPT=rfc822;a@b ORCPT=rfc822;a@b",
                "orcpt given twice",
            ),
        ];
        for (line, why) in table {
            assert_eq!(
                parse(line),
                Err(Error::Syntax(why)),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
