//! `POST /api/hooks/claude-code`: a Claude Code `"type": "http"` hook, as Claude Code sends it,
//! stored as one event of its session ([`crate::domain::claude_code`]). The answer is `{}`,
//! which Claude Code reads as "go on"; a 2xx means the event is stored.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::error::ApiError;
use super::events::context;
use super::extract::{parse_json, JsonBody};
use super::tenant::Scoped;
use crate::credentials::Principal;
use crate::domain::claude_code::{fills_session, hook_event, HookOrigin};
use crate::domain::event::draft_event;
use crate::domain::session::session_info;
use crate::service::events::Events;
use crate::time::Now;

/// The route of Claude Code's hooks.
pub const CLAUDE_CODE: &str = "/api/hooks/claude-code";

/// The header a hook names its machine by (`"headers": {"X-Hostname": "$HOSTNAME"}`).
pub const HOSTNAME_HEADER: &str = "x-hostname";

pub async fn claude_code(
    Scoped(events): Scoped<Events>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let now = Now::get();
    let hook: Value = parse_json(&body)?;
    let origin = HookOrigin {
        user: principal.map(|Extension(p)| p.subject.to_string()),
        hostname: headers
            .get(HOSTNAME_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|h| !h.is_empty() && h.len() <= 255)
            .map(str::to_string),
    };
    let event = hook_event(&hook, &origin).map_err(ApiError::validation)?;
    let raw = serde_json::value::to_raw_value(&event).expect("a JSON value serializes");
    let mut draft =
        draft_event(&raw, &context(&headers, &now), "").map_err(ApiError::validation)?;
    // A session's first hooks (its start, or the first prompt a gateway added mid-session
    // hears) fill the cwd, host and user it lacks; the rest spare the read that costs.
    if fills_session(&hook) {
        draft.session_info = session_info(&event);
    }
    events.post(vec![draft], &now).await?;
    Ok((StatusCode::OK, Json(json!({}))).into_response())
}

#[cfg(test)]
mod tests {
    /// The auth middleware hands the principal to the route by this name.
    #[test]
    fn the_route_is_the_one_the_router_serves() {
        let router = include_str!("mod.rs");
        assert!(router.contains(&format!(
            ".route(\"{}\", post(hooks::claude_code))",
            super::CLAUDE_CODE
        )));
    }
}
