//! The cache on Redis: per namespace one HASH of entries (and its hit and miss counts), an
//! index ZSET by expiry and a ZSET per tag, all in the namespace's slot, changed only by
//! `cache.lua`, whose work per call is bounded (an invalidation is called again until done).

use async_trait::async_trait;
use redis::Value;

use super::{corrupt, int, script, signed, text, RedisStore};
use crate::domain::cache::{CacheEntry, CacheStats, Incr, Put, MAX_COUNTER};
use crate::store::{CacheStore, StoreError};

/// Tag members one `invalidate` call takes (`BATCH` in `cache.lua`).
const INVALIDATE_BATCH: u64 = 1000;

impl RedisStore {
    pub(super) fn cache_op(
        &self,
        ns: &str,
        op: &str,
        tags: &[String],
    ) -> redis::ScriptInvocation<'static> {
        let mut inv = script!("cache.lua").prepare_invoke();
        inv.key(self.keys.cache_meta(ns, "entries"))
            .key(self.keys.cache_meta(ns, "keys"));
        for t in tags {
            inv.key(self.keys.cache_tag(ns, t));
        }
        inv.arg(op);
        inv
    }

    async fn cache_call<T: redis::FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        Ok(inv.invoke_async(&mut self.conn()).await?)
    }
}

#[async_trait]
impl CacheStore for RedisStore {
    async fn cache_get(&self, ns: &str, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        let mut inv = self.cache_op(ns, "get", &[]);
        inv.arg(key);
        let reply: Option<Vec<Value>> = self.cache_call(inv).await?;
        let Some(r) = reply else { return Ok(None) };
        let entry = (|| {
            Some(CacheEntry {
                value: text(r.first()?)?.into(),
                version: int(r.get(1)?)?,
                expires_at_ms: signed(r.get(2)?)?,
                tags: serde_json::from_str(&text(r.get(3)?)?).ok()?,
            })
        })();
        entry.map(Some).ok_or_else(|| corrupt("cache get"))
    }

    async fn cache_put(
        &self,
        ns: &str,
        key: &str,
        value: &str,
        ttl_ms: u64,
        tags: &[String],
        if_version: Option<u64>,
    ) -> Result<Put, StoreError> {
        let mut inv = self.cache_op(ns, "put", tags);
        let tags_json = serde_json::to_string(tags).expect("strings serialize");
        inv.arg(key)
            .arg(value)
            .arg(ttl_ms)
            .arg(tags_json)
            .arg(if_version.map(|v| v.to_string()).unwrap_or_default());
        let r: Vec<Value> = self.cache_call(inv).await?;
        match (r.first().and_then(int), r.get(1).and_then(int)) {
            (Some(1), Some(version)) => Ok(Put::Stored {
                version,
                expires_at_ms: r
                    .get(2)
                    .and_then(signed)
                    .ok_or_else(|| corrupt("cache put"))?,
            }),
            (Some(0), Some(current)) => Ok(Put::VersionMismatch(current)),
            _ => Err(corrupt("cache put")),
        }
    }

    async fn cache_delete(&self, ns: &str, key: &str) -> Result<bool, StoreError> {
        let mut inv = self.cache_op(ns, "delete", &[]);
        inv.arg(key);
        Ok(self.cache_call::<i64>(inv).await? == 1)
    }

    async fn cache_incr(
        &self,
        ns: &str,
        key: &str,
        by: i64,
        ttl_ms: u64,
    ) -> Result<Incr, StoreError> {
        let mut inv = self.cache_op(ns, "incr", &[]);
        inv.arg(key).arg(by).arg(ttl_ms).arg(MAX_COUNTER);
        let r: Vec<Value> = self.cache_call(inv).await?;
        if r.first().and_then(int) == Some(0) {
            return Ok(Incr::NotInteger);
        }
        let v = (|| {
            Some(Incr::Value {
                value: signed(r.get(1)?)?,
                version: int(r.get(2)?)?,
                expires_at_ms: signed(r.get(3)?)?,
            })
        })();
        v.ok_or_else(|| corrupt("cache incr"))
    }

    async fn cache_invalidate(&self, ns: &str, tags: &[String]) -> Result<u64, StoreError> {
        // One batch per call, so no call blocks Redis for long: again until the tags are
        // empty. Entries tagged while this runs may go too; a call never chases a tag that
        // keeps growing (at most as many batches again as it first found members for).
        let mut removed = 0;
        let mut rounds = None;
        loop {
            let mut inv = self.cache_op(ns, "invalidate", tags);
            for t in tags {
                inv.arg(t);
            }
            let (n, left): (u64, u64) = self.cache_call(inv).await?;
            removed += n;
            let limit = *rounds.get_or_insert(left / INVALIDATE_BATCH + 2);
            if left == 0 || limit == 0 {
                return Ok(removed);
            }
            rounds = Some(limit - 1);
        }
    }

    async fn cache_stats(&self, ns: &str) -> Result<CacheStats, StoreError> {
        let r: Vec<u64> = self.cache_call(self.cache_op(ns, "stats", &[])).await?;
        match r[..] {
            [hits, misses, keys] => Ok(CacheStats { hits, misses, keys }),
            _ => Err(corrupt("cache stats")),
        }
    }

    async fn cache_clear(&self, ns: &str) -> Result<u64, StoreError> {
        Ok(self
            .cache_call::<u64>(self.cache_op(ns, "clear", &[]))
            .await?)
    }
}
