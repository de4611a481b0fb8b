//! Every reply the server session sends, built in one place.
//!
//! Texts are static, lowercase and short; each carries its RFC 3463 enhanced code except
//! the greeting, the HELO/EHLO replies (RFC 2034 §3) and 354, whose class (3) RFC 3463
//! does not define.

use golub_types::{AddressError, EnhancedCode, QueueId, Reply};

use crate::error::Error;

fn reply(code: u16, enhanced: (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(code, EnhancedCode(enhanced.0, enhanced.1, enhanced.2), text)
}

/// The reply for a refused command line or message.
pub(crate) fn reply_for(e: &Error) -> Reply {
    match e {
        Error::UnknownCommand => reply(500, (5, 5, 1), "command not recognized"),
        Error::Syntax(detail) => reply(501, (5, 5, 4), format!("syntax error: {detail}")),
        // RFC 6531 §3.5: a UTF-8 address in a transaction without SMTPUTF8.
        Error::BadSender(AddressError::Utf8NotAllowed)
        | Error::BadRecipient(AddressError::Utf8NotAllowed) => {
            reply(553, (5, 6, 7), "non-ascii address needs smtputf8")
        }
        Error::BadSender(_) => reply(501, (5, 1, 7), "bad sender address syntax"),
        Error::BadRecipient(_) => reply(501, (5, 1, 3), "bad recipient address syntax"),
        Error::UnknownParameter(_) => reply(555, (5, 5, 4), "parameter not recognized"),
        Error::BareLineEnding => reply(500, (5, 5, 2), "bare CR or LF not allowed"),
        Error::InvalidUtf8 => reply(500, (5, 5, 2), "command is not valid utf-8"),
        Error::LineTooLong => reply(500, (5, 5, 0), "line too long"),
        Error::MessageTooLarge => too_large(),
        Error::BareLineEndingInData => reply(
            550,
            (5, 6, 11),
            "message contains bare CR or LF; use CRLF line ends",
        ),
    }
}

/// True for replies that count towards `max_errors`.
pub(crate) fn counts_as_error(r: &Reply) -> bool {
    matches!(r.code, 500 | 501 | 503 | 555)
}

pub(crate) fn greeting(hostname: &str) -> Reply {
    Reply::plain(220, vec![format!("{hostname} ESMTP")])
}

pub(crate) fn helo(hostname: &str) -> Reply {
    Reply::plain(250, vec![hostname.to_string()])
}

/// The EHLO reply: the greeting line, then one line per extension (RFC 5321 §4.1.1.1).
pub(crate) fn ehlo(hostname: &str, client: &str, max_size: usize, extra: &[String]) -> Reply {
    // RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its code and CRLF, so a
    // long client name is not echoed in full (a domain is at most 255 octets anyway).
    let client = match client.char_indices().nth(255) {
        Some((end, _)) => &client[..end],
        None => client,
    };
    let mut lines = vec![
        format!("{hostname} Hello {client}"),
        format!("SIZE {max_size}"),
        "8BITMIME".to_string(),
        "PIPELINING".to_string(),
        "ENHANCEDSTATUSCODES".to_string(),
        "SMTPUTF8".to_string(),
        "CHUNKING".to_string(),
        // RFC 3461: NOTIFY, ORCPT, RET and ENVID.
        "DSN".to_string(),
        "HELP".to_string(),
    ];
    lines.extend(extra.iter().cloned());
    Reply::plain(250, lines)
}

pub(crate) fn ok() -> Reply {
    reply(250, (2, 0, 0), "ok")
}

pub(crate) fn sender_ok() -> Reply {
    reply(250, (2, 1, 0), "ok")
}

pub(crate) fn recipient_ok() -> Reply {
    reply(250, (2, 1, 5), "ok")
}

pub(crate) fn queued(id: QueueId) -> Reply {
    reply(250, (2, 0, 0), format!("Ok: queued as {id}"))
}

pub(crate) fn chunk_received(size: u64) -> Reply {
    reply(250, (2, 0, 0), format!("{size} octets received"))
}

pub(crate) fn start_data() -> Reply {
    Reply::plain(354, vec!["End data with <CR><LF>.<CR><LF>".to_string()])
}

pub(crate) fn bye() -> Reply {
    reply(221, (2, 0, 0), "Bye")
}

pub(crate) fn need_helo() -> Reply {
    reply(503, (5, 5, 1), "send helo or ehlo first")
}

pub(crate) fn nested_mail() -> Reply {
    reply(503, (5, 5, 1), "nested mail command")
}

pub(crate) fn need_mail() -> Reply {
    reply(503, (5, 5, 1), "need mail command")
}

pub(crate) fn data_after_bdat() -> Reply {
    reply(503, (5, 5, 1), "data not allowed after bdat; use bdat")
}

pub(crate) fn no_recipients() -> Reply {
    reply(554, (5, 5, 1), "no valid recipients")
}

pub(crate) fn params_need_ehlo() -> Reply {
    reply(555, (5, 5, 4), "parameters need ehlo")
}

/// RFC 5321 §4.1.1.11: a parameter of an extension we did not announce.
pub(crate) fn unknown_parameter() -> Reply {
    reply_for(&Error::UnknownParameter(String::new()))
}

pub(crate) fn too_large() -> Reply {
    reply(552, (5, 3, 4), "message size exceeds fixed limit")
}

pub(crate) fn too_many_recipients() -> Reply {
    reply(452, (4, 5, 3), "too many recipients")
}

/// RFC 821 §3.4: SEND delivers to a user's terminal, which we do not have.
pub(crate) fn not_at_terminal() -> Reply {
    reply(450, (4, 2, 1), "recipient not at a terminal; use mail")
}

/// RFC 5321 §3.5.3: 252 when we will not verify but will try to deliver.
/// RFC 1985 §5 and Postfix: no queue run in the middle of a mail transaction.
pub(crate) fn etrn_in_transaction() -> Reply {
    reply(503, (5, 5, 1), "etrn not allowed during a mail transaction")
}

/// RFC 1985 §5: 459 "Node <x> not allowed: <reason>".
pub(crate) fn etrn_not_allowed(node: &str) -> Reply {
    reply(
        459,
        (4, 7, 1),
        format!(
            "Node {} not allowed: etrn is not permitted from this client",
            printable(node)
        ),
    )
}

/// RFC 1985 §5: 458 "Unable to queue messages for node <x>".
pub(crate) fn etrn_unable(node: &str) -> Reply {
    reply(
        458,
        (4, 3, 0),
        format!("Unable to queue messages for node {}", printable(node)),
    )
}

pub(crate) fn etrn_bad_node() -> Reply {
    reply(
        501,
        (5, 5, 4),
        "syntax error: etrn needs a domain, @domain or #queue",
    )
}

/// A client's text echoed in a reply: printable ASCII only, and not too much of it.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect()
}

