//! The workflow states of the workstation's workflow-state manager, as views of chains: an execution is a chain, with that
//! manager's names and shapes (ms timestamps, `running` for `in_progress`, the current step
//! by name). Nothing is stored twice; what a chain says is what the view says.

use serde_json::{json, Value};

use super::chain::{Chain, StatusCounts, ACTIVE_STATUSES};

/// The statuses that manager's clients know, and ours: `paused` and `skipped` pass through.
pub const WORKFLOW_STATUSES: [&str; 7] = [
    "pending",
    "running",
    "paused",
    "completed",
    "failed",
    "cancelled",
    "skipped",
];

/// A chain status as that manager names it.
pub fn workflow_status(chain_status: &str) -> &str {
    match chain_status {
        "in_progress" => "running",
        s => s,
    }
}

/// Whether a chain is an active execution (what `active/list` lists).
pub fn is_active(c: &Chain) -> bool {
    matches!(c.status.as_str(), "pending" | "in_progress" | "paused")
}

fn ms(iso: Option<&str>) -> Value {
    iso.and_then(crate::time::parse)
        .map(|t| t.timestamp_millis().into())
        .unwrap_or(Value::Null)
}

/// The current step by name: its title, else `Step N`.
fn current_step(c: &Chain) -> Value {
    let Some(n) = c.current_step else {
        return Value::Null;
    };
    let title = c
        .steps
        .iter()
        .find(|s| s.step_number == n)
        .and_then(|s| s.title.clone());
    title.unwrap_or_else(|| format!("Step {n}")).into()
}

/// The workflow id: the chain's `data.workflowId` if the agent gave one, else its source,
/// else its title.
fn workflow_id(c: &Chain) -> Value {
    c.data
        .as_ref()
        .and_then(|d| d.get("workflowId"))
        .and_then(Value::as_str)
        .or(c.source.as_deref())
        .unwrap_or(&c.title)
        .into()
}

/// The full state of `GET /api/workflow-state/:executionId`.
pub fn state(c: &Chain) -> Value {
    let mut v = json!({
        "executionId": c.id,
        "workflowId": workflow_id(c),
        "sessionId": c.session_id,
        "status": workflow_status(&c.status),
        "progress": c.progress.round() as u64,
        "currentStep": current_step(c),
        "totalSteps": c.total_steps,
        "completedSteps": c.completed_steps,
        "data": c.data.clone().unwrap_or_else(|| json!({})),
        "startedAt": ms(c.started_at.as_deref().or(Some(&c.created_at))),
        "updatedAt": ms(Some(&c.updated_at)),
    });
    if let Some(eta) = c.estimated_completion.as_deref() {
        v["estimatedCompletion"] = ms(Some(eta));
    }
    if let Some(e) = &c.error {
        v["error"] = match e {
            Value::String(_) => e.clone(),
            other => other.to_string().into(),
        };
    }
    v
}

/// The short form of `active/detailed`.
pub fn summary(c: &Chain) -> Value {
    json!({
        "executionId": c.id,
        "status": workflow_status(&c.status),
        "progress": c.progress.round() as u64,
        "currentStep": current_step(c),
    })
}

/// `stats/overview`: active executions, executions by status, average progress of the
/// active, from the stores' counters.
pub fn overview(counts: &StatusCounts) -> Value {
    let mut by_status: serde_json::Map<String, Value> = WORKFLOW_STATUSES
        .iter()
        .map(|s| (s.to_string(), 0.into()))
        .collect();
    for (status, (n, _)) in &counts.by_status {
        let s = workflow_status(status);
        let had = by_status.get(s).and_then(Value::as_u64).unwrap_or(0);
        by_status.insert(s.to_string(), (had + n).into());
    }
    let (active, sum) = ACTIVE_STATUSES
        .iter()
        .filter_map(|s| counts.by_status.get(*s))
        .fold((0u64, 0i64), |(n, p), (dn, dp)| (n + dn, p + dp));
    let average = if active == 0 {
        0
    } else {
        (sum as f64 / 100.0 / active as f64).round() as u64
    };
    json!({
        "activeExecutions": active,
        "executionsByStatus": by_status,
        "averageProgress": average,
    })
}
