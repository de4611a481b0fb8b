//! POP3 command lines (RFC 1939 §3, RFC 2449, RFC 2595, RFC 5034): a framed line, without
//! its line end, becomes a [`Command`].
//!
//! Keywords are case-insensitive. Arguments are separated by spaces; we accept runs of
//! spaces and tabs (clients are lenient, so are we), except for PASS, whose argument is
//! everything after "PASS " so that a password may hold spaces (RFC 1939 §7).

use golub_types::Secret;

use crate::error::Error;

/// One parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    User(String),
    Pass(Secret<String>),
    /// APOP is refused whatever its arguments: the directory keeps no plaintext secrets.
    Apop,
    /// AUTH with no mechanism lists the mechanisms.
    Auth {
        mechanism: Option<String>,
        initial_response: Option<String>,
    },
    Stls,
    Capa,
    Quit,
    Stat,
    List(Option<u64>),
    Retr(u64),
    Dele(u64),
    Noop,
    Rset,
    /// TOP msg n: the message number and how many body lines.
    Top(u64, u64),
    Uidl(Option<u64>),
}

/// Parses one command line (without its CRLF).
pub(crate) fn parse(line: &str) -> Result<Command, Error> {
    let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
    if !(3..=4).contains(&keyword.len()) || !keyword.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::UnknownCommand);
    }
    let keyword = keyword.to_ascii_uppercase();
    if keyword == "PASS" {
        // RFC 1939 §7: the password may contain spaces; take the rest of the line as is.
        if rest.is_empty() {
            return Err(Error::Syntax("missing password"));
        }
        return Ok(Command::Pass(Secret::new(rest.to_string())));
    }
    let args: Vec<&str> = rest.split([' ', '\t']).filter(|a| !a.is_empty()).collect();
    let command = match keyword.as_str() {
        "USER" => match args[..] {
            [name] => Command::User(name.to_string()),
            [] => return Err(Error::Syntax("missing user name")),
            _ => return Err(Error::Syntax("too many arguments")),
        },
        "APOP" => Command::Apop,
        "AUTH" => match args[..] {
            [] => Command::Auth {
                mechanism: None,
                initial_response: None,
            },
            [m] => Command::Auth {
                mechanism: Some(m.to_string()),
                initial_response: None,
            },
            [m, r] => Command::Auth {
                mechanism: Some(m.to_string()),
                initial_response: Some(r.to_string()),
            },
            _ => return Err(Error::Syntax("too many arguments")),
        },
        "STLS" => no_args(&args, Command::Stls)?,
        "CAPA" => no_args(&args, Command::Capa)?,
        "QUIT" => no_args(&args, Command::Quit)?,
        "STAT" => no_args(&args, Command::Stat)?,
        "NOOP" => no_args(&args, Command::Noop)?,
        "RSET" => no_args(&args, Command::Rset)?,
        "LIST" => Command::List(optional_number(&args)?),
        "UIDL" => Command::Uidl(optional_number(&args)?),
        "RETR" => Command::Retr(one_number(&args)?),
        "DELE" => Command::Dele(one_number(&args)?),
        "TOP" => match args[..] {
            [msg, n] => Command::Top(
                number(msg, "invalid message number")?,
                number(n, "invalid line count")?,
            ),
            [_] => return Err(Error::Syntax("missing line count")),
            [] => return Err(Error::Syntax("missing message number")),
            _ => return Err(Error::Syntax("too many arguments")),
        },
        _ => return Err(Error::UnknownCommand),
    };
    Ok(command)
}

fn no_args(args: &[&str], command: Command) -> Result<Command, Error> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(Error::Syntax("too many arguments"))
    }
}

fn optional_number(args: &[&str]) -> Result<Option<u64>, Error> {
    match args {
        [] => Ok(None),
        [msg] => number(msg, "invalid message number").map(Some),
        _ => Err(Error::Syntax("too many arguments")),
    }
}

fn one_number(args: &[&str]) -> Result<u64, Error> {
    match args {
        [msg] => number(msg, "invalid message number"),
        [] => Err(Error::Syntax("missing message number")),
        _ => Err(Error::Syntax("too many arguments")),
    }
}

