//! The agent control loop over HTTP: commands (posted by people, polled and acknowledged by
//! the agent) and input (answers for an agent that waits). Both polls can long-poll: they
//! register with the instance's waiters *before* reading, and the bus wakes them when an item
//! is queued on any instance.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::events::store_event;
use super::extract::{session_path_id, ApiJson, ApiPath, ApiQuery};
use super::sessions::require_session;
use crate::app::AppState;
use crate::control::{self, CommandAck, NewCommand, NewInput, Queue, MAX_WAIT_SECS};
use crate::error::{ApiError, FieldProblem, StoreError};
use crate::store::Now;

/// `?wait=<seconds>` or `?timeout=<ms>`, and `?consume=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    wait: Option<String>,
    timeout: Option<String>,
    consume: Option<String>,
}

impl PollQuery {
    /// How long to wait, and whether to consume (`consume_default` when not given).
    fn parse(&self, consume_default: bool) -> Result<(Duration, bool), ApiError> {
        let mut problems = Vec::new();
        let wait = match (&self.wait, &self.timeout) {
            (Some(_), Some(_)) => {
                problems.push(FieldProblem::new("wait", "give wait or timeout, not both"));
                Duration::ZERO
            }
            (Some(w), None) => match w.parse::<f64>() {
                Ok(s) if (0.0..=MAX_WAIT_SECS).contains(&s) => Duration::from_secs_f64(s),
                _ => {
                    problems.push(FieldProblem::new(
                        "wait",
                        format!("must be a number of seconds from 0 to {MAX_WAIT_SECS}"),
                    ));
                    Duration::ZERO
                }
            },
            (None, Some(t)) => match t.parse::<u64>() {
                Ok(ms) if ms as f64 <= MAX_WAIT_SECS * 1000.0 => Duration::from_millis(ms),
                _ => {
                    problems.push(FieldProblem::new(
                        "timeout",
                        "must be whole milliseconds from 0 to 60000",
                    ));
                    Duration::ZERO
                }
            },
            (None, None) => Duration::ZERO,
        };
        let consume = match self.consume.as_deref() {
            None => consume_default,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(_) => {
                problems.push(FieldProblem::new("consume", "must be true or false"));
                false
            }
        };
        if problems.is_empty() {
            Ok((wait, consume))
        } else {
            Err(ApiError::validation(problems))
        }
    }
}

/// Reads with `read` until it returns something or `wait` runs out. Registers before each
/// read, so an item queued between the read and the wait still wakes it. Ends early (empty)
/// when the instance shuts down; dropping the future (the client went away) unregisters.
async fn long_poll<F, Fut>(
    app: &AppState,
    session_id: &str,
    queue: Queue,
    wait: Duration,
    mut read: F,
) -> Result<Vec<Arc<str>>, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<Arc<str>>, StoreError>>,
{
    if wait.is_zero() {
        return read().await;
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let waiting = app.hub().waiters().register(session_id, queue);
        let notified = waiting.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let items = read().await?;
        if !items.is_empty() {
            return Ok(items);
        }
        tokio::select! {
            _ = notified => continue,
            _ = tokio::time::sleep_until(deadline) => return Ok(items),
            _ = app.shutdown_token().cancelled() => return Ok(items),
        }
    }
}

/// Stored items as they are (not re-encoded). An item that is not JSON is an error, never
/// silently left out: with take-all it has already left the queue.
fn raw_list(items: &[Arc<str>]) -> Result<Vec<Box<RawValue>>, ApiError> {
    items
        .iter()
        .map(|s| {
            RawValue::from_string(s.to_string())
                .map_err(|e| StoreError::Corrupt(format!("queued item: {e}")).into())
        })
        .collect()
}

/// An ISO time `ttl` from now.
fn expires_at(ttl: Duration) -> String {
    let later = chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    crate::time::format(later)
}

pub async fn create_command(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewCommand>,
) -> Result<Response, ApiError> {
    require_session(&app, &id).await?;
    let ttl = Duration::from_secs(app.config().queue_ttl_secs);
    let command_id = uuid::Uuid::now_v7().to_string();
    let now = Now::get();
    let record = control::command_record(body, &id, &command_id, &now.iso, &expires_at(ttl))
        .map_err(ApiError::validation)?;
    app.store()
        .push_command(&id, &command_id, &record.to_string(), ttl)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "sessionId": id, "commandId": command_id, "command": record})),
    )
        .into_response())
}

