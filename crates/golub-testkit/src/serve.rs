//! `golub serve` as a child process, for the tests of the binary: a configuration in a
//! temporary directory (SMTP and IMAP on free loopback ports, no other listener), the admin
//! commands ([`run_golub`] for any configuration), start with a wait for the listener (polled with a deadline), kill, restart.
//! Dropping it kills the server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::DEADLINE;

/// A `golub serve` process and its configuration.
pub struct GolubProcess {
    bin: PathBuf,
    config: PathBuf,
    data: PathBuf,
    log: PathBuf,
    /// The SMTP listener's port on 127.0.0.1.
    pub smtp_port: u16,
    /// The IMAP listener's port on 127.0.0.1 (STARTTLS; plaintext logins only if the
    /// test allows them).
    pub imap_port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl GolubProcess {
    /// Writes `golub.toml` for hostname `mx.example.org` with its data in `data/` of a new
    /// temporary directory. `bin` is the binary, `env!("CARGO_BIN_EXE_golub")`.
    pub fn new(bin: &str) -> GolubProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let smtp_port = free_port();
        let imap_port = free_port();
        let data = dir.path().join("data");
        let config = dir.path().join("golub.toml");
        std::fs::write(
            &config,
            format!(
                "hostname = \"mx.example.org\"\ndata_dir = \"{}\"\n[listen]\nsmtp = [\"127.0.0.1:{smtp_port}\"]\nsubmission = []\nsubmissions = []\nimap = [\"127.0.0.1:{imap_port}\"]\nimaps = []\npop3 = []\npop3s = []\n[delivery]\nrelay_host = \"{unreachable}\"\n[dns]\nservers = [\"{unreachable}\"]\n",
                data.display(),
                unreachable = crate::UNREACHABLE,
            ),
        )
        .expect("write golub.toml");
        GolubProcess {
            bin: bin.into(),
            config,
            data,
            log: dir.path().join("serve.log"),
            smtp_port,
            imap_port,
            child: None,
            _dir: dir,
        }
    }

    /// Appends `toml` (whole tables, such as `[routes]`) to the configuration.
    pub fn add_config(&self, toml: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .expect("open golub.toml");
        f.write_all(toml.as_bytes()).expect("write golub.toml");
    }

    /// The data directory (not created before the first command uses it).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The configuration file (`golub.toml`).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// `golub --config <golub.toml>`, to add arguments to.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config").arg(&self.config);
        c
    }

    /// Runs `golub <args>` and asserts that it succeeds.
    pub fn run(&self, args: &[&str]) {
        let status = self.command().args(args).status().expect("golub runs");
        assert!(status.success(), "golub {}: {status}", args.join(" "));
    }

    /// Adds `example.org` and `alice@example.org` (password `pw`).
    pub fn seed(&self) {
        self.run(&["domain", "add", "example.org"]);
        self.run(&["user", "add", "alice@example.org", "--password", "pw"]);
    }

    /// Starts `golub serve` (log level warn, stderr appended to [`Self::log`]) and waits
    /// until it says it listens for SMTP; panics if it exits or the deadline passes.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let mut child = self
            .command()
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("golub serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready, listening) = mpsc::channel();
        // Reads stdout to the end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening for smtp") {
                    let _ = ready.send(());
                }
            }
        });
        let started = Instant::now();
        loop {
            match listening.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("golub serve ended its output early:\n{}", self.log())
                }
            }
            if let Some(status) = child.try_wait().expect("child status") {
                panic!("golub serve exited with {status}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < DEADLINE,
                "golub serve did not listen in time:\n{}",
                self.log()
            );
        }
        self.child = Some(child);
    }

    /// Kills the server with SIGKILL and waits for it; nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// True while the started server has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("child status").is_none())
    }

    /// What the server wrote to stderr so far, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GolubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `bin --config <config> <args>` to its end (the admin commands of the binary).
pub fn run_golub(bin: &str, config: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("golub runs")
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}