/// A decimal number; one too large for u64 saturates, which no maildrop reaches.
fn number(text: &str, invalid: &'static str) -> Result<u64, Error> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Syntax(invalid));
    }
    Ok(text.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_parse() {
        let auth = |m: Option<&str>, r: Option<&str>| Command::Auth {
            mechanism: m.map(str::to_string),
            initial_response: r.map(str::to_string),
        };
        let pass = |p: &str| Command::Pass(Secret::new(p.to_string()));
        let table: Vec<(&str, Command)> = vec![
            ("USER alice", Command::User("alice".into())),
            (
                "user alice@example.org",
                Command::User("alice@example.org".into()),
            ),
            ("USER  alice ", Command::User("alice".into())),
            ("PASS secret", pass("secret")),
            ("PASS two words ", pass("two words ")),
            ("PASS  lead", pass(" lead")),
            ("pAsS x", pass("x")),
            ("APOP mrose c4c9334bac560ecc979e58001b3e22fb", Command::Apop),
            ("APOP", Command::Apop),
            ("AUTH", auth(None, None)),
            ("AUTH PLAIN", auth(Some("PLAIN"), None)),
            ("auth plain AGEAYg==", auth(Some("plain"), Some("AGEAYg=="))),
            ("AUTH PLAIN =", auth(Some("PLAIN"), Some("="))),
            ("STLS", Command::Stls),
            ("capa", Command::Capa),
            ("Quit", Command::Quit),
            ("STAT", Command::Stat),
            ("STAT ", Command::Stat),
            ("NOOP", Command::Noop),
            ("RSET", Command::Rset),
            ("LIST", Command::List(None)),
            ("LIST 2", Command::List(Some(2))),
            ("LIST 1\t", Command::List(Some(1))),
            ("UIDL", Command::Uidl(None)),
            ("UIDL 1", Command::Uidl(Some(1))),
            ("RETR 1", Command::Retr(1)),
            ("RETR 0", Command::Retr(0)),
            ("RETR 007", Command::Retr(7)),
            ("RETR 99999999999999999999999", Command::Retr(u64::MAX)),
            ("DELE 3", Command::Dele(3)),
            ("TOP 1 0", Command::Top(1, 0)),
            ("top 2 10", Command::Top(2, 10)),
        ];
        for (line, want) in table {
            assert_eq!(parse(line), Ok(want), "{line:?}");
        }
    }

    #[test]
    fn bad_command_lines_are_refused() {
        let syntax = Error::Syntax;
        let table: &[(&str, Error)] = &[
            ("", Error::UnknownCommand),
            ("XYZZY", Error::UnknownCommand),
            ("LS", Error::UnknownCommand),
            ("LISTS", Error::UnknownCommand),
            ("RET1 1", Error::UnknownCommand),
            (" STAT", Error::UnknownCommand),
            ("STAT\t", Error::UnknownCommand),
            ("HELO x", Error::UnknownCommand),
            ("USER", syntax("missing user name")),
            ("USER a b", syntax("too many arguments")),
            ("PASS", syntax("missing password")),
            ("PASS ", syntax("missing password")),
            ("AUTH PLAIN a b", syntax("too many arguments")),
            ("STAT 1", syntax("too many arguments")),
            ("QUIT now", syntax("too many arguments")),
            ("LIST x", syntax("invalid message number")),
            ("LIST -1", syntax("invalid message number")),
            ("LIST +1", syntax("invalid message number")),
            ("LIST 1 2", syntax("too many arguments")),
            ("UIDL 1x", syntax("invalid message number")),
            ("RETR", syntax("missing message number")),
            ("RETR 1 2", syntax("too many arguments")),
            ("DELE one", syntax("invalid message number")),
            ("TOP", syntax("missing message number")),
            ("TOP 1", syntax("missing line count")),
            ("TOP 1 x", syntax("invalid line count")),
            ("TOP x 1", syntax("invalid message number")),
            ("TOP 1 2 3", syntax("too many arguments")),
        ];
        for (line, want) in table {
            assert_eq!(parse(line), Err(*want), "{line:?}");
        }
    }

    #[test]
    fn password_debug_hides_the_password() {
        let c = parse("PASS hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
