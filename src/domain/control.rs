//! The agent control loop's data: commands (people steer an agent) and input (answers for an
//! agent that waits). Validation and the stored JSON shapes live here; the queues themselves
//! are in the stores, where every read-modify-write is one atomic step.

use serde::Deserialize;
use serde_json::{json, Value};

use super::FieldProblem;

/// Command types of the contract.
pub const COMMAND_TYPES: [&str; 6] = ["pause", "resume", "cancel", "abort", "retry", "skip"];
pub const MAX_REASON_CHARS: usize = 2000;
pub const MAX_PROMPT_CHARS: usize = 10_000;
/// Longest long poll (`wait` seconds, or `timeout` milliseconds).
pub const MAX_WAIT_SECS: f64 = 60.0;

/// A session's queues. Both are one queue implementation; they differ only in this policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ControlQueue {
    /// People steer the agent; the agent polls and acknowledges.
    Commands,
    /// Answers for an agent that waits.
    Input,
}

impl ControlQueue {
    /// The queue's name in keys and on the control channel.
    pub fn name(self) -> &'static str {
        match self {
            ControlQueue::Commands => "commands",
            ControlQueue::Input => "input",
        }
    }

    /// Whether an item a poll took (or an acknowledgement removed) stays readable until it
    /// expires: a command can be acknowledged after a consuming poll, and a repeated
    /// acknowledgement is answered as such; taking input is receiving it, so it is gone.
    pub fn keeps_taken(self) -> bool {
        matches!(self, ControlQueue::Commands)
    }

    /// Whether a poll takes what it reads when it does not say (`consume`): taking input is
    /// receiving it; commands are read until acknowledged.
    pub fn poll_consumes_by_default(self) -> bool {
        matches!(self, ControlQueue::Input)
    }

    /// The name used on the control channel (`{"kind":"wake","queue":"input"}`).
    pub fn parse(s: &str) -> Option<ControlQueue> {
        match s {
            "commands" => Some(ControlQueue::Commands),
            "input" => Some(ControlQueue::Input),
            _ => None,
        }
    }
}

/// A command as posted.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewCommand {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub step_number: Option<Value>,
    pub reason: Option<Value>,
    pub payload: Option<Value>,
}

/// Checks a posted command and builds its stored record (the contract's CommandPayload, plus
/// `expiresAt`), or says every way it is wrong.
pub fn command_record(
    c: NewCommand,
    session_id: &str,
    command_id: &str,
    issued_at: &str,
    expires_at: &str,
) -> Result<Value, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    // The ActionFlows dashboard sends `{type, payload:{stepNumber, reason}}`: the payload's
    // are taken when the top level has none.
    let from_payload = |name: &str| {
        c.payload
            .as_ref()
            .and_then(|p| p.get(name))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let step_number = c.step_number.clone().or_else(|| from_payload("stepNumber"));
    let reason_given = c.reason.clone().or_else(|| from_payload("reason"));
    let kind = match c.kind.as_deref() {
        Some(k) if COMMAND_TYPES.contains(&k) => k,
        Some(_) => {
            problems.push(FieldProblem::new(
                "type",
                format!("must be one of {}", COMMAND_TYPES.join(", ")),
            ));
            ""
        }
        None => {
            problems.push(FieldProblem::new("type", "is required"));
            ""
        }
    };
    let step = match &step_number {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => {
                problems.push(FieldProblem::new(
                    "stepNumber",
                    "must be an integer of at least 1",
                ));
                None
            }
        },
    };
    if matches!(kind, "retry" | "skip") && step.is_none() && step_number.is_none() {
        problems.push(FieldProblem::new(
            "stepNumber",
            format!("is required for {kind}"),
        ));
    }
    let reason = match &reason_given {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_REASON_CHARS => Some(s.clone()),
        Some(Value::String(_)) => {
            problems.push(FieldProblem::new(
                "reason",
                format!("must be at most {MAX_REASON_CHARS} characters"),
            ));
            None
        }
        Some(_) => {
            problems.push(FieldProblem::new("reason", "must be a string"));
            None
        }
    };
    if kind == "abort" && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        problems.push(FieldProblem::new("reason", "is required for abort"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut command = json!({ "type": kind });
    if let Some(n) = step {
        command["stepNumber"] = n.into();
    }
    if let Some(r) = reason {
        command["reason"] = r.into();
    }
    // What the command acts on, for clients that read it flat (`payload`, `target`).
    let mut target = json!({});
    if let Some(n) = step {
        target["stepNumber"] = n.into();
    }
    if let Some(r) = command.get("reason") {
        target["reason"] = r.clone();
    }
    let payload = c.payload.clone().unwrap_or(target.clone());
    if let Some(p) = c.payload {
        command["payload"] = p;
    }
    // `id`, `type`, `payload` and `target` repeat the contract's fields flat, as the
    // ActionFlows hooks and MCP server read them.
    Ok(json!({
        "commandId": command_id,
        "id": command_id,
        "type": kind,
        "command": command,
        "payload": payload,
        "target": target,
        "issuedAt": issued_at,
        "expiresAt": expires_at,
        "sessionId": session_id,
        "status": "pending",
    }))
}

/// An acknowledgement as posted.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandAck {
    pub result: Option<Value>,
    pub error: Option<Value>,
}

