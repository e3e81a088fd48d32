//! Wall-clock timestamps in the one format of the wire contract: ISO 8601 UTC with
//! milliseconds (`2026-01-01T00:00:00.000Z`).

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, as the contract writes it, and as milliseconds since the Unix epoch.
pub fn now() -> (String, i64) {
    let t = Utc::now();
    (format(t), t.timestamp_millis())
}

/// Milliseconds since the Unix epoch, now (the embedded store's clock for expiries that are
/// reported, as Redis's `TIME` is).
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Microseconds on a monotonic clock since the process first asked (for durations measured
/// across tasks, such as a frame's time in a connection's queue).
pub fn mono_us() -> u64 {
    static START: std::sync::LazyLock<std::time::Instant> =
        std::sync::LazyLock::new(std::time::Instant::now);
    u64::try_from(START.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The current time, as stored (`iso`) and as indexes order it (`ms`).
#[derive(Debug, Clone)]
pub struct Now {
    pub iso: String,
    pub ms: i64,
}

impl Now {
    pub fn get() -> Now {
        let (iso, ms) = now();
        Now { iso, ms }
    }
}

/// Milliseconds since the epoch as the contract writes a time, as JSON (null when out of
/// range).
pub fn iso_ms(ms: i64) -> serde_json::Value {
    DateTime::from_timestamp_millis(ms)
        .map(|t| format(t).into())
        .unwrap_or(serde_json::Value::Null)
}

pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 / ISO 8601 timestamp with any offset.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_offsets() {
        let t = parse("2026-01-01T01:00:00+01:00").unwrap();
        assert_eq!(format(t), "2026-01-01T00:00:00.000Z");
        assert!(parse("yesterday").is_none());
        assert!(parse("2026-01-01").is_none());
        let (iso, ms) = now();
        assert_eq!(parse(&iso).unwrap().timestamp_millis(), ms);
    }
}
