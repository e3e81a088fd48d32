//! `GET /api/ops/summary`: what the dashboard's Operations page draws. Every instance's latest
//! figures ([`crate::ops`]; this one's as of now), Redis as it reports itself, and the job
//! queues `METRICS_JOB_QUEUES` names, and the locks held. One store read for the instances,
//! one Redis report (`PING`, `INFO`, `DBSIZE`), one count of the locks and a stats read per
//! named queue (at most 50): the same cost however many instances, connections or events.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::metrics::histogram::BUCKETS_SECS;

#[utoipa::path(get, path = "/api/ops/summary", tag = "operations", operation_id = "opsSummary", responses((status = 200, description = "Every instance's figures, Redis and the named job queues", body = Object), super::openapi::Errors))]
pub async fn summary(State(app): State<AppState>) -> Json<Value> {
    let mut own = crate::ops::figures(&app);
    let mut errors = Vec::new();
    let mut instances: Vec<Value> = match app.stores().instances.instances().await {
        Ok(all) => all
            .iter()
            .filter_map(|f| serde_json::from_str::<Value>(f).ok())
            .map(|mut f| {
                f["recorded"] = true.into();
                f
            })
            .collect(),
        Err(e) => {
            errors.push(format!("the other instances' figures: {e}"));
            Vec::new()
        }
    };
    // This instance's own figures as of now; `recorded` says the store has its last record.
    let recorded = instances.iter().any(|f| f["id"] == own["id"]);
    instances.retain(|f| f["id"] != own["id"]);
    own["recorded"] = recorded.into();
    instances.push(own);
    instances.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let redis = match app.stores().health.redis_report(true).await {
        None => json!({"status": "disabled", "store": "memory"}),
        Some(r) => super::health::redis_body(&r).1,
    };
    let queues: Vec<Value> = crate::ops::job_queue_depths(&app)
        .await
        .into_iter()
        .map(|(queue, s)| {
            json!({"queue": queue, "waiting": s.waiting, "delayed": s.delayed,
                "active": s.active, "completed": s.completed, "failed": s.failed,
                "dead": s.dead})
        })
        .collect();
    let locks = match app.stores().locks.held_locks().await {
        Ok(held) => json!({"held": held}),
        Err(e) => {
            errors.push(format!("the locks held: {e}"));
            json!({"held": null})
        }
    };
    let bounds_ms: Vec<f64> = BUCKETS_SECS.iter().map(|s| s * 1000.0).collect();
    Json(json!({
        "generatedAtMs": crate::time::now_ms(),
        "servedBy": app.instance_id(),
        "reportEverySecs": app.config().operations.ops_report_secs,
        "fanoutLatencyBucketsMs": bounds_ms,
        "instances": instances,
        "redis": redis,
        "jobQueues": queues,
        "locks": locks,
        "errors": errors,
    }))
}
