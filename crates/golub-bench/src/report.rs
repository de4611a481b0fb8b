//! Results of a run: per-session tallies, their merge, and the final output.
//!
//! Each session keeps its own [`Tally`] (no locks on the hot path); the run
//! merges them at the end into an [`SmtpReport`], [`Pop3Report`] or [`ImapReport`], printed
//! as one human-readable block or one hand-written JSON line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency the histogram resolves: one hour, in microseconds.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        // invariant: constant bounds 1 ≤ 2·1 ≤ high and 3 significant figures are valid.
        Latency(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"))
    }
}

impl Latency {
    /// Records one sample; values beyond an hour count as an hour.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(us.max(1));
    }

    /// Adds another histogram's samples to this one.
    pub fn merge(&mut self, other: &Latency) {
        // invariant: all histograms share the bounds set in `default`, so addition fits.
        self.0.add(&other.0).expect("histograms with equal bounds");
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Value at quantile `q` (0..=1) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    /// Largest sample in milliseconds; 0 when empty.
    pub fn max_ms(&self) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.max() as f64 / 1000.0
    }
}

/// Failures counted by key: an SMTP reply code (`"550"`), a POP3 stage
/// (`"-ERR pass"`), or a transport failure (`"io"`, `"timeout"`, `"closed"`,
/// `"protocol"`, `"connect"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors(BTreeMap<String, u64>);

impl Errors {
    /// Counts one failure under `key`.
    pub fn add(&mut self, key: impl Into<String>) {
        *self.0.entry(key.into()).or_default() += 1;
    }

    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: &Errors) {
        for (k, n) in &other.0 {
            *self.0.entry(k.clone()).or_default() += n;
        }
    }

    /// Total number of failures.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Count under `key`, 0 if none.
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    fn human(&self) -> String {
        let mut s = self.total().to_string();
        if !self.0.is_empty() {
            let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let _ = write!(s, " ({})", parts.join(", "));
        }
        s
    }

    fn json(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, n)| format!("{}:{n}", json_string(k)))
            .collect();
        format!("{{{}}}", parts.join(","))
    }
}

/// Why a run ended before its plan was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The plan was carried out.
    Completed,
    /// `--time-limit` passed.
    TimeLimit,
    /// Too many failures in a row.
    ConsecutiveErrors,
}

impl Stop {
    fn json(self) -> &'static str {
        match self {
            Stop::Completed => "null",
            Stop::TimeLimit => "\"time_limit\"",
            Stop::ConsecutiveErrors => "\"consecutive_errors\"",
        }
    }

    fn human(self) -> Option<&'static str> {
        match self {
            Stop::Completed => None,
            Stop::TimeLimit => Some("time limit reached"),
            Stop::ConsecutiveErrors => Some("too many consecutive errors"),
        }
    }
}

/// What one session did; merged into a report at the end.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// SMTP: messages accepted. POP3: rounds completed.
    pub ok: u64,
    /// POP3: messages retrieved.
    pub messages: u64,
    /// POP3: message bytes retrieved (after undoing dot-stuffing).
    pub bytes: u64,
    /// Failures by key.
    pub errors: Errors,
    /// SMTP: per message. POP3: per session round.
    pub latency: Latency,
}

impl Tally {
    /// Adds another session's tally to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.ok += other.ok;
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.errors.merge(&other.errors);
        self.latency.merge(&other.latency);
    }
}

/// Outcome of `golub-bench smtp`.
#[derive(Debug, Clone)]
pub struct SmtpReport {
    /// Concurrent sessions.
    pub sessions: usize,
    /// Messages planned (`--messages`).
    pub messages: u64,
    /// Bytes per message as sent (before dot-stuffing, without the final dot).
    pub size: usize,
    /// Recipients per message.
    pub rcpts: usize,
    /// Whether commands were pipelined (RFC 2920).
    pub pipelining: bool,
    /// Whether sessions kept their connection between messages.
    pub reuse: bool,
    /// Messages the server accepted with 250 after the final dot.
    pub accepted: u64,
    /// Failed messages by key.
    pub errors: Errors,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Per-message latency.
    pub latency: Latency,
    /// Why the run ended.
    pub stopped: Stop,
}

impl SmtpReport {
    /// True when every planned message was accepted.
    pub fn all_accepted(&self) -> bool {
        self.errors.total() == 0 && self.accepted == self.messages
    }

    /// Messages accepted per second.
    pub fn msgs_per_s(&self) -> f64 {
        per_second(self.accepted as f64, self.elapsed)
    }

