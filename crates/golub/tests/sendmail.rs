//! `golub sendmail` (and the binary run as `sendmail`) against a running `golub serve`,
//! and the queue commands that talk to it over the control socket. Waits poll the store
//! with a deadline.

use golub_store::Store;
use golub_testkit::DEADLINE;
use golub_testkit::serve::GolubProcess;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_golub");

/// Runs `cmd` with `input` on its stdin.
fn with_input(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("golub runs");
    // A command that fails early does not read its input: a broken pipe is no error.
    let _ = child.stdin.take().expect("piped stdin").write_all(input);
    child.wait_with_output().expect("golub ends")
}

fn sendmail(p: &GolubProcess, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = p.command();
    cmd.arg("sendmail").args(args).env("USER", "cron");
    with_input(cmd, input)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The queue id that `sendmail -v` reports.
fn queued_id(o: &Output) -> String {
    let e = stderr(o);
    let rest = e.split("queued as ").nth(1).expect("a queue id");
    rest.split_whitespace().next().unwrap().to_string()
}

/// Polls `user`'s INBOX until it holds `n` messages; they, as text.
fn wait_for_inbox(p: &GolubProcess, user: &str, n: usize) -> Vec<String> {
    let store = Store::open(p.data_dir()).expect("open the store");
    let start = Instant::now();
    loop {
        let msgs = golub_testkit::inbox(&store, user);
        if msgs.len() >= n {
            return msgs
                .iter()
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{user} has {} message(s), expected {n}:\n{}",
            msgs.len(),
            p.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn running_server() -> GolubProcess {
    let mut p = GolubProcess::new(BIN);
    p.seed();
    p.start();
    p
}

#[test]
fn sendmail_t_queues_for_the_header_recipients_and_a_running_server_delivers() {
    let p = running_server();
    let o = sendmail(
        &p,
        &["-t", "-oi", "-v", "-odb", "-oem"],
        b"To: Alice <alice@example.org>\nBcc: alice@example.org\nSubject: from cron\n\nhello\n.\nstill the body\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("handed to the running server"),
        "{}",
        stderr(&o)
    );
    let inbox = wait_for_inbox(&p, "alice@example.org", 1);
    let m = &inbox[0];
    assert!(
        m.contains("Received: by mx.example.org (Golub sendmail, from user cron)"),
        "{m}"
    );
    assert!(m.contains("Return-Path: <cron@mx.example.org>\r\n"), "{m}");
    assert!(m.contains("From: <cron@mx.example.org>\r\n"), "{m}");
    assert!(m.contains("Message-ID: <"), "{m}");
    assert!(m.contains("Date: "), "{m}");
    assert!(!m.contains("Bcc"), "{m}");
    assert!(
        m.ends_with("\r\n\r\nhello\r\n.\r\nstill the body\r\n"),
        "{m}"
    );
}

#[test]
fn without_i_a_lone_dot_ends_the_message() {
    let p = running_server();
    let o = sendmail(
        &p,
        &["-f", "root", "-F", "The Root", "alice@example.org"],
        b"Subject: dots\n\nbefore\n.\nafter\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m = &wait_for_inbox(&p, "alice@example.org", 1)[0];
    assert!(
        m.contains("From: \"The Root\" <root@mx.example.org>\r\n"),
        "{m}"
    );
    assert!(m.ends_with("\r\n\r\nbefore\r\n"), "{m}");
    assert!(!m.contains("after"), "{m}");
}

#[test]
fn run_as_sendmail_it_is_golub_sendmail() {
    let p = running_server();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sendmail");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let mut cmd = Command::new(&link);
    cmd.env("GOLUB_CONFIG", p.config_path())
        .env("USER", "www")
        .args(["-i", "alice@example.org"]);
    let o = with_input(cmd, b"Subject: php mail()\r\n\r\nhi\r\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let m = &wait_for_inbox(&p, "alice@example.org", 1)[0];
    assert!(m.contains("Subject: php mail()\r\n"), "{m}");
    assert!(m.contains("Return-Path: <www@mx.example.org>"), "{m}");

    let mut cmd = Command::new(&link);
    cmd.env("GOLUB_CONFIG", p.config_path()).arg("-x");
    let o = with_input(cmd, b"");
    assert_eq!(
        o.status.code(),
        Some(64),
        "an unknown flag is a usage error"
    );
}

#[test]
fn usage_errors_exit_64_and_an_unusable_store_75() {
    let p = GolubProcess::new(BIN);
    let o = sendmail(&p, &[], b"Subject: nobody\n\nhi\n");
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    let o = sendmail(&p, &["-t"], b"Subject: nobody\n\nhi\n");
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    let o = sendmail(&p, &["-bs", "a@example.org"], b"");
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("golub.toml");
    std::fs::write(&config, "data_dir = \"/dev/null/nowhere\"\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&config)
        .args(["sendmail", "a@example.org"]);
    let o = with_input(cmd, b"Subject: x\n\nhi\n");
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
}

#[test]
fn queue_commands_reach_the_running_server_or_else_the_store() {
    let mut p = GolubProcess::new(BIN);
    p.seed();
    // No server yet: the message waits, and the commands work on the store.
    let o = sendmail(
        &p,
        &["-v", "-f", "alice@example.org", "friend@far.example"],
        b"Subject: far away\n\nhi\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no server running"), "{}", stderr(&o));
    let id = queued_id(&o);
    let o = p.command().args(["queue", "hold", &id]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("no server running"), "{}", stdout(&o));
    assert!(stdout(&o).contains(&format!("{id} held")), "{}", stdout(&o));

    p.start();
    let o = p
        .command()
        .args(["queue", "release", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{id} released\n"));
    let o = p
        .command()
        .args(["queue", "flush", "--domain", "far.example"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("far.example: "), "{}", stdout(&o));
    let o = p.command().args(["queue", "flush"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let o = p.command().args(["queue", "delete", &id]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("bounce"), "{}", stdout(&o));
    let m = &wait_for_inbox(&p, "alice@example.org", 1)[0];
    assert!(
        m.contains("5.0.0 deleted from the queue by the administrator"),
        "{m}"
    );

    let o = p.command().args(["queue", "hold", &id]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no such message"), "{}", stderr(&o));
    let o = p
        .command()
        .args(["queue", "hold", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn dsn_flags_reach_the_queue_and_notify_never_means_no_bounce_on_delete() {
    let p = running_server();
    let o = sendmail(
        &p,
        &[
            "-v",
            "-N",
            "never",
            "-R",
            "hdrs",
            "-V",
            "cron-7",
            "-f",
            "alice@example.org",
            "friend@far.example",
        ],
        b"Subject: nobody wants to hear\n\nhi\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let id = queued_id(&o);
    let store = Store::open(p.data_dir()).unwrap();
    let m = store.queued_message(id.parse().unwrap()).unwrap().unwrap();
    assert_eq!((m.ret.as_str(), m.envid.as_str()), ("HDRS", "cron-7"));
    assert_eq!(m.recipients[0].notify, "NEVER");
    let o = p.command().args(["queue", "delete", &id]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("no report"), "{}", stdout(&o));
    assert!(
        store.queue_entries().unwrap().is_empty(),
        "no bounce queued"
    );

    let o = sendmail(&p, &["-N", "sometimes", "alice@example.org"], b"hi\n");
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
}
