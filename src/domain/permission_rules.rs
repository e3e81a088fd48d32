//! The rules that answer Claude Code's permission prompts without a person: allow or deny a
//! tool by its name and a pattern of what it acts on, or send it to a person (`ask`). Set by
//! `PUT /api/permission-rules` (and `PERMISSION_RULES_FILE`), read by every prompt.

use serde_json::{json, Value};

use super::permissions::MAX_MESSAGE_CHARS;
use super::FieldProblem;

/// Rules one `PUT /api/permission-rules` may set.
pub const MAX_RULES: usize = 256;
/// Longest rule pattern and rule id.
pub const MAX_PATTERN_CHARS: usize = 1000;
pub const MAX_RULE_ID_CHARS: usize = 64;

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
    fn bad_rules_name_each_field() {
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
    }
}
