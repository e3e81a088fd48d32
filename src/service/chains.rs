//! Chain changes on any store. A change reads the chain with its version, computes the new
//! chain with the domain's state machine, and writes it only if the version is unchanged
//! (compare and set in one atomic step in the store), retrying on a conflict. So concurrent
//! updates from any number of instances are applied one after another and none is lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use std::collections::HashMap;

use super::ServiceError;
use crate::domain::chain::{is_active, Chain, ACTIVE_STATUSES};
use crate::domain::chain_input::{chain_event, ChainEvent};
use crate::domain::FieldProblem;
use crate::metrics::Metrics;
use crate::store::{ChainFilter, ChainStore, ChainWrite, StoreError};

/// Attempts of one compare-and-set change before giving up (each conflict means another
/// writer's change went in, so the system as a whole makes progress).
const CAS_ATTEMPTS: usize = 50;

/// What one chain may hold (`CHAIN_MAX_BYTES`, `CHAIN_VALUE_MAX_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct ChainLimits {
    /// Largest stored chain JSON; a change past it is refused. Below the WebSocket outbound
    /// budget, so one chain frame never closes a reader that keeps up.
    pub max_bytes: usize,
    /// Largest free-form value (an error, data, a step's fields) kept as given; larger ones
    /// are truncated with a marker.
    pub max_value_bytes: usize,
}

/// Chain changes go through this, on any store. Chains live as long as sessions (`ttl`).
#[derive(Clone)]
pub struct Chains {
    pub store: Arc<dyn ChainStore>,
    pub ttl: Duration,
    /// How long an active chain may go without an update before cleanup fails it
    /// (`CHAIN_STALE_SECS`), unless the cleanup names its own limit.
    pub stale_after: Duration,
    pub limits: ChainLimits,
    pub metrics: Arc<Metrics>,
}

fn decode(json: &str) -> Result<Chain, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("chain: {e}")))
}

#[derive(serde::Deserialize)]
struct Owner<'a> {
    #[serde(rename = "sessionId", borrow)]
    session_id: std::borrow::Cow<'a, str>,
}

impl Chains {
    /// The chain as it will be stored: free-form values bounded, and refused past the limit.
    fn write(&self, c: &mut Chain) -> Result<ChainWrite, ServiceError> {
        c.bound_values(self.limits.max_value_bytes);
        let json = serde_json::to_string(c).expect("a chain serializes");
        if json.len() > self.limits.max_bytes {
            return Err(ServiceError::TooLarge {
                what: "chain",
                limit: self.limits.max_bytes,
            });
        }
        Ok(ChainWrite {
            id: c.id.clone(),
            session_id: c.session_id.clone(),
            json,
            active: is_active(&c.status),
            updated_ms: crate::time::parse(&c.updated_at)
                .map(|t| t.timestamp_millis())
                .unwrap_or_default(),
            ttl: self.ttl,
        })
    }

