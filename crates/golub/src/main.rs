//! The `golub` command: runs the mail server and administers its data directory.
//!
//! Admin commands open the same store as a running server (SQLite in WAL mode lets both
//! work at once), so users, domains and aliases can be changed without a restart.

mod sendmail;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use golub_server::control::{self, Request, Response};
use golub_server::{Config, Server};
use golub_store::{Store, hash_password};
use golub_types::{Domain, Mailbox};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "golub",
    version,
    about = "Golub: a complete Internet mail server"
)]
struct Cli {
    /// Configuration file (TOML); without one, the embedded defaults apply.
    #[arg(long, global = true, value_name = "FILE", env = "GOLUB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the mail server.
    Serve,
    /// Manage local domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Manage users (mailboxes).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage aliases and mailing lists (an alias with several targets).
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Look at the mail queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Queue a message read from stdin, as sendmail does (also run as `sendmail`).
    #[command(disable_help_flag = true)]
    Sendmail(sendmail::SendmailArgs),
    /// Check the store's consistency (with the server stopped); --repair fixes what it can.
    CheckStore {
        /// Fix refcounts, remove dangling rows and orphan files, quarantine broken queue
        /// entries, raise folder counters.
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Subcommand)]
enum DomainCmd {
    /// Add a local domain.
    Add { domain: String },
    /// List local domains.
    List,
    /// Remove a local domain that has no users or aliases left.
    Remove { domain: String },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; asks for the password unless --password is given.
    Add {
        address: String,
        #[arg(long)]
        password: Option<String>,
        /// The user's full name (shown by VRFY when enabled).
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List,
    /// Remove a user and all of its mail.
    Remove { address: String },
    /// Change a user's password; asks for it unless --password is given.
    Passwd {
        address: String,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
enum AliasCmd {
    /// Point an address at one target (an alias) or several (a mailing list).
    Add {
        address: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List aliases and lists with their targets.
    List,
    /// Remove an alias, or only the given targets of it.
    Remove {
        address: String,
        targets: Vec<String>,
    },
}

#[derive(Subcommand)]
enum QueueCmd {
    /// List the messages waiting in the queue, with each recipient's state.
    List {
        /// One JSON document (an array of messages) instead of text, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show one queued message: its envelope, each recipient's state and attempts, and
    /// the message's header section.
    Show {
        /// The queue id, as `golub queue list` prints it.
        id: String,
    },
    /// Make waiting recipients due now: all of them, one message's, or one domain's.
    Flush {
        /// Only this message (a queue id, as `golub queue list` prints it).
        #[arg(conflicts_with = "domain")]
        id: Option<String>,
        /// Only recipients at this domain.
        #[arg(long, value_name = "DOMAIN")]
        domain: Option<String>,
    },
    /// Put a message on hold: it is not tried until released.
    Hold { id: String },
    /// Release a held message and make its recipients due now.
    Release { id: String },
    /// Remove a message from the queue; its sender gets a bounce report unless --silent.
    Delete {
        id: String,
        /// Tell the sender nothing.
        #[arg(long)]
        silent: bool,
    },
}

/// glibc gives busy threads their own malloc arenas (up to eight per core) and keeps
/// what they freed: after a burst of large reads the server would hold hundreds of MB
/// it no longer uses. `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator tunable; it is called first in main,
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Installed (or linked) as `sendmail`, the binary is `golub sendmail`.
    let as_sendmail = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "sendmail");
    if as_sendmail {
        args.insert(1, "sendmail".into());
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        // sendmail's callers expect EX_USAGE for a bad command line.
        Err(e) if e.use_stderr() && args.iter().skip(1).any(|a| a == "sendmail") => {
            let _ = e.print();
            return ExitCode::from(64);
        }
        Err(e) => e.exit(),
    };
    if let Command::Sendmail(args) = cli.command {
        let config = load_config(&cli.config);
        return sendmail::run(config, args, &mut std::io::stdin().lock());
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("golub: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load_config(path: &Option<PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn open_store(config: &Config) -> Result<Store> {
    Store::open(&config.data_dir).with_context(|| {
        format!(
            "cannot open the data directory {}",
            config.data_dir.display()
        )
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Serve => serve(config),
        Command::Domain(cmd) => domain(&open_store(&config)?, cmd),
        Command::User(cmd) => user(&open_store(&config)?, cmd),
        Command::Alias(cmd) => alias(&open_store(&config)?, cmd),
        Command::Queue(QueueCmd::List { json }) => queue_list(&open_store(&config)?, json),
        Command::Queue(QueueCmd::Show { id }) => queue_show(&open_store(&config)?, &id),
        Command::Queue(QueueCmd::Flush { id, domain }) => {
            let request = match (id, domain) {
                (Some(id), _) => Request::Flush(Some(parse_queue_id(&id)?)),
                (None, Some(d)) => Request::FlushDomain(parse_domain(&d)?),
                (None, None) => Request::Flush(None),
            };
            return queue_control(&config, request);
        }
        Command::Queue(QueueCmd::Hold { id }) => {
            return queue_control(&config, Request::Hold(parse_queue_id(&id)?));
        }
        Command::Queue(QueueCmd::Release { id }) => {
            return queue_control(&config, Request::Release(parse_queue_id(&id)?));
        }
        Command::Queue(QueueCmd::Delete { id, silent }) => {
            let id = parse_queue_id(&id)?;
            return queue_control(&config, Request::Delete { id, silent });
        }
        // main runs it before loading the configuration, for sendmail's exit codes.
        Command::Sendmail(args) => {
            return Ok(sendmail::run(
                Ok(config),
                args,
                &mut std::io::stdin().lock(),
            ));
        }
        Command::CheckStore { repair } => return check_store(&open_store(&config)?, repair),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn parse_queue_id(id: &str) -> Result<golub_types::QueueId> {
    id.parse()
        .map_err(|_| anyhow::anyhow!("{id}: not a queue id (see golub queue list)"))
}

/// How long to wait for a running server's reply on the control socket.
const CONTROL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Sends `request` to the server running on the data directory; `None` when none is
/// running (no socket, or a socket that nobody answers: what a crash leaves).
pub(crate) fn ask_server(config: &Config, request: &Request) -> Result<Option<Response>> {
    use std::io::{BufRead, Write};
    let path = control::socket_path(&config.data_dir);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot connect to {}", path.display())),
    };
    stream.set_read_timeout(Some(CONTROL_TIMEOUT))?;
    stream.set_write_timeout(Some(CONTROL_TIMEOUT))?;
    stream
        .write_all(format!("{}\n", request.to_line()).as_bytes())
        .context("cannot send the request to the server")?;
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .context("no reply from the server")?;
    Ok(Some(Response::parse(&line)))
}

/// `golub queue flush|hold|release|delete`: asks the running server, or without one does
/// the same on the store (a bounce then waits in the queue for the next start).
fn queue_control(config: &Config, request: Request) -> Result<ExitCode> {
    let response = match ask_server(config, &request)? {
        Some(r) => r,
        None => {
            let store = open_store(config)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let r = runtime.block_on(control::execute(&store, None, &config.hostname, request));
            println!("no server running: done on the store; delivery follows at the next start");
            r
        }
    };
    Ok(match response {
        Response::Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Response::Err(text) => {
            eprintln!("golub: {text}");
            ExitCode::from(1)
        }
    })
}

/// Exit 0 when the store is consistent (or was repaired into it), 1 when problems remain.
fn check_store(store: &Store, repair: bool) -> Result<ExitCode> {
    let report = store.check(repair)?;
    println!("{report}");
    Ok(if report.remaining == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn serve(config: Config) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let data_dir = std::path::absolute(&config.data_dir).unwrap_or(config.data_dir.clone());
        let hostname = config.hostname.clone();
        let server = Server::start(config).await?;
        println!("golub: {hostname}: data in {}", data_dir.display());
        let tls = server.tls_source();
        println!(
            "golub: tls certificate {}{}",
            tls.cert.display(),
            if tls.self_signed {
                " (self-signed)"
            } else {
                ""
            }
        );
        for (proto, addr) in &server.listeners {
            println!("golub: listening for {proto} on {addr}");
        }
        if server.listeners.is_empty() {
            println!("golub: no listener configured");
        }
        wait_for_signal(&server).await;
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok(())
    })
}

/// Waits for SIGINT or SIGTERM; SIGHUP re-reads the TLS certificate meanwhile.
async fn wait_for_signal(server: &Server) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => {
                if let Err(e) = server.reload_tls() {
                    tracing::error!(error = %e, "cannot reload the TLS certificate; keeping the old one");
                }
            }
        }
    }
}

fn parse_domain(s: &str) -> Result<String> {
    let d = Domain::parse(s, true).map_err(|e| anyhow::anyhow!("{s:?} is not a domain: {e}"))?;
    if d.is_literal() {
        bail!("{s:?}: an address literal cannot be a local domain");
    }
    Ok(d.as_str().to_string())
}

fn parse_address(s: &str) -> Result<String> {
    let m = Mailbox::parse(s, true)
        .map_err(|e| anyhow::anyhow!("{s:?} is not an address like user@example.org: {e}"))?;
    Ok(m.canonical())
}

fn read_password(given: Option<String>, address: &str) -> Result<String> {
    if let Some(p) = given {
        if p.is_empty() {
            bail!("the password must not be empty");
        }
        return Ok(p);
    }
    let p = rpassword::prompt_password(format!("Password for {address}: "))
        .context("cannot read the password (give --password when not on a terminal)")?;
    let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if p != again {
        bail!("the passwords do not match");
    }
    if p.is_empty() {
        bail!("the password must not be empty");
    }
    Ok(p)
}

fn domain(store: &Store, cmd: DomainCmd) -> Result<()> {
    match cmd {
        DomainCmd::Add { domain } => {
            let d = parse_domain(&domain)?;
            store.add_domain(&d)?;
            println!("added domain {d}");
        }
        DomainCmd::List => {
            for d in store.list_domains()? {
                println!("{d}");
            }
        }
        DomainCmd::Remove { domain } => {
            let d = parse_domain(&domain)?;
            store.remove_domain(&d)?;
            println!("removed domain {d}");
        }
    }
    Ok(())
}

fn user(store: &Store, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add {
            address,
            password,
            name,
        } => {
            let a = parse_address(&address)?;
            let p = read_password(password, &a)?;
            let u = store.add_user(&a, name.as_deref().unwrap_or(""), hash_password(&p)?)?;
            println!("added user {}", u.address);
        }
        UserCmd::List => {
            for u in store.list_users()? {
                if u.name.is_empty() {
                    println!("{}", u.address);
                } else {
                    println!("{}\t{}", u.address, u.name);
                }
            }
        }
        UserCmd::Remove { address } => {
            let a = parse_address(&address)?;
            store.remove_user(&a)?;
            println!("removed user {a}");
        }
        UserCmd::Passwd { address, password } => {
            let a = parse_address(&address)?;
            if store.user(&a)?.is_none() {
                bail!("no user {a}");
            }
            let p = read_password(password, &a)?;
            store.set_password(&a, hash_password(&p)?)?;
            println!("changed the password of {a}");
        }
    }
    Ok(())
}

fn alias(store: &Store, cmd: AliasCmd) -> Result<()> {
    match cmd {
        AliasCmd::Add { address, targets } => {
            let a = parse_address(&address)?;
            let t = targets
                .iter()
                .map(|t| parse_address(t))
                .collect::<Result<Vec<_>>>()?;
            store.add_alias(&a, &t)?;
            println!("{a} -> {}", t.join(", "));
        }
        AliasCmd::List => {
            for e in store.list_aliases()? {
                println!("{}\t{}", e.address, e.targets.join(", "));
            }
        }
        AliasCmd::Remove { address, targets } => {
            let a = parse_address(&address)?;
            let t = targets
                .iter()
                .map(|t| parse_address(t))
                .collect::<Result<Vec<_>>>()?;
            store.remove_alias(&a, &t)?;
            println!("removed alias {a}");
        }
    }
    Ok(())
}

fn queue_list(store: &Store, json: bool) -> Result<()> {
    let entries = store.queue_entries()?;
    if json {
        let list: Vec<String> = entries.iter().map(queue_entry_json).collect();
        println!("[{}]", list.join(","));
        return Ok(());
    }
    for m in &entries {
        println!(
            "{}  {}  {} bytes  {}",
            m.id,
            golub_server::cleanup::rfc5322_date(m.received_at),
            m.blob_size,
            sender(m)
        );
        for r in &m.recipients {
            let state = rcpt_state(r);
            if r.last_reply.is_empty() {
                println!("    <{}>  {state}", r.address);
            } else {
                println!("    <{}>  {state}: {}", r.address, r.last_reply);
            }
        }
    }
    println!("{} message(s) in the queue", entries.len());
    Ok(())
}

/// How much of a message `queue show` reads to find its header section.
const SHOW_HEADER_LIMIT: usize = 64 * 1024;

fn queue_show(store: &Store, id: &str) -> Result<()> {
    let qid: golub_types::QueueId = id
        .parse()
        .map_err(|_| anyhow::anyhow!("{id}: not a queue id (see golub queue list)"))?;
    let m = store
        .queued_message(qid)?
        .ok_or_else(|| anyhow::anyhow!("{id}: no such message in the queue"))?;
    println!("queue id:  {}", m.id);
    println!(
        "received:  {}",
        golub_server::cleanup::rfc5322_date(m.received_at)
    );
    println!("size:      {} bytes", m.blob_size);
    println!("sender:    {}", sender(&m));
    for r in &m.recipients {
        let orig = if r.orig_address != r.address {
            format!(" (for <{}>)", r.orig_address)
        } else {
            String::new()
        };
        println!(
            "recipient: <{}>{orig}  {}, {} attempt(s), next {}",
            r.address,
            rcpt_state(r),
            r.attempts,
            golub_server::cleanup::rfc5322_date(r.next_attempt)
        );
        if !r.last_reply.is_empty() {
            println!("           last reply: {}", r.last_reply);
        }
    }
    let head = store.read_blob_prefix(m.blob_id, SHOW_HEADER_LIMIT)?;
    let section = golub_server::dsn::header_section(&head, SHOW_HEADER_LIMIT);
    println!();
    print!("{}", String::from_utf8_lossy(section));
    if section.len() == SHOW_HEADER_LIMIT {
        println!("[header section longer than {SHOW_HEADER_LIMIT} bytes, cut]");
    }
    Ok(())
}

fn sender(m: &golub_store::QueuedMessage) -> String {
    format!("<{}>", m.reverse_path)
}

fn rcpt_state(r: &golub_store::QueuedRecipient) -> String {
    format!("{:?}", r.status).to_lowercase()
}

/// One queue entry as a JSON object.
fn queue_entry_json(m: &golub_store::QueuedMessage) -> String {
    let recipients: Vec<String> = m
        .recipients
        .iter()
        .map(|r| {
            format!(
                "{{\"address\":{},\"original\":{},\"state\":{},\"attempts\":{},\"next_attempt\":{},\"last_reply\":{}}}",
                json_string(&r.address),
                json_string(&r.orig_address),
                json_string(&rcpt_state(r)),
                r.attempts,
                r.next_attempt,
                json_string(&r.last_reply)
            )
        })
        .collect();
    format!(
        "{{\"id\":{},\"received_at\":{},\"size\":{},\"sender\":{},\"recipients\":[{}]}}",
        json_string(&m.id.to_string()),
        m.received_at,
        m.blob_size,
        json_string(&m.reverse_path),
        recipients.join(",")
    )
}

/// A JSON string literal (RFC 8259 §7).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
