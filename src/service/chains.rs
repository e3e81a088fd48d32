//! Chain changes on any store. A change reads the chain with its version, computes the new
//! chain with the domain's state machine, and writes it only if the version is unchanged
//! (compare and set in one atomic step in the store), retrying on a conflict. So concurrent
//! updates from any number of instances are applied one after another and none is lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ServiceError;
use crate::domain::chain::{is_active, Chain, ACTIVE_STATUSES};
use crate::domain::chain_input::{chain_event, ChainEvent};
use crate::metrics::Metrics;
use crate::store::{ChainFilter, ChainStore, ChainWrite, StoreError};

/// Attempts of one compare-and-set change before giving up (each conflict means another
/// writer's change went in, so the system as a whole makes progress).
const CAS_ATTEMPTS: usize = 50;

/// Chain changes go through this, on any store. Chains live as long as sessions (`ttl`).
#[derive(Clone)]
pub struct Chains {
    pub store: Arc<dyn ChainStore>,
    pub ttl: Duration,
    /// How long an active chain may go without an update before cleanup fails it
    /// (`CHAIN_STALE_SECS`), unless the cleanup names its own limit.
    pub stale_after: Duration,
    pub metrics: Arc<Metrics>,
}

fn decode(json: &str) -> Result<Chain, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("chain: {e}")))
}

impl Chains {
    fn write(&self, c: &Chain) -> ChainWrite {
        ChainWrite {
            id: c.id.clone(),
            session_id: c.session_id.clone(),
            json: serde_json::to_string(c).expect("a chain serializes"),
            active: is_active(&c.status),
            updated_ms: crate::time::parse(&c.updated_at)
                .map(|t| t.timestamp_millis())
                .unwrap_or_default(),
            ttl: self.ttl,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Chain>, StoreError> {
        match self.store.get_chain(id).await? {
            Some((_, json)) => decode(&json).map(Some),
            None => Ok(None),
        }
    }

    pub async fn create(&self, c: &Chain) -> Result<(), ServiceError> {
        if self.store.put_chain(&self.write(c), 0).await? {
            Ok(())
        } else {
            Err(ServiceError::Exists("chain"))
        }
    }

    /// Applies `change` to the chain's current state and writes it if nobody wrote in
    /// between; otherwise reads again and reapplies. `change` returns false to leave the chain
    /// as it is.
    pub async fn update(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Chain, DateTime<Utc>) -> bool,
    ) -> Result<Chain, ServiceError> {
        for _ in 0..CAS_ATTEMPTS {
            let Some((version, json)) = self.store.get_chain(id).await? else {
                return Err(ServiceError::NotFound("chain"));
            };
            let mut chain = decode(&json)?;
            let now = Utc::now();
            if !change(&mut chain, now) {
                return Ok(chain);
            }
            chain.recompute(now);
            if self.store.put_chain(&self.write(&chain), version).await? {
                return Ok(chain);
            }
        }
        Err(StoreError::Contention("other writers kept changing the chain").into())
    }

    pub async fn list(&self, filter: ChainFilter<'_>) -> Result<Vec<Chain>, StoreError> {
        self.store
            .list_chains(filter)
            .await?
            .iter()
            .map(|j| decode(j))
            .collect()
    }

    /// The session's newest chain, for events that do not name theirs.
    async fn latest(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .list_chains(ChainFilter::Session(session_id))
            .await?
            .last()
            .and_then(|j| decode(j).ok())
            .map(|c| c.id))
    }

