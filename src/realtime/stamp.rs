//! When an event was appended and when the hub queued its frame: what the latency metrics
//! ([`super::tally`]) measure a delivery against.

use crate::time::{mono_us, now_ms};

/// When an event was appended (its `receivedAt`, ms since the epoch) and when the hub queued
/// its frame ([`mono_us`]): taken once per event, shared by every delivery of it.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    appended_ms: i64,
    queued_us: u64,
}

impl Stamp {
    /// The stamp of a stored event's JSON, queued now. `receivedAt` is the gateway's own
    /// (set at append, never the poster's) and near the end of the text.
    pub fn of(event: &str) -> Stamp {
        const FIELD: &str = "\"receivedAt\":\"";
        let appended_ms = event
            .rfind(FIELD)
            .map(|i| &event[i + FIELD.len()..])
            .and_then(|rest| rest.split('"').next())
            .and_then(crate::time::parse)
            .map_or_else(now_ms, |t| t.timestamp_millis());
        Stamp {
            appended_ms,
            queued_us: mono_us(),
        }
    }

    pub fn appended_ms(&self) -> i64 {
        self.appended_ms
    }

    pub fn queued_us(&self) -> u64 {
        self.queued_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_is_the_events_receipt() {
        let s = Stamp::of(
            r#"{"type":"t","timestamp":"2020-01-01T00:00:00.000Z","receivedAt":"2026-01-01T00:00:00.250Z","seq":7}"#,
        );
        assert_eq!(s.appended_ms, 1_767_225_600_250);
        let before = now_ms();
        assert!(Stamp::of(r#"{"type":"t"}"#).appended_ms >= before);
    }
}