pub(crate) fn cannot_verify() -> Reply {
    reply(
        252,
        (2, 5, 0),
        "cannot verify, but will accept the message and attempt delivery",
    )
}

/// RFC 4954 §6: MAIL before AUTH where AUTH is required (submission, RFC 6409).
pub(crate) fn auth_required() -> Reply {
    reply(530, (5, 7, 0), "authentication required")
}

/// RFC 3207 §4: the client starts the TLS handshake after this.
pub(crate) fn ready_to_start_tls() -> Reply {
    reply(220, (2, 0, 0), "ready to start TLS")
}

/// STARTTLS where we never offer it.
pub(crate) fn tls_not_available() -> Reply {
    reply(502, (5, 5, 1), "starttls not available")
}

pub(crate) fn already_tls() -> Reply {
    reply(503, (5, 5, 1), "tls already active")
}

pub(crate) fn starttls_in_transaction() -> Reply {
    reply(
        503,
        (5, 5, 1),
        "starttls not allowed during a mail transaction",
    )
}

/// AUTH where no mechanism is configured.
pub(crate) fn auth_not_enabled() -> Reply {
    reply(502, (5, 5, 1), "authentication not enabled")
}

/// RFC 4954 §4: AUTH is an ESMTP extension, announced only by EHLO.
pub(crate) fn auth_needs_ehlo() -> Reply {
    reply(503, (5, 5, 1), "send ehlo first")
}

/// RFC 4954 §4: a second AUTH after success gets 503.
pub(crate) fn already_authenticated() -> Reply {
    reply(503, (5, 5, 1), "already authenticated")
}

/// RFC 4954 §4: no AUTH during a mail transaction.
pub(crate) fn auth_in_transaction() -> Reply {
    reply(503, (5, 5, 1), "auth not allowed during a mail transaction")
}

/// RFC 4954 §6: the mechanism needs an encrypted connection.
pub(crate) fn encryption_required() -> Reply {
    reply(
        538,
        (5, 7, 11),
        "encryption required for requested authentication mechanism",
    )
}

/// RFC 4954 §4: a mechanism we do not offer.
pub(crate) fn unknown_mechanism() -> Reply {
    reply(504, (5, 5, 4), "unrecognized authentication type")
}

