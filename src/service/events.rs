//! Storing events: append and count them, move the chains they describe, and store the
//! events the gateway itself produces. Reading by time scans the stream page by page.

use std::sync::Arc;

use serde_json::Value;

use super::chains::Chains;
use super::ServiceError;
use crate::domain::event::{draft_event, Appended, EventContext, EventDraft, EventRange, ReadFrom};
use crate::domain::session::field;
use crate::metrics::Metrics;
use crate::store::{EventStore, SessionStore, StoreError};
use crate::time::Now;

#[derive(Clone)]
pub struct Events {
    pub store: Arc<dyn EventStore>,
    /// Sessions, for the fields a `session:started` event fills in.
    pub sessions: Arc<dyn SessionStore>,
    pub chains: Chains,
    pub metrics: Arc<Metrics>,
    /// Largest stored event (`MAX_EVENT_BYTES`); a batch is checked event by event.
    pub max_event_bytes: usize,
    /// The tenant usage counts for when credentials decide it (an event's `tenantId` is
    /// then not taken); `None`: the event's `tenantId`.
    pub tenant: Option<Arc<str>>,
    /// The tenant's quotas (events a day, live sessions).
    pub quotas: Option<Arc<super::quotas::Quotas>>,
}

impl Events {
    /// Stores the drafts and counts the events that were new.
    pub async fn append(
        &self,
        drafts: &[EventDraft],
        now: &Now,
    ) -> Result<Vec<Appended>, StoreError> {
        let stored = self.store.append(drafts, now).await?;
        let new = stored.iter().filter(|a| !a.duplicate).count();
        self.metrics.events_appended.inc_by(new as u64);
        Ok(stored)
    }

