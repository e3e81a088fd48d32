//! `GET /api/sessions/:id/stream`: a session's stream as server-sent events, resuming from
//! `Last-Event-ID` (`<epoch>:<seq>`) or `?since=<seq>&epoch=`; the stream itself is
//! [`crate::realtime::sse`]. For clients and proxies where a WebSocket is not allowed, and
//! for `curl -N`; with `?format=ag-ui`, as AG-UI events ([`crate::realtime::ag_ui`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{session_path_id, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::credentials::Principal;
use crate::domain::FieldProblem;
use crate::realtime::sse::{self, parse_last_event_id, Start};
use crate::scope::{scope_of, scoped};

/// Whether `path` is a session's SSE stream (which, like `/ws`, may take `?token=`: a
/// browser's `EventSource` cannot send a header).
pub fn is_stream(path: &str) -> bool {
    path.strip_prefix("/api/sessions/")
        .and_then(|rest| rest.strip_suffix("/stream"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Resume after this seq (as `Last-Event-ID` would); absent: live events from now on.
    since: Option<u64>,
    /// The epoch `since` is of; absent: whatever the stream is now.
    epoch: Option<String>,
    /// `ag-ui` for AG-UI events; absent (or `gateway`): the WebSocket's messages.
    format: Option<String>,
    /// The credentials, for a browser's `EventSource` (the middleware reads it).
    #[allow(dead_code)]
    token: Option<String>,
}

#[utoipa::path(get, path = "/api/sessions/{id}/stream", tag = "sessions", operation_id = "streamSession", params(("id" = String, Path, description = "The session id"), StreamQuery), responses((status = 200, description = "`text/event-stream` of the session's events (`Last-Event-ID` resumes; `profile=ag-ui` for AG-UI events)", body = Object), super::openapi::Errors))]
pub async fn stream(
    State(app): State<AppState>,
    principal: Option<Extension<Arc<Principal>>>,
    ApiPath(session_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    session_path_id(&session_id)?;
    let ag_ui = match q.format.as_deref() {
        None | Some("gateway") => false,
        Some("ag-ui") => true,
        Some(_) => {
            return Err(ApiError::validation(vec![FieldProblem::new(
                "format",
                "must be ag-ui or gateway",
            )]))
        }
    };
    let start = match headers.get("last-event-id") {
        Some(v) => match v.to_str().ok().and_then(parse_last_event_id) {
            Some((epoch, seq)) => Start {
                since: Some(seq),
                epoch: Some(epoch),
                ag_ui,
            },
            None => {
                return Err(ApiError::validation(vec![FieldProblem::new(
                    "Last-Event-ID",
                    "must be <epoch>:<seq>, as the stream's id: lines give it",
                )]))
            }
        },
        None => Start {
            since: q.since,
            epoch: q.epoch,
            ag_ui,
        },
    };
    let tenant_name = principal.as_ref().map(|Extension(p)| &*p.tenant);
    let tenant = match tenant_name {
        Some(name) => app.tenants().get(name),
        None => Arc::clone(app.tenants().default_tenant()),
    };
    let sid: Arc<str> = scoped(tenant_name.and_then(scope_of), &session_id).into();
    let id = app.next_connection_id();
    let opened = sse::open(app.ws_context(), tenant, sid, id, start).await?;
    let mut resp = Body::from_stream(sse::body(opened)).into_response();
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx passes each message on at once instead of buffering the response.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stream_paths() {
        assert!(super::is_stream("/api/sessions/s1/stream"));
        assert!(!super::is_stream("/api/sessions//stream"));
        assert!(!super::is_stream("/api/sessions/a/b/stream"));
        assert!(!super::is_stream("/api/sessions/s1"));
    }
}
