//! `ask_human` as an MCP task, for clients of the Tasks extension
//! (`io.modelcontextprotocol/tasks`, SEP-2663): the call answers at once with a task,
//! `input_required` until the question is answered, and the client follows it with
//! `tasks/get` on any instance. The task is a record in the tenant's store (the cache, in a
//! namespace the HTTP API cannot name), never in an instance's memory, so every instance
//! answers for every task and a restart loses none.
//!
//! Two people can answer. The one watching the session answers in the dashboard (or any
//! `POST /api/sessions/:id/input`), which puts the answer in the session's input queue: the
//! next `tasks/get` takes it from there and settles the task. Meanwhile `tasks/get` shows the
//! question as an `elicitation/create` input request, so a client with someone to ask asks
//! them and answers with `tasks/update`: an `accept` goes into the same input queue (the
//! dashboard sees the answer as if typed there), a `decline` settles the task unanswered, a
//! `cancel` leaves the question to the dashboard.

use std::future::Future;
use std::sync::Arc;

use axum::http::request::Parts;
use rmcp::model::{
    CallToolResponse, CallToolResult, CreateTaskResult, DetailedTask, GetTaskResult, InputRequest,
    InputRequests, InputResponses, Task, TaskPayload, TaskStatus,
};
use rmcp::ErrorData as McpError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::mcp_tools::{result, segment, Call};
use crate::credentials::Principal;
use crate::domain::cache::Put;
use crate::store::cache::CacheStore;
use crate::time::{iso_ms, now_ms};

/// The cache namespace of the task records. Its control character is one no name the HTTP API
/// takes may have, so only this endpoint reads and writes it.
pub const NAMESPACE: &str = "\u{1}mcp-tasks";
/// The key of the one input request a task makes.
const ANSWER_KEY: &str = "answer";
/// How often a client is asked to poll (`pollIntervalMs`).
const POLL_MS: u64 = 1_000;

/// What the task code needs of the endpoint: a route called as the request's caller, the
/// store of the caller's tenant, and the settings.
pub trait Api: Sync {
    fn call(&self, parts: &Parts, call: Call) -> impl Future<Output = (u16, Value)> + Send;
    fn records(&self, parts: &Parts) -> Arc<dyn CacheStore>;
    /// `MCP_TASK_KEEP_SECS` in milliseconds.
    fn keep_ms(&self) -> u64;
}

/// A task as stored.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Record {
    /// The credential's subject that made the task; only it reads or changes the task.
    subject: String,
    session_id: String,
    question: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    choices: Vec<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
    deadline_ms: i64,
    ttl_ms: u64,
    state: State,
    /// The tool result (`CallToolResult`) once settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum State {
    InputRequired,
    Completed,
    Cancelled,
}

fn subject(parts: &Parts) -> String {
    parts
        .extensions
        .get::<Arc<Principal>>()
        .map(|p| p.subject.to_string())
        .unwrap_or_default()
}

fn store_failed(e: impl std::fmt::Display) -> McpError {
    McpError::internal_error(format!("the store failed: {e}"), None)
}

fn no_task(id: &str) -> McpError {
    McpError::invalid_params(format!("no task {id:?}"), None)
}

