//! The cache: checks names, sizes and TTLs before the store sees anything, so a refused
//! request changes nothing.

use std::sync::Arc;

use super::ServiceError;
use crate::domain::cache::{
    check_key, check_put, check_tags, CacheEntry, CacheLimits, CacheStats, Incr, IncrBody, Put,
    PutBody, INCR_DEFAULT_TTL_SECS,
};
use crate::domain::problems::Problems;
use crate::store::CacheStore;

#[derive(Clone)]
pub struct Cache {
    pub store: Arc<dyn CacheStore>,
    pub limits: CacheLimits,
    /// The tenant's quotas (values held must fit `TENANT_MAX_CACHE_BYTES`).
    pub quotas: Option<Arc<super::quotas::Quotas>>,
}

fn names(ns: &str, key: Option<&str>) -> Result<(), ServiceError> {
    check_key("namespace", ns).map_err(ServiceError::invalid)?;
    if let Some(k) = key {
        check_key("key", k).map_err(ServiceError::invalid)?;
    }
    Ok(())
}

impl Cache {
    pub async fn get(&self, ns: &str, key: &str) -> Result<Option<CacheEntry>, ServiceError> {
        names(ns, Some(key))?;
        Ok(self.store.cache_get(ns, key).await?)
    }

    pub async fn put(
        &self,
        ns: &str,
        key: &str,
        body: PutBody,
    ) -> Result<(Put, Vec<String>), ServiceError> {
        names(ns, Some(key))?;
        let c = check_put(body, self.limits).map_err(ServiceError::Invalid)?;
        if c.value.get().len() > self.limits.max_value_bytes {
            return Err(ServiceError::TooLarge {
                what: "cached value",
                limit: self.limits.max_value_bytes,
            });
        }
        if let Some(q) = &self.quotas {
            let ttl = std::time::Duration::from_secs(c.ttl_secs);
            q.cache(ns, key, c.value.get().len(), ttl).await?;
        }
        let put = self
            .store
            .cache_put(
                ns,
                key,
                c.value.get(),
                c.ttl_secs * 1000,
                &c.tags,
                c.if_version,
            )
            .await?;
        Ok((put, c.tags))
    }

    pub async fn delete(&self, ns: &str, key: &str) -> Result<bool, ServiceError> {
        names(ns, Some(key))?;
        let deleted = self.store.cache_delete(ns, key).await?;
        if let Some(q) = &self.quotas {
            q.cache_deleted(ns, key).await?;
        }
        Ok(deleted)
    }

    pub async fn incr(&self, ns: &str, key: &str, body: IncrBody) -> Result<Incr, ServiceError> {
        names(ns, Some(key))?;
        let mut p = Problems::default();
        let ttl = p.range(
            "ttlSeconds",
            body.ttl_seconds,
            Some(INCR_DEFAULT_TTL_SECS.min(self.limits.max_ttl_secs)),
            1,
            self.limits.max_ttl_secs,
        );
        let by = body.by.unwrap_or(1);
        if by.unsigned_abs() > crate::domain::cache::MAX_COUNTER.unsigned_abs() {
            p.add("by", "must be an integer of at most 2^53 - 1 either way");
        }
        p.done().map_err(ServiceError::Invalid)?;
        Ok(self.store.cache_incr(ns, key, by, ttl * 1000).await?)
    }

    pub async fn invalidate(
        &self,
        ns: &str,
        tags: Option<Vec<String>>,
    ) -> Result<u64, ServiceError> {
        names(ns, None)?;
        let mut p = Problems::default();
        let tags = match tags {
            Some(t) if !t.is_empty() => check_tags(&t, self.limits.max_tags.max(1), &mut p),
            _ => {
                p.add("tags", "give at least one tag");
                Vec::new()
            }
        };
        p.done().map_err(ServiceError::Invalid)?;
        Ok(self.store.cache_invalidate(ns, &tags).await?)
    }

    pub async fn stats(&self, ns: &str) -> Result<CacheStats, ServiceError> {
        names(ns, None)?;
        Ok(self.store.cache_stats(ns).await?)
    }

    pub async fn clear(&self, ns: &str) -> Result<u64, ServiceError> {
        names(ns, None)?;
        Ok(self.store.cache_clear(ns).await?)
    }
}
