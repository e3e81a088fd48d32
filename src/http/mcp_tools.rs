//! The MCP endpoint's tools: each one's JSON schema, and the API call it is. A tool is a thin
//! mapping onto a route ([`Call`]), so it has that route's checks, roles, limits and answers.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{json, Map, Value};

/// A header an MCP client's configuration can set once: the session the tools act on when a
/// call names none.
pub const SESSION_HEADER: &str = "x-afw-session";

/// The longest a plain call of `ask_human` waits (seconds), below the 75 s a proxy in front
/// allows an idle request; a client of the Tasks extension waits as long as `timeoutSecs`.
pub const ASK_CALL_MAX_SECS: u64 = 60;

/// Every tool: name, description, input schema. `ask_max_secs` is `ask_human`'s longest
/// `timeoutSecs` (`MCP_TASK_MAX_SECS`).
pub fn tools(ask_max_secs: u64) -> Vec<(&'static str, &'static str, Value)> {
    let session = json!({"type": "string", "description": "The session; defaults to the X-Afw-Session header"});
    vec![
        (
            "report",
            "Store an event in the agent's session, as POST /api/events does: `type` and any other fields; with an `eventId` a retry stores nothing twice. Answers the event's seq.",
            json!({"type": "object", "properties": {
                "sessionId": session,
                "type": {"type": "string", "minLength": 1, "maxLength": 100},
                "eventId": {"type": "string", "minLength": 1, "maxLength": 200},
            }, "required": ["type"], "additionalProperties": true}),
        ),
        (
            "report_step",
            "Start or settle a step of the session's chain (a step:started, step:completed, step:failed or step:skipped event), with its result or error.",
            json!({"type": "object", "properties": {
                "sessionId": session,
                "stepNumber": {"type": "integer", "minimum": 1, "maximum": 1000},
                "status": {"type": "string", "enum": ["started", "completed", "failed", "skipped"]},
                "chainId": {"type": "string"},
                "title": {"type": "string"},
                "result": {},
                "error": {"type": "string"},
                "eventId": {"type": "string"},
            }, "required": ["stepNumber", "status"], "additionalProperties": false}),
        ),
        (
            "ask_human",
            "Ask the person watching the session a question (the dashboard shows it with the choices) and wait up to timeoutSecs for the answer. Answers {answered:true, input, inputs} or {answered:false} when none came in time: ask again. A client of MCP's Tasks extension gets a task, input_required until the answer comes from the dashboard or from the client's own elicitation; any other client waits in the call, 60 s at most.",
            json!({"type": "object", "properties": {
                "sessionId": session,
                "question": {"type": "string", "minLength": 1, "maxLength": 4096},
                "choices": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
                "timeoutSecs": {"type": "integer", "minimum": 1, "maximum": ask_max_secs},
            }, "required": ["question"], "additionalProperties": false}),
        ),
        (
            "next_command",
            "Wait up to waitSecs for the session's next commands (pause, resume, cancel, abort, retry, skip) and take them; acknowledge each with ack_command.",
            json!({"type": "object", "properties": {
                "sessionId": session,
                "waitSecs": {"type": "integer", "minimum": 0, "maximum": 60},
            }, "additionalProperties": false}),
        ),
        (
            "ack_command",
            "Acknowledge a command with its outcome: result, or error when it failed.",
            json!({"type": "object", "properties": {
                "commandId": {"type": "string"},
                "result": {},
                "error": {"type": "string"},
            }, "required": ["commandId"], "additionalProperties": false}),
        ),
        (
            "acquire_lock",
            "Take a named lock for ttlMs, waiting up to waitMs; answers the token (to release it) and the fencing token.",
            json!({"type": "object", "properties": {
                "name": {"type": "string"},
                "owner": {"type": "string"},
                "ttlMs": {"type": "integer", "minimum": 1},
                "waitMs": {"type": "integer", "minimum": 0},
            }, "required": ["name", "owner", "ttlMs"], "additionalProperties": false}),
        ),
        (
            "release_lock",
            "Release a lock held with this token.",
            json!({"type": "object", "properties": {
                "name": {"type": "string"},
                "token": {"type": "string"},
            }, "required": ["name", "token"], "additionalProperties": false}),
        ),
        (
            "enqueue_job",
            "Add a job to a queue (with a jobId it is added once).",
            json!({"type": "object", "properties": {
                "queue": {"type": "string"},
                "type": {"type": "string"},
                "data": {},
                "priority": {"type": "integer"},
                "delayMs": {"type": "integer", "minimum": 0},
                "maxAttempts": {"type": "integer", "minimum": 1},
                "jobId": {"type": "string"},
            }, "required": ["queue", "type"], "additionalProperties": false}),
        ),
        (
            "claim_job",
            "Lease the next jobs of a queue for workerId, waiting up to wait seconds for one.",
            json!({"type": "object", "properties": {
                "queue": {"type": "string"},
                "workerId": {"type": "string"},
                "max": {"type": "integer", "minimum": 1},
                "leaseMs": {"type": "integer", "minimum": 1},
                "wait": {"type": "number", "minimum": 0},
            }, "required": ["queue", "workerId"], "additionalProperties": false}),
        ),
        (
            "complete_job",
            "Complete a leased job with its result (token or workerId from the claim).",
            json!({"type": "object", "properties": {
                "queue": {"type": "string"},
                "jobId": {"type": "string"},
                "token": {"type": "string"},
                "workerId": {"type": "string"},
                "result": {},
            }, "required": ["queue", "jobId"], "additionalProperties": false}),
        ),
    ]
}

