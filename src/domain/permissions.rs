//! Permission prompts: a Claude Code `PermissionRequest` hook (or a `PreToolUse` hook a rule
//! sends to a person) becomes a *request* that waits for one decision, from a person on the
//! dashboard or from a rule. This module is the data: the request, its status, a decision's
//! body, the rules and how they match, and the answers Claude Code reads (the shapes of
//! `PermissionRequestHookSpecificOutput` and `PreToolUseHookSpecificOutput` in the Agent SDK's
//! `sdk.d.ts`).

use serde_json::{json, Map, Value};

use super::FieldProblem;

/// Rules one `PUT /api/permission-rules` may set.
pub const MAX_RULES: usize = 256;
/// Longest rule pattern, rule id and decision message.
pub const MAX_PATTERN_CHARS: usize = 1000;
pub const MAX_RULE_ID_CHARS: usize = 64;
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Where a request stands. Only `Pending` moves, once, to one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq)]
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

/// What a rule does with a tool call it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleBehavior {
    Allow,
    Deny,
    /// Hold it for a person (makes a `PreToolUse` hook wait, as a `PermissionRequest` does).
    Ask,
}

impl RuleBehavior {
    fn as_str(self) -> &'static str {
        match self {
            RuleBehavior::Allow => "allow",
            RuleBehavior::Deny => "deny",
            RuleBehavior::Ask => "ask",
        }
    }
}

/// One rule: `match` is a tool name (`Read`, `mcp__github__*`) or a tool name with a pattern
/// of what it acts on (`Bash(npm test*)`); `*` is any run of characters, and a trailing `:*`
/// (Claude Code's own prefix form, `Bash(npm test:*)`) is the same as `*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub tool: String,
    pub pattern: Option<String>,
    pub behavior: RuleBehavior,
    pub message: Option<String>,
}

