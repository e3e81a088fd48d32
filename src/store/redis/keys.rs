//! Every Redis key and channel name the gateway uses, in one place (PROTOCOL §3). The Lua
//! scripts build the same names from the prefix; the README lists each with type and TTL.

/// Names under one prefix (`REDIS_PREFIX`, default `afw:`).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// HASH of a session's fields plus `_seq`, `_epoch`, `_idx`.
    pub fn session(&self, id: &str) -> String {
        format!("{}sessions:{id}", self.prefix)
    }

    /// LIST of a session's stored events, oldest first.
    pub fn events(&self, id: &str) -> String {
        format!("{}events:{id}", self.prefix)
    }

    /// ZSET (all scores 0) of `"{startedAt ms}:{id}"`, for listing sessions without `KEYS`.
    pub fn session_index(&self) -> String {
        format!("{}index:sessions", self.prefix)
    }

    /// HASH of a chain: `json` (the chain), `v` (its version), `sessionId`.
    pub fn chain(&self, id: &str) -> String {
        format!("{}chain:{id}", self.prefix)
    }

    /// Pub/sub channel of every stored event.
    pub fn events_channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Pub/sub channel of other notifications (session deletions, ...).
    pub fn control_channel(&self) -> String {
        format!("{}control", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_follows_the_prefix() {
        let k = Keys::new("x:");
        assert_eq!(k.session("s"), "x:sessions:s");
        assert_eq!(k.events("s"), "x:events:s");
        assert_eq!(k.session_index(), "x:index:sessions");
        assert_eq!(k.events_channel(), "x:events");
        assert_eq!(k.control_channel(), "x:control");
    }
}
