//! A tenant's quotas (`TENANT_MAX_*`), checked before what they limit is stored: live
//! sessions and cache bytes as held sets, events as a count per UTC day, both in the
//! tenant's own store ([`crate::store::QuotaStore`]), so every instance counts against one
//! total; WebSocket connections per instance, here. The default tenant has none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::ServiceError;
use crate::config::Quotas as Limits;
use crate::metrics::Metrics;
use crate::store::{Admission, Admitted, QuotaStore};

/// How long an events-per-day count is kept: past the end of its day wherever its clock is.
const DAY_KEEP: Duration = Duration::from_secs(2 * 24 * 3600);

pub struct Quotas {
    pub store: Arc<dyn QuotaStore>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    /// How long a session lives without events (`SESSION_TTL_SECS`).
    pub session_ttl: Duration,
    /// WebSocket connections of the tenant open on this instance.
    connections: AtomicU64,
}

/// A connection counted against [`Quotas::connect`]; dropping it lets go.
pub struct Connected(Arc<Quotas>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Quotas {
    pub fn new(
        store: Arc<dyn QuotaStore>,
        limits: Limits,
        session_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Quotas {
        Quotas {
            store,
            limits,
            metrics,
            session_ttl,
            connections: AtomicU64::new(0),
        }
    }

    fn refused(&self, what: &'static str, limit: u64) -> ServiceError {
        self.metrics.quota_refused(what);
        ServiceError::Quota { what, limit }
    }

    /// Holds the sessions `ids` (live for `ttl` more), or refuses when they would make more
    /// live sessions than `TENANT_MAX_SESSIONS`.
    pub async fn sessions(&self, ids: &[&str], ttl: Duration) -> Result<(), ServiceError> {
        let max = self.limits.tenant_max_sessions;
        if max == 0 || ids.is_empty() {
            return Ok(());
        }
        let members: Vec<(&str, u64)> = ids.iter().map(|id| (*id, 1)).collect();
        if self
            .store
            .quota_hold("sessions", &members, ttl, max)
            .await?
        {
            Ok(())
        } else {
            Err(self.refused("sessions", max))
        }
    }

    /// A deleted session no longer counts.
    pub async fn session_deleted(&self, id: &str) -> Result<(), ServiceError> {
        if self.limits.tenant_max_sessions > 0 {
            self.store.quota_release("sessions", id).await?;
        }
        Ok(())
    }

    /// A post of `n` events to the sessions `ids` (sorted, without repeats), in one store
    /// step: its events counted against today's `TENANT_MAX_EVENTS_PER_DAY` and its sessions
    /// held within `TENANT_MAX_SESSIONS` (each renewed for `SESSION_TTL_SECS`), both or
    /// neither. Returns the day the events were counted in, for [`Quotas::events_refused`].
    pub async fn post(&self, ids: &[&str], n: usize) -> Result<String, ServiceError> {
        let (max_sessions, max_events) = (
            self.limits.tenant_max_sessions,
            self.limits.tenant_max_events_per_day,
        );
        if max_sessions == 0 && max_events == 0 {
            return Ok(String::new());
        }
        let window = chrono::Utc::now().format("events:d:%Y-%m-%d").to_string();
        let admitted = self
            .store
            .quota_admit(Admission {
                sessions: ids,
                ttl: self.session_ttl,
                max_sessions,
                window: &window,
                events: n as u64,
                max_events,
                keep: DAY_KEEP,
            })
            .await?;
        match admitted {
            Admitted::Taken => Ok(window),
            Admitted::Sessions => Err(self.refused("sessions", max_sessions)),
            Admitted::Events => Err(self.refused("events today", max_events)),
        }
    }

    /// Gives back the `n` events [`Quotas::post`] counted in `window` for a post that was
    /// then not stored.
    pub async fn events_refused(&self, window: &str, n: usize) {
        if self.limits.tenant_max_events_per_day == 0 || n == 0 {
            return;
        }
        if let Err(e) = self.store.quota_give_back(window, n as u64).await {
            tracing::warn!(error = %e, "could not give back a refused request's events");
        }
    }

    /// Holds `bytes` for the cache entry `key` of `ns` until it expires, within
    /// `TENANT_MAX_CACHE_BYTES`.
    pub async fn cache(
        &self,
        ns: &str,
        key: &str,
        bytes: usize,
        ttl: Duration,
    ) -> Result<(), ServiceError> {
        let max = self.limits.tenant_max_cache_bytes;
        if max == 0 {
            return Ok(());
        }
        let member = cache_member(ns, key);
        if self
            .store
            .quota_hold("cache-bytes", &[(&member, bytes as u64)], ttl, max)
            .await?
        {
            Ok(())
        } else {
            Err(self.refused("cache bytes", max))
        }
    }

    /// A deleted cache entry no longer counts.
    pub async fn cache_deleted(&self, ns: &str, key: &str) -> Result<(), ServiceError> {
        if self.limits.tenant_max_cache_bytes > 0 {
            self.store
                .quota_release("cache-bytes", &cache_member(ns, key))
                .await?;
        }
        Ok(())
    }

    /// Counts a WebSocket connection of the tenant on this instance, or refuses it past
    /// `TENANT_MAX_CONNECTIONS`.
    pub fn connect(self: &Arc<Self>) -> Result<Connected, ServiceError> {
        let max = self.limits.tenant_max_connections;
        let n = self.connections.fetch_add(1, Ordering::Relaxed);
        let held = Connected(Arc::clone(self));
        if max > 0 && n >= max {
            drop(held);
            return Err(self.refused("connections", max));
        }
        Ok(held)
    }
}

/// A cache entry as a member of the cache-bytes set (`ns` and `key` hold no control
/// characters, so the separator cannot be forged).
fn cache_member(ns: &str, key: &str) -> String {
    format!("{ns}\u{1}{key}")
}
