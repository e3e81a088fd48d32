//! What moves a chain: the bodies of the chain routes (checked into domain values) and the
//! chain and step events an agent posts (`chain:compiled`, `chain:started`, `step:*`,
//! `chain:completed`), read from the event's top level or its `payload`/`data`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::chain::{
    is_active, iso, Chain, NewChain, Step, CHAIN_STATUSES, MAX_STEPS, MAX_TITLE_CHARS,
    STEP_STATUSES,
};
use super::FieldProblem;

const MAX_CHAIN_ID_CHARS: usize = 200;

/// `POST /api/sessions/:id/chains` and `chain:compiled`.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewChainBody {
    pub id: Option<String>,
    pub title: Option<String>,
    pub steps: Option<Vec<Value>>,
    pub total_steps: Option<u64>,
    pub source: Option<String>,
}

pub fn check_chain_id(id: &str) -> Result<(), FieldProblem> {
    super::check_id("id", id, MAX_CHAIN_ID_CHARS)
}

/// Steps as given: strings (titles) or objects with `stepNumber?`, `title?`/`name?`,
/// `status?` and anything else.
fn parse_steps(raw: Vec<Value>, problems: &mut Vec<FieldProblem>) -> Vec<Step> {
    if raw.len() > MAX_STEPS {
        problems.push(FieldProblem::new(
            "steps",
            format!("must hold at most {MAX_STEPS} steps"),
        ));
        return Vec::new();
    }
    let mut steps = Vec::with_capacity(raw.len());
    for (i, v) in raw.into_iter().enumerate() {
        let n = i as u64 + 1;
        let mut extra = match v {
            Value::String(title) => {
                let mut m = Map::new();
                m.insert("title".into(), title.into());
                m
            }
            Value::Object(m) => m,
            _ => {
                problems.push(FieldProblem::new(
                    format!("steps[{i}]"),
                    "must be a title or an object",
                ));
                continue;
            }
        };
        let step_number = match extra.remove("stepNumber") {
            None => n,
            Some(v) => match v.as_u64() {
                Some(k) if (1..=MAX_STEPS as u64).contains(&k) => k,
                _ => {
                    problems.push(FieldProblem::new(
                        format!("steps[{i}].stepNumber"),
                        format!("must be an integer from 1 to {MAX_STEPS}"),
                    ));
                    n
                }
            },
        };
        let title = match extra.remove("title").or_else(|| extra.remove("name")) {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => None,
            Some(other) => Some(other.to_string()),
        };
        let status = match extra.remove("status") {
            Some(Value::String(s)) if STEP_STATUSES.contains(&s.as_str()) => s,
            None => "pending".into(),
            Some(_) => {
                problems.push(FieldProblem::new(
                    format!("steps[{i}].status"),
                    format!("must be one of {}", STEP_STATUSES.join(", ")),
                ));
                "pending".into()
            }
        };
        steps.push(Step {
            step_number,
            title,
            status,
            started_at: None,
            completed_at: None,
            error: None,
            extra,
        });
    }
    steps.sort_by_key(|s| s.step_number);
    steps.dedup_by_key(|s| s.step_number);
    steps
}

