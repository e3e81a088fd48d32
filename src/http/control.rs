//! The agent control loop over HTTP: commands (posted by people, polled and acknowledged by
//! the agent) and input (answers for an agent that waits). The queueing, long polls and
//! acknowledgements are [`crate::service::control`]; these parse and answer.

use super::tenant::Scoped;

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{session_path_id, ApiJson, ApiPath, ApiQuery};
use super::waits::Waiter;
use crate::domain::control::{CommandAck, ControlQueue, NewCommand, NewInput, MAX_WAIT_SECS};
use crate::domain::FieldProblem;
use crate::service::control::{raw_items, Control};

/// `?wait=<seconds>` or `?timeout=<ms>`, and `?consume=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    wait: Option<String>,
    timeout: Option<String>,
    consume: Option<String>,
}

impl PollQuery {
    /// Whether the poll takes what it reads; `None` when `consume` is not a boolean.
    fn consume(&self, default: bool) -> Option<bool> {
        match self.consume.as_deref() {
            None => Some(default),
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(_) => None,
        }
    }

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
        let consume = self.consume(consume_default).unwrap_or_else(|| {
            problems.push(FieldProblem::new("consume", "must be true or false"));
            false
        });
        if problems.is_empty() {
            Ok((wait, consume))
        } else {
            Err(ApiError::validation(problems))
        }
    }
}

/// Whether a poll of `queue` with this query string takes what it reads (so needs the agent
/// role although it is a GET): read as the handlers read it, and when it does not parse, as
/// a take (the handler answers it 400 anyway).
pub fn poll_takes(queue: ControlQueue, query: Option<&str>) -> bool {
    serde_urlencoded::from_str::<PollQuery>(query.unwrap_or(""))
        .ok()
        .and_then(|q| q.consume(queue.poll_consumes_by_default()))
        .unwrap_or(true)
}

#[utoipa::path(post, path = "/api/sessions/{id}/commands", tag = "control", operation_id = "createCommand", params(("id" = String, Path, description = "The session id")), request_body = NewCommand, responses((status = 201, description = "`{success, sessionId, commandId, command}`", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn create_command(
    Scoped(control): Scoped<Control>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewCommand>,
) -> Result<Response, ApiError> {
    let record = control.push_command(&id, body).await?;
    let command_id = record["commandId"].clone();
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "sessionId": id, "commandId": command_id, "command": record})),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/sessions/{id}/commands", tag = "control", operation_id = "listCommands", params(("id" = String, Path, description = "The session id"), PollQuery), responses((status = 200, description = "The pending commands (taken with `consume=true`; `wait` long-polls)", body = Object), super::openapi::Errors))]
pub async fn list_commands(
    Scoped(control): Scoped<Control>,
    waiter: Waiter,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PollQuery>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    let (wait, consume) = q.parse(ControlQueue::Commands.poll_consumes_by_default())?;
    let _slot = waiter.park(!wait.is_zero())?;
    let items = control
        .poll(ControlQueue::Commands, &id, wait, consume)
        .await?;
    Ok(
        Json(json!({"sessionId": id, "count": items.len(), "commands": raw_items(&items)?}))
            .into_response(),
    )
}

#[utoipa::path(post, path = "/api/commands/{command_id}/ack", tag = "control", operation_id = "ackCommand", params(("command_id" = String, Path, description = "The command id")), request_body = CommandAck, responses((status = 200, description = "The acknowledgement, stored once", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn ack_command(
    Scoped(control): Scoped<Control>,
    ApiPath(command_id): ApiPath<String>,
    ApiJson(body): ApiJson<CommandAck>,
) -> Result<Response, ApiError> {
    control.ack_command(None, &command_id, body).await?;
    Ok(acknowledged(&command_id))
}

#[utoipa::path(post, path = "/api/sessions/{id}/commands/{command_id}/ack", tag = "control", operation_id = "ackSessionCommand", params(("id" = String, Path, description = "The session id"), ("command_id" = String, Path, description = "The command id")), request_body = CommandAck, responses((status = 200, description = "The acknowledgement, stored once", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn ack_session_command(
    Scoped(control): Scoped<Control>,
    ApiPath((id, command_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CommandAck>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    control.ack_command(Some(&id), &command_id, body).await?;
    Ok(acknowledged(&command_id))
}

fn acknowledged(command_id: &str) -> Response {
    Json(json!({"success": true, "commandId": command_id, "acknowledged": true})).into_response()
}

#[utoipa::path(post, path = "/api/sessions/{id}/input", tag = "control", operation_id = "createInput", params(("id" = String, Path, description = "The session id")), request_body = NewInput, responses((status = 201, description = "`{success, sessionId, inputId}`", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn create_input(
    Scoped(control): Scoped<Control>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewInput>,
) -> Result<Response, ApiError> {
    let item = control.push_input(&id, body, "api").await?;
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

#[utoipa::path(get, path = "/api/sessions/{id}/input", tag = "control", operation_id = "takeInput", params(("id" = String, Path, description = "The session id"), PollQuery), responses((status = 200, description = "The queued input, taken (`consume=false` only reads; `wait` long-polls)", body = Object), super::openapi::Errors))]
pub async fn take_input(
    Scoped(control): Scoped<Control>,
    waiter: Waiter,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PollQuery>,
) -> Result<Response, ApiError> {
    session_path_id(&id)?;
    let (wait, consume) = q.parse(ControlQueue::Input.poll_consumes_by_default())?;
    let _slot = waiter.park(!wait.is_zero())?;
    let items = control
        .poll(ControlQueue::Input, &id, wait, consume)
        .await?;
    let inputs = raw_items(&items)?;
    Ok(Json(json!({
        "sessionId": id,
        "available": !inputs.is_empty(),
        "count": inputs.len(),
        "input": inputs.first(),
        "inputs": inputs,
    }))
    .into_response())
}

#[utoipa::path(post, path = "/api/sessions/{id}/input/{input_id}/ack", tag = "control", operation_id = "ackInput", params(("id" = String, Path, description = "The session id"), ("input_id" = String, Path, description = "The input item id")), responses((status = 200, description = "The item is removed from the queue", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn ack_input(
    Scoped(control): Scoped<Control>,
    ApiPath((id, input_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    control.ack_input(&id, &input_id).await?;
    Ok(Json(json!({"success": true, "inputId": input_id, "acknowledged": true})).into_response())
}
