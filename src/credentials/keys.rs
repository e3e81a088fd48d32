//! API keys: `key`, `tenant:key` or `tenant:key:role` entries. Only each key's SHA-256 digest
//! is kept, and a presented key is compared with every digest in constant time, so neither the
//! time taken nor a key's length tells anything about the keys.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{served_tenant, Principal, Role, DEFAULT_TENANT};
use crate::config::{ConfigError, MIN_API_KEY_CHARS};

const VAR: &str = "AFW_API_KEYS";

struct Entry {
    digest: [u8; 32],
    principal: Arc<Principal>,
}

pub(super) struct ApiKeys(Vec<Entry>);

fn bad(problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var: VAR,
        problem: problem.into(),
    }
}

/// One entry of `AFW_API_KEYS` (the `i`-th): its tenant, key and role, with the key checked.
pub(super) fn entry(i: usize, text: &str) -> Result<(&str, &str, Role), ConfigError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (tenant, key, role) = match parts[..] {
        [key] => (DEFAULT_TENANT, key, Role::Admin),
        [tenant, key] => (tenant, key, Role::Admin),
        [tenant, key, role] => (
            tenant,
            key,
            Role::parse(role).ok_or_else(|| {
                bad(format!(
                    "entry {}: role `{role}` is not admin, agent or viewer",
                    i + 1
                ))
            })?,
        ),
        _ => {
            return Err(bad(format!(
                "entry {} is not `key`, `tenant:key` or `tenant:key:role`",
                i + 1
            )))
        }
    };
    if key.trim().is_empty() {
        return Err(bad("contains an empty key (check for a stray comma)"));
    }
    if key.chars().count() < MIN_API_KEY_CHARS {
        return Err(bad(format!(
            "a key is shorter than {MIN_API_KEY_CHARS} characters; use a long random one (openssl rand -hex 32)"
        )));
    }
    if key.to_ascii_lowercase().starts_with("change-me") {
        return Err(bad(
            "still holds the example's placeholder key; set a long random one (openssl rand -hex 32)",
        ));
    }
    Ok((tenant, key, role))
}

impl ApiKeys {
    pub(super) fn parse(entries: &[String]) -> Result<ApiKeys, ConfigError> {
        let mut keys = Vec::with_capacity(entries.len());
        for (i, text) in entries.iter().enumerate() {
            let (tenant, key, role) = entry(i, text)?;
            served_tenant(tenant).map_err(|e| bad(format!("entry {}: {e}", i + 1)))?;
            keys.push(Entry {
                digest: Sha256::digest(key.as_bytes()).into(),
                principal: Arc::new(Principal {
                    subject: format!("key#{}", i + 1).into(),
                    tenant: Arc::from(tenant),
                    role,
                    sessions: None,
                    expires_at_ms: None,
                }),
            });
        }
        Ok(ApiKeys(keys))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The principal of the key `presented` is, looking at every key whatever matches.
    pub(super) fn find(&self, presented: &str) -> Option<Arc<Principal>> {
        if self.0.is_empty() {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for entry in &self.0 {
            if constant_time_eq(&entry.digest, &digest) {
                found = Some(&entry.principal);
            }
        }
        found.cloned()
    }
}

/// Compares without stopping at the first differing byte.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[&str]) -> Result<ApiKeys, ConfigError> {
        ApiKeys::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn entries_name_tenant_and_role() {
        let keys = parse(&[
            "key-one-0123456789",
            "default:key-two-0123456789:viewer",
            "default:key-three-123456789:agent",
            "acme:key-four-0123456789:viewer",
        ])
        .unwrap();
        let one = keys.find("key-one-0123456789").unwrap();
        assert_eq!((one.role, &*one.subject), (Role::Admin, "key#1"));
        assert_eq!(keys.find("key-two-0123456789").unwrap().role, Role::Viewer);
        assert_eq!(keys.find("key-three-123456789").unwrap().role, Role::Agent);
        let four = keys.find("key-four-0123456789").unwrap();
        assert_eq!((&*four.tenant, four.role), ("acme", Role::Viewer));
        assert!(keys.find("key-one-012345678").is_none());
        assert!(keys.find("").is_none());
        for bad in [
            "default:key-one-0123456789:root",
            "a:b:c:d",
            "default:short",
            "default::viewer",
            "bad tenant:key-one-0123456789",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }
}
