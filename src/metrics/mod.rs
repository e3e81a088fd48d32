//! The instance's counters, gauges and histograms, served at `GET /metrics` in the
//! OpenMetrics text format (Prometheus scrapes it). One [`Metrics`] per instance, shared by
//! the store, its pub/sub task, the fan-out, the connections and the HTTP layer. Every update
//! on the delivery path is atomic adds ([`histogram::Histogram`] included); labelled families
//! (HTTP routes, store operations) take the client's read lock off that path.

pub mod histogram;
mod labels;
mod record;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use histogram::Histogram;
pub use labels::{CodeLabel, JobLabel, OpKindLabel, OpLabel, QueueLabel};
use labels::{FrameLabel, OutcomeLabel, QuotaLabel, RouteLabel, StatusLabel};

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
    /// Writes of queued frames to WebSocket clients (one flush each, however many frames).
    pub ws_writes: Counter,
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
    /// HTTP responses with a 5xx status (the operations view's; not exported: the family above
    /// has them by status).
    pub http_5xx: Counter,
    /// HTTP request durations by matched route and status class.
    pub http_duration: Family<RouteLabel, Histogram>,
    /// The routes seen, as the labels' `&'static str` (one leak per route, bounded).
    routes: dashmap::DashMap<Box<str>, &'static str>,
    /// From an event's append (its stored timestamp) to its frame written to a connection.
    pub fanout_latency: Histogram,
    /// From the hub queueing a frame to its write: the connection's own queue.
    pub hub_queue: Histogram,
    /// Resumes (a subscribe or stream with `since`) by outcome: from the requested seq
    /// (`recovered`), or from the current head because it could not be (`unrecoverable`).
    pub resumes_recovered: Counter,
    pub resumes_unrecoverable: Counter,
    resumes: Family<OutcomeLabel, Counter>,
    /// Event frames and other frames written to WebSockets and SSE streams.
    pub frames_events: Counter,
    pub frames_other: Counter,
    frames_out: Family<FrameLabel, Counter>,
    /// Bytes of frames written.
    pub bytes_out: Counter,
    /// Session subscriptions held by this instance's connections, and sessions watched.
    pub subscriptions: Gauge,
    pub sessions_watched: Gauge,
    /// 1 while the pub/sub feed is subscribed (set at the scrape; absent on memory).
    pub pubsub_subscribed: Gauge,
    /// Jobs of each queue `METRICS_JOB_QUEUES` names, by state (read at the scrape).
    pub job_queue_jobs: Family<JobLabel, Gauge>,
    /// Commands and input still waiting in the sessions watched here (read at the scrape, at
    /// most `METRICS_QUEUE_SESSIONS` sessions), and how many sessions were read.
    pub control_queue_items: Family<QueueLabel, Gauge>,
    pub control_queue_sessions: Gauge,
    /// Store commands by op, failures by op and kind, durations by op, and whether the last
    /// command reached Redis (1) or not (0): `redis_*` as operators' dashboards name them.
    pub redis_commands: Family<OpLabel, Counter>,
    pub redis_failed: Family<OpKindLabel, Counter>,
    pub redis_duration: Family<OpLabel, Histogram>,
    pub redis_connection_status: Gauge,
}

