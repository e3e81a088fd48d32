//! Credentials: who a request or a WebSocket is ([`Principal`]), made from an API key or a
//! JSON Web Token ([`Credentials::authenticate`]). The HTTP middleware (`http::auth`) and the
//! WebSocket (`realtime::ws`) both ask this module, so a key or token means the same on both.
//!
//! Roles, from least to most: `viewer` (read and subscribe), `agent` (also write: events,
//! commands, input, the services), `admin` (also the operations routes). A token's `sessions`
//! claim narrows it to the sessions it names. docs/security.md is the operator's view.

use std::sync::Arc;

use crate::config::{Auth, ConfigError};

mod command;
mod jwt;
mod keys;

pub use command::TokenArgs;

pub use jwt::{sign, SignRequest};

/// The tenant of a key without one and of a token without a `tenant` claim.
pub use crate::domain::usage::DEFAULT_TENANT;
/// Session patterns one token may carry at most.
pub const MAX_SESSION_PATTERNS: usize = 100;

/// What a credential may do, least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Agent,
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

/// Who is calling, as a checked credential says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`, or `key#N` for the N-th API key (never the key itself).
    pub subject: Arc<str>,
    pub tenant: Arc<str>,
    pub role: Role,
    /// Session ids, or `prefix*` patterns, the credential is narrowed to; `None`: all.
    pub sessions: Option<Arc<[Box<str>]>>,
    /// When a token stops being valid (ms since the epoch); `None` for API keys.
    pub expires_at_ms: Option<i64>,
}

impl Principal {
    /// Whether the credential reaches this session (its `sessions` claim, when it has one).
    pub fn may_see(&self, session_id: &str) -> bool {
        match &self.sessions {
            None => true,
            Some(patterns) => patterns.iter().any(|p| matches(p, session_id)),
        }
    }

    /// Whether the role is at least `need`.
    pub fn allows(&self, need: Role) -> bool {
        self.role >= need
    }
}

/// `build-*` matches every id that starts with `build-`; anything else matches itself only.
fn matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

/// Why a credential was not taken: `code` is the JSON error's (and WebSocket error's) code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn invalid(message: impl Into<String>) -> Refusal {
        Refusal {
            code: "invalid_token",
            message: message.into(),
        }
    }
}

/// Every credential the gateway takes, made once at start from the config.
pub struct Credentials {
    keys: keys::ApiKeys,
    jwt: Option<jwt::Verifier>,
}

impl Credentials {
    /// Parses the key entries and reads the key files; a bad one names its variable.
    pub fn new(auth: &Auth) -> Result<Credentials, ConfigError> {
        Ok(Credentials {
            keys: keys::ApiKeys::parse(&auth.api_keys)?,
            jwt: jwt::Verifier::new(auth)?,
        })
    }

    /// Whether every route but the open ones needs a credential.
    pub fn required(&self) -> bool {
        !self.keys.is_empty() || self.jwt.is_some()
    }

    /// The principal `token` (an API key or a JWT) stands for.
    pub fn authenticate(&self, token: &str) -> Result<Arc<Principal>, Refusal> {
        if let Some(p) = self.keys.find(token) {
            return Ok(p);
        }
        match &self.jwt {
            Some(v) if token.bytes().filter(|b| *b == b'.').count() == 2 => v.principal(token),
            _ => Err(Refusal::invalid("the credentials are not valid")),
        }
    }
}

/// What the in-process demo agents send: the first key of role agent or admin, or else, with a
/// secret, a day's agent token.
pub fn agent_token(auth: &Auth) -> Option<String> {
    let key = auth.api_keys.iter().enumerate().find_map(|(i, text)| {
        let (_, key, role) = keys::entry(i, text).ok()?;
        (role >= Role::Agent).then(|| key.to_string())
    });
    key.or_else(|| {
        auth.jwt_secret.as_ref()?;
        let req = SignRequest {
            sub: "demo".into(),
            tenant: None,
            role: Role::Agent,
            ttl_secs: 24 * 3600,
            sessions: None,
        };
        sign(auth, &req).ok()
    })
}

/// A tenant's name: 1-64 letters, digits, `_`, `-` or `.`.
pub fn valid_tenant(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A tenant a credential may name: any valid name (each is kept apart in its own stores).
pub(crate) fn served_tenant(name: &str) -> Result<(), String> {
    if valid_tenant(name) {
        Ok(())
    } else {
        Err("a tenant is 1-64 letters, digits, `_`, `-` or `.`".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_roles() {
        let p = Principal {
            subject: "ada".into(),
            tenant: DEFAULT_TENANT.into(),
            role: Role::Viewer,
            sessions: Some(vec!["build-*".into(), "exact".into()].into()),
            expires_at_ms: None,
        };
        assert!(p.may_see("build-7"));
        assert!(p.may_see("exact"));
        assert!(!p.may_see("exactly"));
        assert!(!p.may_see("other"));
        assert!(p.allows(Role::Viewer));
        assert!(!p.allows(Role::Agent));
        assert!(Role::Admin > Role::Agent);
        assert!(valid_tenant("acme-1.eu"));
        assert!(!valid_tenant("a:b"));
        assert!(!valid_tenant(""));
    }
}