pub async fn list_commands(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PollQuery>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    let (wait, consume) = q.parse(false)?;
    let store = app.store();
    let items = long_poll(&app, &id, Queue::Commands, wait, || {
        store.pending_commands(&id, consume)
    })
    .await?;
    Ok(
        Json(json!({"sessionId": id, "count": items.len(), "commands": raw_list(&items)?}))
            .into_response(),
    )
}

pub async fn ack_command(
    State(app): State<AppState>,
    ApiPath(command_id): ApiPath<String>,
    ApiJson(body): ApiJson<CommandAck>,
) -> Result<Response, ApiError> {
    acknowledge(&app, None, &command_id, body).await
}

pub async fn ack_session_command(
    State(app): State<AppState>,
    ApiPath((id, command_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CommandAck>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    acknowledge(&app, Some(&id), &command_id, body).await
}

async fn acknowledge(
    app: &AppState,
    session_id: Option<&str>,
    command_id: &str,
    ack: CommandAck,
) -> Result<Response, ApiError> {
    if command_id.is_empty() || command_id.len() > 200 {
        return Err(ApiError::not_found("command"));
    }
    let now = Now::get();
    let succeeded = ack.succeeded();
    let outcome = json!({"result": ack.result, "error": ack.error, "acknowledgedAt": now.iso});
    let Some(acked) = app
        .store()
        .ack_command(command_id, session_id, &outcome.to_string())
        .await?
    else {
        return Err(ApiError::not_found("command"));
    };
    if acked.first {
        let record: Value = serde_json::from_str(&acked.record).unwrap_or_default();
        let mut event = json!({
            "sessionId": acked.session_id,
            "type": "command:acknowledged",
            "commandId": command_id,
            "commandType": record["command"]["type"],
            "success": succeeded,
        });
        if let Some(r) = ack.result {
            event["result"] = r;
        }
        if let Some(e) = ack.error {
            event["error"] = e;
        }
        store_event(app, event, &now).await?;
        if succeeded {
            if let Err(e) = app.chains().apply_command(&acked.session_id, &record).await {
                app.metrics().chain_update_failures.inc();
                tracing::warn!(session = %acked.session_id, error = %e, "could not move chains for a command");
            }
        }
    }
    Ok(
        Json(json!({"success": true, "commandId": command_id, "acknowledged": true}))
            .into_response(),
    )
}

/// Queues input for a session; used by HTTP and by the WebSocket `input` message.
pub async fn queue_input(
    app: &AppState,
    session_id: &str,
    body: NewInput,
    source: &str,
) -> Result<Value, ApiError> {
    require_session(app, session_id).await?;
    let ttl = Duration::from_secs(app.config().queue_ttl_secs);
    let input_id = uuid::Uuid::now_v7().to_string();
    let now = Now::get();
    let item = control::input_item(body, &input_id, source, &now.iso, &expires_at(ttl))
        .map_err(ApiError::validation)?;
    app.store()
        .push_input(session_id, &input_id, &item.to_string(), ttl)
        .await?;
    Ok(item)
}

pub async fn create_input(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewInput>,
) -> Result<Response, ApiError> {
    let item = queue_input(&app, &id, body, "api").await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "success": true,
            "sessionId": id,
            "inputId": item["inputId"],
            "inputQueued": item,
        })),
    )
        .into_response())
}

pub async fn take_input(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PollQuery>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    let (wait, consume) = q.parse(true)?;
    let store = app.store();
    let items = long_poll(&app, &id, Queue::Input, wait, || {
        store.take_input(&id, consume)
    })
    .await?;
    let inputs = raw_list(&items)?;
    Ok(Json(json!({
        "sessionId": id,
        "available": !inputs.is_empty(),
        "count": inputs.len(),
        "input": inputs.first(),
        "inputs": inputs,
    }))
    .into_response())
}

pub async fn ack_input(
    State(app): State<AppState>,
    ApiPath((id, input_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    if !app.store().ack_input(&id, &input_id).await? {
        return Err(ApiError::not_found("input"));
    }
    Ok(Json(json!({"success": true, "inputId": input_id, "acknowledged": true})).into_response())
}
