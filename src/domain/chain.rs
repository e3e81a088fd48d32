//! Chains: a session's workflow executions as live, queryable state (the workstation's workflow-state manager's
//! manager, correct this time). This file is the state machine: statuses, steps, progress and
//! the estimated completion, and the stats over many chains. What moves a chain (route bodies
//! and events) is in [`super::chain_input`]; the compare-and-set that applies a change on any
//! store is `service::chains`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const CHAIN_STATUSES: [&str; 7] = [
    "pending",
    "in_progress",
    "paused",
    "completed",
    "failed",
    "cancelled",
    "skipped",
];
pub const ACTIVE_STATUSES: [&str; 3] = ["pending", "in_progress", "paused"];
pub const STEP_STATUSES: [&str; 5] = ["pending", "in_progress", "completed", "failed", "skipped"];
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_STEPS: usize = 1000;

pub fn is_active(status: &str) -> bool {
    ACTIVE_STATUSES.contains(&status)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub step_number: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Anything else the agent said about the step (action, model, ...), kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    pub id: String,
    pub session_id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub status: String,
    pub steps: Vec<Step>,
    pub total_steps: u64,
    pub completed_steps: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step: Option<u64>,
    pub progress: f64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Bytes of a too-large value's JSON text kept in its truncation marker.
pub const TRUNCATED_PREVIEW_BYTES: usize = 256;

/// A value whose JSON text is longer than `max` bytes becomes a marker that says so:
/// `{"truncated": true, "bytes": <its length>, "preview": "<its first bytes>"}`.
/// True when it did.
fn bound(v: &mut Value, max: usize) -> bool {
    let text = v.to_string();
    if text.len() <= max {
        return false;
    }
    let mut cut = TRUNCATED_PREVIEW_BYTES.min(max / 2).min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    *v = serde_json::json!({"truncated": true, "bytes": text.len(), "preview": &text[..cut]});
    true
}

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    crate::time::format(t)
}

impl Chain {
    /// A new chain, `pending` until it starts.
    pub fn new(id: String, session_id: String, spec: NewChain, now: DateTime<Utc>) -> Chain {
        let steps = spec.steps;
        let total = spec
            .total_steps
            .unwrap_or(steps.len() as u64)
            .max(steps.len() as u64);
        let mut c = Chain {
            id,
            session_id,
            title: spec.title,
            source: spec.source,
            status: "pending".into(),
            steps,
            total_steps: total,
            completed_steps: 0,
            current_step: None,
            progress: 0.0,
            created_at: iso(now),
            started_at: None,
            updated_at: iso(now),
            completed_at: None,
            estimated_completion: None,
            error: None,
            data: None,
        };
        c.recompute(now);
        c
    }

    /// Sets the status, stamping `startedAt` / `completedAt` as it moves.
    pub fn set_status(&mut self, status: &str, now: DateTime<Utc>) {
        if status == "in_progress" && self.started_at.is_none() {
            self.started_at = Some(iso(now));
        }
        if !is_active(status) && self.completed_at.is_none() {
            self.completed_at = Some(iso(now));
        }
        if is_active(status) {
            self.completed_at = None;
        }
        if status == "completed" {
            for s in &mut self.steps {
                if matches!(s.status.as_str(), "pending" | "in_progress") {
                    s.status = "completed".into();
                    s.completed_at.get_or_insert_with(|| iso(now));
                }
            }
            if self.steps.is_empty() {
                self.completed_steps = self.total_steps;
            }
        }
        self.status = status.to_string();
    }

    fn step_mut(&mut self, n: u64) -> &mut Step {
        if let Some(i) = self.steps.iter().position(|s| s.step_number == n) {
            return &mut self.steps[i];
        }
        self.steps.push(Step {
            step_number: n,
            title: None,
            status: "pending".into(),
            started_at: None,
            completed_at: None,
            error: None,
            extra: Map::new(),
        });
        self.steps.sort_by_key(|s| s.step_number);
        let i = self
            .steps
            .iter()
            .position(|s| s.step_number == n)
            .expect("just added");
        &mut self.steps[i]
    }

