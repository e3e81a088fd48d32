//! Claude Code's hooks as events: the JSON a `"type": "http"` hook sends (`BaseHookInput` of
//! the Agent SDK's `sdk.d.ts`: `session_id`, `transcript_path`, `cwd`, `hook_event_name`, and
//! each hook's own fields) becomes one event of the session `session_id` names, with the hook
//! kept whole under `claude`.
//!
//! - **Type:** `SessionStart` is `session:started` and `SessionEnd` `session:ended` (the
//!   dashboard reloads the session on both), `PostToolUse` is `tool:used` (with `tool` and
//!   `target`, as the dashboard shows it), and every other hook, known or not,
//!   `claude:{hook_event_name}`.
//! - **The session's fields:** `cwd` from the hook, `hostname` from the `X-Hostname` header,
//!   `user` from the credentials; filled by `SessionStart` and `UserPromptSubmit` hooks, each
//!   once, when the session does not have it yet (every other hook spares that read).
//! - **Retries are one event:** the `eventId` is `cc-` and a UUID (v5) of the whole hook, its
//!   keys sorted. Every hook of one prompt carries its `prompt_id`, a tool's hooks their
//!   `tool_use_id`, a subagent's its `agent_id`, so two different hooks differ in their body;
//!   a hook sent again is the same body, stored once (within `DEDUP_WINDOW_SECS`).

use serde_json::{Map, Value};

use super::FieldProblem;

/// Longest `hook_event_name` taken (the longest Claude Code has is 20 characters).
pub const MAX_HOOK_NAME_CHARS: usize = 64;
/// Characters of a tool's input kept in `target`.
const TARGET_CHARS: usize = 200;
/// The tool input fields that say what a tool acts on, in the order they are looked for.
const TARGET_FIELDS: [&str; 8] = [
    "file_path",
    "notebook_path",
    "path",
    "command",
    "pattern",
    "url",
    "query",
    "description",
];

/// The namespace of the hooks' event ids (a UUID v5 namespace of this gateway's own).
const EVENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6166_772d_6363_2d68_6f6f_6b73_0000_0001);

/// Who sent a hook, from outside its body.
#[derive(Debug, Default, Clone)]
pub struct HookOrigin {
    /// The credentials' subject.
    pub user: Option<String>,
    /// The `X-Hostname` header.
    pub hostname: Option<String>,
}

/// The event a hook is stored as, or what is wrong with the body.
pub fn hook_event(hook: &Value, origin: &HookOrigin) -> Result<Value, Vec<FieldProblem>> {
    let Some(obj) = hook.as_object() else {
        return Err(vec![FieldProblem::new(
            "body",
            "must be a Claude Code hook: a JSON object with session_id and hook_event_name",
        )]);
    };
    let mut problems = Vec::new();
    let session_id = match obj.get("session_id") {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => {
            problems.push(FieldProblem::new("session_id", "must be a string"));
            None
        }
    };
    let name = match obj.get("hook_event_name") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.chars().count() <= MAX_HOOK_NAME_CHARS
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Some(s.as_str())
        }
        _ => {
            problems.push(FieldProblem::new(
                "hook_event_name",
                format!("must be a hook's name: 1-{MAX_HOOK_NAME_CHARS} letters, digits or _"),
            ));
            None
        }
    };
    let (Some(session_id), Some(name), true) = (session_id, name, problems.is_empty()) else {
        return Err(problems);
    };
    let mut event = Map::new();
    event.insert("sessionId".into(), session_id.into());
    event.insert("type".into(), event_type(name).into());
    event.insert("eventId".into(), event_id(hook).into());
    event.insert("hook".into(), name.into());
    if let Some(tool) = obj.get("tool_name").and_then(Value::as_str) {
        event.insert("tool".into(), tool.into());
        if let Some(target) = obj.get("tool_input").and_then(target) {
            event.insert("target".into(), target.into());
        }
    }
    if let Some(cwd) = obj.get("cwd").and_then(Value::as_str) {
        event.insert("cwd".into(), cwd.into());
    }
    if let Some(user) = &origin.user {
        event.insert("user".into(), user.as_str().into());
    }
    if let Some(host) = &origin.hostname {
        event.insert("hostname".into(), host.as_str().into());
    }
    event.insert("claude".into(), hook.clone());
    Ok(Value::Object(event))
}

