//! `POST /api/hooks/claude-code`: a Claude Code `"type": "http"` hook, as Claude Code sends it,
//! stored as one event of its session ([`crate::domain::claude_code`]). The answer is `{}`,
//! which Claude Code reads as "go on"; a 2xx means the event is stored. A hook that asks
//! for a tool call (`PermissionRequest`, and `PreToolUse` when a rule says so) is answered
//! with the decision ([`crate::service::permissions`]), held until there is one.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::error::ApiError;
use super::events::context;
use super::extract::{parse_json, JsonBody};
use super::tenant::Scoped;
use super::waits::Waiter;
use crate::app::AppState;
use crate::credentials::Principal;
use crate::domain::claude_code::{fills_session, hook_event, HookOrigin};
use crate::domain::event::draft_event;
use crate::domain::permissions::Hook;
use crate::domain::session::session_info;
use crate::service::events::Events;
use crate::service::permissions::{Ask, Permissions};
use crate::time::Now;

/// The route of Claude Code's hooks.
pub const CLAUDE_CODE: &str = "/api/hooks/claude-code";

/// The header a hook names its machine by (`"headers": {"X-Hostname": "$HOSTNAME"}`).
pub const HOSTNAME_HEADER: &str = "x-hostname";

#[utoipa::path(post, path = "/api/hooks/claude-code", tag = "agents", operation_id = "claudeCodeHook", request_body(content = Object, description = "A Claude Code hook's input (`hook_event_name`, `session_id`, ...), as Claude Code posts it"), responses((status = 200, description = "The hook's answer (for PermissionRequest: the decision when one is made)", body = Object), super::openapi::Errors))]
pub async fn claude_code(
    State(app): State<AppState>,
    Scoped(events): Scoped<Events>,
    Scoped(permissions): Scoped<Permissions>,
    waiter: Waiter,
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
    let asks = ask(&hook, &event, app.instance_id());
    // A hook that may wait holds one of its client's long-poll places while it does.
    let _slot = waiter.park(asks.is_some())?;
    events.post(vec![draft], &now).await?;
    let answer = match asks {
        Some(ask) => permissions.ask(ask).await?,
        None => json!({}),
    };
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// What a hook asks, when it asks for a tool call: a `PermissionRequest` or `PreToolUse` hook
/// with a `tool_name`. Its request's id is its event's, `pr-` for `cc-`.
fn ask<'a>(hook: &'a Value, event: &'a Value, instance: &'a str) -> Option<Ask<'a>> {
    let kind = Hook::of(hook.get("hook_event_name")?.as_str()?)?;
    let tool = hook.get("tool_name")?.as_str()?;
    let id = event["eventId"].as_str()?.strip_prefix("cc-")?;
    let mut extra = serde_json::Map::new();
    if let Some(t) = hook.get("tool_use_id").filter(|v| v.is_string()) {
        extra.insert("toolUseId".into(), t.clone());
    }
    if let Some(s) = hook.get("permission_suggestions").filter(|v| v.is_array()) {
        extra.insert("suggestions".into(), s.clone());
    }
    Some(Ask {
        hook: kind,
        id: format!("pr-{id}"),
        session_id: event["sessionId"].as_str()?,
        tool,
        input: hook.get("tool_input").unwrap_or(&Value::Null),
        extra,
        instance,
    })
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