/// Creates the task of a question already put to the session.
pub async fn create(
    api: &impl Api,
    parts: &Parts,
    (session, question, secs): (String, Value, u64),
) -> Result<CallToolResponse, McpError> {
    let now = now_ms();
    let ttl_ms = secs * 1000 + api.keep_ms();
    let record = Record {
        subject: subject(parts),
        session_id: session,
        question: question["promptText"].as_str().unwrap_or_default().into(),
        choices: serde_json::from_value(question["quickResponses"].clone()).unwrap_or_default(),
        created_at_ms: now,
        updated_at_ms: now,
        deadline_ms: now + (secs * 1000) as i64,
        ttl_ms,
        state: State::InputRequired,
        result: None,
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let put = api
        .records(parts)
        .cache_put(
            NAMESPACE,
            &id,
            &json!(record).to_string(),
            ttl_ms,
            &[],
            Some(0),
        )
        .await
        .map_err(store_failed)?;
    if !matches!(put, Put::Stored { .. }) {
        return Err(McpError::internal_error("the task id is taken", None));
    }
    Ok(CallToolResponse::Task(CreateTaskResult::new(task(
        &id, &record,
    ))))
}

fn task(id: &str, r: &Record) -> Task {
    let status = match r.state {
        State::InputRequired => TaskStatus::InputRequired,
        State::Completed => TaskStatus::Completed,
        State::Cancelled => TaskStatus::Cancelled,
    };
    let mut t = Task::new(
        id,
        status,
        iso_ms(r.created_at_ms).as_str().unwrap_or_default(),
        iso_ms(r.updated_at_ms).as_str().unwrap_or_default(),
    )
    .with_ttl_ms(r.ttl_ms);
    if r.state == State::InputRequired {
        t = t
            .with_poll_interval_ms(POLL_MS)
            .with_status_message("waiting for an answer in the dashboard or from the client");
    }
    t
}

/// The question as the elicitation a client can put to its user.
fn elicitation(r: &Record) -> Result<InputRequests, McpError> {
    let mut answer = json!({"type": "string", "title": "Answer"});
    if !r.choices.is_empty() {
        answer["enum"] = json!(r.choices);
    }
    let request = json!({"method": "elicitation/create", "params": {
        "mode": "form",
        "message": r.question,
        "requestedSchema": {"type": "object", "properties": {ANSWER_KEY: answer}, "required": [ANSWER_KEY]},
    }});
    let request: InputRequest = serde_json::from_value(request)
        .map_err(|e| McpError::internal_error(format!("the elicitation: {e}"), None))?;
    Ok([(ANSWER_KEY.to_string(), request)].into())
}

/// The caller's task and its version.
async fn load(api: &impl Api, parts: &Parts, id: &str) -> Result<(Record, u64), McpError> {
    let entry = api
        .records(parts)
        .cache_get(NAMESPACE, id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| no_task(id))?;
    let record: Record = serde_json::from_str(&entry.value).map_err(store_failed)?;
    if record.subject != subject(parts) {
        return Err(no_task(id));
    }
    Ok((record, entry.version))
}

/// Settles the task with `result` unless another request settled it first; the task as it is.
async fn settle(
    api: &impl Api,
    parts: &Parts,
    id: &str,
    (mut record, version): (Record, u64),
    state: State,
    result: Option<Value>,
) -> Result<Record, McpError> {
    let now = now_ms();
    record.state = state;
    record.result = result;
    record.updated_at_ms = now;
    let left = (record.created_at_ms + record.ttl_ms as i64 - now).max(1) as u64;
    let store = api.records(parts);
    let put = store
        .cache_put(
            NAMESPACE,
            id,
            &json!(record).to_string(),
            left,
            &[],
            Some(version),
        )
        .await
        .map_err(store_failed)?;
    match put {
        Put::Stored { .. } => Ok(record),
        Put::VersionMismatch(_) => Ok(load(api, parts, id).await?.0),
    }
}

fn tool_result(status: u16, body: Value) -> Value {
    let r: CallToolResult = result(status, body);
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// Takes the session's question back from the dashboard (the task no longer waits on it).
async fn withdraw(api: &impl Api, parts: &Parts, r: &Record) {
    let call = Call {
        method: "PATCH",
        path: format!("/api/sessions/{}", segment(&r.session_id)),
        body: Some(json!({"conversationState": "idle"})),
    };
    api.call(parts, call).await;
}

/// The result a waiting task settles with now, if any: its answer taken from the session's
/// input queue, the route's error, or unanswered when its time ran out.
async fn outcome(api: &impl Api, parts: &Parts, r: &Record) -> Option<Value> {
    if r.state != State::InputRequired {
        return None;
    }
    let sid = &r.session_id;
    let take = Call {
        method: "GET",
        path: format!("/api/sessions/{}/input?timeout=0", segment(sid)),
        body: None,
    };
    let (s, v) = api.call(parts, take).await;
    if s >= 400 {
        return Some(tool_result(s, v));
    }
    if v["count"].as_u64().unwrap_or(0) > 0 {
        let answer =
            json!({"answered": true, "sessionId": sid, "input": v["input"], "inputs": v["inputs"]});
        return Some(tool_result(200, answer));
    }
    if now_ms() >= r.deadline_ms {
        withdraw(api, parts, r).await;
        return Some(tool_result(
            200,
            json!({"answered": false, "sessionId": sid}),
        ));
    }
    None
}

/// `tasks/get`: the task, settled first if its answer came or its time ran out.
pub async fn get(api: &impl Api, parts: &Parts, id: &str) -> Result<GetTaskResult, McpError> {
    let (record, version) = load(api, parts, id).await?;
    let record = match outcome(api, parts, &record).await {
        Some(result) => {
            let settled = (record, version);
            settle(api, parts, id, settled, State::Completed, Some(result)).await?
        }
        None => record,
    };
    let payload = match record.state {
        State::InputRequired => TaskPayload::InputRequired {
            input_requests: elicitation(&record)?,
        },
        State::Completed => TaskPayload::Completed {
            result: match record.result.clone() {
                Some(Value::Object(m)) => m,
                _ => Default::default(),
            },
        },
        State::Cancelled => TaskPayload::Cancelled,
    };
    Ok(GetTaskResult::new(DetailedTask::new(
        task(id, &record),
        payload,
    )))
}

/// `tasks/update`: the client's answer to the elicitation.
pub async fn update(
    api: &impl Api,
    parts: &Parts,
    id: &str,
    responses: InputResponses,
) -> Result<(), McpError> {
    let (record, version) = load(api, parts, id).await?;
    if record.state != State::InputRequired {
        return Err(McpError::invalid_params(
            "the task is settled: it takes no more input",
            None,
        ));
    }
    if let Some(k) = responses.keys().find(|k| *k != ANSWER_KEY) {
        return Err(McpError::invalid_params(
            format!("no input request {k:?} is outstanding"),
            None,
        ));
    }
    let Some(response) = responses.get(ANSWER_KEY) else {
        return Ok(());
    };
    match response["action"].as_str() {
        Some("accept") => {
            let answer = &response["content"][ANSWER_KEY];
            if answer.is_null() {
                return Err(McpError::invalid_params(
                    "an accepted answer needs content.answer",
                    None,
                ));
            }
            let post = Call {
                method: "POST",
                path: format!("/api/sessions/{}/input", segment(&record.session_id)),
                body: Some(json!({"input": answer})),
            };
            let (s, v) = api.call(parts, post).await;
            if s >= 400 {
                return Err(McpError::invalid_params(
                    format!("the answer was not taken: {v}"),
                    Some(v),
                ));
            }
            Ok(())
        }
        Some("decline") => {
            withdraw(api, parts, &record).await;
            let sid = record.session_id.clone();
            let result = tool_result(
                200,
                json!({"answered": false, "declined": true, "sessionId": sid}),
            );
            settle(
                api,
                parts,
                id,
                (record, version),
                State::Completed,
                Some(result),
            )
            .await?;
            Ok(())
        }
        // The client has no answer: the question stays with the dashboard.
        Some("cancel") => Ok(()),
        _ => Err(McpError::invalid_params(
            "action must be accept, decline or cancel",
            None,
        )),
    }
}

/// `tasks/cancel`: the task ends unanswered and the dashboard no longer shows its question.
pub async fn cancel(api: &impl Api, parts: &Parts, id: &str) -> Result<(), McpError> {
    let (record, version) = load(api, parts, id).await?;
    if record.state != State::InputRequired {
        return Err(McpError::invalid_params(
            "the task is settled: it cannot be cancelled",
            None,
        ));
    }
    withdraw(api, parts, &record).await;
    settle(api, parts, id, (record, version), State::Cancelled, None).await?;
    Ok(())
}