/// A route's answer as a tool result: its JSON, structured and as text; an error from 400 up.
pub fn result(status: u16, body: Value) -> CallToolResult {
    let content = vec![ContentBlock::text(body.to_string())];
    let mut r = if status < 400 {
        CallToolResult::success(content)
    } else {
        CallToolResult::error(content)
    };
    if body.is_object() {
        r.structured_content = Some(body);
    }
    r
}

/// An API call a tool makes.
#[derive(Debug, PartialEq)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

/// Why a tool's arguments cannot be a call (a JSON-RPC `invalid_params`).
pub type Refusal = String;

/// Percent-encodes one path segment.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn text<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, Refusal> {
    match args.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(format!("{name} must be a non-empty string")),
        None => Err(format!("{name} is required")),
    }
}

/// The session a call names, or the one the client's header set.
pub fn session(args: &Map<String, Value>, header: Option<&str>) -> Result<String, Refusal> {
    match args.get("sessionId") {
        Some(_) => text(args, "sessionId").map(str::to_string),
        None => header
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("sessionId is required (or the {SESSION_HEADER} header)")),
    }
}

/// Only these members, as the schema says (`additionalProperties: false`).
fn only(args: &Map<String, Value>, allowed: &[&str]) -> Result<(), Refusal> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown argument {k:?}")),
        None => Ok(()),
    }
}

/// The members of `args` named in `names`, as a body.
fn pick(args: &Map<String, Value>, names: &[&str]) -> Value {
    Value::Object(
        names
            .iter()
            .filter_map(|n| args.get(*n).map(|v| (n.to_string(), v.clone())))
            .collect(),
    )
}

fn uint(args: &Map<String, Value>, name: &str, max: u64, default: u64) -> Result<u64, Refusal> {
    match args.get(name) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("{name} must be an integer from 0 to {max}")),
    }
}

/// The call a tool (other than `ask_human`, which makes several) is.
pub fn call(name: &str, args: &Map<String, Value>, header: Option<&str>) -> Result<Call, Refusal> {
    let post = |path: String, body: Value| Call {
        method: "POST",
        path,
        body: Some(body),
    };
    match name {
        "report" => {
            let mut body = args.clone();
            body.insert("sessionId".into(), session(args, header)?.into());
            Ok(post("/api/events".into(), Value::Object(body)))
        }
        "report_step" => {
            only(
                args,
                &[
                    "sessionId",
                    "stepNumber",
                    "status",
                    "chainId",
                    "title",
                    "result",
                    "error",
                    "eventId",
                ],
            )?;
            let status = text(args, "status")?;
            if !["started", "completed", "failed", "skipped"].contains(&status) {
                return Err("status must be started, completed, failed or skipped".into());
            }
            let mut body = pick(
                args,
                &[
                    "stepNumber",
                    "chainId",
                    "title",
                    "result",
                    "error",
                    "eventId",
                ],
            );
            body["sessionId"] = session(args, header)?.into();
            body["type"] = format!("step:{status}").into();
            Ok(post("/api/events".into(), body))
        }
        "next_command" => {
            only(args, &["sessionId", "waitSecs"])?;
            let wait = uint(args, "waitSecs", 60, 0)?;
            let sid = segment(&session(args, header)?);
            Ok(Call {
                method: "GET",
                path: format!("/api/sessions/{sid}/commands?wait={wait}&consume=true"),
                body: None,
            })
        }
        "ack_command" => {
            only(args, &["commandId", "result", "error"])?;
            let id = segment(text(args, "commandId")?);
            Ok(post(
                format!("/api/commands/{id}/ack"),
                pick(args, &["result", "error"]),
            ))
        }
        "acquire_lock" => {
            only(args, &["name", "owner", "ttlMs", "waitMs"])?;
            let lock = segment(text(args, "name")?);
            Ok(post(
                format!("/api/locks/{lock}"),
                pick(args, &["owner", "ttlMs", "waitMs"]),
            ))
        }
        "release_lock" => {
            only(args, &["name", "token"])?;
            let lock = segment(text(args, "name")?);
            let token = segment(text(args, "token")?);
            Ok(Call {
                method: "DELETE",
                path: format!("/api/locks/{lock}?token={token}"),
                body: None,
            })
        }
        "enqueue_job" => {
            only(
                args,
                &[
                    "queue",
                    "type",
                    "data",
                    "priority",
                    "delayMs",
                    "maxAttempts",
                    "jobId",
                ],
            )?;
            let q = segment(text(args, "queue")?);
            let body = pick(
                args,
                &[
                    "type",
                    "data",
                    "priority",
                    "delayMs",
                    "maxAttempts",
                    "jobId",
                ],
            );
            Ok(post(format!("/api/queues/{q}/jobs"), body))
        }
        "claim_job" => {
            only(args, &["queue", "workerId", "max", "leaseMs", "wait"])?;
            let q = segment(text(args, "queue")?);
            let body = pick(args, &["workerId", "max", "leaseMs", "wait"]);
            Ok(post(format!("/api/queues/{q}/claim"), body))
        }
        "complete_job" => {
            only(args, &["queue", "jobId", "token", "workerId", "result"])?;
            let q = segment(text(args, "queue")?);
            let id = segment(text(args, "jobId")?);
            let body = pick(args, &["token", "workerId", "result"]);
            Ok(post(format!("/api/queues/{q}/jobs/{id}/complete"), body))
        }
        other => Err(format!("no tool named {other:?}")),
    }
}

