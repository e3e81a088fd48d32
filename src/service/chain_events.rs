//! Chain and step events: a post's events resolved to the chains they move, checked for
//! ownership before anything is stored, and applied after, one change per chain.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::chains::Chains;
use super::ServiceError;
use crate::domain::chain::Chain;
use crate::domain::chain_input::{chain_event, ChainEvent};
use crate::domain::FieldProblem;
use crate::store::StoreError;

impl Chains {
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
    groups: Vec<Group>,
}

/// What one post asks of one chain.
struct Group {
    session_id: String,
    chain_id: String,
    /// The place in the request of the group's first event.
    place: usize,
    /// In the order the events came.
    whats: Vec<ChainEvent>,
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
        let mut batch = ChainBatch { groups: Vec::new() };
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
                .position(|g| g.session_id == session_id && g.chain_id == id)
            {
                Some(i) => i,
                None => {
                    batch.groups.push(Group {
                        session_id: session_id.to_string(),
                        chain_id: id,
                        place: *place,
                        whats: Vec::new(),
                    });
                    batch.groups.len() - 1
                }
            };
            batch.groups[i].whats.push(what);
        }
        Ok(batch)
    }

    /// Refuses a batch that would move another session's chain (409, nothing stored): chains
    /// belong to their session, and a post must not answer 2xx for a change it cannot make.
    pub async fn check_owners(&self, batch: &ChainBatch) -> Result<(), ServiceError> {
        let mut problems = Vec::new();
        for g in &batch.groups {
            if let Some(owner) = self.owner(&g.chain_id).await? {
                if owner != g.session_id {
                    problems.push(FieldProblem::new(
                        format!("events[{}].chainId", g.place),
                        format!(
                            "chain {:?} belongs to another session; nothing was stored",
                            g.chain_id
                        ),
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
        for g in &batch.groups {
            if let Err(e) = self.apply_group(&g.session_id, &g.chain_id, &g.whats).await {
                self.metrics.chain_update_failures.inc();
                tracing::warn!(session = %g.session_id.escape_debug(), chain = %g.chain_id.escape_debug(), error = %e, "could not apply chain events");
            }
        }
    }
}