    /// One human-readable block, ending in a newline.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "plan:        smtp, {}, {} sessions, {} messages of {} bytes, {} rcpt{}, pipelining {}",
            if self.reuse {
                "reused connections"
            } else {
                "one connection per message"
            },
            self.sessions,
            self.messages,
            self.size,
            self.rcpts,
            if self.rcpts == 1 { "" } else { "s" },
            if self.pipelining { "on" } else { "off" },
        );
        let _ = writeln!(s, "accepted:    {}", self.accepted);
        let _ = writeln!(s, "errors:      {}", self.errors.human());
        push_timing(
            &mut s,
            self.elapsed,
            self.msgs_per_s(),
            &self.latency,
            "message",
        );
        if let Some(why) = self.stopped.human() {
            let _ = writeln!(s, "stopped:     {why}");
        }
        s
    }

    /// One JSON object on a single line, without the newline.
    pub fn json(&self) -> String {
        format!(
            "{{\"mode\":\"smtp\",\"sessions\":{},\"messages\":{},\"size\":{},\"rcpts\":{},\
             \"pipelining\":{},\"reuse\":{},\"accepted\":{},\"errors\":{},\"elapsed_s\":{:.3},\
             \"msgs_per_s\":{:.1},{},\"stopped\":{}}}",
            self.sessions,
            self.messages,
            self.size,
            self.rcpts,
            self.pipelining,
            self.reuse,
            self.accepted,
            self.errors.json(),
            self.elapsed.as_secs_f64(),
            self.msgs_per_s(),
            latency_json(&self.latency),
            self.stopped.json(),
        )
    }
}

/// Outcome of `golub-bench pop3`.
#[derive(Debug, Clone)]
pub struct Pop3Report {
    /// Concurrent sessions.
    pub sessions: usize,
    /// Rounds planned per session (`--rounds`).
    pub rounds: u64,
    /// Rounds that went from greeting to QUIT without a failure.
    pub rounds_done: u64,
    /// Messages retrieved with RETR.
    pub messages: u64,
    /// Message bytes retrieved (after undoing dot-stuffing).
    pub bytes: u64,
    /// Failed rounds by key.
    pub errors: Errors,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Per-round latency, connect to the reply to QUIT.
    pub latency: Latency,
    /// Why the run ended.
    pub stopped: Stop,
}

impl Pop3Report {
    /// True when every planned round completed.
    pub fn all_done(&self) -> bool {
        self.errors.total() == 0 && self.rounds_done == self.rounds * self.sessions as u64
    }

    /// Messages retrieved per second.
    pub fn msgs_per_s(&self) -> f64 {
        per_second(self.messages as f64, self.elapsed)
    }

    /// Megabytes (10^6 bytes) retrieved per second.
    pub fn mb_per_s(&self) -> f64 {
        per_second(self.bytes as f64 / 1e6, self.elapsed)
    }

    /// One human-readable block, ending in a newline.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "plan:        pop3, {} sessions, {} rounds each",
            self.sessions, self.rounds
        );
        let _ = writeln!(s, "rounds done: {}", self.rounds_done);
        let _ = writeln!(
            s,
            "retrieved:   {} messages, {} bytes",
            self.messages, self.bytes
        );
        let _ = writeln!(s, "errors:      {}", self.errors.human());
        push_timing(
            &mut s,
            self.elapsed,
            self.msgs_per_s(),
            &self.latency,
            "round",
        );
        let _ = writeln!(s, "throughput:  {:.3} MB/s", self.mb_per_s());
        if let Some(why) = self.stopped.human() {
            let _ = writeln!(s, "stopped:     {why}");
        }
        s
    }

    /// One JSON object on a single line, without the newline.
    pub fn json(&self) -> String {
        format!(
            "{{\"mode\":\"pop3\",\"sessions\":{},\"rounds\":{},\"rounds_done\":{},\"messages\":{},\
             \"bytes\":{},\"errors\":{},\"elapsed_s\":{:.3},\"msgs_per_s\":{:.1},\
             \"mb_per_s\":{:.3},{},\"stopped\":{}}}",
            self.sessions,
            self.rounds,
            self.rounds_done,
            self.messages,
            self.bytes,
            self.errors.json(),
            self.elapsed.as_secs_f64(),
            self.msgs_per_s(),
            self.mb_per_s(),
            latency_json(&self.latency),
            self.stopped.json(),
        )
    }
}

/// An IMAP command kind, as counted in an [`ImapReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// LOGIN, with the connect and greeting before it not counted.
    Login,
    /// SELECT.
    Select,
    /// `FETCH 1:* (UID FLAGS)`.
    FetchFlags,
    /// `UID FETCH <uid> (BODY.PEEK[])`.
    FetchBody,
    /// `UID SEARCH SUBJECT <word>`.
    Search,
    /// `UID STORE <uid> ±FLAGS (\Seen)`.
    Store,
    /// APPEND of a small message.
    Append,
    /// NOOP.
    Noop,
    /// LOGOUT.
    Logout,
}

