//! The gateway's own events as AG-UI events (the table in [`super`]).

use serde_json::{json, Map, Value};

use super::{str_of, AgUi, ANNOUNCED_MAX};
use crate::domain::ag_ui;

impl AgUi {
    /// One of the gateway's own events.
    pub(super) fn ours(&mut self, ev: &Map<String, Value>, kind: &str, out: &mut Vec<Value>) {
        let claude = ev.get("claude").and_then(Value::as_object);
        let hook = |k: &str| claude.and_then(|c| c.get(k));
        match kind {
            "chain:started" => {
                let id = chain_id(ev);
                let title = field(ev, "title").and_then(Value::as_str).unwrap_or(&id);
                let name = format!("chain {title}");
                self.open_step(out, format!("chain:{id}"), name);
            }
            "chain:completed" | "chain:failed" | "chain:cancelled" => {
                let key = format!("chain:{}", chain_id(ev));
                let steps: Vec<String> = self
                    .steps
                    .iter()
                    .filter(|(k, _)| k.starts_with("step:"))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in steps {
                    self.close_step(out, &k, None);
                }
                let name = format!("chain {}", chain_id(ev));
                self.close_step(out, &key, Some(name));
            }
            "step:started" => {
                if let Some(n) = step_number(ev) {
                    self.open_step(out, format!("step:{n}"), format!("step {n}"));
                }
            }
            "step:completed" | "step:failed" | "step:skipped" => match step_number(ev) {
                Some(n) => self.close_step(out, &format!("step:{n}"), Some(format!("step {n}"))),
                None => self.custom(out, ev, kind),
            },
            "message" => {
                let role = str_of(ev, "role")
                    .filter(|r| ag_ui::MESSAGE_ROLES.contains(r))
                    .unwrap_or("assistant");
                let text = str_of(ev, "content").or_else(|| str_of(ev, "text"));
                self.text(out, ev, role, text.unwrap_or_default());
            }
            "claude:UserPromptSubmit" => {
                let prompt = hook("prompt").and_then(Value::as_str).unwrap_or_default();
                self.text(out, ev, "user", prompt);
            }
            "claude:Stop" => {
                if let Some(text) = hook("last_assistant_message").and_then(Value::as_str) {
                    self.text(out, ev, "assistant", text);
                }
                self.finish(out, None, false);
            }
            "session:ended" => self.finish(out, None, true),
            "tool:started" | "claude:PreToolUse" => {
                let (id, name, input) = tool_call(ev);
                self.call(out, id, name, input);
            }
            "tool:used" | "tool:completed" | "tool:failed" | "claude:PostToolUseFailure" => {
                let (id, name, input) = tool_call(ev);
                if !self.announced.contains(&id) {
                    self.call(out, id.clone(), name, input);
                }
                let result = hook("tool_response")
                    .or_else(|| hook("error"))
                    .or_else(|| ev.get("result"))
                    .or_else(|| ev.get("error"))
                    .or_else(|| ev.get("output"));
                let content = match result {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                let message_id = format!("result-{}", str_of(ev, "eventId").unwrap_or(&id));
                let result = json!({"type": "TOOL_CALL_RESULT", "messageId": message_id, "toolCallId": id, "content": content, "role": "tool"});
                self.emit(out, result);
            }
            "interaction:awaiting-input" => {
                let mut i = json!({"id": str_of(ev, "eventId").unwrap_or("input"), "reason": "input_required"});
                if let Some(text) = str_of(ev, "promptText") {
                    i["message"] = text.into();
                }
                if let Some(Value::Array(choices)) = ev.get("quickResponses") {
                    i["responseSchema"] = json!({"type": "string", "enum": choices});
                }
                self.interrupted(out, i);
            }
            "permission:requested" => {
                let tool = str_of(ev, "tool").unwrap_or("a tool");
                let mut i = json!({
                    "id": str_of(ev, "permissionId").unwrap_or("permission"),
                    "reason": "tool_approval",
                    "message": format!("Allow {tool}?"),
                    "metadata": {"tool": tool, "input": ev.get("input")},
                });
                if let Some(t) = str_of(ev, "toolUseId") {
                    i["toolCallId"] = t.into();
                }
                if let Some(at) = str_of(ev, "expiresAt") {
                    i["expiresAt"] = at.into();
                }
                self.interrupted(out, i);
            }
            _ => self.custom(out, ev, kind),
        }
    }

    fn custom(&mut self, out: &mut Vec<Value>, ev: &Map<String, Value>, kind: &str) {
        let custom = json!({"type": "CUSTOM", "name": kind, "value": ev});
        self.emit(out, custom);
    }

    fn text(&mut self, out: &mut Vec<Value>, ev: &Map<String, Value>, role: &str, text: &str) {
        let id = str_of(ev, "messageId")
            .or_else(|| str_of(ev, "eventId"))
            .unwrap_or("message")
            .to_string();
        self.emit(
            out,
            json!({"type": "TEXT_MESSAGE_START", "messageId": id, "role": role}),
        );
        if !text.is_empty() {
            out.push(json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": id, "delta": text}));
        }
        out.push(json!({"type": "TEXT_MESSAGE_END", "messageId": id}));
    }

    fn call(&mut self, out: &mut Vec<Value>, id: String, name: String, input: Option<Value>) {
        self.emit(
            out,
            json!({"type": "TOOL_CALL_START", "toolCallId": id, "toolCallName": name}),
        );
        if let Some(input) = input {
            let delta = input.to_string();
            out.push(json!({"type": "TOOL_CALL_ARGS", "toolCallId": id, "delta": delta}));
        }
        out.push(json!({"type": "TOOL_CALL_END", "toolCallId": id}));
        self.announce(id);
    }

    pub(super) fn announce(&mut self, id: String) {
        if self.announced.len() >= ANNOUNCED_MAX {
            self.announced.clear();
        }
        self.announced.insert(id);
    }
}

/// A chain event's member, at the top level or in its `payload` or `data`.
fn field<'a>(ev: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    ev.get(key)
        .or_else(|| ev.get("payload").and_then(|p| p.get(key)))
        .or_else(|| ev.get("data").and_then(|d| d.get(key)))
}

fn chain_id(ev: &Map<String, Value>) -> String {
    match field(ev, "chainId") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "current".into(),
    }
}

fn step_number(ev: &Map<String, Value>) -> Option<u64> {
    field(ev, "stepNumber")
        .or_else(|| field(ev, "step"))
        .and_then(Value::as_u64)
}

/// A tool event's call id, tool name and input (a Claude Code hook's under `claude`).
fn tool_call(ev: &Map<String, Value>) -> (String, String, Option<Value>) {
    let claude = ev.get("claude");
    let pick = |ours: &[&str], hook: &str| {
        ours.iter()
            .find_map(|k| ev.get(*k))
            .or_else(|| claude.and_then(|c| c.get(hook)))
            .cloned()
    };
    let id = match pick(&["toolCallId", "toolUseId"], "tool_use_id") {
        Some(Value::String(s)) => s,
        _ => str_of(ev, "eventId").unwrap_or("tool").to_string(),
    };
    let name = match pick(&["tool", "toolName"], "tool_name") {
        Some(Value::String(s)) => s,
        _ => "tool".into(),
    };
    (id, name, pick(&["input", "args"], "tool_input"))
}
