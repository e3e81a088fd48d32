//! Credentials: API keys with roles, JSON Web Tokens (every way a token can be wrong), the
//! WebSocket's in-band `auth` with refresh and expiry, `sessions` claims, and
//! `afw-gateway token`; rate limits. Real gateways over loopback, on the memory store and on a real Redis
//! through two instances. By family: [`roles`] (every route × every kind of credential),
//! [`tenants`] (and on a Redis Cluster, [`cluster`]),
//! [`tokens`], [`websocket`], [`command`], [`limits`].

#[path = "../support/routes.rs"]
mod routes;
#[path = "../support/mod.rs"]
mod support;

mod cluster;
mod command;
mod limits;
mod roles;
mod tenants;
mod tokens;
mod websocket;

use std::path::PathBuf;

use afw_gateway::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::RedisServer;

/// The HS256 secret of these tests' gateways.
pub const SECRET: &str = "a-test-secret-of-at-least-32-bytes!";
pub const ADMIN_KEY: &str = "admin-key-0123456789";
pub const AGENT_KEY: &str = "agent-key-0123456789";
pub const VIEWER_KEY: &str = "viewer-key-012345678";
/// Routes about the whole instance, which only the default tenant's admin may call.
pub const INSTANCE_WIDE: [&str; 4] = [
    "/metrics",
    "/api/demo",
    "/api/health/redis",
    "/api/ops/summary",
];

/// A config with the three keys (admin, agent, viewer) and the secret, on `redis` or memory.
pub fn config(redis: Option<&RedisServer>) -> Config {
    let mut c = support::config(redis);
    c.auth.api_keys = vec![
        ADMIN_KEY.into(),
        format!("default:{AGENT_KEY}:agent"),
        format!("default:{VIEWER_KEY}:viewer"),
    ];
    c.auth.jwt_secret = Some(SECRET.into());
    c
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 token of `claims`, signed with `secret`.
pub fn hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A token of these tests' secret for `sub` with `role`, valid for `ttl` seconds.
pub fn token(sub: &str, role: &str, ttl: i64) -> String {
    hs256(
        SECRET,
        &json!({"sub": sub, "role": role, "exp": now() + ttl}),
    )
}

/// A file of `tests/fixtures/jwt` (test-only keys).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}
