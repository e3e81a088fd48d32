//! Permission prompts: a Claude Code `PermissionRequest` hook (or a `PreToolUse` hook a rule
//! sends to a person) becomes a *request* that waits for one decision, from a person on the
//! dashboard or from a rule ([`super::permission_rules`]). This module is the data: the
//! request, its status, a decision's body, the bounds of the store, and the answers Claude
//! Code reads (the shapes of `PermissionRequestHookSpecificOutput` and
//! `PreToolUseHookSpecificOutput` in the Agent SDK's `sdk.d.ts`).

use serde_json::{json, Map, Value};

use super::FieldProblem;

/// Longest decision (or rule) message.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// How many requests a store keeps, and for how long (`PERMISSION_*`).
#[derive(Debug, Clone, Copy)]
pub struct PermissionLimits {
    /// How long a request is kept after its deadline (`PERMISSION_KEEP_SECS`), in ms.
    pub keep_ms: u64,
    /// Requests waiting at once (`PERMISSION_MAX_PENDING`); one more is refused.
    pub max_pending: usize,
    /// Requests kept (`PERMISSION_MAX_KEPT`); past it the oldest go.
    pub max_kept: usize,
}

/// Where a request stands. Only `Pending` moves, once, to one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Pending,
    Allowed,
    Denied,
    /// Nobody answered by the deadline (`PERMISSION_TIMEOUT_SECS`).
    Expired,
    /// The agent stopped waiting (its hook's connection closed, or its instance stopped).
    Abandoned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Allowed => "allowed",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "allowed" => Status::Allowed,
            "denied" => Status::Denied,
            "expired" => Status::Expired,
            "abandoned" => Status::Abandoned,
            _ => return None,
        })
    }
}

/// A request as stored: its immutable JSON, where it stands, the decision (JSON) once it has
/// one, and its deadline (ms since the epoch, the store's clock).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub request: String,
    pub status: Status,
    pub decision: Option<String>,
    pub expires_at_ms: i64,
}

impl Record {
    /// Where it stands at `now_ms`: a pending request past its deadline is expired, whether
    /// or not its holder lived to mark it.
    pub fn status_at(&self, now_ms: i64) -> Status {
        if self.status == Status::Pending && self.expires_at_ms <= now_ms {
            Status::Expired
        } else {
            self.status
        }
    }

    /// The request as the API shows it: its fields, `status`, and `decision` once decided.
    pub fn view(&self, now_ms: i64) -> Value {
        let mut v: Value = serde_json::from_str(&self.request).unwrap_or_else(|_| json!({}));
        if let Some(o) = v.as_object_mut() {
            o.insert("status".into(), self.status_at(now_ms).as_str().into());
            if let Some(d) = self
                .decision
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
            {
                o.insert("decision".into(), d);
            }
        }
        v
    }
}

/// The two answers a person or a rule gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Allow,
    Deny,
}

impl Behavior {
    pub fn status(self) -> Status {
        match self {
            Behavior::Allow => Status::Allowed,
            Behavior::Deny => Status::Denied,
        }
    }
}

/// `POST /api/permissions/:id/decision`'s body.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub behavior: Behavior,
    pub message: Option<String>,
    /// For `allow`: the tool's input as the person edited it.
    pub updated_input: Option<Map<String, Value>>,
}

impl Decision {
    pub fn parse(body: &Value) -> Result<Decision, Vec<FieldProblem>> {
        let Some(o) = body.as_object() else {
            return Err(vec![FieldProblem::new(
                "body",
                "must be an object: {behavior: \"allow\"|\"deny\", message?, updatedInput?}",
            )]);
        };
        let mut problems = Vec::new();
        let behavior = match o.get("behavior").and_then(Value::as_str) {
            Some("allow") => Some(Behavior::Allow),
            Some("deny") => Some(Behavior::Deny),
            _ => {
                problems.push(FieldProblem::new(
                    "behavior",
                    "must be \"allow\" or \"deny\"",
                ));
                None
            }
        };
        let message = match o.get("message") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) if m.chars().count() <= MAX_MESSAGE_CHARS => Some(m.clone()),
            Some(_) => {
                problems.push(FieldProblem::new(
                    "message",
                    format!("must be a string of at most {MAX_MESSAGE_CHARS} characters"),
                ));
                None
            }
        };
        let updated_input = match o.get("updatedInput") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) if behavior != Some(Behavior::Deny) => Some(m.clone()),
            Some(Value::Object(_)) => {
                problems.push(FieldProblem::new(
                    "updatedInput",
                    "only an allow changes the tool's input",
                ));
                None
            }
            Some(_) => {
                problems.push(FieldProblem::new(
                    "updatedInput",
                    "must be an object (the tool's input)",
                ));
                None
            }
        };
        match (behavior, problems.is_empty()) {
            (Some(behavior), true) => Ok(Decision {
                behavior,
                message,
                updated_input,
            }),
            _ => Err(problems),
        }
    }
}

/// Which hook is waiting: they read their answers differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PermissionRequest,
    PreToolUse,
}

impl Hook {
    pub fn of(name: &str) -> Option<Hook> {
        match name {
            "PermissionRequest" => Some(Hook::PermissionRequest),
            "PreToolUse" => Some(Hook::PreToolUse),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Hook::PermissionRequest => "PermissionRequest",
            Hook::PreToolUse => "PreToolUse",
        }
    }

