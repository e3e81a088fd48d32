//! A histogram of durations made of atomics only (one add per bucket, count and sum), so it
//! can sit on the delivery path, which takes no lock; the Prometheus client's own histogram
//! takes one. Every histogram here has the same explicit buckets, so a dashboard can sum them
//! across instances and routes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// The buckets' upper bounds, in seconds (and in microseconds below, as they are compared).
pub const BUCKETS_SECS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];
const BUCKETS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

#[derive(Debug, Default)]
struct Inner {
    /// Observations per bucket (not cumulative), the last one past every bound (`+Inf`).
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
}

#[derive(Debug, Clone, Default)]
pub struct Histogram(Arc<Inner>);

impl Histogram {
    pub fn observe(&self, d: Duration) {
        self.observe_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn observe_us(&self, us: u64) {
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.0.buckets[i].fetch_add(1, Relaxed);
        self.0.count.fetch_add(1, Relaxed);
        self.0.sum_us.fetch_add(us, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Relaxed)
    }

    /// Each bucket's own count (not cumulative), in [`BUCKETS_SECS`]'s order, `+Inf`'s last.
    pub fn counts(&self) -> Vec<u64> {
        self.0.buckets.iter().map(|b| b.load(Relaxed)).collect()
    }

    /// Sum, count and each bucket's own count (the encoder makes them cumulative; the last
    /// bound, `f64::MAX`, is written `+Inf`, as the client's own histogram does).
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(BUCKETS_SECS.len() + 1);
        for (i, bound) in BUCKETS_SECS.iter().chain([f64::MAX].iter()).enumerate() {
            let n = self.0.buckets[i].load(Relaxed);
            total += n;
            buckets.push((*bound, n));
        }
        let sum = self.0.sum_us.load(Relaxed) as f64 / 1e6;
        (sum, total, buckets)
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_add_up() {
        let h = Histogram::default();
        h.observe_us(100); // on a bound: that bucket
        h.observe_us(101);
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 4);
        assert!((sum - (0.000201 + 0.003 + 60.0)).abs() < 1e-9, "{sum}");
        assert_eq!(buckets[0], (0.0001, 1));
        assert_eq!(buckets[1], (0.00025, 1));
        assert_eq!(buckets[5], (0.005, 1));
        assert_eq!(buckets.last().copied(), Some((f64::MAX, 1)));
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("t_seconds", "t", h.clone());
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("t_seconds_bucket{le=\"0.005\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("t_seconds_count 4\n"), "{text}");
    }
}