impl Metrics {
    /// The metrics of an instance; `redis`: its store is Redis, and the `redis_*` metrics
    /// and `afw_pubsub_subscribed` are served (an embedded store has neither to report).
    pub fn new(redis: bool) -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            pubsub_subscribes: Counter::default(),
            pubsub_probe_timeouts: Counter::default(),
            gap_fills: Counter::default(),
            resyncs: Counter::default(),
            filled_events: Counter::default(),
            events_appended: Counter::default(),
            deliveries: Counter::default(),
            ws_writes: Counter::default(),
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
            http_5xx: Counter::default(),
            http_duration: Family::default(),
            routes: dashmap::DashMap::new(),
            fanout_latency: Histogram::default(),
            hub_queue: Histogram::default(),
            resumes_recovered: Counter::default(),
            resumes_unrecoverable: Counter::default(),
            resumes: Family::default(),
            frames_events: Counter::default(),
            frames_other: Counter::default(),
            frames_out: Family::default(),
            bytes_out: Counter::default(),
            subscriptions: Gauge::default(),
            sessions_watched: Gauge::default(),
            pubsub_subscribed: Gauge::default(),
            job_queue_jobs: Family::default(),
            control_queue_items: Family::default(),
            control_queue_sessions: Gauge::default(),
            redis_commands: Family::default(),
            redis_failed: Family::default(),
            redis_duration: Family::default(),
            redis_connection_status: Gauge::default(),
        };
        // The frame and resume counters are their family's own children, so counting one is
        // an atomic add.
        let resumes_recovered = m
            .resumes
            .get_or_create(&OutcomeLabel {
                outcome: "recovered",
            })
            .clone();
        let resumes_unrecoverable = m
            .resumes
            .get_or_create(&OutcomeLabel {
                outcome: "unrecoverable",
            })
            .clone();
        let frames_events = m
            .frames_out
            .get_or_create(&FrameLabel { r#type: "event" })
            .clone();
        let frames_other = m
            .frames_out
            .get_or_create(&FrameLabel { r#type: "other" })
            .clone();
        registry.register(
            "afw_pubsub_subscribes",
            "Redis pub/sub subscribes (each after the first is a reconnect)",
            m.pubsub_subscribes.clone(),
        );
        registry.register(
            "afw_pubsub_probe_timeouts",
            "Pub/sub probes that did not come back in time (wedged subscription)",
            m.pubsub_probe_timeouts.clone(),
        );
        registry.register(
            "afw_gap_fills",
            "Gaps in a session's pub/sub stream filled from the store",
            m.gap_fills.clone(),
        );
        registry.register(
            "afw_resyncs",
            "Resyncs of every locally watched session from the store",
            m.resyncs.clone(),
        );
        registry.register(
            "afw_filled_events",
            "Events delivered from the store by gap fills and resyncs",
            m.filled_events.clone(),
        );
        registry.register(
            "afw_events_appended",
            "Events stored by this instance",
            m.events_appended.clone(),
        );
        registry.register(
            "afw_deliveries",
            "Event frames queued to local WebSocket clients",
            m.deliveries.clone(),
        );
        registry.register(
            "afw_ws_writes",
            "Writes of queued frames to WebSocket clients, one flush each",
            m.ws_writes.clone(),
        );
        registry.register(
            "afw_ws_connections",
            "Open WebSocket connections",
            m.ws_connections.clone(),
        );
        registry.register(
            "afw_sse_streams",
            "Open server-sent-events streams",
            m.sse_streams.clone(),
        );
        registry.register(
            "afw_long_polls",
            "Long polls on command or input queues waiting now",
            m.long_polls.clone(),
        );
        registry.register(
            "afw_chain_update_failures",
            "Chain or step events stored whose chain change could not be written",
            m.chain_update_failures.clone(),
        );
        registry.register(
            "afw_connections_refused",
            "Connections accepted past MAX_CONNECTIONS (503 over_capacity, or closed)",
            m.connections_refused.clone(),
        );
        registry.register(
            "afw_ws_refused",
            "WebSocket upgrades past WS_MAX_CONNECTIONS (closed with 1013)",
            m.ws_refused.clone(),
        );
        registry.register(
            "afw_store_full",
            "Writes the memory store refused because MEMORY_STORE_MAX_BYTES was spent",
            m.store_full.clone(),
        );
        registry.register(
            "afw_http_rate_limited",
            "Requests answered 429 rate_limited",
            m.http_rate_limited.clone(),
        );
        registry.register(
            "afw_ws_rate_limited",
            "WebSocket messages refused with rate_limited",
            m.ws_rate_limited.clone(),
        );
        registry.register(
            "afw_rate_limiter_unavailable",
            "Requests let through unlimited because the limiter failed or was slow",
            m.rate_limiter_unavailable.clone(),
        );
        registry.register(
            "afw_quota_refused",
            "Requests and WebSocket connections refused because a tenant's quota was spent",
            m.quota_refused.clone(),
        );
        registry.register(
            "afw_ws_closes",
            "WebSocket connections closed by the server, by close code",
            m.ws_closes.clone(),
        );
        registry.register(
            "afw_http_responses",
            "HTTP responses by status",
            m.http_responses.clone(),
        );
        registry.register(
            "afw_http_request_duration_seconds",
            "HTTP request durations by matched route and status class",
            m.http_duration.clone(),
        );
        registry.register(
            "afw_fanout_latency_seconds",
            "From an event's append (its stored timestamp) to its frame written to a connection",
            m.fanout_latency.clone(),
        );
        registry.register(
            "afw_hub_queue_seconds",
            "From the hub queueing a frame to the connection writing it",
            m.hub_queue.clone(),
        );
        registry.register(
            "afw_job_queue_jobs",
            "Jobs of each queue METRICS_JOB_QUEUES names, by state, read at the scrape",
            m.job_queue_jobs.clone(),
        );
        registry.register(
            "afw_control_queue_items",
            "Commands and input still waiting in the sessions watched on this instance, read at the scrape (METRICS_QUEUE_SESSIONS sessions at most)",
            m.control_queue_items.clone(),
        );
        registry.register(
            "afw_control_queue_sessions_read",
            "Sessions whose queues afw_control_queue_items counted at the last scrape",
            m.control_queue_sessions.clone(),
        );
        registry.register(
            "afw_resumes",
            "Subscribes and streams that asked to resume, by outcome (recovered, unrecoverable)",
            m.resumes.clone(),
        );
        registry.register(
            "afw_frames_out",
            "Frames written to WebSockets and SSE streams, by type",
            m.frames_out.clone(),
        );
        registry.register(
            "afw_bytes_out",
            "Bytes of frames written to WebSockets and SSE streams",
            m.bytes_out.clone(),
        );
        registry.register(
            "afw_subscriptions",
            "Session subscriptions held by this instance's connections",
            m.subscriptions.clone(),
        );
        registry.register(
            "afw_sessions_watched",
            "Sessions with at least one subscriber on this instance",
            m.sessions_watched.clone(),
        );
        if redis {
            registry.register(
                "afw_pubsub_subscribed",
                "1 while this instance's Redis pub/sub feed is subscribed, else 0",
                m.pubsub_subscribed.clone(),
            );
            registry.register(
                "redis_commands",
                "Redis commands sent by the store, by op (a script by its name)",
                m.redis_commands.clone(),
            );
            registry.register(
                "redis_commands_failed",
                "Redis commands that failed, by op and kind (timeout, connection, error)",
                m.redis_failed.clone(),
            );
            registry.register(
                "redis_command_duration_seconds",
                "Redis command durations by op",
                m.redis_duration.clone(),
            );
            registry.register(
                "redis_connection_status",
                "1 while the store's last Redis command reached Redis, else 0",
                m.redis_connection_status.clone(),
            );
        }
        Metrics {
            registry,
            frames_events,
            frames_other,
            resumes_recovered,
            resumes_unrecoverable,
            ..m
        }
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
        if status >= 500 {
            self.http_5xx.inc();
        }
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
        Metrics::new(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_prefix_and_labels() {
        let m = Metrics::new(false);
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
