//! `GET /ws`: the upgrade. The connection itself is [`crate::realtime::ws`]; this only turns
//! a request that is not a WebSocket upgrade into the API's JSON error.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use tracing::Instrument;

use super::error::ApiError;
use super::serve::Arrival;
use crate::app::AppState;
use crate::credentials::Principal;
use crate::realtime::ws;

#[utoipa::path(get, path = "/ws", tag = "sessions", operation_id = "websocket", responses((status = 101, description = "Switching to the WebSocket protocol of docs/protocol.md", body = Object), (status = 400, description = "Not a WebSocket upgrade", body = Object), super::openapi::Errors))]
pub async fn websocket(
    State(app): State<AppState>,
    principal: Option<Extension<Arc<Principal>>>,
    arrival: Option<Extension<Arrival>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "upgrade_required",
                format!(
                    "/ws takes WebSocket connections only ({})",
                    rejection.body_text()
                ),
            )
            .into_response()
        }
    };
    if app.connections().len() >= app.config().realtime.ws_max_connections {
        app.metrics().ws_refused.inc();
        app.metrics().ws_closed(1013);
        return ws::configure(upgrade)
            .on_upgrade(|socket| ws::refuse(socket, 1013, "too many connections; retry later"));
    }
    let principal = principal.map(|Extension(p)| p);
    // A tenant's connections on this instance count against its quota.
    let held = match principal
        .as_deref()
        .map(|p| app.tenants().connect(&p.tenant))
    {
        None => None,
        Some(Ok(held)) => held,
        Some(Err(e)) => return ApiError::from(e).into_response(),
    };
    let id = app.next_connection_id();
    let ctx = app.ws_context();
    let tracker = app.connections().clone();
    // Every line of the connection carries its client id (the one its `connected` message
    // tells the client) and the address it came from.
    let client_id = uuid::Uuid::now_v7();
    let peer = arrival
        .map(|Extension(a)| a.peer.to_string())
        .unwrap_or_default();
    // The connection runs as a task of its own rather than inside the upgrade's: that task
    // keeps the upgrade's configuration and callback beside the connection for its lifetime,
    // 192 bytes more for every idle connection.
    ws::configure(upgrade).on_upgrade(move |socket| {
        let span = tracing::info_span!("ws", client_id = %client_id, peer = %peer);
        let conn = ws::serve(ctx, (id, client_id), socket, principal, held);
        tracker.spawn(conn.instrument(span));
        std::future::ready(())
    })
}
