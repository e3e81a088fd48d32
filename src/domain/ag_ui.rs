//! AG-UI (the agent-user interaction protocol of CopilotKit) events posted as they are: an
//! event whose `type` is one of AG-UI's is checked for the members its schema requires
//! (`@ag-ui/core` 1.0) and stored unchanged; the `?format=ag-ui` stream
//! ([`crate::realtime::ag_ui`]) passes it on as it came.

use super::json::RawObject;
use super::FieldProblem;

/// What a required member must be.
#[derive(Clone, Copy)]
enum Kind {
    /// A string (empty allowed, as the schema allows it).
    Str,
    /// An array.
    Array,
    /// Anything but absent (`null` included, as the schema's `any`).
    Present,
    /// A string or an array (a tool result's `content`: text or content parts).
    StrOrArray,
}

use Kind::{Array, Present, Str, StrOrArray};

/// Every AG-UI event type with the members its schema requires.
const TYPES: &[(&str, &[(&str, Kind)])] = &[
    ("TEXT_MESSAGE_START", &[("messageId", Str)]),
    (
        "TEXT_MESSAGE_CONTENT",
        &[("messageId", Str), ("delta", Str)],
    ),
    ("TEXT_MESSAGE_END", &[("messageId", Str)]),
    ("TEXT_MESSAGE_CHUNK", &[]),
    (
        "TOOL_CALL_START",
        &[("toolCallId", Str), ("toolCallName", Str)],
    ),
    ("TOOL_CALL_ARGS", &[("toolCallId", Str), ("delta", Str)]),
    ("TOOL_CALL_END", &[("toolCallId", Str)]),
    ("TOOL_CALL_CHUNK", &[]),
    (
        "TOOL_CALL_RESULT",
        &[
            ("messageId", Str),
            ("toolCallId", Str),
            ("content", StrOrArray),
        ],
    ),
    ("STATE_SNAPSHOT", &[("snapshot", Present)]),
    ("STATE_DELTA", &[("delta", Array)]),
    ("MESSAGES_SNAPSHOT", &[("messages", Array)]),
    (
        "ACTIVITY_SNAPSHOT",
        &[
            ("messageId", Str),
            ("activityType", Str),
            ("content", Present),
        ],
    ),
    (
        "ACTIVITY_DELTA",
        &[("messageId", Str), ("activityType", Str), ("patch", Array)],
    ),
    ("RAW", &[("event", Present)]),
    ("CUSTOM", &[("name", Str), ("value", Present)]),
    ("RUN_STARTED", &[("threadId", Str), ("runId", Str)]),
    ("RUN_FINISHED", &[("threadId", Str), ("runId", Str)]),
    ("RUN_ERROR", &[("message", Str)]),
    ("STEP_STARTED", &[("stepName", Str)]),
    ("STEP_FINISHED", &[("stepName", Str)]),
    ("REASONING_START", &[("messageId", Str)]),
    (
        "REASONING_MESSAGE_START",
        &[("messageId", Str), ("role", Str)],
    ),
    (
        "REASONING_MESSAGE_CONTENT",
        &[("messageId", Str), ("delta", Str)],
    ),
    ("REASONING_MESSAGE_END", &[("messageId", Str)]),
    ("REASONING_MESSAGE_CHUNK", &[]),
    ("REASONING_END", &[("messageId", Str)]),
    (
        "REASONING_ENCRYPTED_VALUE",
        &[("subtype", Str), ("entityId", Str), ("encryptedValue", Str)],
    ),
    ("SUBAGENT_STARTED", &[("subagentRunId", Str), ("name", Str)]),
    ("SUBAGENT_FINISHED", &[("subagentRunId", Str)]),
    (
        "SUBAGENT_ERROR",
        &[("subagentRunId", Str), ("message", Str)],
    ),
];

/// The roles a text message may have.
pub const MESSAGE_ROLES: &[&str] = &["developer", "system", "assistant", "user"];