/// `ask_human`'s arguments checked: the session, the `awaiting` body, and how long to wait
/// (`timeoutSecs`, from 1 to `max_secs`; a plain call waits [`ASK_CALL_MAX_SECS`] at most).
pub fn ask(
    args: &Map<String, Value>,
    header: Option<&str>,
    max_secs: u64,
) -> Result<(String, Value, u64), Refusal> {
    only(args, &["sessionId", "question", "choices", "timeoutSecs"])?;
    let question = text(args, "question")?;
    let mut body = json!({"promptType": "question", "promptText": question});
    if let Some(choices) = args.get("choices") {
        body["quickResponses"] = choices.clone();
    }
    let secs = uint(
        args,
        "timeoutSecs",
        max_secs,
        ASK_CALL_MAX_SECS.min(max_secs),
    )?
    .max(1);
    Ok((session(args, header)?, body, secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn tools_are_calls_of_the_api() {
        let c = call("report", &args(json!({"type": "t", "x": 1})), Some("s1")).unwrap();
        assert_eq!(c.path, "/api/events");
        assert_eq!(
            c.body.unwrap(),
            json!({"type": "t", "x": 1, "sessionId": "s1"})
        );
        let c = call(
            "release_lock",
            &args(json!({"name": "a b", "token": "t/1"})),
            None,
        )
        .unwrap();
        assert_eq!(
            (c.method, c.path.as_str()),
            ("DELETE", "/api/locks/a%20b?token=t%2F1")
        );
        let c = call(
            "report_step",
            &args(
                json!({"sessionId": "s", "stepNumber": 2, "status": "completed", "result": "ok"}),
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            c.body.unwrap(),
            json!({"sessionId": "s", "type": "step:completed", "stepNumber": 2, "result": "ok"})
        );
        assert!(call("report", &args(json!({"type": "t"})), None)
            .unwrap_err()
            .contains("sessionId"));
        assert!(call(
            "next_command",
            &args(json!({"sessionId": "s", "waitSecs": 61})),
            None
        )
        .is_err());
        assert!(call(
            "claim_job",
            &args(json!({"queue": "q", "workerId": "w", "x": 1})),
            None
        )
        .unwrap_err()
        .contains("\"x\""));
        assert!(call("nope", &Map::new(), None).is_err());
        let (sid, body, secs) = ask(
            &args(json!({"question": "ok?", "choices": ["yes"]})),
            Some("h"),
            600,
        )
        .unwrap();
        assert_eq!((sid.as_str(), secs), ("h", ASK_CALL_MAX_SECS));
        assert_eq!(body["quickResponses"], json!(["yes"]));
        let long = args(json!({"question": "q", "timeoutSecs": 600}));
        assert_eq!(ask(&long, Some("h"), 600).unwrap().2, 600);
        assert!(ask(&long, Some("h"), 599).is_err());
        assert_eq!(tools(600).len(), 10);
    }
}