impl CommandAck {
    /// Successful unless an `error` was reported.
    pub fn succeeded(&self) -> bool {
        matches!(self.error, None | Some(Value::Null))
    }
}

/// Input as posted.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInput {
    pub input: Option<Value>,
    pub prompt: Option<Value>,
}

/// Checks posted input and builds its stored item
/// `{inputId, timestamp, input, prompt?, source, expiresAt}`.
pub fn input_item(
    i: NewInput,
    input_id: &str,
    source: &str,
    now: &str,
    expires_at: &str,
) -> Result<Value, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let input = match i.input {
        None | Some(Value::Null) => {
            problems.push(FieldProblem::new("input", "is required"));
            Value::Null
        }
        Some(v) => v,
    };
    let prompt = match i.prompt {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_PROMPT_CHARS => Some(s),
        Some(_) => {
            problems.push(FieldProblem::new(
                "prompt",
                format!("must be a string of at most {MAX_PROMPT_CHARS} characters"),
            ));
            None
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut item = json!({
        "inputId": input_id,
        "timestamp": now,
        "input": input,
        "source": source,
        "expiresAt": expires_at,
    });
    if let Some(p) = prompt {
        item["prompt"] = p.into();
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(v: Value) -> Result<Value, Vec<FieldProblem>> {
        let c: NewCommand = serde_json::from_value(v).unwrap();
        command_record(c, "s", "c1", "t0", "t1")
    }

    #[test]
    fn commands_are_checked_by_type() {
        assert!(cmd(json!({"type": "pause"})).is_ok());
        let r = cmd(json!({"type": "retry", "stepNumber": 2, "payload": {"x": 1}})).unwrap();
        assert_eq!(
            r["command"],
            json!({"type": "retry", "stepNumber": 2, "payload": {"x": 1}})
        );
        assert_eq!(r["status"], "pending");
        let fields =
            |v| -> Vec<String> { cmd(v).unwrap_err().into_iter().map(|p| p.field).collect() };
        assert_eq!(fields(json!({"type": "retry"})), ["stepNumber"]);
        assert_eq!(
            fields(json!({"type": "skip", "stepNumber": 0})),
            ["stepNumber"]
        );
        assert_eq!(fields(json!({"type": "abort"})), ["reason"]);
        assert_eq!(fields(json!({"type": "abort", "reason": "  "})), ["reason"]);
        assert_eq!(fields(json!({"type": "explode"})), ["type"]);
        assert_eq!(fields(json!({})), ["type"]);
        assert!(serde_json::from_value::<NewCommand>(json!({"type": "pause", "typo": 1})).is_err());
    }

    #[test]
    fn input_needs_a_value() {
        let ok = input_item(
            serde_json::from_value(json!({"input": "yes", "prompt": "Continue?"})).unwrap(),
            "i1",
            "api",
            "t0",
            "t1",
        )
        .unwrap();
        assert_eq!(ok["prompt"], "Continue?");
        assert_eq!(ok["source"], "api");
        let err = input_item(
            serde_json::from_value(json!({"prompt": 3})).unwrap(),
            "i1",
            "api",
            "t0",
            "t1",
        )
        .unwrap_err();
        assert_eq!(err.len(), 2);
    }
}
