//! `afw-gateway token`: prints a signed token with the configured secret or private key, for
//! scripts, CI and trying the gateway out without writing a backend.

use clap::Parser;

use super::{sign, Role, SignRequest, MAX_SESSION_PATTERNS};
use crate::config::{Auth, ConfigError};

/// The longest token the command signs (a year).
const MAX_TTL_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, Parser)]
#[command(
    name = "afw-gateway token",
    about = "Print a token signed with AFW_JWT_SECRET (or AFW_JWT_PRIVATE_KEY)"
)]
pub struct TokenArgs {
    /// The user the token stands for (`sub`).
    #[arg(long)]
    pub sub: String,
    /// The tenant (`tenant`); unset: the default tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// admin, agent or viewer.
    #[arg(long, default_value = "viewer")]
    pub role: String,
    /// How long the token is valid: seconds, or a number with s, m, h or d (`1h`).
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Comma-separated session ids or `prefix*` patterns the token is narrowed to.
    #[arg(long, value_delimiter = ',')]
    pub sessions: Option<Vec<String>>,
    #[command(flatten)]
    pub auth: Auth,
}

/// A number of seconds from `90`, `90s`, `15m`, `1h` or `7d`.
fn parse_ttl(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: u64 = digits.parse().ok()?;
    let secs = n.checked_mul(match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    })?;
    (1..=MAX_TTL_SECS).contains(&secs).then_some(secs)
}

impl TokenArgs {
    /// The signed token, or what is wrong with the arguments or the key.
    pub fn token(&self) -> Result<String, ConfigError> {
        let arg = |var: &'static str, problem: &str| ConfigError {
            var,
            problem: problem.to_string(),
        };
        let role = Role::parse(&self.role)
            .ok_or_else(|| arg("--role", "must be admin, agent or viewer"))?;
        let ttl_secs = parse_ttl(&self.ttl).ok_or_else(|| {
            arg(
                "--ttl",
                "must be a duration of up to a year: 90, 90s, 15m, 1h or 7d",
            )
        })?;
        if self.sub.is_empty() || self.sub.len() > 256 {
            return Err(arg("--sub", "must be 1-256 characters"));
        }
        if let Some(list) = &self.sessions {
            if list.len() > MAX_SESSION_PATTERNS || list.iter().any(|p| p.is_empty()) {
                return Err(arg(
                    "--sessions",
                    "must be 1-100 non-empty ids or `prefix*` patterns",
                ));
            }
        }
        if let Some(t) = &self.tenant {
            super::served_tenant(t).map_err(|e| arg("--tenant", &e))?;
        }
        let req = SignRequest {
            sub: self.sub.clone(),
            tenant: self.tenant.clone(),
            role,
            ttl_secs,
            sessions: self.sessions.clone(),
        };
        sign(&self.auth, &req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_ttl("90"), Some(90));
        assert_eq!(parse_ttl("15m"), Some(900));
        assert_eq!(parse_ttl("1h"), Some(3600));
        assert_eq!(parse_ttl("7d"), Some(604_800));
        assert_eq!(parse_ttl("0"), None);
        assert_eq!(parse_ttl("2y"), None);
        assert_eq!(parse_ttl("h"), None);
        assert_eq!(parse_ttl("400d"), None);
    }
}
