//! golub-bench command line: parses options, runs a load generator, prints its report.
//!
//! Exit status: 0 when everything planned succeeded, 1 when any message or
//! round failed (or the run stopped early), 2 when the run could not be made.

use std::process::ExitCode;
use std::time::Duration;

use clap::builder::styling::Style;
use clap::{Args, Parser, Subcommand};
use golub_bench::imap::{parse_mix, users};
use golub_bench::message::forward_paths;
use golub_bench::pop3::Password;
use golub_bench::{ImapOpts, Pop3Opts, SmtpOpts, run_imap, run_pop3, run_smtp};

/// Load generator for SMTP, POP3 and IMAP servers.
#[derive(Debug, Parser)]
#[command(name = "golub-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Submit generated messages over SMTP from concurrent sessions.
    Smtp(SmtpArgs),
    /// Log in over POP3 and retrieve every message, repeatedly.
    Pop3(Pop3Args),
    /// Run an IMAP client's command mix from concurrent sessions, and hold IDLE sessions.
    Imap(ImapArgs),
}

#[derive(Debug, Args)]
#[command(after_help = smtp_after_help())]
struct SmtpArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2525")]
    addr: String,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Messages to send in total, shared by all sessions.
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Bytes per message, headers included.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Keep one connection per session instead of one per message.
    #[arg(long)]
    reuse: bool,
    /// Send MAIL, RCPT and DATA in one write (RFC 2920); the server must offer PIPELINING.
    #[arg(long)]
    pipelining: bool,
    /// Recipients per message.
    #[arg(long, default_value_t = 1)]
    rcpts: usize,
    /// Reverse-path for MAIL FROM and the From header.
    #[arg(long, default_value = "bench@example.org")]
    from: String,
    #[arg(long, default_value = "user@example.org", help = to_help())]
    to: String,
    /// Seconds after which sessions stop after their current message.
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
    /// Name sent in EHLO.
    #[arg(long, default_value = "bench.example")]
    helo: String,
    /// Seconds to wait for a connect, a reply, or a write.
    #[arg(long, default_value_t = 30)]
    io_timeout: u64,
    /// Failures in a row that stop the run.
    #[arg(long, default_value_t = 100)]
    max_errors: u32,
    /// Print one JSON line instead of the text block.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct Pop3Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2110")]
    addr: String,
    /// Concurrent sessions, all as the same user.
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Mailbox to log in to.
    #[arg(long)]
    user: String,
    /// Password for that mailbox.
    #[arg(long, env = "GOLUB_BENCH_PASSWORD", hide_env_values = true)]
    password: String,
    /// Rounds per session: connect, log in, RETR everything, QUIT (no DELE).
    #[arg(long, default_value_t = 10)]
    rounds: u64,
    /// Seconds after which sessions stop after their current round.
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
    /// Seconds to wait for a connect, a line, or a write.
    #[arg(long, default_value_t = 30)]
    io_timeout: u64,
    /// Failed rounds in a row that stop the run.
    #[arg(long, default_value_t = 100)]
    max_errors: u32,
    /// Print one JSON line instead of the text block.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = imap_after_help())]
struct ImapArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2143")]
    addr: String,
    /// Concurrent sessions running the mix (0 with --idle: only hold IDLE sessions).
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Extra sessions that log in, SELECT and IDLE for the whole run.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    #[arg(long, help = user_help())]
    user: String,
    /// How many users the template in --user stands for (session i is user i mod this).
    #[arg(long, default_value_t = 1)]
    user_count: usize,
    /// Password of every user.
    #[arg(long, env = "GOLUB_BENCH_PASSWORD", hide_env_values = true)]
    password: String,
    /// Mailbox to SELECT and APPEND to.
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
    /// Steps of a round, comma-separated, or "all" (see below).
    #[arg(long, default_value = "all")]
    mix: String,
    /// Log in on a new connection at every round (and LOGOUT at its end).
    #[arg(long)]
    relogin: bool,
    /// Seconds after which sessions stop after their current round; IDLE sessions are
    /// held as long (with --sessions 0: for this long once all are in IDLE).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Rounds per session; 0 for as many as --seconds allows.
    #[arg(long, default_value_t = 0)]
    rounds: u64,
    /// APPEND at one round in this many, per session; 0 never.
    #[arg(long, default_value_t = 10)]
    append_every: u64,
    /// Bytes of each appended message.
    #[arg(long, default_value_t = 2048)]
    append_size: usize,
    /// Seconds to wait for a connect, a line, or a write.
    #[arg(long, default_value_t = 30)]
    io_timeout: u64,
    /// Failed rounds in a row that stop the run.
    #[arg(long, default_value_t = 100)]
    max_errors: u32,
    /// Print one JSON line instead of the text block.
    #[arg(long)]
    json: bool,
}

/// `{n}` for help texts, which clap would otherwise turn into a newline.
///
/// A style change between `{` and `n` keeps clap's plain-text replace from
/// matching; the escape codes are dropped when help goes to a non-terminal.
fn placeholder() -> String {
    let bold = Style::new().bold();
    format!("{bold}{{{bold:#}{bold}n}}{bold:#}")
}

fn to_help() -> String {
    format!(
        "Forward-path template: comma list, {} is the recipient index (see below)",
        placeholder()
    )
}