    /// Moves one step; a running step also starts the chain.
    pub fn set_step(&mut self, n: u64, status: &str, error: Option<Value>, now: DateTime<Utc>) {
        let step = self.step_mut(n);
        step.status = status.to_string();
        match status {
            "in_progress" => {
                step.started_at.get_or_insert_with(|| iso(now));
            }
            "completed" | "failed" | "skipped" => {
                step.completed_at.get_or_insert_with(|| iso(now));
            }
            _ => {}
        }
        if error.is_some() {
            step.error = error;
        }
        if status == "in_progress" {
            self.current_step = Some(n);
            if self.status == "pending" {
                self.set_status("in_progress", now);
            }
        }
    }

    /// Truncates every free-form value (the chain's and each step's `error` and `data`, a
    /// step's other fields, titles) longer than `max` bytes, so no agent can grow a chain
    /// without bound through them; see `bound` for the marker.
    pub fn bound_values(&mut self, max: usize) {
        for v in [&mut self.error, &mut self.data].into_iter().flatten() {
            bound(v, max);
        }
        if let Some(src) = &mut self.source {
            truncate_chars(src, MAX_TITLE_CHARS);
        }
        truncate_chars(&mut self.title, MAX_TITLE_CHARS);
        for s in &mut self.steps {
            if let Some(e) = &mut s.error {
                bound(e, max);
            }
            if let Some(t) = &mut s.title {
                truncate_chars(t, MAX_TITLE_CHARS);
            }
            if s.extra.is_empty() {
                continue;
            }
            let mut extra = Value::Object(std::mem::take(&mut s.extra));
            let cut = bound(&mut extra, max);
            s.extra = match extra {
                Value::Object(m) if !cut => m,
                marker => Map::from_iter([("extra".to_string(), marker)]),
            };
        }
    }

    /// Derives completed steps, progress and the estimated completion, and stamps `updatedAt`.
    pub fn recompute(&mut self, now: DateTime<Utc>) {
        if !self.steps.is_empty() {
            self.completed_steps = self
                .steps
                .iter()
                .filter(|s| matches!(s.status.as_str(), "completed" | "skipped"))
                .count() as u64;
            self.total_steps = self.total_steps.max(self.steps.len() as u64);
        }
        self.completed_steps = self.completed_steps.min(self.total_steps);
        self.progress = if self.status == "completed" {
            100.0
        } else if self.total_steps == 0 {
            0.0
        } else {
            (self.completed_steps as f64 * 1000.0 / self.total_steps as f64).round() / 10.0
        };
        self.estimated_completion = match (&self.started_at, self.progress) {
            (Some(started), p) if p > 0.0 && p < 100.0 && is_active(&self.status) => {
                crate::time::parse(started).map(|s| {
                    let elapsed_ms = (now - s).num_milliseconds().max(0) as f64;
                    let total_ms = elapsed_ms / p * 100.0;
                    iso(s + chrono::Duration::milliseconds(total_ms as i64))
                })
            }
            _ => None,
        };
        self.updated_at = iso(now);
    }
}

fn truncate_chars(s: &mut String, max: usize) {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
}

/// A checked [`NewChainBody`](super::chain_input::NewChainBody).
#[derive(Debug, Default, Clone)]
pub struct NewChain {
    pub title: String,
    pub steps: Vec<Step>,
    pub total_steps: Option<u64>,
    pub source: Option<String>,
}

impl PartialEq for NewChain {
    fn eq(&self, o: &Self) -> bool {
        self.title == o.title && self.steps == o.steps && self.total_steps == o.total_steps
    }
}

/// `GET /api/chains/stats`: every status counted (finished ones too), the active count, and
/// the average progress over all chains.
/// What one chain may hold (`CHAIN_MAX_BYTES`, `CHAIN_VALUE_MAX_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct ChainLimits {
    /// Largest stored chain JSON; a change past it is refused. Below the WebSocket outbound
    /// budget, so one chain frame never closes a reader that keeps up.
    pub max_bytes: usize,
    /// Largest free-form value (an error, data, a step's fields) kept as given; larger ones
    /// are truncated with a marker.
    pub max_value_bytes: usize,
}

/// How many chains there are of each status, and the sum of their progress in hundredths of
/// a percent: what the stores keep as counters beside the chain index, so stats never decode
/// every chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusCounts {
    pub by_status: BTreeMap<String, (u64, i64)>,
}

