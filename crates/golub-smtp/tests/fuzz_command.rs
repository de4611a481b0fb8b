//! Fuzz target: the SMTP command parser (`codec::command`).
//!
//! Arbitrary strings and grammar-shaped lines (verbs, paths with quotes, brackets, `@`,
//! `:`, `,`, parameters with `=`) never make `Command::parse` panic; a line it accepts,
//! written back in canonical form, parses to the same command; allowing UTF-8 only ever
//! accepts more. Seeds: `tests/corpus/command/*.txt`, one escaped command line per line,
//! and every line the client sends in `tests/transcripts/*.txt`.

use golub_fuzzkit as support;

use golub_smtp::codec::command::{BodyType, Command, MailKind, MailParams, RcptParams};
use golub_types::dsn::xtext_encode;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

/// The canonical line for a parsed command.
fn render(c: &Command) -> String {
    match c {
        Command::Helo { name } => format!("HELO {name}"),
        Command::Ehlo { name } => format!("EHLO {name}"),
        Command::Mail {
            kind,
            reverse_path,
            params,
        } => {
            let verb = match kind {
                MailKind::Mail => "MAIL",
                MailKind::Send => "SEND",
                MailKind::Soml => "SOML",
                MailKind::Saml => "SAML",
            };
            let MailParams {
                size,
                body,
                smtputf8,
                auth,
                ret,
                envid,
            } = params;
            let mut line = format!("{verb} FROM:{reverse_path}");
            if let Some(n) = size {
                line.push_str(&format!(" SIZE={n}"));
            }
            match body {
                Some(BodyType::SevenBit) => line.push_str(" BODY=7BIT"),
                Some(BodyType::EightBitMime) => line.push_str(" BODY=8BITMIME"),
                None => {}
            }
            if *smtputf8 {
                line.push_str(" SMTPUTF8");
            }
            if let Some(a) = auth {
                line.push_str(&format!(" AUTH={a}"));
            }
            if let Some(r) = ret {
                line.push_str(&format!(" RET={r}"));
            }
            if let Some(e) = envid {
                line.push_str(&format!(" ENVID={}", xtext_encode(e)));
            }
            line
        }
        Command::Rcpt {
            forward_path,
            params: RcptParams { notify, orcpt },
        } => {
            let mut line = format!("RCPT TO:{forward_path}");
            if let Some(n) = notify {
                line.push_str(&format!(" NOTIFY={n}"));
            }
            if let Some(o) = orcpt {
                line.push_str(&format!(" ORCPT={}", o.to_wire()));
            }
            line
        }
        Command::Data => "DATA".into(),
        Command::Bdat { size, last } => {
            format!("BDAT {size}{}", if *last { " LAST" } else { "" })
        }
        Command::Rset => "RSET".into(),
        Command::Noop => "NOOP".into(),
        Command::Quit => "QUIT".into(),
        Command::Help { topic: None } => "HELP".into(),
        Command::Help { topic: Some(t) } => format!("HELP {t}"),
        Command::Vrfy { query } => format!("VRFY {query}"),
        Command::Expn { list } => format!("EXPN {list}"),
        Command::Etrn { node } => format!("ETRN {node}"),
        Command::StartTls => "STARTTLS".into(),
        Command::Auth {
            mechanism,
            initial_response: None,
        } => format!("AUTH {mechanism}"),
        Command::Auth {
            mechanism,
            initial_response: Some(r),
        } => format!("AUTH {mechanism} {r}"),
    }
}

/// The properties every line must have.
fn check(line: &str) -> Result<(), TestCaseError> {
    for utf8 in [false, true] {
        let Ok(cmd) = Command::parse(line, utf8) else {
            continue;
        };
        let again = render(&cmd);
        prop_assert_eq!(
            Command::parse(&again, utf8),
            Ok(cmd.clone()),
            "{:?} rendered as {:?}",
            line,
            again
        );
        if !utf8 {
            // Allowing UTF-8 widens what is accepted and changes nothing else.
            prop_assert_eq!(Command::parse(line, true), Ok(cmd), "{:?}", line);
        }
    }
    Ok(())
}

#[test]
fn command_seeds_parse_without_panic_and_round_trip() {
    let mut lines = 0;
    for (path, text) in support::seeds(env!("CARGO_MANIFEST_DIR"), "command") {
        for line in support::seed_lines(&text) {
            let bytes = support::unescape(line);
            let line = String::from_utf8_lossy(&bytes);
            check(&line).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            lines += 1;
        }
    }
    // Every line a transcript's client sends, commands and message text alike.
    for (path, text) in support::transcript::transcripts(env!("CARGO_MANIFEST_DIR")) {
        let (_, input) = support::transcript::client_side(&text);
        for line in input.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
            check(&line).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            lines += 1;
        }
    }
    assert!(lines > 50, "only {lines} seed lines");
}

