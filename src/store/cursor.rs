//! Where a walk over an index ordered by time stopped: the last member's time (ms) and the
//! member as the store names it. Chain listings and dead letters are paged with it, newest
//! first; it is opaque to callers ([`Cursor::encode`]).

/// A position in an index ordered by time, then by member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ms: i64,
    pub member: String,
}

impl Cursor {
    /// `<ms>.<member as hex>`: safe in a query string whatever the ids hold.
    pub fn encode(&self) -> String {
        let hex: String = self.member.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}.{hex}", self.ms)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (ms, hex) = text.split_once('.')?;
        if hex.len() % 2 != 0 || hex.len() > 2048 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        Some(Cursor {
            ms: ms.parse().ok()?,
            member: String::from_utf8(bytes?).ok()?,
        })
    }

    /// Whether an index member at (`ms`, `member`) comes at or before this cursor in a walk
    /// newest first (ties of one ms in descending member order, as Redis's `ZREVRANGEBYSCORE`
    /// gives them): already walked.
    pub fn walked(&self, ms: i64, member: &str) -> bool {
        ms > self.ms || (ms == self.ms && member >= self.member.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_any_member() {
        let c = Cursor {
            ms: 1_700_000_000_123,
            member: r#"["a.b","c\u0000 d{}"]"#.into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        assert_eq!(Cursor::decode("x.00"), None);
        assert_eq!(Cursor::decode("1.0"), None);
        assert_eq!(Cursor::decode("1.zz"), None);
        assert!(c.walked(c.ms + 1, "a"));
        assert!(c.walked(c.ms, &c.member));
        assert!(!c.walked(c.ms, "["));
        assert!(!c.walked(c.ms - 1, "zzz"));
    }
}
