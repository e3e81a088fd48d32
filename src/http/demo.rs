//! The dashboard's demo button: `GET|POST|DELETE /api/demo` runs simulated agents inside the
//! gateway, against its own address. Only on the embedded store: a gateway on Redis serves
//! real agents, and `afw-gateway demo --target URL` is the way to add simulated ones there.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::ApiJson;
use crate::app::AppState;
use crate::demo::DemoArgs;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDemo {
    agents: Option<u16>,
    speed: Option<f64>,
}

/// Agents the button may start at most.
const MAX_AGENTS: u16 = 10;

fn available(app: &AppState) -> bool {
    app.stores().kind == "memory"
}

#[utoipa::path(get, path = "/api/demo", tag = "operations", operation_id = "demoStatus", responses((status = 200, description = "`{available, running, agents}`", body = Object), super::openapi::Errors))]
pub async fn status(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({"available": available(&app), "agents": app.demo().agents()}))
}

#[utoipa::path(post, path = "/api/demo", tag = "operations", operation_id = "startDemo", request_body = StartDemo, responses((status = 202, description = "The demo agents start", body = Object), super::openapi::Errors))]
pub async fn start(State(app): State<AppState>, ApiJson(body): ApiJson<StartDemo>) -> Response {
    if !available(&app) {
        return ApiError::new(
            StatusCode::CONFLICT,
            "demo_unavailable",
            "the built-in demo runs only on the embedded store; run `afw-gateway demo --target URL` beside this gateway",
        )
        .into_response();
    }
    let agents = body.agents.unwrap_or(3);
    let speed = body.speed.unwrap_or(1.0);
    if agents == 0 || agents > MAX_AGENTS || !(speed > 0.0 && speed <= 100.0) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            format!("agents must be 1-{MAX_AGENTS} and speed above 0 and at most 100"),
        )
        .into_response();
    }
    let Some(addr) = app.local_addr() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the gateway is starting",
        )
        .into_response();
    };
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let args = DemoArgs {
        target: format!("http://{addr}"),
        agents,
        token: crate::credentials::agent_token(&app.config().auth),
        speed,
    };
    let running = app.demo().start(args, app.shutdown_token());
    (
        StatusCode::CREATED,
        Json(json!({"available": true, "agents": running})),
    )
        .into_response()
}

#[utoipa::path(delete, path = "/api/demo", tag = "operations", operation_id = "stopDemo", responses((status = 204, description = "The demo agents stop"), super::openapi::Errors))]
pub async fn stop(State(app): State<AppState>) -> StatusCode {
    app.demo().stop();
    StatusCode::NO_CONTENT
}