/// Whether `kind` is an AG-UI event type.
pub fn is_type(kind: &str) -> bool {
    required(kind).is_some()
}

fn required(kind: &str) -> Option<&'static [(&'static str, Kind)]> {
    // AG-UI's types are upper case; the gateway's own have a colon. Most events are ours.
    if !kind.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    TYPES.iter().find(|(t, _)| *t == kind).map(|(_, r)| *r)
}

/// What an AG-UI event lacks or has wrong, by its schema: each required member, a text
/// message's `role`, a reasoning message's (`reasoning`). Its `timestamp` is the caller's
/// ([`numeric_timestamp`]).
pub fn check(obj: &RawObject<'_>, kind: &str, prefix: &str, problems: &mut Vec<FieldProblem>) {
    let Some(members) = required(kind) else {
        return;
    };
    for (name, want) in members {
        let first = obj.get(name).map(|v| v.get().as_bytes()[0]);
        let ok = match (want, first) {
            (_, None) => false,
            (Str, Some(b)) => b == b'"',
            (Array, Some(b)) => b == b'[',
            (StrOrArray, Some(b)) => b == b'"' || b == b'[',
            (Present, Some(_)) => true,
        };
        if !ok {
            let what = match want {
                Str => "is required, a string",
                Array => "is required, an array",
                StrOrArray => "is required, a string or an array of content parts",
                Present => "is required",
            };
            problems.push(FieldProblem::new(format!("{prefix}{name}"), what));
        }
    }
    let role = obj.str("role").ok().flatten();
    let role_ok = match (kind, role.as_deref()) {
        (_, None) => true,
        ("TEXT_MESSAGE_START" | "TEXT_MESSAGE_CHUNK", Some(r)) => MESSAGE_ROLES.contains(&r),
        ("REASONING_MESSAGE_START", Some(r)) => r == "reasoning",
        _ => true,
    };
    if !role_ok {
        let allowed = if kind.starts_with("REASONING") {
            "must be reasoning".to_string()
        } else {
            format!("must be one of {}", MESSAGE_ROLES.join(", "))
        };
        problems.push(FieldProblem::new(format!("{prefix}role"), allowed));
    }
}

/// Whether an AG-UI event's `timestamp` is AG-UI's (milliseconds, a number): the gateway
/// keeps it as it came.
pub fn numeric_timestamp(obj: &RawObject<'_>, kind: &str) -> bool {
    is_type(kind)
        && obj
            .get("timestamp")
            .is_some_and(|v| v.get().as_bytes()[0].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn problems(json: &str) -> Vec<String> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        let obj = RawObject::parse(&raw).unwrap();
        let kind = obj.str("type").unwrap().unwrap().into_owned();
        let mut p = Vec::new();
        check(&obj, &kind, "", &mut p);
        p.into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn required_members_by_type() {
        assert!(is_type("TOOL_CALL_START") && !is_type("tool:used") && !is_type("Custom"));
        assert!(
            problems(r#"{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":""}"#).is_empty()
        );
        assert_eq!(
            problems(r#"{"type":"TEXT_MESSAGE_CONTENT","messageId":1}"#),
            ["messageId", "delta"]
        );
        assert_eq!(
            problems(r#"{"type":"TEXT_MESSAGE_START","messageId":"m","role":"tool"}"#),
            ["role"]
        );
        assert_eq!(
            problems(
                r#"{"type":"TOOL_CALL_RESULT","messageId":"m","toolCallId":"t","content":{}}"#
            ),
            ["content"]
        );
        assert!(problems(r#"{"type":"STATE_SNAPSHOT","snapshot":null}"#).is_empty());
        assert_eq!(problems(r#"{"type":"CUSTOM","name":"x"}"#), ["value"]);
        assert_eq!(
            problems(r#"{"type":"RUN_STARTED","threadId":"t"}"#),
            ["runId"]
        );
        assert!(problems(r#"{"type":"chain:started"}"#).is_empty());
    }
}