/// Pieces that the grammar gives a meaning to, and some that break it.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "MAIL", "mail", "RCPT", "SEND", "SOML", "SAML", "FROM:", "from:", "TO:", "To:",
            "<", ">", "<>", "\"", "\\", "@", ":", ",", "[", "]", "IPv6:", "ipv6:", "=", " ",
            "  ", "\t", ".", "..", "-", "+", "+2B", "+ZZ", "SIZE", "SIZE=", "BODY=7BIT",
            "BODY=8BITMIME", "BODY=binarymime", "SMTPUTF8", "AUTH=", "AUTH=<>", "NOTIFY=NEVER",
            "NOTIFY=SUCCESS,FAILURE", "notify=delay,success", "ORCPT=rfc822;", "RET=FULL",
            "ret=hdrs", "ENVID=", "ENVID=a+2Bb", "rfc822;",
            "postmaster", "Postmaster", "example.org", "EXAMPLE.ORG", "a", "ü", "ß", "İ",
            "\u{212A}", "\u{85}", "\u{a0}", "\u{3000}", "192.0.2.1", "2001:db8::1", "0",
            "18446744073709551615", "18446744073709551616", "99999999999999999999", "LAST",
            "last", "PLAIN", "LOGIN", "dGVzdAB0ZXN0AHRlc3Q=", "=", "*", "\0", "\x7f",
        ]).prop_map(str::to_string),
        1 => "[a-z0-9.@<>:\"\\\\-]{1,12}",
        1 => prop::sample::select(vec![63usize, 64, 65, 254, 255, 256, 300])
            .prop_map(|n| "a".repeat(n)),
        1 => any::<String>(),
    ]
}

fn verb() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "HELO", "EHLO", "MAIL", "SEND", "SOML", "SAML", "RCPT", "DATA", "BDAT", "RSET", "NOOP",
        "QUIT", "HELP", "VRFY", "EXPN", "STARTTLS", "AUTH", "XYZZY", "",
    ])
    .prop_flat_map(|v| {
        // Random letter case: verbs are case-insensitive.
        prop::collection::vec(any::<bool>(), v.len()).prop_map(move |upper| {
            v.chars()
                .zip(upper)
                .map(|(c, u)| if u { c } else { c.to_ascii_lowercase() })
                .collect::<String>()
        })
    })
}

fn grammar_line() -> impl Strategy<Value = String> {
    (
        verb(),
        prop::sample::select(vec!["", " ", "  ", "\t"]),
        prop::collection::vec(token(), 0..12),
        prop::sample::select(vec!["", " ", "\t", " \t "]),
    )
        .prop_map(|(v, sep, tokens, tail)| format!("{v}{sep}{}{tail}", tokens.concat()))
}

/// Well-formed MAIL and RCPT lines, then mangled by one random edit.
fn path_line() -> impl Strategy<Value = String> {
    let local = prop_oneof![
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-z0-9]{1,5}){0,2}",
        "\"([ -!#-\\[\\]-~]|\\\\[ -~]){0,12}\"",
        "[a-zé]{1,6}",
    ];
    let domain = prop_oneof![
        "[a-zA-Z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-zA-Z0-9]{1,8}){0,3}",
        "\\[(25[0-5]|1?[0-9]{1,2})(\\.(25[0-5]|1?[0-9]{1,2})){3}\\]",
        "\\[IPv6:[0-9a-f:]{2,20}\\]",
        "\\[[a-z]{1,5}:[!-Z^-~]{1,8}\\]",
        "[a-zü]{1,6}\\.[a-z]{2,3}",
    ];
    let route = prop::collection::vec("@[a-z]{1,5}\\.[a-z]{2,3}", 0..3).prop_map(|hops| {
        if hops.is_empty() {
            String::new()
        } else {
            format!("{}:", hops.join(","))
        }
    });
    let params = prop::collection::vec(
        prop::sample::select(vec![
            "SIZE=1000",
            "SIZE=",
            "size=99999999999999999999",
            "BODY=8BITMIME",
            "body=7bit",
            "SMTPUTF8",
            "smtputf8=yes",
            "AUTH=<>",
            "AUTH=joe+40example.org",
            "AUTH=+4",
            "RET=HDRS",
            "RET=full",
            "RET=BODY",
            "ENVID=x+2By",
            "ENVID=x+2b",
            "NOTIFY=NEVER",
            "NOTIFY=SUCCESS,FAILURE,DELAY",
            "NOTIFY=NEVER,DELAY",
            "ORCPT=rfc822;a+2Bb@example.org",
            "ORCPT=rfc822",
        ]),
        0..4,
    );
    (
        prop::sample::select(vec![
            "MAIL FROM:",
            "mail from: ",
            "RCPT TO:",
            "rcpt to:  ",
            "SAML FROM:",
        ]),
        route,
        local,
        domain,
        params,
        any::<prop::sample::Index>(),
        token(),
        0..3u8,
    )
        .prop_map(|(head, route, local, domain, params, at, tok, edit)| {
            let mut line = format!("{head}<{route}{local}@{domain}>");
            for p in params {
                line.push(' ');
                line.push_str(p);
            }
            let cut = at.index(line.len() + 1);
            let cut = (0..=cut)
                .rev()
                .find(|&i| line.is_char_boundary(i))
                .unwrap_or(0);
            match edit {
                0 => {}
                1 => line.insert_str(cut, &tok),
                _ => line.truncate(cut),
            }
            line
        })
}

#[test]
fn arbitrary_lines_never_panic_and_accepted_lines_round_trip() {
    support::fuzz("smtp_command", 1500, any::<String>(), |line| check(&line));
}

#[test]
fn grammar_shaped_lines_never_panic_and_accepted_lines_round_trip() {
    support::fuzz("smtp_command_grammar", 1500, grammar_line(), |line| {
        check(&line)
    });
}

#[test]
fn mangled_paths_never_panic_and_accepted_lines_round_trip() {
    support::fuzz("smtp_command_paths", 1500, path_line(), |line| check(&line));
}
