//! The cache: entries of JSON by namespace and key, each with a TTL, a version that grows on
//! every write (for compare-and-set) and tags (for invalidating groups at once).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::problems::{Problems, MAX_NAME_CHARS};
use super::{check_id, FieldProblem};

/// The namespace of requests that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// TTL of an entry created by `incr` when the request names none.
pub const INCR_DEFAULT_TTL_SECS: u64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheEntry {
    pub value: Arc<str>,
    pub version: u64,
    pub tags: Vec<String>,
    pub expires_at_ms: i64,
}

/// What a put came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    Stored {
        version: u64,
        expires_at_ms: i64,
    },
    /// `ifVersion` did not match: the entry's version now (0: there is none).
    VersionMismatch(u64),
}

/// What an increment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incr {
    Value {
        value: i64,
        version: u64,
        expires_at_ms: i64,
    },
    /// The entry holds something other than an integer (or the sum would not be exact).
    NotInteger,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub keys: u64,
}

/// The limits of cache requests (`CACHE_MAX_VALUE_BYTES`, `CACHE_MAX_TTL_SECS`,
/// `CACHE_MAX_TAGS`).
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    pub max_value_bytes: usize,
    pub max_ttl_secs: u64,
    pub max_tags: usize,
}

/// `PUT /api/cache/:key`. The value is kept as sent, byte for byte.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutBody {
    /// `Some` whenever given, `null` included (`null` is a value to cache).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = serde_json::Value)]
    pub value: Option<Box<RawValue>>,
    pub ttl_seconds: Option<u64>,
    pub tags: Option<Vec<String>>,
    pub if_version: Option<u64>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// `POST /api/cache/:key/incr`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IncrBody {
    pub by: Option<i64>,
    pub ttl_seconds: Option<u64>,
}

/// `POST /api/cache/invalidate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InvalidateBody {
    pub tags: Option<Vec<String>>,
}

/// Largest integer a cached counter may hold: sums stay exact on both stores (Lua numbers
/// are doubles).
pub const MAX_COUNTER: i64 = (1 << 53) - 1;

/// A cached value as a counter: JSON digits with an optional minus sign and nothing else (the
/// `^%-?%d+$` that `cache.lua` matches), within [`MAX_COUNTER`].
pub fn counter(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse()
        .ok()
        .filter(|v: &i64| v.unsigned_abs() <= MAX_COUNTER.unsigned_abs())
}

pub fn check_key(field: &str, v: &str) -> Result<(), FieldProblem> {
    check_id(field, v, MAX_NAME_CHARS)
}

/// Tags: each a name, no more than `max`, duplicates dropped (order kept).
pub fn check_tags(tags: &[String], max: usize, p: &mut Problems) -> Vec<String> {
    if tags.len() > max {
        p.add("tags", format!("at most {max} tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        p.name("tags", Some(t));
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// A checked put.
pub struct CheckedPut {
    pub value: Box<RawValue>,
    pub ttl_secs: u64,
    pub tags: Vec<String>,
    pub if_version: Option<u64>,
}

pub fn check_put(b: PutBody, l: CacheLimits) -> Result<CheckedPut, Vec<FieldProblem>> {
    let mut p = Problems::default();
    let ttl_secs = p.range("ttlSeconds", b.ttl_seconds, None, 1, l.max_ttl_secs);
    let tags = check_tags(b.tags.as_deref().unwrap_or_default(), l.max_tags, &mut p);
    if b.value.is_none() {
        p.add("value", "is required");
    }
    p.done()?;
    Ok(CheckedPut {
        value: b.value.expect("checked"),
        ttl_secs,
        tags,
        if_version: b.if_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_plain_integers() {
        assert_eq!(counter("42"), Some(42));
        assert_eq!(counter("-7"), Some(-7));
        for bad in ["", "-", "+5", "4.0", "1e3", "\"5\"", "9007199254740992"] {
            assert_eq!(counter(bad), None, "{bad}");
        }
    }

    #[test]
    fn tags_are_names_without_duplicates() {
        let mut p = Problems::default();
        let t = check_tags(&["a".into(), "b".into(), "a".into()], 3, &mut p);
        assert_eq!(t, ["a", "b"]);
        assert!(p.done().is_ok());
        let mut p = Problems::default();
        check_tags(&["".into()], 3, &mut p);
        assert!(p.done().is_err());
    }
}