fn user_help() -> String {
    format!(
        "Login name; {} in it is the user index (see --user-count)",
        placeholder()
    )
}

fn imap_after_help() -> String {
    String::from(
        "A round runs, in this order, the steps named in --mix: select (SELECT), \
         fetch_flags (FETCH 1:* (UID FLAGS)), fetch_body (UID FETCH <a UID of the last \
         fetch_flags> (BODY.PEEK[])), search (UID SEARCH SUBJECT <word>, the words of \
         bench/imap-fill.py in turn), store (UID STORE <uid> +FLAGS (\\Seen), -FLAGS the \
         next round), append (APPEND of an --append-size message every --append-every \
         rounds), noop (NOOP). A session logs in once unless --relogin.\n\n\
         Latency is per command, from its first byte sent to its tagged reply. A tagged \
         NO or BAD is an error of that command; a broken connection also ends the round. \
         With --idle, the line \"idle: N sessions in IDLE\" goes to stderr once all \
         are idling.",
    )
}

fn smtp_after_help() -> String {
    let n = placeholder();
    format!(
        "Recipients: recipient i (0-based, i < --rcpts) is entry i mod len of the \
         comma-separated --to list, with every {n} replaced by i. \
         --rcpts 3 --to 'user{n}@example.org' gives user0, user1 and user2; \
         --rcpts 2 --to 'a@x.org,b@x.org' gives a and b. \
         Lists that would repeat an address are refused.\n\n\
         Latency is measured per message: from MAIL with --reuse, from the connect \
         without it, until the 250 after the final dot."
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("golub-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs one command and prints its report; `Ok(true)` if nothing failed.
async fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Smtp(a) => {
            let opts = SmtpOpts {
                addr: a.addr,
                sessions: a.sessions,
                messages: a.messages,
                size: a.size,
                reuse: a.reuse,
                pipelining: a.pipelining,
                forward_paths: forward_paths(&a.to, a.rcpts)?,
                reverse_path: a.from,
                helo: a.helo,
                time_limit: Duration::from_secs(a.time_limit),
                io_timeout: Duration::from_secs(a.io_timeout),
                max_consecutive_errors: a.max_errors,
            };
            let report = run_smtp(opts).await?;
            if report.size != a.size {
                eprintln!(
                    "golub-bench: note: messages are {} bytes, the smallest size the headers allow",
                    report.size
                );
            }
            if a.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.human());
            }
            Ok(report.all_accepted())
        }
        Command::Pop3(a) => {
            let mut opts = Pop3Opts::new(a.addr, a.user, Password::new(a.password));
            opts.sessions = a.sessions;
            opts.rounds = a.rounds;
            opts.time_limit = Duration::from_secs(a.time_limit);
            opts.io_timeout = Duration::from_secs(a.io_timeout);
            opts.max_consecutive_errors = a.max_errors;
            let report = run_pop3(opts).await?;
            if a.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.human());
            }
            Ok(report.all_done())
        }
        Command::Imap(a) => {
            let mut opts = ImapOpts::new(a.addr, "", Password::new(a.password));
            opts.users = users(&a.user, a.user_count)?;
            opts.sessions = a.sessions;
            opts.idle = a.idle;
            opts.mailbox = a.mailbox;
            opts.mix = parse_mix(&a.mix)?;
            opts.relogin = a.relogin;
            opts.rounds = a.rounds;
            opts.append_every = a.append_every;
            opts.append_size = a.append_size;
            opts.time_limit = Duration::from_secs(a.seconds);
            opts.io_timeout = Duration::from_secs(a.io_timeout);
            opts.max_consecutive_errors = a.max_errors;
            let report = run_imap(opts).await?;
            if a.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.human());
            }
            Ok(report.all_done())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn smtp_help_shows_the_recipient_placeholder() {
        let mut cli = Cli::command();
        let smtp = cli.find_subcommand_mut("smtp").unwrap();
        let help = smtp.render_long_help().to_string();
        assert!(help.contains("--to 'user{n}@example.org'"), "{help}");
    }

    #[test]
    fn smtp_flags_parse() {
        let cli = Cli::try_parse_from([
            "golub-bench",
            "smtp",
            "--addr",
            "127.0.0.1:25",
            "--sessions",
            "50",
            "--messages",
            "10000",
            "--size",
            "4096",
            "--reuse",
            "--pipelining",
            "--rcpts",
            "2",
            "--to",
            "u{n}@example.org",
            "--json",
        ])
        .unwrap();
        let Command::Smtp(a) = cli.command else {
            panic!("not smtp")
        };
        assert!(a.reuse && a.pipelining && a.json);
        assert_eq!((a.sessions, a.messages, a.rcpts), (50, 10000, 2));
    }

    #[test]
    fn imap_flags_parse() {
        let cli = Cli::try_parse_from([
            "golub-bench",
            "imap",
            "--sessions",
            "20",
            "--idle",
            "1000",
            "--user",
            "u{n}@example.org",
            "--user-count",
            "4",
            "--password",
            "x",
            "--mix",
            "select,noop",
            "--relogin",
        ])
        .unwrap();
        let Command::Imap(a) = cli.command else {
            panic!("not imap")
        };
        assert!(a.relogin);
        assert_eq!((a.sessions, a.idle, a.user_count), (20, 1000, 4));
        assert_eq!(a.addr, "127.0.0.1:2143");
    }
}
