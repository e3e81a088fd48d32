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
use crate::app::AppState;
use crate::credentials::Principal;
use crate::realtime::ws;

pub async fn websocket(
    State(app): State<AppState>,
    principal: Option<Extension<Arc<Principal>>>,
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
    ws::configure(upgrade).on_upgrade(move |socket| {
        let span = tracing::debug_span!("ws", conn = id);
        tracker.track_future(ws::serve(ctx, id, socket, principal, held).instrument(span))
    })
}
