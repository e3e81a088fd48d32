//! The event stream's settings: how long a session lives, how many events and bytes it keeps,
//! how large one event, one batch and one read may be.

use clap::Args;

use super::values::{bad, ConfigError};

pub const DEFAULT_SESSION_TTL_SECS: u64 = 24 * 60 * 60;
pub const DEFAULT_MAX_EVENTS_PER_SESSION: usize = 10_000;
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// One full batch fits an empty outbound queue of the default size.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_MAX_SESSION_EVENT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Events")]
pub struct Events {
    /// Seconds a session and its events live after their last activity.
    #[arg(long, env = "SESSION_TTL_SECS", value_name = "SESSION_TTL_SECS", default_value_t = DEFAULT_SESSION_TTL_SECS)]
    pub session_ttl_secs: u64,
    /// Newest events kept per session; older ones are trimmed.
    #[arg(long, env = "MAX_EVENTS_PER_SESSION", value_name = "MAX_EVENTS_PER_SESSION", default_value_t = DEFAULT_MAX_EVENTS_PER_SESSION)]
    pub max_events_per_session: usize,
    /// Largest accepted request body for one event (and most routes), in bytes.
    #[arg(long, env = "MAX_EVENT_BYTES", value_name = "MAX_EVENT_BYTES", default_value_t = DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,
    /// Bytes of stored events a session keeps; past them the oldest are trimmed (>= 4096).
    #[arg(long, env = "MAX_SESSION_EVENT_BYTES", value_name = "MAX_SESSION_EVENT_BYTES", default_value_t = DEFAULT_MAX_SESSION_EVENT_BYTES)]
    pub max_session_event_bytes: usize,
    /// Largest accepted body of `POST /api/events/batch`, in bytes.
    #[arg(long, env = "MAX_BATCH_BYTES", value_name = "MAX_BATCH_BYTES", default_value_t = DEFAULT_MAX_BATCH_BYTES)]
    pub max_batch_bytes: usize,
    /// Most bytes of events one store read returns (a replay page, a `GET /api/events` page);
    /// a page stops short of it (with `nextAfter`) rather than load more at once.
    #[arg(long, env = "READ_MAX_BYTES", value_name = "READ_MAX_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub read_max_bytes: usize,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
            max_events_per_session: DEFAULT_MAX_EVENTS_PER_SESSION,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_session_event_bytes: DEFAULT_MAX_SESSION_EVENT_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            read_max_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Events {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.session_ttl_secs == 0 || self.session_ttl_secs > 365 * 24 * 3600 {
            return Err(bad(
                "SESSION_TTL_SECS",
                "must be between 1 and 31536000 seconds",
            ));
        }
        if self.max_events_per_session == 0 || self.max_events_per_session > 1_000_000 {
            return Err(bad(
                "MAX_EVENTS_PER_SESSION",
                "must be between 1 and 1000000",
            ));
        }
        if self.max_event_bytes < 256 || self.max_event_bytes > 16 * 1024 * 1024 {
            return Err(bad(
                "MAX_EVENT_BYTES",
                "must be between 256 and 16777216 bytes",
            ));
        }
        if self.max_batch_bytes < self.max_event_bytes || self.max_batch_bytes > 256 * 1024 * 1024 {
            return Err(bad(
                "MAX_BATCH_BYTES",
                "must be at least MAX_EVENT_BYTES and at most 268435456 bytes",
            ));
        }
        if self.max_session_event_bytes < 4096 {
            return Err(bad(
                "MAX_SESSION_EVENT_BYTES",
                "must be at least 4096 bytes",
            ));
        }
        if self.read_max_bytes < self.max_event_bytes {
            return Err(bad("READ_MAX_BYTES", "must be at least MAX_EVENT_BYTES"));
        }
        Ok(())
    }
}