/// The rules as `PUT /api/permission-rules` takes them: `{"rules": [{id?, match, behavior,
/// message?}]}`; a rule without `id` is `r{n}`, its place from 1.
pub fn parse_rules(body: &Value) -> Result<Vec<Rule>, Vec<FieldProblem>> {
    let Some(list) = body.get("rules").and_then(Value::as_array) else {
        return Err(vec![FieldProblem::new(
            "rules",
            "must be an array of {id?, match, behavior, message?}",
        )]);
    };
    if list.len() > MAX_RULES {
        return Err(vec![FieldProblem::new(
            "rules",
            format!("at most {MAX_RULES} rules"),
        )]);
    }
    let mut problems = Vec::new();
    let mut rules = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let at = |f: &str| format!("rules[{i}].{f}");
        let id = match r.get("id") {
            None => format!("r{}", i + 1),
            Some(Value::String(s))
                if !s.is_empty()
                    && s.len() <= MAX_RULE_ID_CHARS
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                s.clone()
            }
            Some(_) => {
                problems.push(FieldProblem::new(
                    at("id"),
                    format!("must be 1-{MAX_RULE_ID_CHARS} letters, digits, -, _ or ."),
                ));
                continue;
            }
        };
        let spec = r.get("match").and_then(Value::as_str).and_then(split_match);
        let behavior = match r.get("behavior").and_then(Value::as_str) {
            Some("allow") => Some(RuleBehavior::Allow),
            Some("deny") => Some(RuleBehavior::Deny),
            Some("ask") => Some(RuleBehavior::Ask),
            _ => None,
        };
        let message = r.get("message").and_then(Value::as_str).map(str::to_string);
        if spec.is_none() {
            problems.push(FieldProblem::new(
                at("match"),
                format!("must be Tool or Tool(pattern), at most {MAX_PATTERN_CHARS} characters"),
            ));
        }
        if behavior.is_none() {
            problems.push(FieldProblem::new(
                at("behavior"),
                "must be \"allow\", \"deny\" or \"ask\"",
            ));
        }
        if message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS)
        {
            problems.push(FieldProblem::new(
                at("message"),
                format!("at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        if let (Some((tool, pattern)), Some(behavior)) = (spec, behavior) {
            if rules.iter().any(|r: &Rule| r.id == id) {
                problems.push(FieldProblem::new(at("id"), "is another rule's id"));
            }
            rules.push(Rule {
                id,
                tool,
                pattern,
                behavior,
                message,
            });
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// `Tool` or `Tool(pattern)`.
fn split_match(spec: &str) -> Option<(String, Option<String>)> {
    let spec = spec.trim();
    if spec.is_empty() || spec.chars().count() > MAX_PATTERN_CHARS {
        return None;
    }
    let (tool, pattern) = match spec.find('(') {
        None => (spec, None),
        Some(open) => {
            let inner = spec[open + 1..].strip_suffix(')')?;
            let inner = inner
                .strip_suffix(":*")
                .map_or(inner.to_string(), |p| format!("{p}*"));
            (&spec[..open], Some(inner))
        }
    };
    let tool_ok = !tool.is_empty()
        && tool
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-*.".contains(c));
    tool_ok.then(|| (tool.to_string(), pattern))
}

/// The rules as JSON, as `GET /api/permission-rules` shows them and the store keeps them.
pub fn rules_json(rules: &[Rule]) -> Value {
    let list: Vec<Value> = rules
        .iter()
        .map(|r| {
            let spec = match &r.pattern {
                None => r.tool.clone(),
                Some(p) => format!("{}({p})", r.tool),
            };
            let mut o = json!({"id": r.id, "match": spec, "behavior": r.behavior.as_str()});
            if let Some(m) = &r.message {
                o["message"] = m.as_str().into();
            }
            o
        })
        .collect();
    json!({ "rules": list })
}

/// What a tool call acts on, as a rule's pattern reads it: the first of these input fields
/// it has (a Bash command, a file's path, a search pattern, a URL), else its input as JSON.
const SUBJECT_FIELDS: [&str; 7] = [
    "command",
    "file_path",
    "notebook_path",
    "path",
    "pattern",
    "url",
    "query",
];

pub fn subject(input: &Value) -> String {
    SUBJECT_FIELDS
        .iter()
        .find_map(|f| input.get(*f)?.as_str().map(str::to_string))
        .unwrap_or_else(|| input.to_string())
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The rule that decides a call of `tool` with `input`: a matching `deny` before any `ask`,
/// an `ask` before any `allow` (as Claude Code orders its own rules), else none.
pub fn decide<'a>(rules: &'a [Rule], tool: &str, input: &Value) -> Option<&'a Rule> {
    let subject = subject(input);
    let matches =
        |r: &&Rule| glob(&r.tool, tool) && r.pattern.as_ref().is_none_or(|p| glob(p, &subject));
    [RuleBehavior::Deny, RuleBehavior::Ask, RuleBehavior::Allow]
        .into_iter()
        .find_map(|b| rules.iter().filter(|r| r.behavior == b).find(matches))
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
    fn globs_match_runs_of_anything() {
        assert!(glob("npm test*", "npm test -- --watch"));
        assert!(glob("npm test*", "npm test"));
        assert!(!glob("npm test*", "npm install"));
        assert!(glob("*", ""));
        assert!(glob("rm -rf*", "rm -rf /"));
        assert!(glob("*.env", "/w/.env"));
        assert!(!glob("*.env", "/w/.envrc"));
        assert!(glob("a*b*c", "a-b-b-c"));
        assert!(!glob("a*b*c", "a-c-b"));
        assert!(glob("Read", "Read"));
        assert!(!glob("Read", "ReadX"));
        assert!(!glob("ab*ab", "ab"), "the two ends may not overlap");
    }

    #[test]
    fn deny_beats_ask_beats_allow_whatever_the_order() {
        let rules = parse_rules(&json!({"rules": [
            {"id": "read", "match": "Read", "behavior": "allow"},
            {"id": "tests", "match": "Bash(npm test:*)", "behavior": "allow"},
            {"id": "anybash", "match": "Bash", "behavior": "ask"},
            {"id": "rm", "match": "Bash(rm -rf*)", "behavior": "deny", "message": "no"},
            {"match": "mcp__github__*", "behavior": "allow"},
        ]}))
        .unwrap();
        let id = |tool: &str, input: Value| decide(&rules, tool, &input).map(|r| r.id.as_str());
        assert_eq!(id("Read", json!({"file_path": "/a"})), Some("read"));
        assert_eq!(id("Bash", json!({"command": "rm -rf /"})), Some("rm"));
        assert_eq!(id("Bash", json!({"command": "npm test"})), Some("anybash"));
        assert_eq!(id("mcp__github__pr", json!({})), Some("r5"));
        assert_eq!(id("Write", json!({"file_path": "/a"})), None);
        assert_eq!(rules[1].pattern.as_deref(), Some("npm test*"));
        assert_eq!(
            rules_json(&rules)["rules"][3],
            json!({"id": "rm", "match": "Bash(rm -rf*)", "behavior": "deny", "message": "no"})
        );
    }

    #[test]
    fn bad_rules_and_decisions_name_each_field() {
        let fields = |v: Value| -> Vec<String> {
            parse_rules(&v)
                .unwrap_err()
                .into_iter()
                .map(|p| p.field)
                .collect()
        };
        assert_eq!(fields(json!({})), ["rules"]);
        assert_eq!(
            fields(
                json!({"rules": [{"match": "Bash(x", "behavior": "maybe"}, {"id": "a b", "match": "X", "behavior": "allow"}]})
            ),
            ["rules[0].match", "rules[0].behavior", "rules[1].id"]
        );
        assert_eq!(
            fields(
                json!({"rules": [{"id": "a", "match": "X", "behavior": "allow"}, {"id": "a", "match": "Y", "behavior": "deny"}]})
            ),
            ["rules[1].id"]
        );
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
