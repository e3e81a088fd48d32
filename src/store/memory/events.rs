//! Events in memory: appended to their session's slot under the one lock, and published on
//! the bus before it is released.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{MemoryStore, OVERHEAD};
use crate::bus::{BusMessage, LiveEvent};
use crate::domain::event::{Appended, EventDraft, EventRange, ReadFrom};
use crate::domain::session::field;
use crate::store::{EventStore, StoreError};
use crate::time::Now;

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, drafts: &[EventDraft], now: &Now) -> Result<Vec<Appended>, StoreError> {
        let ttl = self.settings.session_ttl;
        let cap = self.settings.max_events_per_session;
        let byte_cap = self.settings.max_session_event_bytes;
        let window = self.settings.dedup_window;
        let clock = Instant::now();
        let mut state = self.state.lock();
        let size: usize = drafts
            .iter()
            .map(|d| d.json_head.len() + d.event_id.len() + OVERHEAD)
            .sum();
        self.admit(&mut state, size)?;
        let mut out = Vec::with_capacity(drafts.len());
        for d in drafts {
            let slot = state.sessions.slot_or_start(&d.session_id, now, clock, ttl);
            slot.expires = clock + slot.ttl(ttl);
            slot.fields
                .insert(field::UPDATED_AT.to_string(), now.iso.clone());
            let marked = d
                .event_id_given
                .then(|| slot.dedup.get(&d.event_id))
                .flatten();
            if let Some((seq, until)) = marked {
                if *until > clock {
                    out.push(Appended {
                        session_id: d.session_id.clone(),
                        event_id: d.event_id.clone(),
                        seq: *seq,
                        epoch: slot.epoch.to_string(),
                        duplicate: true,
                    });
                    continue;
                }
            }
            slot.seq += 1;
            let seq = slot.seq;
            let stored: Arc<str> = d.complete(seq).into();
            slot.event_bytes += stored.len();
            slot.events.push_back(Arc::clone(&stored));
            // Oldest first, past the count or the bytes; the newest event always stays.
            while slot.events.len() > cap || (slot.event_bytes > byte_cap && slot.events.len() > 1)
            {
                if let Some(old) = slot.events.pop_front() {
                    slot.event_bytes -= old.len();
                }
            }
            if d.event_id_given {
                slot.dedup.insert(d.event_id.clone(), (seq, clock + window));
            }
            let epoch = Arc::clone(&slot.epoch);
            out.push(Appended {
                session_id: d.session_id.clone(),
                event_id: d.event_id.clone(),
                seq,
                epoch: epoch.to_string(),
                duplicate: false,
            });
            self.publish(BusMessage::Event(Arc::new(LiveEvent {
                session_id: d.session_id.as_str().into(),
                seq,
                epoch,
                event: stored,
            })));
            if let Some(u) = &d.usage {
                state.usage.add(&d.session_id, u, &self.settings.services);
            }
        }
        Ok(out)
    }

    async fn read_events(
        &self,
        session_id: &str,
        from: ReadFrom,
        limit: usize,
    ) -> Result<EventRange, StoreError> {
        let mut state = self.state.lock();
        let Some(slot) = state.sessions.slot(session_id, Instant::now()) else {
            return Ok(EventRange {
                first_seq: 1,
                ..EventRange::default()
            });
        };
        let len = slot.events.len() as u64;
        let first_seq = slot.seq + 1 - len;
        let (skip, take) = match from {
            ReadFrom::After(after) => {
                let start = after.saturating_add(1).max(first_seq);
                ((start - first_seq) as usize, limit)
            }
            ReadFrom::Tail(n) => {
                let n = n.min(limit).min(len as usize);
                (len as usize - n, n)
            }
        };
        Ok(EventRange {
            head_seq: slot.seq,
            first_seq,
            epoch: Some(slot.epoch.to_string()),
            events: within_bytes(
                slot.events.iter().skip(skip).take(take),
                self.settings.read_max_bytes,
            ),
        })
    }
}

/// The events up to `max` bytes (always the first one), as the Redis read script cuts them.
fn within_bytes<'a>(events: impl Iterator<Item = &'a Arc<str>>, max: usize) -> Vec<Arc<str>> {
    let mut bytes = 0;
    let mut out = Vec::new();
    for e in events {
        if !out.is_empty() && bytes + e.len() > max {
            break;
        }
        bytes += e.len();
        out.push(Arc::clone(e));
    }
    out
}
