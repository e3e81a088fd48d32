//! What a connection's writer counts of each batch it writes, added to the metrics once per
//! batch rather than once per frame (the counters are shared by every connection, and a
//! shared counter per frame would cost the fan-out more than the frame's own bookkeeping):
//! frames by type, bytes, and the first event's latency from its append and from the hub.

use super::hub::Outbound;
use super::stamp::Stamp;
use crate::metrics::Metrics;
use crate::time::{mono_us, now_ms};

/// One batch's counts.
#[derive(Debug, Default)]
pub struct Tally {
    events: u64,
    other: u64,
    bytes: u64,
    first: Option<Stamp>,
}

impl Tally {
    pub fn count(&mut self, item: &Outbound) {
        match item {
            Outbound::Event { frame, stamp, .. } => {
                self.events += 1;
                self.bytes += frame.as_str().len() as u64;
                self.first.get_or_insert(*stamp);
            }
            Outbound::Message { frame, .. } => {
                self.other += 1;
                self.bytes += frame.as_str().len() as u64;
            }
            Outbound::Unsubscribed { .. } | Outbound::CatchUp { .. } => self.other += 1,
        }
    }

    /// Adds the batch to the metrics: a few atomic adds, once.
    pub fn publish(self, m: &Metrics) {
        if self.events > 0 {
            m.frames_events.inc_by(self.events);
        }
        if self.other > 0 {
            m.frames_other.inc_by(self.other);
        }
        if self.bytes > 0 {
            m.bytes_out.inc_by(self.bytes);
        }
        if let Some(s) = self.first {
            let since_append = (now_ms() - s.appended_ms()).max(0) as u64;
            m.fanout_latency.observe_us(since_append * 1000);
            m.hub_queue
                .observe_us(mono_us().saturating_sub(s.queued_us()));
        }
    }
}
