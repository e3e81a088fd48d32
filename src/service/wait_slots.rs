//! Long polls parked per client: a job claim (or a completion's `next`) with `wait`, a lock
//! request with `waitMs`, a command or input poll with `wait`. Each costs the instance memory
//! for as long as it waits, so one client may hold at most `MAX_WAITS_PER_CLIENT` of them at
//! once; one more is refused at once (and waits for nothing). Who a client is, the HTTP edge
//! says (`http::waits`): here it is a number.

use std::sync::Arc;

use dashmap::DashMap;

/// How many waits each client holds. A client's entry stays at zero when its waits end (a
/// busy worker parks and unparks a claim per job: no entry is made and dropped each time), and
/// entries at zero are cleared once there are [`WaitSlots::KEEP`] of them.
pub struct WaitSlots {
    max: usize,
    held: DashMap<u64, usize>,
}

/// One parked wait; dropping it (the poll answered, or its client went away) gives it back.
pub struct WaitSlot {
    slots: Arc<WaitSlots>,
    client: u64,
}

impl WaitSlots {
    /// Clients remembered before those with no wait are cleared.
    pub const KEEP: usize = 10_000;

    pub fn new(max: usize) -> WaitSlots {
        WaitSlots {
            max,
            held: DashMap::new(),
        }
    }

    /// The most waits one client may hold (`MAX_WAITS_PER_CLIENT`).
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for `client`, or `None` when it already holds [`WaitSlots::max`].
    pub fn take(self: &Arc<Self>, client: u64) -> Option<WaitSlot> {
        if self.held.len() >= Self::KEEP && !self.held.contains_key(&client) {
            self.held.retain(|_, n| *n > 0);
        }
        let mut n = self.held.entry(client).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(WaitSlot {
            slots: Arc::clone(self),
            client,
        })
    }

    /// Clients with a wait parked now.
    pub fn clients(&self) -> usize {
        self.held.iter().filter(|e| *e.value() > 0).count()
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        if let Some(mut n) = self.slots.held.get_mut(&self.client) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_max_and_gets_each_back() {
        let slots = Arc::new(WaitSlots::new(2));
        let a = slots.take(7).unwrap();
        let b = slots.take(7).unwrap();
        assert!(slots.take(7).is_none(), "a third is refused");
        let _c = slots.take(8).expect("another client is apart");
        drop(a);
        let _d = slots.take(7).expect("a slot came back");
        drop(b);
        assert_eq!(slots.clients(), 2);
        // Clients with nothing parked are cleared once there are many.
        drop(_c);
        drop(_d);
        for client in 100..100 + 3 * WaitSlots::KEEP as u64 {
            drop(slots.take(client));
        }
        assert!(slots.held.len() <= WaitSlots::KEEP, "{}", slots.held.len());
        assert_eq!(slots.clients(), 0);
    }
}