/// A chain's progress as the counters add it up: hundredths of a percent.
pub fn progress_centi(progress: f64) -> i64 {
    (progress * 100.0).round() as i64
}

impl StatusCounts {
    /// Counts a chain of `status` with `centi` progress in (`by` 1) or out (`by` -1).
    pub fn add(&mut self, status: &str, centi: i64, by: i64) {
        let e = self.by_status.entry(status.to_string()).or_default();
        e.0 = e.0.saturating_add_signed(by);
        e.1 += by * centi;
        if e.0 == 0 {
            self.by_status.remove(status);
        }
    }

    fn of(&self, statuses: &[&str]) -> (u64, i64) {
        statuses
            .iter()
            .filter_map(|s| self.by_status.get(*s))
            .fold((0, 0), |(n, p), (dn, dp)| (n + dn, p + dp))
    }
}

/// `GET /api/chains/stats`: chains in all, active, by status, and their average progress.
pub fn stats(counts: &StatusCounts) -> Value {
    let mut by_status = Map::new();
    for s in CHAIN_STATUSES {
        by_status.insert(s.into(), counts.of(&[s]).0.into());
    }
    let (total, sum) = counts.of(&CHAIN_STATUSES);
    let (active, _) = counts.of(&ACTIVE_STATUSES);
    let average = if total == 0 {
        0.0
    } else {
        (sum as f64 / 10.0 / total as f64).round() / 10.0
    };
    serde_json::json!({
        "total": total,
        "active": active,
        "byStatus": by_status,
        "averageProgress": average,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chain_input::NewChainBody;
    use serde_json::json;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn progress_and_eta_follow_the_steps() {
        let (_, spec) = NewChainBody {
            title: Some("build".into()),
            steps: Some(vec![
                json!("plan"),
                json!({"title": "code", "model": "m"}),
                json!("test"),
                json!("ship"),
            ]),
            ..Default::default()
        }
        .check()
        .unwrap();
        let mut c = Chain::new("c".into(), "s".into(), spec, at(0));
        assert_eq!(
            (c.total_steps, c.progress, c.status.as_str()),
            (4, 0.0, "pending")
        );
        assert_eq!(c.steps[1].extra["model"], "m");
        c.set_step(1, "in_progress", None, at(0));
        assert_eq!(c.status, "in_progress", "a running step starts the chain");
        c.set_step(1, "completed", None, at(10));
        c.recompute(at(10));
        assert_eq!((c.completed_steps, c.progress), (1, 25.0));
        // 10 s for 25%: 40 s in all, from the start at 0.
        assert_eq!(
            c.estimated_completion.as_deref(),
            Some(iso(at(40)).as_str())
        );
        c.set_step(2, "skipped", None, at(20));
        c.recompute(at(20));
        assert_eq!((c.completed_steps, c.progress), (2, 50.0));
        c.set_status("completed", at(30));
        c.recompute(at(30));
        assert_eq!((c.completed_steps, c.progress), (4, 100.0));
        assert_eq!(c.estimated_completion, None);
        assert_eq!(c.completed_at.as_deref(), Some(iso(at(30)).as_str()));
    }

    #[test]
    fn stats_count_every_status() {
        let mk = |status: &str, progress: f64| {
            let mut c = Chain::new(
                "c".into(),
                "s".into(),
                NewChain {
                    title: "t".into(),
                    ..Default::default()
                },
                at(0),
            );
            c.status = status.into();
            c.progress = progress;
            c
        };
        let mut counts = StatusCounts::default();
        for c in [
            mk("completed", 100.0),
            mk("in_progress", 50.0),
            mk("paused", 0.0),
            mk("paused", 33.3),
        ] {
            counts.add(&c.status, progress_centi(c.progress), 1);
        }
        counts.add("paused", progress_centi(33.3), -1);
        let s = stats(&counts);
        assert_eq!(s["total"], 3);
        assert_eq!(s["active"], 2);
        assert_eq!(s["byStatus"]["completed"], 1);
        assert_eq!(s["byStatus"]["cancelled"], 0);
        assert_eq!(s["averageProgress"], 50.0);
    }
}