    /// Applies a chain or step event of `session_id`. Every change here is idempotent, so an
    /// event applied twice (a retried post) leaves the chain as once.
    pub async fn apply_event(
        &self,
        session_id: &str,
        chain_id: Option<String>,
        what: ChainEvent,
    ) -> Result<Option<Chain>, ServiceError> {
        if let ChainEvent::Compiled(spec) = what {
            let id = chain_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            let chain = Chain::new(id, session_id.to_string(), spec, Utc::now());
            return match self.create(&chain).await {
                Ok(()) => Ok(Some(chain)),
                Err(ServiceError::Exists(_)) => Ok(None),
                Err(e) => Err(e),
            };
        }
        let id = match chain_id {
            Some(id) => id,
            None => match self.latest(session_id).await? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        let result = self
            .update(&id, |c, now| {
                if c.session_id != session_id {
                    return false;
                }
                match &what {
                    ChainEvent::Compiled(_) => return false,
                    ChainEvent::Started => {
                        if c.status == "pending" {
                            c.set_status("in_progress", now);
                        }
                    }
                    ChainEvent::Step {
                        number,
                        status,
                        error,
                    } => c.set_step(*number, status, error.clone(), now),
                    ChainEvent::Finished { status, error } => {
                        if error.is_some() {
                            c.error = error.clone();
                        }
                        c.set_status(status, now);
                    }
                }
                true
            })
            .await;
        match result {
            Ok(c) => Ok(Some(c)),
            Err(ServiceError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An acknowledged `pause`, `resume` or `cancel` moves the chains it is about: the one its
    /// payload names (`chainId`), else every active chain of the session.
    pub async fn apply_command(
        &self,
        session_id: &str,
        command: &Value,
    ) -> Result<Vec<Chain>, ServiceError> {
        let kind = command["command"]["type"].as_str().unwrap_or_default();
        let (from, to): (&[&str], &str) = match kind {
            "pause" => (&["pending", "in_progress"], "paused"),
            "resume" => (&["paused"], "in_progress"),
            "cancel" => (&ACTIVE_STATUSES, "cancelled"),
            _ => return Ok(Vec::new()),
        };
        let ids: Vec<String> = match command["command"]["payload"]["chainId"].as_str() {
            Some(id) => vec![id.to_string()],
            None => self
                .list(ChainFilter::Session(session_id))
                .await?
                .into_iter()
                .filter(|c| is_active(&c.status))
                .map(|c| c.id)
                .collect(),
        };
        let mut moved = Vec::new();
        for id in ids {
            let r = self
                .update(&id, |c, now| {
                    if c.session_id != session_id || !from.contains(&c.status.as_str()) {
                        return false;
                    }
                    c.set_status(to, now);
                    true
                })
                .await;
            match r {
                Ok(c) => moved.push(c),
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// Active chains with no update for longer than `stale` become `failed` (`error:"stale"`).
    pub async fn cleanup(&self, stale: Duration) -> Result<usize, ServiceError> {
        // Saturating: a limit older than time itself fails nothing.
        let cutoff = chrono::Duration::from_std(stale)
            .ok()
            .and_then(|d| Utc::now().checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut cleaned = 0;
        for c in self.list(ChainFilter::Active).await? {
            let old = crate::time::parse(&c.updated_at).is_some_and(|t| t < cutoff);
            if !old {
                continue;
            }
            let r = self
                .update(&c.id, |c, now| {
                    let still_old = crate::time::parse(&c.updated_at).is_some_and(|t| t < cutoff);
                    if !is_active(&c.status) || !still_old {
                        return false;
                    }
                    c.error = Some("stale".into());
                    c.set_status("failed", now);
                    true
                })
                .await;
            match r {
                Ok(c) if c.status == "failed" => cleaned += 1,
                Ok(_) | Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(cleaned)
    }
}

impl Chains {
    /// Applies chain and step events (already stored, each with its `eventId`). A failure is
    /// logged and counted, not returned: the events are stored, and every chain change is
    /// idempotent (a `chain:compiled` without `chainId` takes its `eventId` as the chain id),
    /// so a retried post with the same `eventId` applies it again.
    pub async fn apply_events(&self, events: &[(Value, String)]) {
        for (event, event_id) in events {
            let Some((chain_id, what)) = chain_event(event) else {
                continue;
            };
            let chain_id = match (&what, chain_id) {
                (ChainEvent::Compiled(_), None) => Some(event_id.clone()),
                (_, id) => id,
            };
            let Some(session_id) = event["sessionId"].as_str() else {
                continue;
            };
            if let Err(e) = self.apply_event(session_id, chain_id, what).await {
                self.metrics.chain_update_failures.inc();
                tracing::warn!(session = session_id, error = %e, "could not apply a chain event");
            }
        }
    }
}

/// Whether an event body may move a chain (checked before the body is consumed).
pub fn is_chain_event(event: &Value) -> bool {
    event["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("chain:") || t.starts_with("step:"))
}