/// Whether a hook fills its session's `cwd`, `hostname` and `user` (when it lacks them): the
/// session's start, and each prompt (the first a gateway added mid-session hears).
pub fn fills_session(hook: &Value) -> bool {
    matches!(
        hook.get("hook_event_name").and_then(Value::as_str),
        Some("SessionStart" | "UserPromptSubmit")
    )
}

/// The event type of a hook.
pub fn event_type(hook_event_name: &str) -> String {
    match hook_event_name {
        "SessionStart" => "session:started".into(),
        "SessionEnd" => "session:ended".into(),
        "PostToolUse" => "tool:used".into(),
        other => format!("claude:{other}"),
    }
}

/// `cc-` and a UUID v5 of the hook (serde_json keeps an object's keys sorted, so the same
/// hook with its keys in another order has the same id).
fn event_id(hook: &Value) -> String {
    let canonical = serde_json::to_vec(hook).expect("a JSON value serializes");
    format!(
        "cc-{}",
        uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, &canonical).simple()
    )
}

/// What a tool acts on: the first of [`TARGET_FIELDS`] its input has, cut to
/// [`TARGET_CHARS`] characters.
fn target(input: &Value) -> Option<String> {
    TARGET_FIELDS.iter().find_map(|f| {
        let s = input.get(*f)?.as_str()?;
        Some(s.chars().take(TARGET_CHARS).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(name: &str) -> Value {
        json!({"session_id": "s1", "transcript_path": "/t.jsonl", "cwd": "/w", "hook_event_name": name})
    }

    #[test]
    fn hooks_become_events_of_their_session_with_the_hook_kept_whole() {
        let mut hook = base("PostToolUse");
        hook["tool_name"] = "Bash".into();
        hook["tool_input"] = json!({"command": "npm test", "description": "tests"});
        hook["tool_use_id"] = "toolu_1".into();
        let origin = HookOrigin {
            user: Some("key#1".into()),
            hostname: Some("box".into()),
        };
        let e = hook_event(&hook, &origin).unwrap();
        assert_eq!(e["sessionId"], "s1");
        assert_eq!(e["type"], "tool:used");
        assert_eq!(
            (&e["tool"], &e["target"]),
            (&json!("Bash"), &json!("npm test"))
        );
        assert_eq!(
            (&e["cwd"], &e["user"], &e["hostname"]),
            (&json!("/w"), &json!("key#1"), &json!("box"))
        );
        assert_eq!(e["claude"], hook);
        assert_eq!(event_type("SessionStart"), "session:started");
        assert_eq!(event_type("SomethingNew"), "claude:SomethingNew");
    }

    #[test]
    fn the_same_hook_is_one_event_id_and_another_is_another() {
        let a =
            json!({"session_id": "s", "hook_event_name": "Stop", "prompt_id": "p1", "cwd": "/w"});
        let same =
            json!({"cwd": "/w", "prompt_id": "p1", "hook_event_name": "Stop", "session_id": "s"});
        let other =
            json!({"session_id": "s", "hook_event_name": "Stop", "prompt_id": "p2", "cwd": "/w"});
        let id = |v: &Value| hook_event(v, &HookOrigin::default()).unwrap()["eventId"].clone();
        assert_eq!(id(&a), id(&same));
        assert_ne!(id(&a), id(&other));
        assert!(id(&a).as_str().unwrap().starts_with("cc-"));
    }

    #[test]
    fn a_body_that_is_not_a_hook_is_refused_naming_the_field() {
        let fields = |v: Value| -> Vec<String> {
            hook_event(&v, &HookOrigin::default())
                .unwrap_err()
                .into_iter()
                .map(|p| p.field)
                .collect()
        };
        assert_eq!(fields(json!([1])), ["body"]);
        assert_eq!(fields(json!({"hook_event_name": "Stop"})), ["session_id"]);
        assert_eq!(fields(json!({"session_id": "s"})), ["hook_event_name"]);
        assert_eq!(
            fields(json!({"session_id": 1, "hook_event_name": "a b"})),
            ["session_id", "hook_event_name"]
        );
    }
}
