//! Who may call: API keys (with their tenants and roles) and the JSON Web Tokens the gateway
//! accepts, and how long a WebSocket may wait for its credentials. What they mean is
//! [`crate::credentials`]; docs/security.md says it for operators.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::values::{bad, parse_secs, trimmed, ConfigError};

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Credentials")]
pub struct Auth {
    /// Comma-separated API keys accepted as `Authorization: Bearer <key>`: `key` (the default
    /// tenant, role admin), `tenant:key` (role admin) or `tenant:key:role` (admin, agent or
    /// viewer). Each key at least 16 characters, never the examples' placeholder. Empty, and no
    /// JWT settings: no auth, loopback only.
    #[arg(
        long,
        env = "AFW_API_KEYS",
        value_name = "AFW_API_KEYS",
        value_delimiter = ',',
        value_parser = trimmed,
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// Secret of HS256-signed tokens (at least 32 bytes). Set, every route but `/health`,
    /// `/ready` and the dashboard's files takes such a token as `Authorization: Bearer`.
    #[arg(
        long,
        env = "AFW_JWT_SECRET",
        value_name = "AFW_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// File of the public keys of RS256, ES256 or EdDSA tokens: one PEM key, or a JWKS
    /// (`{"keys":[...]}`) whose keys are picked by the token's `kid`.
    #[arg(long, env = "AFW_JWT_PUBLIC_KEYS", value_name = "AFW_JWT_PUBLIC_KEYS")]
    pub jwt_public_keys: Option<PathBuf>,
    /// PEM private key `afw-gateway token` signs with (RS256, ES256 or EdDSA, by the key's
    /// kind) when AFW_JWT_SECRET is not set. The gateway itself never reads it.
    #[arg(long, env = "AFW_JWT_PRIVATE_KEY", value_name = "AFW_JWT_PRIVATE_KEY")]
    pub jwt_private_key: Option<PathBuf>,
    /// The `iss` every token must carry, when set.
    #[arg(long, env = "AFW_JWT_ISSUER", value_name = "AFW_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` every token must carry, when set.
    #[arg(long, env = "AFW_JWT_AUDIENCE", value_name = "AFW_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Seconds of clock difference forgiven when checking a token's `exp` and `nbf`.
    #[arg(
        long,
        env = "AFW_JWT_LEEWAY_SECS",
        value_name = "AFW_JWT_LEEWAY_SECS",
        default_value_t = 5
    )]
    pub jwt_leeway_secs: u64,
    /// Verified tokens remembered (until each expires) so a token sent again is not verified
    /// again; the memory is emptied when it holds this many. 0: verify every time.
    #[arg(
        long,
        env = "AFW_JWT_CACHE_ENTRIES",
        value_name = "AFW_JWT_CACHE_ENTRIES",
        default_value_t = 10_000
    )]
    pub jwt_cache_entries: usize,
    /// Where the dashboard gets its tokens: the application's own endpoint (an absolute
    /// `https://` URL or a path on this host), called with the browser's cookies and answering
    /// a token (as text, or JSON `{token}`). Unset: the dashboard asks for a key or token.
    #[arg(long, env = "AFW_TOKEN_URL", value_name = "AFW_TOKEN_URL")]
    pub token_url: Option<String>,
    /// Seconds a WebSocket opened without credentials has to send `{type:"auth", token}`
    /// before it is closed with 1008 (when credentials are required).
    #[arg(long, env = "WS_AUTH_TIMEOUT_SECS", value_name = "WS_AUTH_TIMEOUT_SECS", value_parser = parse_secs, default_value = "5")]
    pub ws_auth_timeout: Duration,
    /// Seconds a WebSocket stays open after its token expires, for an `auth` message with a
    /// fresh one; then it is closed with 1008.
    #[arg(long, env = "WS_AUTH_GRACE_SECS", value_name = "WS_AUTH_GRACE_SECS", value_parser = parse_secs, default_value = "25")]
    pub ws_auth_grace: Duration,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            api_keys: Vec::new(),
            jwt_secret: None,
            jwt_public_keys: None,
            jwt_private_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_secs: 5,
            jwt_cache_entries: 10_000,
            token_url: None,
            ws_auth_timeout: Duration::from_secs(5),
            ws_auth_grace: Duration::from_secs(25),
        }
    }
}

impl Auth {
    /// Whether any credential is configured: then every route but the open ones needs one.
    pub fn required(&self) -> bool {
        !self.api_keys.is_empty() || self.jwt_secret.is_some() || self.jwt_public_keys.is_some()
    }

    /// Checks the values it can alone; the key entries and key files are read and checked when
    /// the credentials are made from them (`credentials::Credentials::new`, at start).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(s) = &self.jwt_secret {
            if s.len() < 32 {
                return Err(bad(
                    "AFW_JWT_SECRET",
                    "is shorter than 32 bytes; use a long random one (openssl rand -hex 32)",
                ));
            }
        }
        if self.jwt_cache_entries > 1_000_000 {
            return Err(bad("AFW_JWT_CACHE_ENTRIES", "must be at most 1000000"));
        }
        if let Some(url) = &self.token_url {
            let ok = url.len() <= 2048
                && !url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"')
                && (url.starts_with("https://")
                    || url.starts_with("http://")
                    || (url.starts_with('/') && !url.starts_with("//")));
            if !ok {
                return Err(bad(
                    "AFW_TOKEN_URL",
                    "must be an http(s):// URL or a path starting with /",
                ));
            }
        }
        if self.jwt_leeway_secs > 300 {
            return Err(bad("AFW_JWT_LEEWAY_SECS", "must be at most 300 seconds"));
        }
        Ok(())
    }
}
