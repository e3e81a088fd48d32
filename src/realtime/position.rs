//! Where a reader stands in one session's stream: the epoch it follows and the last seq it
//! sent. Everything a WebSocket connection or an SSE stream sends goes through [`Position::admit`],
//! so replay and live events meet without a gap or a duplicate.

use std::sync::Arc;

/// A reader's place in one session's stream.
#[derive(Debug, Default)]
pub struct Position {
    pub epoch: Option<Arc<str>>,
    pub last: u64,
}

/// What to do with a live event.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Already sent (or older): drop it.
    Skip,
    /// The next one: send it (the position has moved on to it).
    Next,
    /// Events between the last sent and this one are missing: read them from the store
    /// first, then send this one.
    Gap,
}

impl Position {
    pub fn admit(&mut self, epoch: &Arc<str>, seq: u64) -> Admit {
        if self.epoch.as_deref() != Some(&**epoch) {
            // The stream started again (or had not started when the reader joined).
            self.epoch = Some(Arc::clone(epoch));
            self.last = 0;
        }
        if seq <= self.last {
            Admit::Skip
        } else if seq == self.last + 1 {
            self.last = seq;
            Admit::Next
        } else {
            Admit::Gap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_skip_gap_and_a_new_epoch() {
        let a: Arc<str> = Arc::from("a");
        let mut p = Position {
            epoch: Some(Arc::clone(&a)),
            last: 3,
        };
        assert_eq!(p.admit(&a, 3), Admit::Skip);
        assert_eq!(p.admit(&a, 4), Admit::Next);
        assert_eq!(p.admit(&a, 6), Admit::Gap);
        assert_eq!(p.last, 4);
        assert_eq!(p.admit(&Arc::from("b"), 1), Admit::Next);
        assert_eq!((p.epoch.as_deref(), p.last), (Some("b"), 1));
    }
}
