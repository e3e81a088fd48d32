//! The request id of every request (the incoming `x-request-id`, else a fresh UUID) and its
//! correlation id, held in a task-local for the life of the request so that every error body
//! and log line of the request carries them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::app::AppState;

pub const REQUEST_ID: &str = "x-request-id";
pub const CORRELATION_ID: &str = "x-correlation-id";
const MAX_ID_LEN: usize = 200;

#[derive(Clone)]
struct Context {
    request_id: Arc<str>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// The current request's id ("" outside a request).
pub fn request_id() -> String {
    CONTEXT
        .try_with(|c| c.request_id.to_string())
        .unwrap_or_default()
}

/// A caller-supplied id, if it is short printable ASCII.
pub fn usable_id(v: Option<&HeaderValue>) -> Option<String> {
    let s = v?.to_str().ok()?;
    (!s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// Marks a request that came on a connection past `MAX_CONNECTIONS` (set by the accept loop,
/// [`super::serve`]); it is answered with `over_capacity` unless it is a health check.
#[derive(Debug, Clone, Copy)]
pub struct OverCapacity;

/// 503 `over_capacity` in the API's error shape, with `Retry-After` and `Connection: close`.
fn over_capacity() -> Response {
    let body = serde_json::json!({
        "error": "over_capacity",
        "message": "this instance has as many connections as it serves; retry shortly or elsewhere",
        "requestId": request_id(),
    });
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(1));
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

pub async fn middleware(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = usable_id(req.headers().get(REQUEST_ID))
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let correlation_id = usable_id(req.headers().get(CORRELATION_ID));
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        correlation_id = correlation_id.as_deref().unwrap_or(""),
    );
    let ctx = Context {
        request_id: request_id.as_str().into(),
    };
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let refused = req.extensions().get::<OverCapacity>().is_some()
        && !matches!(req.uri().path(), "/health" | "/ready");
    let mut resp = if refused {
        CONTEXT.sync_scope(ctx, over_capacity)
    } else {
        CONTEXT
            .scope(ctx, next.run(req).instrument(span.clone()))
            .await
    };
    let status = resp.status().as_u16();
    app.metrics().http_response(status);
    app.metrics().http_observed(
        route.as_ref().map(|m| m.as_str()),
        status,
        started.elapsed(),
    );
    span.in_scope(|| tracing::debug!(status, "response"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}
