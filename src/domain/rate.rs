//! Rate limits by GCRA (the generic cell rate algorithm): one number per limited subject, the
//! theoretical arrival time (TAT) of its next request. A request is allowed when it would not
//! push the TAT more than the burst ahead of now; each allowed request moves it on by one
//! interval. The same arithmetic runs in the memory store, in `rate_take.lua` on Redis (with
//! Redis's own clock, so every instance shares one budget) and per WebSocket connection.

/// A limit: `rate` requests a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Microseconds one request moves the TAT on (1,000,000 / rate).
    pub interval_us: u64,
    /// How far ahead of now the TAT may be (`interval_us * burst`).
    pub tolerance_us: u64,
    /// The burst, as `RateLimit-Limit` says it.
    pub burst: u64,
}

impl Gcra {
    /// `None` when `rate` is 0 (no limit).
    pub fn new(rate: f64, burst: u64) -> Option<Gcra> {
        if rate <= 0.0 || burst == 0 {
            return None;
        }
        let interval_us = ((1_000_000.0 / rate).round() as u64).max(1);
        Some(Gcra {
            interval_us,
            tolerance_us: interval_us.saturating_mul(burst),
            burst,
        })
    }
}

/// What a limit said of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests that could still be made at once.
    pub remaining: u64,
    /// Microseconds until a refused request would be allowed (0 when allowed).
    pub retry_after_us: u64,
    /// Microseconds until the whole burst is available again.
    pub reset_us: u64,
}

/// Takes one request at `now_us` from a subject whose TAT is `tat_us` (None: never seen).
/// Returns the decision and, when allowed, the new TAT to keep.
pub fn take(gcra: Gcra, tat_us: Option<u64>, now_us: u64) -> (Decision, Option<u64>) {
    take_n(gcra, tat_us, now_us, 1)
}

/// Takes `n` requests at once (all or none).
pub fn take_n(gcra: Gcra, tat_us: Option<u64>, now_us: u64, n: u64) -> (Decision, Option<u64>) {
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let next = tat + gcra.interval_us.saturating_mul(n.max(1));
    let ahead = next - now_us;
    if ahead > gcra.tolerance_us {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            retry_after_us: ahead - gcra.tolerance_us,
            reset_us: tat - now_us,
        };
        return (decision, None);
    }
    let decision = Decision {
        allowed: true,
        remaining: (gcra.tolerance_us - ahead) / gcra.interval_us,
        retry_after_us: 0,
        reset_us: ahead,
    };
    (decision, Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let g = Gcra::new(10.0, 5).unwrap(); // 100 ms apart, 5 at once
        let mut tat = None;
        let mut allowed = 0;
        for _ in 0..8 {
            let (d, next) = take(g, tat, 0);
            if d.allowed {
                allowed += 1;
                tat = next;
            } else {
                assert_eq!(d.retry_after_us, 100_000);
            }
        }
        assert_eq!(allowed, 5);
        // 250 ms later, two more have come in.
        let mut later = 0;
        for _ in 0..4 {
            let (d, next) = take(g, tat, 250_000);
            if d.allowed {
                later += 1;
                tat = next;
            }
        }
        assert_eq!(later, 2);
        let (d, _) = take(g, None, 0);
        assert_eq!((d.remaining, d.reset_us), (4, 100_000));
        assert!(Gcra::new(0.0, 5).is_none());
        // Three at once leave two; three more do not fit.
        let (d, tat) = take_n(g, None, 0, 3);
        assert_eq!((d.allowed, d.remaining), (true, 2));
        assert!(!take_n(g, tat, 0, 3).0.allowed);
        assert!(take_n(g, tat, 0, 2).0.allowed);
    }
}
