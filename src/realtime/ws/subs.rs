//! The sessions one connection is subscribed to, and where it stands in each.
//!
//! A vector sorted by session, not a map: an idle connection usually follows one session, and
//! the smallest table a hash map allocates holds three entries and their control bytes
//! (180 bytes per connection); this holds what it has (40 bytes for one session) and finds a
//! session by binary search among at most [`proto::MAX_SUBSCRIPTIONS_PER_CONNECTION`].
//!
//! [`proto::MAX_SUBSCRIPTIONS_PER_CONNECTION`]: crate::realtime::protocol::MAX_SUBSCRIPTIONS_PER_CONNECTION

use std::sync::Arc;

use crate::realtime::position::Position;

/// Subscribed sessions (by their hub key) and each one's position.
#[derive(Debug, Default)]
pub(super) struct Subs(Vec<(Arc<str>, Position)>);

impl Subs {
    fn find(&self, sid: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(key, _)| (**key).cmp(sid))
    }

    pub fn get(&self, sid: &str) -> Option<&Position> {
        self.find(sid).ok().map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, sid: &str) -> Option<&mut Position> {
        self.find(sid).ok().map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, sid: &str) -> bool {
        self.find(sid).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sets the position of `sid`, subscribed or not yet.
    pub fn insert(&mut self, sid: Arc<str>, position: Position) {
        match self.find(&sid) {
            Ok(i) => self.0[i].1 = position,
            Err(i) => {
                if self.0.capacity() == 0 {
                    // The first session takes one slot, not the four a growing vector starts with.
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (sid, position));
            }
        }
    }

    pub fn remove(&mut self, sid: &str) -> Option<Position> {
        let i = self.find(sid).ok()?;
        let (_, position) = self.0.remove(i);
        if self.0.is_empty() {
            // A connection that unsubscribed from everything holds nothing here.
            self.0 = Vec::new();
        }
        Some(position)
    }

    /// The subscribed sessions' hub keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().map(|(sid, _)| sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last: u64) -> Position {
        Position { epoch: None, last }
    }

    #[test]
    fn finds_every_session_among_many_and_keeps_them_sorted() {
        let mut subs = Subs::default();
        // Inserted out of order, one replaced.
        for n in [5u64, 1, 9, 3, 7, 0, 8, 2, 6, 4] {
            subs.insert(Arc::from(format!("s{n}")), at(n));
        }
        subs.insert(Arc::from("s3"), at(33));
        assert_eq!(subs.len(), 10);
        let keys: Vec<&str> = subs.keys().map(|k| &**k).collect();
        assert_eq!(
            keys,
            ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"]
        );
        assert_eq!(subs.get("s3").map(|p| p.last), Some(33));
        for n in [0u64, 1, 2, 4, 5, 6, 7, 8, 9] {
            assert_eq!(subs.get(&format!("s{n}")).map(|p| p.last), Some(n));
        }
        assert!(!subs.contains_key("s10"));
        subs.get_mut("s9").unwrap().last = 90;
        assert_eq!(subs.remove("s9").map(|p| p.last), Some(90));
        assert!(subs.remove("s9").is_none());
        assert!(subs.get("s9").is_none() && subs.contains_key("s8"));
    }

    #[test]
    fn one_session_takes_one_slot_and_none_takes_nothing() {
        let mut subs = Subs::default();
        subs.insert(Arc::from("a"), at(1));
        assert_eq!(subs.0.capacity(), 1);
        subs.insert(Arc::from("b"), at(1));
        assert!(subs.remove("a").is_some() && subs.remove("b").is_some());
        assert_eq!((subs.len(), subs.0.capacity()), (0, 0));
    }
}
