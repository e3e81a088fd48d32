//! Liveness (`/health`, and with `?checks=true` each dependency's state), readiness
//! (`/ready`), Redis as it reports itself (`/api/health/redis`) and the counters (`/metrics`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::ApiQuery;
use crate::app::AppState;
use crate::domain::control::ControlQueue;
use crate::metrics::{JobLabel, QueueLabel};
use crate::store::health::{eviction_warning, RedisReport};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// Ask each dependency (the store, Redis's pub/sub) too.
    #[serde(default)]
    checks: bool,
}

/// Liveness: cheap, and never asks the store; with `?checks=true`, the store and pub/sub
/// asked as well (`healthy`, `degraded` while pub/sub is down, `unhealthy` and 503 while the
/// store is).
#[utoipa::path(get, path = "/health", tag = "operations", operation_id = "health", params(HealthQuery), responses((status = 200, description = "Alive: `{status, timestamp, uptime, instanceId, version, store}`; with `checks=true` each dependency, and 503 when unhealthy", body = Object)))]
pub async fn health(State(app): State<AppState>, ApiQuery(q): ApiQuery<HealthQuery>) -> Response {
    let mut body = json!({
        "status": "ok",
        "timestamp": crate::time::now().0,
        "uptime": app.uptime_secs(),
        "instanceId": app.instance_id(),
        "version": env!("CARGO_PKG_VERSION"),
        "store": app.stores().kind,
    });
    if !q.checks {
        return Json(body).into_response();
    }
    let (status, checks) = match app.stores().health.redis_report(false).await {
        None => (
            "healthy",
            json!({"store": {"status": "up", "kind": "memory"}}),
        ),
        Some(r) => {
            let redis = json!({"status": up_down(r.up), "latency": r.latency_ms});
            let pubsub = json!({
                "status": up_down(r.pubsub.subscribed),
                "lastMessageAgeMs": r.pubsub.last_message_age_ms,
                "reconnects": r.pubsub.reconnects,
            });
            let status = match (r.up, r.pubsub.subscribed) {
                (false, _) => "unhealthy",
                (true, false) => "degraded",
                (true, true) => "healthy",
            };
            (status, json!({"redis": redis, "pubsub": pubsub}))
        }
    };
    body["status"] = status.into();
    body["checks"] = checks;
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

fn up_down(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}

/// `GET /api/health/redis`: Redis as it reports itself, 503 while it does not answer;
/// `disabled` on the embedded store.
#[utoipa::path(get, path = "/api/health/redis", tag = "operations", operation_id = "redisHealth", responses((status = 200, description = "Redis as it reports itself (`status` `up` or `disabled` on the embedded store)", body = Object), (status = 503, description = "Redis does not answer: `status:\"down\"` with `error`", body = Object)))]
pub async fn redis(State(app): State<AppState>) -> Response {
    let Some(report) = app.stores().health.redis_report(true).await else {
        return Json(json!({"status": "disabled", "store": "memory"})).into_response();
    };
    let (code, body) = redis_body(&report);
    (code, Json(body)).into_response()
}

pub(super) fn redis_body(r: &RedisReport) -> (StatusCode, Value) {
    let mut body = serde_json::to_value(r).unwrap_or_default();
    if let Value::Object(m) = &mut body {
        m.remove("up");
        m.insert("status".into(), up_down(r.up).into());
        let warning = r
            .eviction_policy
            .as_deref()
            .and_then(|p| eviction_warning(p, r.max_memory.unwrap_or(0)));
        m.insert(
            "warnings".into(),
            json!(warning.into_iter().collect::<Vec<_>>()),
        );
    }
    let code = if r.up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

#[utoipa::path(get, path = "/ready", tag = "operations", operation_id = "ready", responses((status = 200, description = "Ready: `{status:\"ready\", store}`", body = Object), (status = 503, description = "Not ready (`not_ready`): shutting down, or the store or pub/sub is down", body = Object)))]
pub async fn ready(State(app): State<AppState>) -> Response {
    if app.shutdown_token().is_cancelled() {
        return not_ready("the instance is shutting down".into());
    }
    match app.stores().health.readiness().await {
        Ok(()) => Json(json!({"status": "ready", "store": app.stores().kind})).into_response(),
        Err(reason) => not_ready(reason),
    }
}

/// The instance's metrics in the OpenMetrics text format (Prometheus scrapes this). The
/// subscription gauges are counted here, at the scrape, not on every subscribe.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics", responses((status = 200, description = "OpenMetrics text (docs/operations.md lists every metric)", body = Object), super::openapi::Errors))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    let m = app.metrics();
    m.subscriptions.set(app.hub().subscription_count() as i64);
    let (watched, sample) = app
        .hub()
        .sessions(app.config().operations.metrics_queue_sessions);
    m.sessions_watched.set(watched as i64);
    control_queue_depths(&app, sample).await;
    if let Some(live) = app.stores().health.pubsub_subscribed() {
        m.pubsub_subscribed.set(i64::from(live));
    }
    // The queues the operator named, one stats read each (at most 50).
    for (queue, s) in crate::ops::job_queue_depths(&app).await {
        let states = [
            ("waiting", s.waiting),
            ("delayed", s.delayed),
            ("active", s.active),
            ("completed", s.completed),
            ("failed", s.failed),
            ("dead", s.dead),
        ];
        for (state, n) in states {
            let label = JobLabel {
                queue: queue.clone(),
                state,
            };
            m.job_queue_jobs.get_or_create(&label).set(n as i64);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics().render(),
    )
        .into_response()
}

/// The commands and input still waiting in `sessions` (the default tenant's; one read of
/// each queue per session, at once), as `afw_control_queue_items`; a failed read counts none.
async fn control_queue_depths(app: &AppState, sessions: Vec<std::sync::Arc<str>>) {
    let own: Vec<_> = sessions
        .into_iter()
        .filter(|s| crate::scope::tenant_of(s).is_none())
        .collect();
    let control = &app.stores().control;
    for queue in [ControlQueue::Commands, ControlQueue::Input] {
        let reads = own.iter().map(|s| control.pending(queue, s, false));
        let n: usize = futures::future::join_all(reads)
            .await
            .into_iter()
            .map(|r| r.map_or(0, |items| items.len()))
            .sum();
        let label = QueueLabel {
            queue: queue.name(),
        };
        app.metrics()
            .control_queue_items
            .get_or_create(&label)
            .set(n as i64);
    }
    app.metrics().control_queue_sessions.set(own.len() as i64);
}

fn not_ready(reason: String) -> Response {
    let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", reason);
    err.retry_after_secs = Some(1);
    err.into_response()
}