impl NewChainBody {
    pub fn check(self) -> Result<(Option<String>, NewChain), Vec<FieldProblem>> {
        let mut problems = Vec::new();
        if let Some(id) = &self.id {
            if let Err(p) = check_chain_id(id) {
                problems.push(p);
            }
        }
        let title = self.title.unwrap_or_default();
        if title.trim().is_empty() || title.chars().count() > MAX_TITLE_CHARS {
            problems.push(FieldProblem::new(
                "title",
                format!("is required, at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        if self.total_steps.is_some_and(|t| t > MAX_STEPS as u64) {
            problems.push(FieldProblem::new(
                "totalSteps",
                format!("must be at most {MAX_STEPS}"),
            ));
        }
        let steps = parse_steps(self.steps.unwrap_or_default(), &mut problems);
        if problems.is_empty() {
            Ok((
                self.id,
                NewChain {
                    title,
                    steps,
                    total_steps: self.total_steps,
                    source: self.source,
                },
            ))
        } else {
            Err(problems)
        }
    }
}

/// `PATCH /api/chains/:chainId`.
#[derive(Debug, Deserialize, Default, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChainPatch {
    pub status: Option<String>,
    pub current_step: Option<u64>,
    pub completed_steps: Option<u64>,
    pub total_steps: Option<u64>,
    pub data: Option<Value>,
    pub error: Option<Value>,
}

impl ChainPatch {
    pub fn check(&self) -> Result<(), Vec<FieldProblem>> {
        let mut problems = Vec::new();
        if let Some(s) = &self.status {
            if !CHAIN_STATUSES.contains(&s.as_str()) {
                problems.push(FieldProblem::new(
                    "status",
                    format!("must be one of {}", CHAIN_STATUSES.join(", ")),
                ));
            }
        }
        for (field, n) in [
            ("totalSteps", self.total_steps),
            ("currentStep", self.current_step),
            ("completedSteps", self.completed_steps),
        ] {
            if n.is_some_and(|t| t > MAX_STEPS as u64) {
                problems.push(FieldProblem::new(
                    field,
                    format!("must be at most {MAX_STEPS}"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    pub fn apply(&self, c: &mut Chain, now: DateTime<Utc>) {
        if let Some(t) = self.total_steps {
            c.total_steps = t;
        }
        if let Some(n) = self.completed_steps {
            c.completed_steps = n;
            // Explicit counts speak for chains without step detail.
            if !c.steps.is_empty() {
                for s in c.steps.iter_mut().filter(|s| s.step_number <= n) {
                    if !matches!(s.status.as_str(), "completed" | "skipped" | "failed") {
                        s.status = "completed".into();
                        s.completed_at.get_or_insert_with(|| iso(now));
                    }
                }
            }
        }
        if let Some(n) = self.current_step {
            c.current_step = Some(n);
            if c.status == "pending" {
                c.set_status("in_progress", now);
            }
        }
        if let Some(d) = &self.data {
            c.data = Some(d.clone());
        }
        if let Some(e) = &self.error {
            c.error = Some(e.clone());
        }
        if let Some(s) = &self.status {
            c.set_status(s, now);
        }
    }
}

/// What a chain or step event asks of a chain.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainEvent {
    Compiled(NewChain),
    Started,
    Step {
        number: u64,
        status: &'static str,
        error: Option<Value>,
    },
    Finished {
        status: String,
        error: Option<Value>,
    },
}

/// A field of an event, at the top level or in its `payload` or `data` object.
fn event_field<'a>(event: &'a Value, name: &str) -> Option<&'a Value> {
    event
        .get(name)
        .or_else(|| event.get("payload").and_then(|p| p.get(name)))
        .or_else(|| event.get("data").and_then(|p| p.get(name)))
        .filter(|v| !v.is_null())
}

/// The chain id an event names, and what it asks, if it is a chain or step event.
pub fn chain_event(event: &Value) -> Option<(Option<String>, ChainEvent)> {
    let kind = event.get("type")?.as_str()?;
    let chain_id = event_field(event, "chainId")
        .and_then(Value::as_str)
        .filter(|id| check_chain_id(id).is_ok())
        .map(str::to_string);
    let step_number = || {
        event_field(event, "stepNumber")
            .or_else(|| event_field(event, "step"))
            .and_then(Value::as_u64)
            // A step beyond the most a chain holds is not a step of it: no event adds more.
            .filter(|n| (1..=MAX_STEPS as u64).contains(n))
    };
    let error = event_field(event, "error").cloned();
    let what = match kind {
        "chain:compiled" => {
            let steps = event_field(event, "steps")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut problems = Vec::new();
            let steps = parse_steps(steps, &mut problems);
            let title = event_field(event, "title")
                .and_then(Value::as_str)
                .unwrap_or("untitled chain")
                .chars()
                .take(MAX_TITLE_CHARS)
                .collect();
            ChainEvent::Compiled(NewChain {
                title,
                steps,
                total_steps: event_field(event, "totalSteps")
                    .and_then(Value::as_u64)
                    .map(|t| t.min(MAX_STEPS as u64)),
                source: event_field(event, "source")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        }
        "chain:started" => ChainEvent::Started,
        "chain:completed" | "chain:failed" | "chain:cancelled" => {
            let said = event_field(event, "status").and_then(Value::as_str);
            let failed = event_field(event, "success") == Some(&Value::Bool(false));
            let status = match (kind, said) {
                (_, Some(s)) if CHAIN_STATUSES.contains(&s) && !is_active(s) => s.to_string(),
                ("chain:failed", _) => "failed".into(),
                ("chain:cancelled", _) => "cancelled".into(),
                _ if failed || error.is_some() => "failed".into(),
                _ => "completed".into(),
            };
            ChainEvent::Finished { status, error }
        }
        "step:started" => ChainEvent::Step {
            number: step_number()?,
            status: "in_progress",
            error: None,
        },
        "step:completed" => ChainEvent::Step {
            number: step_number()?,
            status: "completed",
            error: None,
        },
        "step:failed" => ChainEvent::Step {
            number: step_number()?,
            status: "failed",
            error,
        },
        "step:skipped" => ChainEvent::Step {
            number: step_number()?,
            status: "skipped",
            error: None,
        },
        _ => return None,
    };
    Some((chain_id, what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_read_from_top_level_or_payload() {
        let (id, what) = chain_event(
            &json!({"type": "step:completed", "payload": {"chainId": "c1", "stepNumber": 2}}),
        )
        .unwrap();
        assert_eq!(id.as_deref(), Some("c1"));
        assert_eq!(
            what,
            ChainEvent::Step {
                number: 2,
                status: "completed",
                error: None
            }
        );
        let (_, what) = chain_event(&json!({"type": "chain:completed", "success": false})).unwrap();
        assert_eq!(
            what,
            ChainEvent::Finished {
                status: "failed".into(),
                error: None
            }
        );
        assert!(
            chain_event(&json!({"type": "step:started"})).is_none(),
            "no step number"
        );
        assert!(chain_event(&json!({"type": "tool:call"})).is_none());
    }
}