    /// Stores posted events and applies the chain and step events among them. A batch that
    /// would move another session's chain is refused before anything is stored.
    /// A tenant with quotas has the events counted first, and given back when they are not
    /// stored after all.
    pub async fn post(
        &self,
        drafts: Vec<EventDraft>,
        now: &Now,
    ) -> Result<Vec<Appended>, ServiceError> {
        let Some(q) = &self.quotas else {
            return self.post_counted(drafts, now).await;
        };
        let n = drafts.len();
        let mut ids: Vec<&str> = drafts.iter().map(|d| d.session_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let window = q.post(&ids, n).await?;
        let stored = self.post_counted(drafts, now).await;
        if stored.is_err() {
            q.events_refused(&window, n).await;
        }
        stored
    }

    async fn post_counted(
        &self,
        mut drafts: Vec<EventDraft>,
        now: &Now,
    ) -> Result<Vec<Appended>, ServiceError> {
        self.usage_users(&mut drafts).await?;
        let chain_events: Vec<(usize, Value, String)> = drafts
            .iter_mut()
            .enumerate()
            .filter_map(|(i, d)| Some((i, d.chain.take()?, d.event_id.clone())))
            .collect();
        let stored = if chain_events.is_empty() {
            self.append(&drafts, now).await?
        } else {
            let batch = self.chains.resolve(&chain_events).await?;
            self.chains.check_owners(&batch).await?;
            let stored = self.append(&drafts, now).await?;
            self.chains.apply(batch).await;
            stored
        };
        for draft in drafts.iter().filter(|d| !d.session_info.is_empty()) {
            self.fill_session(draft).await;
        }
        Ok(stored)
    }

    /// Usage counts for the event's user: the one it names, else its session's (read before
    /// the append, since the store needs every total's key up front).
    async fn usage_users(&self, drafts: &mut [EventDraft]) -> Result<(), StoreError> {
        let mut known: std::collections::HashMap<String, Option<String>> = Default::default();
        for d in drafts.iter_mut() {
            if let (Some(u), Some(t)) = (d.usage.as_mut(), &self.tenant) {
                u.tenant = t.to_string();
            }
            let Some(u) = d.usage.as_mut().filter(|u| u.user.is_none()) else {
                continue;
            };
            if !known.contains_key(&d.session_id) {
                let session = self.sessions.get_session(&d.session_id).await?;
                known.insert(d.session_id.clone(), session.and_then(|s| s.user_id));
            }
            u.user = known[&d.session_id].clone();
        }
        Ok(())
    }

    /// Fills the session fields a `session:started` event names that the session does not
    /// have yet (the hooks never create their session first; its first event does). The
    /// event is stored either way: a failure here is logged, not answered.
    async fn fill_session(&self, draft: &EventDraft) {
        let result = async {
            let Some(session) = self.sessions.get_session(&draft.session_id).await? else {
                return Ok(());
            };
            let has = |k: &str| match k {
                field::USER_ID => session.user_id.is_some(),
                field::CWD => session.cwd.is_some(),
                field::HOSTNAME => session.hostname.is_some(),
                field::PLATFORM => session.platform.is_some(),
                _ => true,
            };
            let missing: Vec<(&'static str, String)> = draft
                .session_info
                .iter()
                .filter(|(k, _)| !has(k))
                .cloned()
                .collect();
            if !missing.is_empty() {
                self.sessions
                    .update_session(&draft.session_id, missing)
                    .await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(session = %draft.session_id, error = %e, "could not fill the session from session:started");
        }
    }

    /// Stores (and so publishes) an event the gateway itself produces.
    pub async fn store_event(&self, event: Value, now: &Now) -> Result<(), ServiceError> {
        let ctx = EventContext {
            received_at: now.iso.clone(),
            correlation_id: None,
        };
        let raw = serde_json::value::to_raw_value(&event).expect("a Value serializes");
        let draft = draft_event(&raw, &ctx, "").map_err(ServiceError::Invalid)?;
        self.append(&[draft], now).await?;
        Ok(())
    }

    /// Events received at or after `cutoff`: a binary search over the stored stream for the
    /// first one (about log2(n) reads of one event each, never a scan of the whole list),
    /// then one page from there. `receivedAt` rises with seq (instances' clocks apart by a
    /// little can blur the order of events within that skew of the cutoff). Returns the stream
    /// state and the seq of the first event returned.
    pub async fn read_since(
        &self,
        session_id: &str,
        cutoff: &str,
        limit: usize,
    ) -> Result<(EventRange, u64, Vec<Arc<str>>), StoreError> {
        let one = |after: u64| {
            self.store
                .read_events(session_id, ReadFrom::After(after), 1)
        };
        let stand = one(0).await?;
        let (mut lo, mut hi) = (stand.first_seq, stand.head_seq + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = one(mid - 1).await?;
            if r.epoch != stand.epoch {
                break; // the stream started again meanwhile: read from where we are
            }
            match r.events.first() {
                Some(e) if !received_since(e, cutoff) => lo = r.start_after(mid - 1) + 1,
                _ => hi = mid,
            }
        }
        if lo > stand.head_seq {
            let first = stand.head_seq + 1;
            return Ok((
                EventRange {
                    events: Vec::new(),
                    ..stand
                },
                first,
                Vec::new(),
            ));
        }
        let mut range = self
            .store
            .read_events(session_id, ReadFrom::After(lo - 1), limit)
            .await?;
        let first = range.start_after(lo - 1);
        let found = std::mem::take(&mut range.events);
        Ok((range, first, found))
    }
}

#[derive(serde::Deserialize)]
struct Received<'a> {
    #[serde(rename = "receivedAt", borrow)]
    received_at: std::borrow::Cow<'a, str>,
}

/// Whether a stored event was received at or after `cutoff`. Stored `receivedAt` values all
/// have the one fixed-width UTC format, so comparing the strings compares the instants.
pub fn received_since(event: &str, cutoff: &str) -> bool {
    serde_json::from_str::<Received<'_>>(event).is_ok_and(|r| *r.received_at >= *cutoff)
}
