//! `/api/events`: post one or a batch, read by seq (`after`) or time (`since`), read recent.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::{usable_id, CORRELATION_ID};
use super::extract::{session_path_id, ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::{ApiError, FieldProblem};
use crate::model::{
    check_limit, draft_event, Appended, EventContext, EventDraft, EventRange, ReadFrom,
    MAX_BATCH_EVENTS, MAX_READ_LIMIT,
};
use crate::store::Now;

const DEFAULT_RECENT_LIMIT: usize = 50;
const DEFAULT_RECENT_SECONDS: u64 = 60;

fn context(headers: &HeaderMap, now: &Now) -> EventContext {
    EventContext {
        received_at: now.iso.clone(),
        correlation_id: usable_id(headers.get(CORRELATION_ID)),
    }
}

/// Stores the drafts and counts the events that were new.
async fn append(
    app: &AppState,
    drafts: &[EventDraft],
    now: &Now,
) -> Result<Vec<Appended>, ApiError> {
    let stored = app.store().append(drafts, now).await?;
    let new = stored.iter().filter(|a| !a.duplicate).count();
    app.metrics().events_appended.inc_by(new as u64);
    Ok(stored)
}

/// Stores (and so publishes) an event the gateway itself produces.
pub async fn store_event(app: &AppState, event: Value, now: &Now) -> Result<(), ApiError> {
    let ctx = EventContext {
        received_at: now.iso.clone(),
        correlation_id: None,
    };
    let draft = draft_event(event, &ctx, "").map_err(ApiError::validation)?;
    append(app, &[draft], now).await?;
    Ok(())
}

pub async fn post_one(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let now = Now::get();
    let chain_event = super::chains::is_chain_event(&body).then(|| body.clone());
    let draft = draft_event(body, &context(&headers, &now), "").map_err(ApiError::validation)?;
    let stored = append(&app, std::slice::from_ref(&draft), &now).await?;
    if let Some(event) = chain_event {
        super::chains::apply_events(&app, &[(event, draft.event_id.clone())]).await;
    }
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
pub struct Batch {
    events: Vec<Value>,
}

pub async fn post_batch(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiJson(batch): ApiJson<Batch>,
) -> Result<Response, ApiError> {
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::validation(vec![FieldProblem::new(
            "events",
            format!("must hold 1-{MAX_BATCH_EVENTS} events"),
        )]));
    }
    let now = Now::get();
    let ctx = context(&headers, &now);
    let limit = app.config().max_event_bytes;
    let mut drafts = Vec::with_capacity(batch.events.len());
    let mut problems = Vec::new();
    let chain_events: Vec<(usize, Value)> = batch
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| super::chains::is_chain_event(e))
        .map(|(i, e)| (i, e.clone()))
        .collect();
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
    let stored = append(&app, &drafts, &now).await?;
    let chain_events: Vec<(Value, String)> = chain_events
        .into_iter()
        .map(|(i, e)| (e, drafts[i].event_id.clone()))
        .collect();
    super::chains::apply_events(&app, &chain_events).await;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    after: Option<u64>,
    limit: Option<usize>,
    since: Option<String>,
}

#[derive(Deserialize)]
struct Received<'a> {
    #[serde(rename = "receivedAt", borrow)]
    received_at: Cow<'a, str>,
}

/// Whether a stored event was received at or after `cutoff`. Stored `receivedAt` values all
/// have the one fixed-width UTC format, so comparing the strings compares the instants.
fn received_since(event: &str, cutoff: &str) -> bool {
    serde_json::from_str::<Received<'_>>(event).is_ok_and(|r| *r.received_at >= *cutoff)
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

pub async fn read(
    State(app): State<AppState>,
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
    let (range, start, events) = match since {
        None => {
            let after = q.after.unwrap_or(0);
            let mut range = app
                .store()
                .read_events(&session_id, ReadFrom::After(after), limit)
                .await?;
            let start = range.start_after(after);
            let events = std::mem::take(&mut range.events);
            (range, start, events)
        }
        Some(cutoff) => read_since(&app, &session_id, &cutoff, limit).await?,
    };
    let count = events.len() as u64;
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
    Ok(json_response(StatusCode::OK, head, &events))
}

/// Events received at or after `cutoff`, scanning the stored stream page by page from its
/// oldest event. Returns the stream state and the seq of the first event returned.
async fn read_since(
    app: &AppState,
    session_id: &str,
    cutoff: &str,
    limit: usize,
) -> Result<(EventRange, u64, Vec<Arc<str>>), ApiError> {
    let mut after = 0;
    let mut found: Vec<Arc<str>> = Vec::new();
    let mut first_found = 0;
    loop {
        let range = app
            .store()
            .read_events(session_id, ReadFrom::After(after), MAX_READ_LIMIT)
            .await?;
        let start = range.start_after(after);
        let n = range.events.len() as u64;
        for (i, e) in range.events.iter().enumerate() {
            if found.len() == limit {
                break;
            }
            if !found.is_empty() || received_since(e, cutoff) {
                if found.is_empty() {
                    first_found = start + i as u64;
                }
                found.push(Arc::clone(e));
            }
        }
        let done = n == 0 || found.len() == limit || start + n > range.head_seq;
        if done {
            let first = if found.is_empty() {
                range.head_seq + 1
            } else {
                first_found
            };
            return Ok((
                EventRange {
                    events: Vec::new(),
                    ..range
                },
                first,
                found,
            ));
        }
        after = start + n - 1;
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentQuery {
    limit: Option<usize>,
    seconds: Option<u64>,
}

pub async fn recent(
    State(app): State<AppState>,
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
    let range = app
        .store()
        .read_events(&session_id, ReadFrom::Tail(limit), limit)
        .await?;
    let events: Vec<Arc<str>> = range
        .events
        .into_iter()
        .filter(|e| received_since(e, &cutoff))
        .collect();
    let head = json!({
        "sessionId": session_id,
        "count": events.len(),
        "cutoffTime": cutoff,
    });
    Ok(json_response(StatusCode::OK, head, &events))
}
