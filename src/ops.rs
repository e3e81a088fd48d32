//! The operations view's figures. Every instance records its own in the store every
//! `OPS_REPORT_SECS` ([`report`]; one small write), so that whichever instance serves
//! `GET /api/ops/summary` answers for all of them with one read, at a cost that does not grow
//! with the traffic. The figures are the instance's gauges and its counters since it started:
//! the page turns counters into rates from one summary to the next, and the fan-out latency's
//! bucket counts into quantiles of the interval, as Prometheus would.

use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::metrics::CodeLabel;
use crate::store::jobs::JobStats;

/// WebSocket close codes the view counts: 4008 (a client too slow), 1011 (the gateway's
/// error), 1009 (a message too big), 1001 (going away).
pub const CLOSE_CODES: [u16; 4] = [4008, 1011, 1009, 1001];

/// This instance's figures, as the summary lists them.
pub fn figures(app: &AppState) -> Value {
    let m = app.metrics();
    let now = crate::time::now_ms();
    let uptime = app.uptime_secs();
    let closes: serde_json::Map<String, Value> = CLOSE_CODES
        .iter()
        .map(|&code| {
            let n = m.ws_closes.get_or_create(&CodeLabel { code }).get();
            (code.to_string(), n.into())
        })
        .collect();
    json!({
        "id": app.instance_id(),
        "version": env!("CARGO_PKG_VERSION"),
        "store": app.stores().kind,
        "address": app.local_addr().map(|a| a.to_string()),
        "startedAtMs": now - (uptime * 1000.0) as i64,
        "uptimeSecs": uptime.floor(),
        "reportedAtMs": now,
        "connections": m.ws_connections.get(),
        "sseStreams": m.sse_streams.get(),
        "longPolls": m.long_polls.get(),
        "subscriptions": app.hub().subscription_count(),
        "sessionsWatched": app.hub().sessions(0).0,
        "eventsIn": m.events_appended.get(),
        "deliveries": m.deliveries.get(),
        "closes": closes,
        "http5xx": m.http_5xx.get(),
        "fanoutLatency": m.fanout_latency.counts(),
    })
}

/// Records this instance's figures every `OPS_REPORT_SECS` until shutdown; the store forgets
/// them three periods after the last record. A failed record is tried again at the next tick.
pub async fn report(app: AppState, shutdown: CancellationToken) {
    let every = Duration::from_secs(app.config().operations.ops_report_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let figures = figures(&app).to_string();
        let store = &app.stores().instances;
        if let Err(e) = store
            .report_instance(app.instance_id(), &figures, every * 3)
            .await
        {
            tracing::debug!(error = %e, "the operations view's figures were not recorded");
        }
    }
}

/// The depths of the job queues `METRICS_JOB_QUEUES` names (the default tenant's), one stats
/// read each (at most 50); a queue whose read failed is left out.
pub async fn job_queue_depths(app: &AppState) -> Vec<(String, JobStats)> {
    let mut out = Vec::new();
    for queue in &app.config().operations.metrics_job_queues {
        if let Ok(s) = app.services().jobs.stats(queue).await {
            out.push((queue.clone(), s));
        }
    }
    out
}