/// A server challenge, already base64 (RFC 4954 §4); no enhanced code on 334.
pub(crate) fn sasl_challenge(base64: &str) -> Reply {
    Reply::plain(334, vec![base64.to_string()])
}

/// RFC 4954 §4: the client's "*" ends the exchange with 501.
pub(crate) fn auth_cancelled() -> Reply {
    reply(501, (5, 0, 0), "authentication cancelled")
}

pub(crate) fn bad_base64() -> Reply {
    reply(501, (5, 5, 2), "cannot decode base64 response")
}

pub(crate) fn bad_sasl_response() -> Reply {
    reply(501, (5, 5, 2), "malformed authentication response")
}

/// RFC 4954 §4 allows 12288 octets per response line; RFC 3463 5.5.6 is "syntax error".
pub(crate) fn sasl_line_too_long() -> Reply {
    reply(500, (5, 5, 6), "authentication exchange line is too long")
}

pub(crate) fn auth_succeeded() -> Reply {
    reply(235, (2, 7, 0), "authentication succeeded")
}

pub(crate) fn too_many_errors(hostname: &str) -> Reply {
    reply(421, (4, 7, 0), format!("{hostname} too many errors"))
}

pub(crate) fn timeout(hostname: &str) -> Reply {
    reply(421, (4, 4, 2), format!("{hostname} timeout"))
}

pub(crate) fn shutting_down(hostname: &str) -> Reply {
    reply(421, (4, 3, 2), format!("{hostname} shutting down"))
}

const HELP_SUMMARY: &[&str] = &[
    "commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN SEND SOML SAML",
    "SOML and SAML are taken as MAIL; SEND is too, but its recipients get 450",
    "because nobody here reads mail at a terminal (RFC 821); use MAIL",
    "HELP <command> for more",
];

const HELP_TOPICS: &[(&str, &str)] = &[
    ("HELO", "HELO <domain>: say hello, without extensions"),
    ("EHLO", "EHLO <domain>: say hello and list the extensions"),
    (
        "MAIL",
        "MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8] [RET=FULL|HDRS] [ENVID=id]",
    ),
    (
        "RCPT",
        "RCPT TO:<address> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=rfc822;address]",
    ),
    (
        "DATA",
        "DATA: send the message, ended by a line holding only a dot",
    ),
    (
        "BDAT",
        "BDAT <size> [LAST]: send the next size octets of the message",
    ),
    ("RSET", "RSET: abort the mail transaction"),
    ("NOOP", "NOOP: do nothing"),
    ("QUIT", "QUIT: close the connection"),
    ("HELP", "HELP [command]: this text"),
    (
        "STARTTLS",
        "STARTTLS: start TLS on this connection, if the server offers it",
    ),
    (
        "AUTH",
        "AUTH <mechanism> [initial-response]: authenticate, if the server offers it",
    ),
    (
        "VRFY",
        "VRFY <user>: verify a mailbox, if the server allows it",
    ),
    (
        "EXPN",
        "EXPN <list>: expand a mailing list, if the server allows it",
    ),
    (
        "SEND",
        "SEND FROM:<address>: recipients get 450, no terminal delivery here; use MAIL",
    ),
    (
        "SOML",
        "SOML FROM:<address>: taken as MAIL, delivered to the mailbox",
    ),
    (
        "SAML",
        "SAML FROM:<address>: taken as MAIL, delivered to the mailbox",
    ),
];

/// The HELP reply, for all commands or one (RFC 5321 §4.1.1.8).
pub(crate) fn help(topic: Option<&str>) -> Reply {
    let code = EnhancedCode(2, 0, 0);
    match topic {
        None => Reply {
            code: 214,
            enhanced: Some(code),
            lines: HELP_SUMMARY.iter().map(|l| l.to_string()).collect(),
        },
        Some(topic) => match HELP_TOPICS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(topic))
        {
            Some((_, text)) => Reply::new(214, code, *text),
            None => reply(504, (5, 5, 1), "no help for that topic"),
        },
    }
}

#[cfg(test)]
mod ehlo_tests {
    use super::ehlo;

    #[test]
    fn a_long_client_name_keeps_the_greeting_line_within_512_octets() {
        let name = "a".repeat(505);
        let mut out = Vec::new();
        ehlo("mx.example", &name, 1024, &[]).write_to(&mut out);
        let first = out.split(|&b| b == b'\n').next().unwrap();
        // The line with its LF (already counted the CR) must fit in 512 octets.
        assert!(first.len() < 512, "{} octets", first.len() + 1);
    }
}
