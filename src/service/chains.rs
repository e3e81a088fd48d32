//! Chain changes on any store. A change reads the chain with its version, computes the new
//! chain with the domain's state machine, and writes it only if the version is unchanged
//! (compare and set in one atomic step in the store), retrying on a conflict. So concurrent
//! updates from any number of instances are applied one after another and none is lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ServiceError;
use crate::domain::chain::{
    is_active, progress_centi, Chain, ChainLimits, StatusCounts, ACTIVE_STATUSES,
};
use crate::metrics::Metrics;
use crate::store::{ChainStore, ChainWrite, Cursor, StoreError};

/// Attempts of one compare-and-set change before giving up (each conflict means another
/// writer's change went in, so the system as a whole makes progress).
const CAS_ATTEMPTS: usize = 50;

/// Pages of the chain index one filtered listing walks at most before answering.
pub const MAX_WALK_PAGES: usize = 10;

/// Stale chains one cleanup fails at most (the answer says when more remain).
pub const CLEANUP_BATCH: usize = 500;

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
            status: c.status.clone(),
            progress_centi: progress_centi(c.progress),
            updated_ms: crate::time::parse(&c.updated_at)
                .map(|t| t.timestamp_millis())
                .unwrap_or_default(),
            ttl: self.ttl,
        })
    }

    /// The session a chain belongs to, if it exists (its owner key; the chain is not read).
    pub async fn owner(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.store.chain_session(id).await
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

    /// A session's chains in creation order.
    pub async fn of_session(&self, session_id: &str) -> Result<Vec<Chain>, StoreError> {
        self.store
            .session_chains(session_id)
            .await?
            .iter()
            .map(|j| decode(j))
            .collect()
    }

    /// A page of the chains across sessions, most recently updated first: active ones, or all,
    /// or those of one `status` (found by walking at most [`MAX_WALK_PAGES`] pages of the
    /// index, so a filter that matches nothing still answers at once, with a cursor to go on).
    pub async fn page(
        &self,
        active: bool,
        status: Option<&str>,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<Chain>, Option<Cursor>), StoreError> {
        let mut out = Vec::new();
        let mut cursor = after;
        for _ in 0..MAX_WALK_PAGES {
            let page = self
                .store
                .page_chains(active, cursor.as_ref(), limit - out.len())
                .await?;
            for json in &page.chains {
                let c = decode(json)?;
                if status.is_none_or(|s| c.status == s) {
                    out.push(c);
                }
            }
            cursor = page.next;
            if cursor.is_none() || out.len() == limit || page.full {
                break;
            }
        }
        Ok((out, cursor))
    }

    /// The chains by status, from the store's counters.
    pub async fn counts(&self) -> Result<StatusCounts, StoreError> {
        self.store.chain_counts().await
    }

    /// The session's newest chain, for events that do not name theirs (no chain is read: a
    /// session of many large chains once cost each such event all of them).
    pub(super) async fn latest(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        self.store.newest_chain(session_id).await
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
                .of_session(session_id)
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

    /// Active chains with no update for longer than `stale` become `failed` (`error:"stale"`),
    /// at most [`CLEANUP_BATCH`] per call, oldest first, read from the active index (never a
    /// walk over every chain): the cleaned count, and whether stale ones remain.
    pub async fn cleanup(&self, stale: Duration) -> Result<(usize, bool), ServiceError> {
        // Saturating: a limit older than time itself fails nothing.
        let cutoff = chrono::Duration::from_std(stale)
            .ok()
            .and_then(|d| Utc::now().checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let ids = self
            .store
            .stale_chains(cutoff.timestamp_millis(), CLEANUP_BATCH)
            .await?;
        let more = ids.len() == CLEANUP_BATCH;
        let mut cleaned = 0;
        for id in ids {
            let r = self
                .update(&id, |c, now| {
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
        Ok((cleaned, more))
    }
}
