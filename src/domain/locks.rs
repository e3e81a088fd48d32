//! Distributed locks: what a grant is, and the checks on a request. A grant carries a random
//! `token` (only its holder extends or releases) and a `fencingToken` that grows on every
//! grant of the name, for ever, so a resource can refuse a holder that lost the lock.

use serde::Deserialize;

use super::problems::Problems;
use super::FieldProblem;

/// A lock as it stands: who holds it, until when (ms since the epoch, the store's clock),
/// and the fencing token of that grant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockHolder {
    pub owner: String,
    pub token: String,
    pub fencing_token: u64,
    pub expires_at_ms: i64,
}

/// What an attempt to take a lock came to.
#[derive(Debug, Clone)]
pub enum Acquire {
    Granted(LockHolder),
    Held(LockHolder),
}

/// `POST /api/locks/:name`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockRequest {
    pub owner: Option<String>,
    pub ttl_ms: Option<u64>,
    pub wait_ms: Option<u64>,
}

/// `POST /api/locks/:name/extend`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtendRequest {
    pub token: Option<String>,
    pub ttl_ms: Option<u64>,
}

/// The bounds of lock requests (`LOCK_MIN_TTL_MS`, `LOCK_MAX_TTL_MS`, `LOCK_MAX_WAIT_MS`).
#[derive(Debug, Clone, Copy)]
pub struct LockLimits {
    pub min_ttl_ms: u64,
    pub max_ttl_ms: u64,
    pub max_wait_ms: u64,
}

/// A checked lock request: owner, TTL and wait (ms).
pub fn check_request(
    name: &str,
    r: &LockRequest,
    l: LockLimits,
) -> Result<(String, u64, u64), Vec<FieldProblem>> {
    let mut p = Problems::default();
    p.name("name", Some(name));
    let owner = p.name("owner", r.owner.as_deref()).to_string();
    let ttl = p.range("ttlMs", r.ttl_ms, None, l.min_ttl_ms, l.max_ttl_ms);
    let wait = p.range("waitMs", r.wait_ms, Some(0), 0, l.max_wait_ms);
    p.done().map(|()| (owner, ttl, wait))
}

/// A checked extension: token and TTL.
pub fn check_extend(
    name: &str,
    r: &ExtendRequest,
    l: LockLimits,
) -> Result<(String, u64), Vec<FieldProblem>> {
    let mut p = Problems::default();
    p.name("name", Some(name));
    let token = p.name("token", r.token.as_deref()).to_string();
    let ttl = p.range("ttlMs", r.ttl_ms, None, l.min_ttl_ms, l.max_ttl_ms);
    p.done().map(|()| (token, ttl))
}

/// The fencing token of a new grant: one more than the last, and never below the store's
/// clock in ms, so it keeps growing even after a long-unused name's state was dropped.
pub fn next_fence(last: u64, now_ms: i64) -> u64 {
    (last + 1).max(u64::try_from(now_ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_grow_past_a_lost_counter() {
        assert_eq!(next_fence(5, 3), 6);
        assert_eq!(next_fence(0, 1_000), 1_000);
        let limits = LockLimits {
            min_ttl_ms: 100,
            max_ttl_ms: 1000,
            max_wait_ms: 50,
        };
        let bad = LockRequest {
            owner: None,
            ttl_ms: Some(5),
            wait_ms: Some(51),
        };
        let fields: Vec<_> = check_request("l", &bad, limits)
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["owner", "ttlMs", "waitMs"]);
    }
}
