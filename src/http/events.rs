//! `/api/events`: post one or a batch, read by seq (`after`) or time (`since`), read recent.

use super::tenant::Scoped;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{parse_json, session_path_id, ApiPath, ApiQuery, JsonBody};
use super::request_id::{usable_id, CORRELATION_ID};
use crate::domain::event::{
    check_limit, draft_event, EventContext, ReadFrom, MAX_BATCH_EVENTS, MAX_READ_LIMIT,
};
use crate::domain::FieldProblem;
use crate::service::events::{received_since, Events};
use crate::time::Now;

const DEFAULT_RECENT_LIMIT: usize = 50;
const DEFAULT_RECENT_SECONDS: u64 = 60;

pub(crate) fn context(headers: &HeaderMap, now: &Now) -> EventContext {
    EventContext {
        received_at: now.iso.clone(),
        correlation_id: usable_id(headers.get(CORRELATION_ID)),
    }
}

#[utoipa::path(post, path = "/api/events", tag = "events", operation_id = "postEvent", request_body(content = Object, description = "One event: `{sessionId, type, eventId?, ...any fields}` (Idempotency-Key or eventId dedups)"), responses((status = 201, description = "`{success, sessionId, seq, epoch, eventId}`", body = Object), (status = 200, description = "A duplicate `eventId`: the stored event's seq", body = Object), (status = 413, description = "Past `MAX_EVENT_BYTES` (`too_large`)", body = Object), super::openapi::Errors))]
pub async fn post_one(
    Scoped(events): Scoped<Events>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let now = Now::get();
    let raw: &RawValue = parse_json(&body)?;
    let draft = draft_event(raw, &context(&headers, &now), "").map_err(ApiError::validation)?;
    let stored = events.post(vec![draft], &now).await?;
    let a = stored.into_iter().next().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the store returned no result",
        )
    })?;
    let mut body =
        json!({"success": true, "eventId": a.event_id, "sessionId": a.session_id, "seq": a.seq});
    let status = if a.duplicate {
        body["duplicate"] = json!(true);
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

#[utoipa::path(post, path = "/api/events/batch", tag = "events", operation_id = "postEvents", request_body(content = Object, description = "`{events:[event, ...]}`, stored in order"), responses((status = 201, description = "`{success, count, results:[{sessionId, seq, ...}]}`", body = Object), (status = 413, description = "Past `MAX_BATCH_BYTES` (`too_large`)", body = Object), super::openapi::Errors))]
pub async fn post_batch(
    Scoped(events): Scoped<Events>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let batch: Batch<'_> = parse_json(&body)?;
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::validation(vec![FieldProblem::new(
            "events",
            format!("must hold 1-{MAX_BATCH_EVENTS} events"),
        )]));
    }
    let now = Now::get();
    let ctx = context(&headers, &now);
    let limit = events.max_event_bytes;
    let mut drafts = Vec::with_capacity(batch.events.len());
    let mut problems = Vec::new();
    for (i, ev) in batch.events.into_iter().enumerate() {
        match draft_event(ev, &ctx, &format!("events[{i}].")) {
            Ok(d) if d.json_head.len() > limit => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("events[{i}] is larger than {limit} bytes"),
                ));
            }
            Ok(d) => drafts.push(d),
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let stored = events.post(drafts, &now).await?;
    let results: Vec<Value> = stored
        .into_iter()
        .map(|a| {
            let mut r = json!({"eventId": a.event_id, "sessionId": a.session_id, "seq": a.seq});
            if a.duplicate {
                r["duplicate"] = json!(true);
            }
            r
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "results": results})),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    after: Option<u64>,
    limit: Option<usize>,
    since: Option<String>,
}

/// Writes a JSON array of already-serialized events without re-encoding them.
fn raw_array(events: &[Arc<str>]) -> String {
    let mut s = String::with_capacity(events.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
    s.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(e);
    }
    s.push(']');
    s
}

fn json_response(status: StatusCode, head: Value, events: &[Arc<str>]) -> Response {
    // `head` is an object; splice the raw events array in as its last field.
    let mut body = head.to_string();
    body.pop();
    body.push_str(if body.len() > 1 {
        ",\"events\":"
    } else {
        "\"events\":"
    });
    body.push_str(&raw_array(events));
    body.push('}');
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/events/{session_id}", tag = "events", operation_id = "readEvents", params(("session_id" = String, Path, description = "The session id"), ReadQuery), responses((status = 200, description = "`{sessionId, epoch, events, nextAfter?, gap?}` oldest first", body = Object), super::openapi::Errors))]
pub async fn read(
    Scoped(events): Scoped<Events>,
    ApiPath(session_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    session_path_id(&session_id)?;
    let limit = q.limit.unwrap_or(MAX_READ_LIMIT);
    let mut problems = Vec::new();
    problems.extend(check_limit(limit).err());
    if q.after.is_some() && q.since.is_some() {
        problems.push(FieldProblem::new(
            "since",
            "give either after or since, not both",
        ));
    }
    let since = match q.since.as_deref().map(|s| (s, crate::time::parse(s))) {
        Some((_, Some(t))) => Some(crate::time::format(t)),
        Some((raw, None)) => {
            problems.push(FieldProblem::new(
                "since",
                format!("{raw:?} is not an ISO 8601 timestamp"),
            ));
            None
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let (range, start, found) = match since {
        None => {
            let after = q.after.unwrap_or(0);
            let mut range = events
                .store
                .read_events(&session_id, ReadFrom::After(after), limit)
                .await?;
            let start = range.start_after(after);
            let found = std::mem::take(&mut range.events);
            (range, start, found)
        }
        Some(cutoff) => events.read_since(&session_id, &cutoff, limit).await?,
    };
    let count = found.len() as u64;
    let mut head = json!({
        "sessionId": session_id,
        "count": count,
        "headSeq": range.head_seq,
        "epoch": range.epoch,
    });
    let last = start + count.saturating_sub(1);
    if count > 0 && last < range.head_seq {
        head["nextAfter"] = json!(last);
    }
    Ok(json_response(StatusCode::OK, head, &found))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecentQuery {
    limit: Option<usize>,
    seconds: Option<u64>,
}

#[utoipa::path(get, path = "/api/events/{session_id}/recent", tag = "events", operation_id = "recentEvents", params(("session_id" = String, Path, description = "The session id"), RecentQuery), responses((status = 200, description = "The newest events, oldest first", body = Object), super::openapi::Errors))]
pub async fn recent(
    Scoped(events): Scoped<Events>,
    ApiPath(session_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecentQuery>,
) -> Result<Response, ApiError> {
    session_path_id(&session_id)?;
    let limit = q.limit.unwrap_or(DEFAULT_RECENT_LIMIT);
    let seconds = q.seconds.unwrap_or(DEFAULT_RECENT_SECONDS);
    let mut problems = Vec::new();
    problems.extend(check_limit(limit).err());
    if seconds == 0 || seconds > 7 * 24 * 3600 {
        problems.push(FieldProblem::new("seconds", "must be 1-604800"));
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let cutoff =
        crate::time::format(chrono::Utc::now() - chrono::Duration::seconds(seconds as i64));
    let range = events
        .store
        .read_events(&session_id, ReadFrom::Tail(limit), limit)
        .await?;
    let recent: Vec<Arc<str>> = range
        .events
        .into_iter()
        .filter(|e| received_since(e, &cutoff))
        .collect();
    let head = json!({
        "sessionId": session_id,
        "count": recent.len(),
        "cutoffTime": cutoff,
    });
    Ok(json_response(StatusCode::OK, head, &recent))
}
