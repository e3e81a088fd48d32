//! The instance's counters, served at `GET /metrics` in the OpenMetrics text format
//! (Prometheus scrapes it). One [`Metrics`] per instance, shared by the store's pub/sub task,
//! the fan-out, the WebSocket connections and the HTTP layer. Every update is one atomic add;
//! nothing here takes a lock on the delivery path.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of the quota refusals: `quota="sessions"` (a kind, never a tenant: tenants are
/// unbounded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabel {
    quota: &'static str,
}

/// Label of the WebSocket close counter: `code="4008"`. A struct, not a list of pairs, so
/// counting allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    code: u16,
}

/// Label of the HTTP response counter: `status="201"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    status: u16,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Successful pub/sub subscribes; every one after the first is a reconnect.
    pub pubsub_subscribes: Counter,
    /// Probes of our own that did not come back in time: the subscription was wedged.
    pub pubsub_probe_timeouts: Counter,
    /// Gaps the hub noticed in a session's pub/sub stream and filled from the store.
    pub gap_fills: Counter,
    /// Resyncs of every locally watched session (after a resubscribe or a bus lag).
    pub resyncs: Counter,
    /// Events delivered from the store by gap fills and resyncs.
    pub filled_events: Counter,
    /// Events stored (duplicates by `eventId` not counted).
    pub events_appended: Counter,
    /// Event frames queued to local WebSocket clients.
    pub deliveries: Counter,
    /// Open WebSocket connections.
    pub ws_connections: Gauge,
    /// Open server-sent-events streams.
    pub sse_streams: Gauge,
    /// Long polls (commands or input) waiting now.
    pub long_polls: Gauge,
    /// Chain or step events stored whose chain change could not be written.
    pub chain_update_failures: Counter,
    /// Connections accepted past `MAX_CONNECTIONS` (answered 503, or closed at once).
    pub connections_refused: Counter,
    /// WebSocket upgrades past `WS_MAX_CONNECTIONS` (closed with 1013).
    pub ws_refused: Counter,
    /// Writes the memory store refused because its budget was spent (`store_full`).
    pub store_full: Counter,
    /// Requests answered 429 `rate_limited` (a credential's or an address's budget spent).
    pub http_rate_limited: Counter,
    /// WebSocket messages refused with `rate_limited`.
    pub ws_rate_limited: Counter,
    /// Requests let through unlimited because the limiter (the store) failed or was slow.
    pub rate_limiter_unavailable: Counter,
    /// Requests and connections refused with `quota`, by quota.
    pub quota_refused: Family<QuotaLabel, Counter>,
    /// WebSocket connections the server closed, by close code (1001, 1009, 1011, 4008, ...).
    pub ws_closes: Family<CodeLabel, Counter>,
    /// HTTP responses by status.
    pub http_responses: Family<StatusLabel, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("afw");
        let m = Metrics {
            registry: Registry::default(),
            pubsub_subscribes: Counter::default(),
            pubsub_probe_timeouts: Counter::default(),
            gap_fills: Counter::default(),
            resyncs: Counter::default(),
            filled_events: Counter::default(),
            events_appended: Counter::default(),
            deliveries: Counter::default(),
            ws_connections: Gauge::default(),
            sse_streams: Gauge::default(),
            long_polls: Gauge::default(),
            chain_update_failures: Counter::default(),
            connections_refused: Counter::default(),
            ws_refused: Counter::default(),
            store_full: Counter::default(),
            http_rate_limited: Counter::default(),
            ws_rate_limited: Counter::default(),
            rate_limiter_unavailable: Counter::default(),
            quota_refused: Family::default(),
            ws_closes: Family::default(),
            http_responses: Family::default(),
        };
        registry.register(
            "pubsub_subscribes",
            "Redis pub/sub subscribes (each after the first is a reconnect)",
            m.pubsub_subscribes.clone(),
        );
        registry.register(
            "pubsub_probe_timeouts",
            "Pub/sub probes that did not come back in time (wedged subscription)",
            m.pubsub_probe_timeouts.clone(),
        );
        registry.register(
            "gap_fills",
            "Gaps in a session's pub/sub stream filled from the store",
            m.gap_fills.clone(),
        );
        registry.register(
            "resyncs",
            "Resyncs of every locally watched session from the store",
            m.resyncs.clone(),
        );
        registry.register(
            "filled_events",
            "Events delivered from the store by gap fills and resyncs",
            m.filled_events.clone(),
        );
        registry.register(
            "events_appended",
            "Events stored by this instance",
            m.events_appended.clone(),
        );
        registry.register(
            "deliveries",
            "Event frames queued to local WebSocket clients",
            m.deliveries.clone(),
        );
        registry.register(
            "ws_connections",
            "Open WebSocket connections",
            m.ws_connections.clone(),
        );
        registry.register(
            "sse_streams",
            "Open server-sent-events streams",
            m.sse_streams.clone(),
        );
        registry.register(
            "long_polls",
            "Long polls on command or input queues waiting now",
            m.long_polls.clone(),
        );
        registry.register(
            "chain_update_failures",
            "Chain or step events stored whose chain change could not be written",
            m.chain_update_failures.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections accepted past MAX_CONNECTIONS (503 over_capacity, or closed)",
            m.connections_refused.clone(),
        );
        registry.register(
            "ws_refused",
            "WebSocket upgrades past WS_MAX_CONNECTIONS (closed with 1013)",
            m.ws_refused.clone(),
        );
        registry.register(
            "store_full",
            "Writes the memory store refused because MEMORY_STORE_MAX_BYTES was spent",
            m.store_full.clone(),
        );
        registry.register(
            "http_rate_limited",
            "Requests answered 429 rate_limited",
            m.http_rate_limited.clone(),
        );
        registry.register(
            "ws_rate_limited",
            "WebSocket messages refused with rate_limited",
            m.ws_rate_limited.clone(),
        );
        registry.register(
            "rate_limiter_unavailable",
            "Requests let through unlimited because the limiter failed or was slow",
            m.rate_limiter_unavailable.clone(),
        );
        registry.register(
            "quota_refused",
            "Requests and WebSocket connections refused because a tenant's quota was spent",
            m.quota_refused.clone(),
        );
        registry.register(
            "ws_closes",
            "WebSocket connections closed by the server, by close code",
            m.ws_closes.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses by status",
            m.http_responses.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a WebSocket close the server initiated.
    pub fn ws_closed(&self, code: u16) {
        self.ws_closes.get_or_create(&CodeLabel { code }).inc();
    }

    /// Counts a refusal for a tenant's quota.
    pub fn quota_refused(&self, quota: &'static str) {
        self.quota_refused
            .get_or_create(&QuotaLabel { quota })
            .inc();
    }

    /// Counts an HTTP response.
    pub fn http_response(&self, status: u16) {
        self.http_responses
            .get_or_create(&StatusLabel { status })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_prefix_and_labels() {
        let m = Metrics::new();
        m.gap_fills.inc();
        m.ws_closed(4008);
        m.http_response(503);
        let text = m.render();
        assert!(text.contains("afw_gap_fills_total 1"), "{text}");
        assert!(
            text.contains("afw_ws_closes_total{code=\"4008\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("afw_http_responses_total{status=\"503\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
