//! Liveness (`/health`), readiness (`/ready`) and the counters (`/metrics`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use crate::app::AppState;

pub async fn health(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "timestamp": crate::time::now().0,
        "uptime": app.uptime_secs(),
        "instanceId": app.instance_id(),
        "version": env!("CARGO_PKG_VERSION"),
        "store": app.stores().kind,
    }))
}

pub async fn ready(State(app): State<AppState>) -> Response {
    if app.shutdown_token().is_cancelled() {
        return not_ready("the instance is shutting down".into());
    }
    match app.stores().health.readiness().await {
        Ok(()) => Json(json!({"status": "ready", "store": app.stores().kind})).into_response(),
        Err(reason) => not_ready(reason),
    }
}

/// The instance's counters in the OpenMetrics text format (Prometheus scrapes this).
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics().render(),
    )
        .into_response()
}

fn not_ready(reason: String) -> Response {
    let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", reason);
    err.retry_after_secs = Some(1);
    err.into_response()
}
