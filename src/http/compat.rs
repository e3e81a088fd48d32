//! Routes the ActionFlows clients call that our own protocol has no need of: captured
//! terminal output (`POST /api/terminal/:id/output`), the user views (`GET /api/users`,
//! `GET /api/users/:id/sessions`), and a clear answer for the file and history routes, whose
//! data lives on the agent's machine, not on the gateway. Also the ActionFlows path of a
//! session's commands (`/api/commands/:id/commands`), which our own routes serve.

use super::tenant::Scoped;
use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::control::{create_command, list_commands, PollQuery};
use super::error::ApiError;
use super::events::context;
use super::extract::{session_path_id, ApiJson, ApiPath, ApiQuery};
use super::waits::Waiter;
use crate::domain::control::NewCommand;
use crate::domain::event::draft_event;
use crate::domain::session::SessionQuery;
use crate::domain::FieldProblem;
use crate::service::chains::Chains;
use crate::service::control::Control;
use crate::service::events::Events;
use crate::service::sessions::Sessions;
use crate::time::Now;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TerminalOutput {
    output: Option<Value>,
    stream: Option<String>,
    step_number: Option<Value>,
    action: Option<Value>,
}

/// Stores captured shell output as a `terminal:output` event of the session (made by it if
/// it is the session's first event, like any event).
#[utoipa::path(post, path = "/api/terminal/{id}/output", tag = "compat", operation_id = "terminalOutput", params(("id" = String, Path, description = "The session id")), request_body = TerminalOutput, responses((status = 201, description = "Stored as a `terminal:output` event of the session", body = Object), super::openapi::Errors))]
pub async fn terminal_output(
    Scoped(events): Scoped<Events>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TerminalOutput>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    let mut problems = Vec::new();
    let output = match body.output {
        Some(Value::String(s)) => s,
        Some(_) => {
            problems.push(FieldProblem::new("output", "must be a string"));
            String::new()
        }
        None => {
            problems.push(FieldProblem::new("output", "is required"));
            String::new()
        }
    };
    let stream = body.stream.unwrap_or_else(|| "stdout".into());
    if stream != "stdout" && stream != "stderr" {
        problems.push(FieldProblem::new("stream", "must be stdout or stderr"));
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let now = Now::get();
    let mut event = json!({
        "sessionId": id,
        "type": "terminal:output",
        "output": output,
        "stream": stream,
    });
    // Only what was sent: that dashboard tests `stepNumber !== undefined`, and a stored null
    // would print `[#null]`.
    for (field, v) in [("stepNumber", body.step_number), ("action", body.action)] {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            event[field] = v;
        }
    }
    let raw = serde_json::value::to_raw_value(&event).expect("a Value serializes");
    let draft = draft_event(&raw, &context(&headers, &now), "").map_err(ApiError::validation)?;
    let stored = events.post(vec![draft], &now).await?;
    let a = &stored[0];
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "eventId": a.event_id, "sessionId": a.session_id, "seq": a.seq})),
    )
        .into_response())
}

/// Sessions as the ActionFlows dashboard reads them: each with `currentChain`, its latest
/// chain still running (pending, in progress or paused) in the shared package's `Chain` shape,
/// which is what shows that dashboard's Pause, Resume and Cancel buttons. Only sessions with
/// chains (`chainsCount`, when the value has it) are read, all at once.
pub async fn with_current_chain(chains: &Chains, sessions: &mut [Value]) -> Result<(), ApiError> {
    let reads = sessions.iter().map(|s| async move {
        let id = s["id"].as_str().unwrap_or_default();
        if s.get("chainsCount").is_some_and(|n| n == 0) || id.is_empty() {
            return Ok(Vec::new());
        }
        chains.of_session(id).await
    });
    let found = futures::future::try_join_all(reads).await?;
    for (s, list) in sessions.iter_mut().zip(found) {
        let running = list
            .iter()
            .rev()
            .filter_map(|c| serde_json::to_value(c).ok())
            .find(|c| {
                matches!(
                    c["status"].as_str(),
                    Some("pending" | "in_progress" | "paused")
                )
            });
        if let Some(c) = running {
            s["currentChain"] = crate::realtime::compat::shared_chain(&c);
        }
    }
    Ok(())
}

/// Sessions read to build the user views: ten pages of the listing at most.
const USER_VIEW_PAGES: usize = 10;
const PAGE: usize = 1000;