    /// The session a chain belongs to, if it exists.
    pub async fn owner(&self, id: &str) -> Result<Option<String>, StoreError> {
        match self.store.get_chain(id).await? {
            Some((_, json)) => serde_json::from_str::<Owner<'_>>(&json)
                .map(|o| Some(o.session_id.into_owned()))
                .map_err(|e| StoreError::Corrupt(format!("chain: {e}"))),
            None => Ok(None),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Chain>, StoreError> {
        match self.store.get_chain(id).await? {
            Some((_, json)) => decode(&json).map(Some),
            None => Ok(None),
        }
    }

    pub async fn create(&self, c: &mut Chain) -> Result<(), ServiceError> {
        if self.store.put_chain(&self.write(c)?, 0).await? {
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
            if self
                .store
                .put_chain(&self.write(&mut chain)?, version)
                .await?
            {
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

    /// Applies a chain's share of a batch of chain and step events of `session_id`, in their
    /// order, as at most one creation and one change (never one rewrite per event). Every
    /// change here is idempotent, so events applied twice (a retried post) leave the chain as
    /// once. A chain of another session is left alone and answered as a conflict.
    async fn apply_group(
        &self,
        session_id: &str,
        id: &str,
        whats: &[ChainEvent],
    ) -> Result<(), ServiceError> {
        let mut rest = whats;
        if let Some(i) = whats
            .iter()
            .position(|w| matches!(w, ChainEvent::Compiled(_)))
        {
            let ChainEvent::Compiled(spec) = &whats[i] else {
                unreachable!("found above")
            };
            let mut chain = Chain::new(
                id.to_string(),
                session_id.to_string(),
                spec.clone(),
                Utc::now(),
            );
            match self.create(&mut chain).await {
                Ok(()) => rest = &whats[i + 1..],
                Err(ServiceError::Exists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if rest.iter().all(|w| matches!(w, ChainEvent::Compiled(_))) {
            return Ok(());
        }
        let mut foreign = false;
        let result = self
            .update(id, |c, now| {
                foreign = c.session_id != session_id;
                if foreign {
                    return false;
                }
                rest.iter().for_each(|w| apply_one(c, w, now));
                true
            })
            .await;
        match result {
            Ok(_) if foreign => Err(foreign_chain(id)),
            Ok(_) | Err(ServiceError::NotFound(_)) => Ok(()),
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

fn apply_one(c: &mut Chain, what: &ChainEvent, now: DateTime<Utc>) {
    match what {
        ChainEvent::Compiled(_) => {}
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
}

fn foreign_chain(id: &str) -> ServiceError {
    ServiceError::Conflict(vec![FieldProblem::new(
        "chainId",
        format!("chain {id:?} belongs to another session"),
    )])
}

/// The chain and step events of one post, resolved to the chain each moves and grouped by
/// it, in order.
pub struct ChainBatch {
    /// (session, chain id, what), per chain, in the order the events came.
    groups: Vec<(String, String, Vec<ChainEvent>)>,
    /// The place in the request of each group's first event.
    places: Vec<usize>,
}

impl Chains {
    /// Reads chain and step events (place in the request, body, `eventId`). A
    /// `chain:compiled` without `chainId` takes its `eventId` as the chain id; an event
    /// naming no chain goes to the newest chain its session has, counting those this batch
    /// makes.
    pub async fn resolve(
        &self,
        events: &[(usize, Value, String)],
    ) -> Result<ChainBatch, StoreError> {
        let mut batch = ChainBatch {
            groups: Vec::new(),
            places: Vec::new(),
        };
        let mut newest: HashMap<String, Option<String>> = HashMap::new();
        for (place, event, event_id) in events {
            let Some((chain_id, what)) = chain_event(event) else {
                continue;
            };
            let Some(session_id) = event["sessionId"].as_str() else {
                continue;
            };
            let id = match (&what, chain_id) {
                (_, Some(id)) => id,
                (ChainEvent::Compiled(_), None) => event_id.clone(),
                (_, None) => {
                    if !newest.contains_key(session_id) {
                        newest.insert(session_id.to_string(), self.latest(session_id).await?);
                    }
                    match &newest[session_id] {
                        Some(id) => id.clone(),
                        None => continue, // no chain to move; the event is stored all the same
                    }
                }
            };
            if matches!(what, ChainEvent::Compiled(_)) {
                newest.insert(session_id.to_string(), Some(id.clone()));
            }
            let i = match batch
                .groups
                .iter()
                .position(|(s, c, _)| s == session_id && *c == id)
            {
                Some(i) => i,
                None => {
                    batch.groups.push((session_id.to_string(), id, Vec::new()));
                    batch.places.push(*place);
                    batch.groups.len() - 1
                }
            };
            batch.groups[i].2.push(what);
        }
        Ok(batch)
    }

    /// Refuses a batch that would move another session's chain (409, nothing stored): chains
    /// belong to their session, and a post must not answer 2xx for a change it cannot make.
    pub async fn check_owners(&self, batch: &ChainBatch) -> Result<(), ServiceError> {
        let mut problems = Vec::new();
        for ((session_id, id, _), place) in batch.groups.iter().zip(&batch.places) {
            if let Some(owner) = self.owner(id).await? {
                if owner != *session_id {
                    problems.push(FieldProblem::new(
                        format!("events[{place}].chainId"),
                        format!("chain {id:?} belongs to another session; nothing was stored"),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Conflict(problems))
        }
    }

    /// Applies the chain changes of a stored batch, one pass per chain. A failure is logged
    /// and counted, not returned: the events are stored, and every change is idempotent, so a
    /// retried post with the same `eventId`s applies them again.
    pub async fn apply(&self, batch: ChainBatch) {
        for (session_id, id, whats) in &batch.groups {
            if let Err(e) = self.apply_group(session_id, id, whats).await {
                self.metrics.chain_update_failures.inc();
                tracing::warn!(session = %session_id.escape_debug(), chain = %id.escape_debug(), error = %e, "could not apply chain events");
            }
        }
    }
}