    /// The hook's answer for a decision (`decision` as stored: `behavior`, `message`,
    /// `updatedInput`, `decidedBy`).
    pub fn answer(self, decision: &Value) -> Value {
        let allow = decision["behavior"] == "allow";
        let message = decision["message"].as_str();
        let input = decision.get("updatedInput").filter(|v| v.is_object());
        let by = decision["decidedBy"].as_str().unwrap_or("the dashboard");
        let output = match self {
            Hook::PermissionRequest => {
                let mut d = json!({"behavior": if allow { "allow" } else { "deny" }});
                if allow {
                    if let Some(i) = input {
                        d["updatedInput"] = i.clone();
                    }
                } else {
                    d["message"] = message
                        .map_or_else(|| format!("denied by {by}"), str::to_string)
                        .into();
                }
                json!({"hookEventName": "PermissionRequest", "decision": d})
            }
            Hook::PreToolUse => {
                let reason = message.map_or_else(
                    || format!("{} by {by}", if allow { "allowed" } else { "denied" }),
                    str::to_string,
                );
                let mut o = json!({
                    "hookEventName": "PreToolUse",
                    "permissionDecision": if allow { "allow" } else { "deny" },
                    "permissionDecisionReason": reason,
                });
                if let (true, Some(i)) = (allow, input) {
                    o["updatedInput"] = i.clone();
                }
                o
            }
        };
        json!({ "hookSpecificOutput": output })
    }

    /// The answer when nobody decided: Claude Code asks in its terminal (a `PermissionRequest`
    /// hook that decides nothing; a `PreToolUse` hook's `ask`).
    pub fn fallback(self, why: &str) -> Value {
        match self {
            Hook::PermissionRequest => json!({}),
            Hook::PreToolUse => json!({"hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "ask",
                "permissionDecisionReason": why,
            }}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_decisions_name_each_field() {
        let d = |v: Value| -> Vec<String> {
            Decision::parse(&v)
                .unwrap_err()
                .into_iter()
                .map(|p| p.field)
                .collect()
        };
        assert_eq!(d(json!({"behavior": "maybe"})), ["behavior"]);
        assert_eq!(
            d(json!({"behavior": "deny", "updatedInput": {"a": 1}})),
            ["updatedInput"]
        );
        assert_eq!(d(json!({"behavior": "allow", "message": 3})), ["message"]);
        let ok = Decision::parse(&json!({"behavior": "allow", "updatedInput": {"command": "ls"}}))
            .unwrap();
        assert_eq!(ok.behavior, Behavior::Allow);
    }
    #[test]
    fn answers_take_the_shapes_claude_code_reads() {
        let allow =
            json!({"behavior": "allow", "updatedInput": {"command": "ls"}, "decidedBy": "ana"});
        assert_eq!(
            Hook::PermissionRequest.answer(&allow),
            json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                "decision": {"behavior": "allow", "updatedInput": {"command": "ls"}}}})
        );
        let deny = json!({"behavior": "deny", "decidedBy": "rule:rm"});
        assert_eq!(
            Hook::PreToolUse.answer(&deny)["hookSpecificOutput"]["permissionDecisionReason"],
            "denied by rule:rm"
        );
        assert_eq!(Hook::PermissionRequest.fallback("late"), json!({}));
        assert_eq!(
            Hook::PreToolUse.fallback("late")["hookSpecificOutput"]["permissionDecision"],
            "ask"
        );
    }

    /// Every answer the gateway gives a hook, as `tests/fixtures/claude-code/answers.json` has
    /// it (which `tests/web/claude-code.test.mjs` checks against the Agent SDK's
    /// `SyncHookJSONOutput`).
    #[test]
    fn the_answers_are_the_ones_checked_against_the_sdk() {
        let fixture: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/claude-code/answers.json"
        ))
        .unwrap();
        let (pr, pre) = (Hook::PermissionRequest, Hook::PreToolUse);
        let answers = [
            ("PermissionRequest allowed", pr.answer(&json!({"behavior": "allow", "decidedBy": "key#2"}))),
            (
                "PermissionRequest allowed with the input edited",
                pr.answer(&json!({"behavior": "allow", "decidedBy": "key#2", "updatedInput": {"command": "npm publish --dry-run"}})),
            ),
            (
                "PermissionRequest denied with a message",
                pr.answer(&json!({"behavior": "deny", "decidedBy": "key#3", "message": "use make clean"})),
            ),
            ("PermissionRequest denied by a rule", pr.answer(&json!({"behavior": "deny", "decidedBy": "rule:rm"}))),
            ("PermissionRequest unanswered", pr.fallback("late")),
            ("PreToolUse allowed by a rule", pre.answer(&json!({"behavior": "allow", "decidedBy": "rule:read"}))),
            (
                "PreToolUse allowed with the input edited",
                pre.answer(&json!({"behavior": "allow", "decidedBy": "key#2", "updatedInput": {"command": "npm test"}})),
            ),
            (
                "PreToolUse denied with a message",
                pre.answer(&json!({"behavior": "deny", "decidedBy": "rule:rm", "message": "never"})),
            ),
            ("PreToolUse unanswered", pre.fallback("nobody answered on the dashboard within 110 s")),
        ];
        assert_eq!(fixture.as_object().unwrap().len(), answers.len());
        for (name, answer) in answers {
            assert_eq!(answer, fixture[name], "{name}");
        }
    }

    #[test]
    fn a_pending_request_past_its_deadline_reads_as_expired() {
        let r = Record {
            request: json!({"id": "p"}).to_string(),
            status: Status::Pending,
            decision: None,
            expires_at_ms: 1000,
        };
        assert_eq!(r.status_at(999), Status::Pending);
        assert_eq!(r.view(1000)["status"], "expired");
    }
}
