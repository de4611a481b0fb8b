//! The `! config` words of SMTP transcripts and session seeds, shared by
//! `tests/transcripts.rs` and `tests/fuzz_session.rs`.

use std::time::Duration;

use golub_smtp::SessionConfig;

/// The configuration before any `! config` line.
pub fn base() -> SessionConfig {
    SessionConfig {
        hostname: "mx.example".to_string(),
        ..SessionConfig::default()
    }
}

/// Applies the words of one `! config` line (listed in `tests/transcripts.rs`).
pub fn configure(c: &mut SessionConfig, words: &str) -> Result<(), String> {
    for word in words.split_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("bad number in {word}"))
        };
        match key {
            "vrfy" => c.vrfy_enabled = true,
            "expn" => c.expn_enabled = true,
            "etrn" => c.etrn_enabled = true,
            "hostname" => c.hostname = value.to_string(),
            "max_message_size" => c.max_message_size = num()? as usize,
            "max_recipients" => c.max_recipients = num()? as usize,
            "max_command_line" => c.max_command_line = num()? as usize,
            "max_text_line" => c.max_text_line = num()? as usize,
            "max_errors" => c.max_errors = num()? as usize,
            "command_timeout" => c.command_timeout = Duration::from_secs(num()?),
            "data_timeout" => c.data_timeout = Duration::from_secs(num()?),
            "ehlo" => c.extra_ehlo.push(value.replace('_', " ")),
            "starttls" => c.starttls_available = true,
            "tls_active" => c.tls_active = true,
            "auth" if value.is_empty() => {
                c.auth_mechanisms = vec!["PLAIN".into(), "LOGIN".into()];
            }
            "auth" => c.auth_mechanisms = value.split(',').map(str::to_string).collect(),
            "auth_without_tls" => c.auth_without_tls = true,
            "auth_required" => c.auth_required = true,
            _ => return Err(format!("unknown config {word}")),
        }
    }
    Ok(())
}
