//! `/api/sessions`: create, list, read, update, delete, and mark a session as awaiting input.

use super::tenant::Scoped;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{session_path_id, ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::domain::event::check_limit;
use crate::domain::session::{check_session_id, field, Fields, SessionQuery, SESSION_STATUSES};
use crate::domain::FieldProblem;
use crate::service::chains::Chains;
use crate::service::events::Events;
use crate::service::sessions::Sessions;
use crate::time::Now;

const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_TEXT_CHARS: usize = 4096;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSession {
    id: Option<String>,
    cwd: Option<String>,
    hostname: Option<String>,
    platform: Option<String>,
    #[serde(alias = "user")]
    user_id: Option<String>,
    metadata: Option<Value>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchSession {
    status: Option<String>,
    summary: Option<String>,
    end_reason: Option<String>,
    conversation_state: Option<String>,
    metadata: Option<Value>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    user_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Awaiting {
    prompt_type: Option<String>,
    prompt_text: Option<String>,
    quick_responses: Option<Vec<String>>,
}

fn check_text(problems: &mut Vec<FieldProblem>, name: &str, v: &Option<String>) {
    if v.as_ref()
        .is_some_and(|s| s.chars().count() > MAX_TEXT_CHARS)
    {
        problems.push(FieldProblem::new(
            name,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
}

fn check_status(problems: &mut Vec<FieldProblem>, status: &Option<String>) {
    if let Some(s) = status {
        if !SESSION_STATUSES.contains(&s.as_str()) {
            problems.push(FieldProblem::new(
                "status",
                format!("must be one of {}", SESSION_STATUSES.join(", ")),
            ));
        }
    }
}

#[utoipa::path(post, path = "/api/sessions", tag = "sessions", operation_id = "createSession", request_body = CreateSession, responses((status = 201, description = "The Session", body = Object), (status = 409, description = "A session with this id exists", body = Object), super::openapi::Errors))]
pub async fn create(
    Scoped(sessions): Scoped<Sessions>,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    if let Some(id) = &body.id {
        if let Err(p) = check_session_id(id) {
            problems.push(FieldProblem::new("id", p.problem));
        }
    }
    for (name, v) in [
        ("cwd", &body.cwd),
        ("hostname", &body.hostname),
        ("platform", &body.platform),
        ("userId", &body.user_id),
    ] {
        check_text(&mut problems, name, v);
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let id = body.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let now = Now::get();
    let mut fields: Fields = vec![
        (field::ID, id.clone()),
        (field::STATUS, "in_progress".into()),
        (field::STARTED_AT, now.iso.clone()),
        (field::UPDATED_AT, now.iso.clone()),
    ];
    let optional = [
        (field::CWD, body.cwd),
        (field::HOSTNAME, body.hostname),
        (field::PLATFORM, body.platform),
        (field::USER_ID, body.user_id),
        (field::METADATA, body.metadata.map(|m| m.to_string())),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    sessions.admit(&id).await?;
    let session = sessions.store.create_session(&id, fields, &now).await?;
    Ok((StatusCode::CREATED, Json(session)).into_response())
}

#[utoipa::path(get, path = "/api/sessions", tag = "sessions", operation_id = "listSessions", params(ListQuery), responses((status = 200, description = "`{count, sessions, nextCursor}`, newest first", body = Object), super::openapi::Errors))]
pub async fn list(
    State(app): State<AppState>,
    Scoped(sessions): Scoped<Sessions>,
    Scoped(chains): Scoped<Chains>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut problems = Vec::new();
    check_status(&mut problems, &q.status);
    let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    problems.extend(check_limit(limit).err());
    let cursor = match q.cursor.as_deref().map(decode_cursor) {
        Some(None) => {
            problems.push(FieldProblem::new(
                "cursor",
                "is not a cursor this API returned",
            ));
            None
        }
        Some(Some(c)) => Some(c),
        None => None,
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let page = sessions
        .store
        .list_sessions(&SessionQuery {
            status: q.status,
            user_id: q.user_id,
            limit,
            cursor,
        })
        .await?;
    let count = page.sessions.len();
    let mut rows = serde_json::to_value(&page.sessions).expect("session rows serialize");
    // The ActionFlows dashboard shows a session's controls only with its `currentChain`.
    if let (Some(_), Value::Array(list)) = (app.config().compat, &mut rows) {
        super::compat::with_current_chain(&chains, list).await?;
    }
    Ok(Json(json!({
        "count": count,
        "sessions": rows,
        "nextCursor": page.next_cursor.as_deref().map(encode_cursor),
    })))
}

/// Cursors are index members, hex-encoded so they survive any query string unescaped.
fn encode_cursor(member: &str) -> String {
    member.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) || hex.len() > 1024 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The Session with its `chains` (docs/protocol.md#http-api), in creation order.
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", operation_id = "getSession", params(("id" = String, Path, description = "The session id")), responses((status = 200, description = "The Session with its chains", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(sessions): Scoped<Sessions>,
    Scoped(chains): Scoped<Chains>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let session = sessions.require(&id).await?;
    let mut body = serde_json::to_value(&session).expect("a session serializes");
    body["chains"] = serde_json::to_value(chains.of_session(&id).await?).expect("chains serialize");
    Ok(Json(body).into_response())
}

/// `PUT /api/sessions/:id`: the same change as `PATCH` (the ActionFlows clients use `PUT`).
#[utoipa::path(put, path = "/api/sessions/{id}", tag = "sessions", operation_id = "putSession", params(("id" = String, Path, description = "The session id")), request_body = PatchSession, responses((status = 200, description = "As PATCH: the fields given are set", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn put(
    sessions: Scoped<Sessions>,
    id: ApiPath<String>,
    body: ApiJson<PatchSession>,
) -> Result<Response, ApiError> {
    update(sessions, id, body).await
}

#[utoipa::path(patch, path = "/api/sessions/{id}", tag = "sessions", operation_id = "updateSession", params(("id" = String, Path, description = "The session id")), request_body = PatchSession, responses((status = 200, description = "The Session as it now stands", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn update(
    Scoped(sessions): Scoped<Sessions>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchSession>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    let mut problems = Vec::new();
    check_status(&mut problems, &body.status);
    check_text(&mut problems, "summary", &body.summary);
    check_text(&mut problems, "endReason", &body.end_reason);
    check_text(&mut problems, "conversationState", &body.conversation_state);
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let now = Now::get();
    let mut fields: Fields = Vec::new();
    if let Some(status) = &body.status {
        if status == "completed" || status == "failed" {
            fields.push((field::ENDED_AT, now.iso.clone()));
        }
    }
    let given = [
        (field::STATUS, body.status),
        (field::SUMMARY, body.summary),
        (field::END_REASON, body.end_reason),
        (field::CONVERSATION_STATE, body.conversation_state),
        (field::METADATA, body.metadata.map(|m| m.to_string())),
    ];
    fields.extend(given.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    if fields.is_empty() {
        return Err(ApiError::validation(vec![FieldProblem::new(
            "body",
            "name at least one of status, summary, endReason, conversationState, metadata",
        )]));
    }
    fields.push((field::UPDATED_AT, now.iso));
    match sessions.store.update_session(&id, fields).await? {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(ApiError::not_found("session")),
    }
}

#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "sessions", operation_id = "deleteSession", params(("id" = String, Path, description = "The session id")), responses((status = 200, description = "`{success, sessionId}`; its events, queues and chains go with it", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn delete(
    Scoped(sessions): Scoped<Sessions>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    if sessions.store.delete_session(&id).await? {
        sessions.deleted(&id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("session"))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtendBody {
    ttl_secs: Option<u64>,
}

/// `POST /api/sessions/:id/extend {ttlSecs}`.
#[utoipa::path(post, path = "/api/sessions/{id}/extend", tag = "sessions", operation_id = "extendSession", params(("id" = String, Path, description = "The session id")), request_body = ExtendBody, responses((status = 200, description = "The session's new TTL", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn extend(
    Scoped(sessions): Scoped<Sessions>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<Response, ApiError> {
    let session = sessions.extend(&id, body.ttl_secs).await?;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(body.ttl_secs.unwrap_or(0) as i64);
    Ok(Json(json!({"success": true, "session": session, "ttlSecs": body.ttl_secs, "expiresAt": crate::time::format(expires)})).into_response())
}

/// Marks the session as waiting for the user and publishes an `interaction:awaiting-input`
/// event carrying the prompt.
#[utoipa::path(post, path = "/api/sessions/{id}/awaiting", tag = "sessions", operation_id = "markAwaiting", params(("id" = String, Path, description = "The session id")), request_body = Awaiting, responses((status = 200, description = "The session awaits input: the prompt is stored as an event", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn awaiting(
    Scoped(sessions): Scoped<Sessions>,
    Scoped(events): Scoped<Events>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Awaiting>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    let mut problems = Vec::new();
    check_text(&mut problems, "promptType", &body.prompt_type);
    check_text(&mut problems, "promptText", &body.prompt_text);
    if body.quick_responses.as_ref().is_some_and(|q| q.len() > 50) {
        problems.push(FieldProblem::new(
            "quickResponses",
            "must hold at most 50 items",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let now = Now::get();
    // `text` and `type` repeat `promptText` and `promptType` under the names of the
    // ActionFlows shared type, which its dashboard reads.
    let prompt = json!({
        "promptType": body.prompt_type,
        "promptText": body.prompt_text,
        "text": body.prompt_text,
        "type": body.prompt_type,
        "quickResponses": body.quick_responses,
        "timestamp": now.iso,
    });
    let fields: Fields = vec![
        (field::CONVERSATION_STATE, "awaiting_input".into()),
        (field::LAST_PROMPT, prompt.to_string()),
        (field::UPDATED_AT, now.iso.clone()),
    ];
    let Some(session) = sessions.store.update_session(&id, fields).await? else {
        return Err(ApiError::not_found("session"));
    };
    let mut event = json!({
        "sessionId": id,
        "type": "interaction:awaiting-input",
        "promptType": prompt["promptType"],
        "promptText": prompt["promptText"],
        "quickResponses": prompt["quickResponses"],
        "timestamp": now.iso,
    });
    event["prompt"] = prompt;
    events.store_event(event, &now).await?;
    Ok(Json(session).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let m = "0001767225600000:sess/ü 1";
        assert_eq!(decode_cursor(&encode_cursor(m)).as_deref(), Some(m));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor("abc"), None);
    }
}
