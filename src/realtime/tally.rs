//! What a connection's writer counts of each batch it writes, added to the metrics once per
//! batch rather than once per frame: frames other than events (the hub counts event frames
//! and their bytes once per event, for all their deliveries), and the first event's latency
//! from its append and from the hub, for one batch in [`SAMPLE_EVERY`] of each worker
//! thread. The counters are shared by every connection: touching them per frame would cost
//! the fan-out more than the frame's own bookkeeping.

use std::cell::Cell;

use super::hub::Outbound;
use super::stamp::Stamp;
use crate::metrics::Metrics;
use crate::time::{mono_us, now_ms};

/// One written batch in this many (per worker thread) has its latency observed.
pub const SAMPLE_EVERY: u32 = 8;

thread_local! {
    static BATCHES: Cell<u32> = const { Cell::new(0) };
}

/// One batch's counts.
#[derive(Debug, Default)]
pub struct Tally {
    other: u64,
    bytes: u64,
    first: Option<Stamp>,
}

impl Tally {
    pub fn count(&mut self, item: &Outbound) {
        match item {
            Outbound::Event(e) => {
                self.first.get_or_insert(e.stamp);
            }
            Outbound::Message(m) => {
                self.other += 1;
                self.bytes += m.frame.as_str().len() as u64;
            }
            Outbound::Unsubscribed { .. } | Outbound::CatchUp { .. } => self.other += 1,
        }
    }

    /// Adds the batch to the metrics: a few atomic adds, once.
    pub fn publish(self, m: &Metrics) {
        if self.other > 0 {
            m.frames_other.inc_by(self.other);
        }
        if self.bytes > 0 {
            m.bytes_out.inc_by(self.bytes);
        }
        let sampled = BATCHES.with(|n| {
            let next = n.get().wrapping_add(1);
            n.set(next);
            next % SAMPLE_EVERY == 0
        });
        if let (true, Some(s)) = (sampled, self.first) {
            let since_append = (now_ms() - s.appended_ms()).max(0) as u64;
            m.fanout_latency.observe_us(since_append * 1000);
            m.hub_queue
                .observe_us(mono_us().saturating_sub(s.queued_us()));
        }
    }
}
