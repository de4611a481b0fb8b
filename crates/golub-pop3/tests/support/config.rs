//! The `! config` words of POP3 transcripts and session seeds, shared by
//! `tests/transcripts.rs` and `tests/fuzz_session.rs`.

use std::time::Duration;

use golub_pop3::Pop3Config;

/// The configuration before any `! config` line.
pub fn base() -> Pop3Config {
    Pop3Config {
        hostname: "pop.example".to_string(),
        ..Pop3Config::default()
    }
}

/// Applies the words of one `! config` line (listed in `tests/transcripts.rs`).
pub fn configure(c: &mut Pop3Config, words: &str) -> Result<(), String> {
    for word in words.split_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("bad number in {word}"))
        };
        match key {
            "plaintext" => c.allow_plaintext_auth = true,
            "stls" => c.stls_available = true,
            "tls_active" => c.tls_active = true,
            "hostname" => c.hostname = value.to_string(),
            "max_errors" => c.max_errors = num()? as usize,
            "max_line" => c.max_line = num()? as usize,
            "command_timeout" => c.command_timeout = Duration::from_secs(num()?),
            "login_delay" => c.login_delay = Some(num()? as u32),
            "expire" if value.is_empty() => c.expire = None,
            "expire" => c.expire = Some(value.to_string()),
            "mechs" if value.is_empty() => c.sasl_mechanisms = Vec::new(),
            "mechs" => c.sasl_mechanisms = value.split(',').map(str::to_string).collect(),
            _ => return Err(format!("unknown config {word}")),
        }
    }
    Ok(())
}