/// `GET /api/users`: every user with a stored session, from the sessions' `userId`, most
/// recently active first. A user is online while one of their sessions is in progress.
#[utoipa::path(get, path = "/api/users", tag = "compat", operation_id = "users", responses((status = 200, description = "`{users:[{userId, sessionCount, ...}]}`", body = Object), super::openapi::Errors))]
pub async fn users(Scoped(sessions): Scoped<Sessions>) -> Result<Response, ApiError> {
    let mut by_user: BTreeMap<String, (u64, u64, String)> = BTreeMap::new();
    let mut cursor = None;
    let mut complete = false;
    for _ in 0..USER_VIEW_PAGES {
        let query = SessionQuery {
            limit: PAGE,
            cursor: cursor.take(),
            ..SessionQuery::default()
        };
        let page = sessions.store.list_sessions(&query).await?;
        for s in &page.sessions {
            let Some(user) = &s.user_id else { continue };
            let entry = by_user.entry(user.clone()).or_default();
            entry.0 += 1;
            if s.status == "in_progress" || s.status == "pending" {
                entry.1 += 1;
            }
            if s.updated_at > entry.2 {
                entry.2 = s.updated_at.clone();
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => {
                complete = true;
                break;
            }
        }
    }
    let mut users: Vec<Value> = by_user
        .into_iter()
        .map(|(id, (count, active, last))| {
            json!({"id": id, "userId": id, "sessionCount": count, "activeSessions": active,
                   "isOnline": active > 0, "lastSeenAt": last})
        })
        .collect();
    users.sort_by(|a, b| b["lastSeenAt"].as_str().cmp(&a["lastSeenAt"].as_str()));
    Ok(Json(json!({"count": users.len(), "users": users, "complete": complete})).into_response())
}

/// `GET /api/users/:id/sessions`: that user's sessions, newest first, as whole Sessions
/// (with `user` beside `userId`, the name the ActionFlows dashboard reads).
#[utoipa::path(get, path = "/api/users/{id}/sessions", tag = "compat", operation_id = "userSessions", params(("id" = String, Path, description = "The user id")), responses((status = 200, description = "`{userId, count, sessions, nextCursor}`", body = Object), super::openapi::Errors))]
pub async fn user_sessions(
    Scoped(sessions): Scoped<Sessions>,
    Scoped(chains): Scoped<Chains>,
    ApiPath(user): ApiPath<String>,
) -> Result<Response, ApiError> {
    if user.is_empty() || user.chars().count() > 200 {
        return Err(ApiError::validation(vec![FieldProblem::new(
            "userId",
            "must be 1-200 characters",
        )]));
    }
    let query = SessionQuery {
        user_id: Some(user.clone()),
        limit: 100,
        ..SessionQuery::default()
    };
    let page = sessions.store.list_sessions(&query).await?;
    let mut out = Vec::with_capacity(page.sessions.len());
    for row in &page.sessions {
        if let Some(s) = sessions.store.get_session(&row.id).await? {
            let mut v = serde_json::to_value(&s).expect("a session serializes");
            v["user"] = json!(s.user_id);
            out.push(v);
        }
    }
    with_current_chain(&chains, &mut out).await?;
    Ok(Json(json!({"userId": user, "count": out.len(), "sessions": out, "nextCursor": page.next_cursor}))
        .into_response())
}

/// Posts a command to a session, on the ActionFlows clients' path.
#[utoipa::path(post, path = "/api/commands/{id}/commands", tag = "compat", operation_id = "createCommandCompat", params(("id" = String, Path, description = "The session id")), request_body = crate::domain::control::NewCommand, responses((status = 201, description = "As `POST /api/sessions/{id}/commands`", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn command_create(
    control: Scoped<Control>,
    id: ApiPath<String>,
    body: ApiJson<NewCommand>,
) -> Result<Response, ApiError> {
    create_command(control, id, body).await
}

/// A session's pending commands, on the ActionFlows clients' path.
#[utoipa::path(get, path = "/api/commands/{id}/commands", tag = "compat", operation_id = "listCommandsCompat", params(("id" = String, Path, description = "The session id"), super::control::PollQuery), responses((status = 200, description = "As `GET /api/sessions/{id}/commands`", body = Object), super::openapi::Errors))]
pub async fn command_list(
    control: Scoped<Control>,
    waiter: Waiter,
    id: ApiPath<String>,
    q: ApiQuery<PollQuery>,
) -> Result<Response, ApiError> {
    list_commands(control, waiter, id, q).await
}

/// `/api/files/...`: the agent's files, which the gateway cannot read (any method).
#[utoipa::path(get, path = "/api/files/{rest}", tag = "compat", operation_id = "files", params(("rest" = String, Path, description = "Anything")), responses((status = 501, description = "Files live on the agent's machine (`not_on_gateway`); any method answers so", body = Object)))]
pub async fn files() -> ApiError {
    not_on_gateway()
}

/// `/api/history/...`: the agent's history, which the gateway cannot read (any method).
#[utoipa::path(get, path = "/api/history/{rest}", tag = "compat", operation_id = "historyUnder", params(("rest" = String, Path, description = "Anything")), responses((status = 501, description = "History lives on the agent's machine (`not_on_gateway`); any method answers so", body = Object)))]
pub async fn history_under() -> ApiError {
    not_on_gateway()
}

/// `/api/history`: the agent's history, which the gateway cannot read (any method).
#[utoipa::path(get, path = "/api/history", tag = "compat", operation_id = "history", responses((status = 501, description = "History lives on the agent's machine (`not_on_gateway`); any method answers so", body = Object)))]
pub async fn history() -> ApiError {
    not_on_gateway()
}

/// `/api/files/...` and `/api/history/...`: the ActionFlows backend read the agent's own disk.
/// A gateway runs elsewhere and never sees that disk, so these answer why, and what to do.
fn not_on_gateway() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_on_gateway",
        "files and history live on the agent's machine, which the gateway cannot read; have the agent post them as events (for example {\"type\":\"file:snapshot\",\"path\":...,\"content\":...}) and read them with GET /api/events/:sessionId",
    )
}
