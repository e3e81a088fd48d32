//! The value types of settings and their parsers, and the error a bad setting gives.

use std::time::Duration;

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Compat {
    /// The ActionFlows backend's clients (hooks, dashboard, MCP server).
    Actionflows,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A setting that cannot be used, named by its environment variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

pub(super) fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// One item of a comma-separated list, without the spaces around it (`"k1, k2"`).
pub(super) fn trimmed(text: &str) -> Result<String, String> {
    Ok(text.trim().to_string())
}

/// A number of seconds, decimals allowed (`25`, `0.5`), between 1 ms and one day.
pub(super) fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(format!("`{text}` must be between 0.001 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The shortest API key the gateway starts with (a guessable key is no key).
pub const MIN_API_KEY_CHARS: usize = 16;