impl Kind {
    /// The name used by `--mix` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Select => "select",
            Kind::FetchFlags => "fetch_flags",
            Kind::FetchBody => "fetch_body",
            Kind::Search => "search",
            Kind::Store => "store",
            Kind::Append => "append",
            Kind::Noop => "noop",
            Kind::Logout => "logout",
        }
    }
}

/// What one kind of IMAP command did.
#[derive(Debug, Clone, Default)]
pub struct KindTally {
    /// Tagged OK replies.
    pub ok: u64,
    /// NO, BAD and broken connections, by key.
    pub errors: Errors,
    /// From the command's first byte sent to its tagged OK.
    pub latency: Latency,
    /// Literal bytes received (message text).
    pub bytes: u64,
    /// FETCH: responses with a UID; SEARCH: UIDs found.
    pub results: u64,
}

impl KindTally {
    /// Adds another tally of the same kind to this one.
    pub fn merge(&mut self, other: &KindTally) {
        self.ok += other.ok;
        self.errors.merge(&other.errors);
        self.latency.merge(&other.latency);
        self.bytes += other.bytes;
        self.results += other.results;
    }
}

/// Outcome of `golub-bench imap`.
#[derive(Debug, Clone)]
pub struct ImapReport {
    /// Concurrent mix sessions.
    pub sessions: usize,
    /// Whether every round logged in on a new connection.
    pub relogin: bool,
    /// The steps of a round.
    pub mix: Vec<&'static str>,
    /// Rounds that went through without a broken connection.
    pub rounds_done: u64,
    /// Per command kind, in [`Kind`] order.
    pub kinds: Vec<(Kind, KindTally)>,
    /// Rounds that ended early, by why.
    pub round_errors: Errors,
    /// Wall time of the mix sessions (of the IDLE hold without them).
    pub elapsed: Duration,
    /// IDLE sessions asked for.
    pub idle: usize,
    /// IDLE sessions whose IDLE was accepted.
    pub idle_reached: usize,
    /// IDLE sessions still idling when the run ended.
    pub idle_at_end: usize,
    /// Untagged responses pushed to IDLE sessions.
    pub idle_pushed: u64,
    /// IDLE sessions that failed, by why.
    pub idle_errors: Errors,
    /// Why the run ended.
    pub stopped: Stop,
}

impl ImapReport {
    /// Successful commands, all kinds.
    pub fn commands(&self) -> u64 {
        self.kinds.iter().map(|(_, t)| t.ok).sum()
    }

    /// Failed commands, failed rounds and failed IDLE sessions.
    pub fn error_total(&self) -> u64 {
        self.kinds
            .iter()
            .map(|(_, t)| t.errors.total())
            .sum::<u64>()
            + self.round_errors.total()
            + self.idle_errors.total()
    }

    /// True when nothing failed and every IDLE session lasted the run.
    pub fn all_done(&self) -> bool {
        self.error_total() == 0 && self.idle_at_end == self.idle
    }

    /// Successful commands per second.
    pub fn commands_per_s(&self) -> f64 {
        per_second(self.commands() as f64, self.elapsed)
    }

    /// One human-readable block, ending in a newline.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "plan:        imap, {} sessions{}, mix {}, {} idle sessions",
            self.sessions,
            if self.relogin {
                " logging in every round"
            } else {
                " logged in once"
            },
            self.mix.join(","),
            self.idle,
        );
        let _ = writeln!(s, "rounds done: {}", self.rounds_done);
        let _ = writeln!(s, "errors:      {}", self.error_total());
        if self.round_errors.total() > 0 {
            let _ = writeln!(s, "  rounds cut short: {}", self.round_errors.human());
        }
        let _ = writeln!(s, "elapsed:     {:.3} s", self.elapsed.as_secs_f64());
        let _ = writeln!(
            s,
            "rate:        {:.1} commands/s ({} commands)",
            self.commands_per_s(),
            self.commands()
        );
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  errors",
            "command", "ok", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for (k, t) in &self.kinds {
            let _ = writeln!(
                s,
                "{:<12} {:>9} {:>9.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3}  {}",
                k.name(),
                t.ok,
                per_second(t.ok as f64, self.elapsed),
                t.latency.quantile_ms(0.50),
                t.latency.quantile_ms(0.90),
                t.latency.quantile_ms(0.99),
                t.latency.max_ms(),
                t.errors.human(),
            );
        }
        if self.idle > 0 {
            let _ = writeln!(
                s,
                "idle:        {} of {} reached IDLE, {} still idling at the end, {} untagged pushed, errors {}",
                self.idle_reached,
                self.idle,
                self.idle_at_end,
                self.idle_pushed,
                self.idle_errors.human(),
            );
        }
        if let Some(why) = self.stopped.human() {
            let _ = writeln!(s, "stopped:     {why}");
        }
        s
    }

    /// One JSON object on a single line, without the newline.
    pub fn json(&self) -> String {
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, t)| {
                format!(
                    "{}:{{\"ok\":{},\"per_s\":{:.1},\"errors\":{},\"bytes\":{},\"results\":{},{}}}",
                    json_string(k.name()),
                    t.ok,
                    per_second(t.ok as f64, self.elapsed),
                    t.errors.json(),
                    t.bytes,
                    t.results,
                    latency_json(&t.latency),
                )
            })
            .collect();
        let mix: Vec<String> = self.mix.iter().map(|m| json_string(m)).collect();
        format!(
            "{{\"mode\":\"imap\",\"sessions\":{},\"relogin\":{},\"mix\":[{}],\"rounds_done\":{},\
             \"commands\":{},\"commands_per_s\":{:.1},\"errors\":{},\"round_errors\":{},\
             \"elapsed_s\":{:.3},\"kinds\":{{{}}},\"idle\":{},\"idle_reached\":{},\
             \"idle_at_end\":{},\"idle_pushed\":{},\"idle_errors\":{},\"stopped\":{}}}",
            self.sessions,
            self.relogin,
            mix.join(","),
            self.rounds_done,
            self.commands(),
            self.commands_per_s(),
            self.error_total(),
            self.round_errors.json(),
            self.elapsed.as_secs_f64(),
            kinds.join(","),
            self.idle,
            self.idle_reached,
            self.idle_at_end,
            self.idle_pushed,
            self.idle_errors.json(),
            self.stopped.json(),
        )
    }
}

fn push_timing(s: &mut String, elapsed: Duration, rate: f64, lat: &Latency, per: &str) {
    let _ = writeln!(s, "elapsed:     {:.3} s", elapsed.as_secs_f64());
    let _ = writeln!(s, "rate:        {rate:.1} messages/s");
    let _ = writeln!(
        s,
        "latency/{per}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        lat.quantile_ms(0.50),
        lat.quantile_ms(0.90),
        lat.quantile_ms(0.99),
        lat.max_ms(),
    );
}

fn latency_json(lat: &Latency) -> String {
    format!(
        "\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}",
        lat.quantile_ms(0.50),
        lat.quantile_ms(0.90),
        lat.quantile_ms(0.99),
        lat.max_ms(),
    )
}

fn per_second(amount: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { amount / secs } else { 0.0 }
}

/// Quotes `s` as a JSON string (RFC 8259 §7).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SmtpReport {
        let mut errors = Errors::default();
        errors.add("550");
        errors.add("550");
        errors.add("io");
        let mut latency = Latency::default();
        for ms in 1..=100 {
            latency.record(Duration::from_millis(ms));
        }
        SmtpReport {
            sessions: 4,
            messages: 103,
            size: 4096,
            rcpts: 2,
            pipelining: true,
            reuse: false,
            accepted: 100,
            errors,
            elapsed: Duration::from_secs(2),
            latency,
            stopped: Stop::Completed,
        }
    }

    #[test]
    fn json_has_every_key_on_one_line() {
        let j = sample().json();
        assert!(!j.contains('\n'));
        assert!(j.starts_with("{\"mode\":\"smtp\","));
        assert!(j.contains("\"errors\":{\"550\":2,\"io\":1}"));
        assert!(j.contains("\"msgs_per_s\":50.0"));
        for key in [
            "mode",
            "sessions",
            "messages",
            "size",
            "rcpts",
            "pipelining",
            "reuse",
            "accepted",
            "errors",
            "elapsed_s",
            "msgs_per_s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
        ] {
            assert!(j.contains(&format!("\"{key}\":")), "{key}");
        }
    }

    #[test]
    fn human_block_lists_errors_by_code() {
        let h = sample().human();
        assert!(h.contains("errors:      3 (550: 2, io: 1)"), "{h}");
        assert!(h.contains("2 rcpts"), "{h}");
        assert!(!sample().all_accepted());
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let r = sample();
        assert!((r.latency.quantile_ms(0.5) - 50.0).abs() < 0.1);
        assert!((r.latency.max_ms() - 100.0).abs() < 0.1);
        assert_eq!(Latency::default().quantile_ms(0.99), 0.0);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
