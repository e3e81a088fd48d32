//! Chains: a session's workflow executions as live, queryable state (seed 001's workflow-state
//! manager, correct this time). A chain is built from events (`chain:compiled`,
//! `chain:started`, `step:*`, `chain:completed`) and from the chain routes, and moved by
//! acknowledged `pause`/`resume`/`cancel` commands.
//!
//! The state machine is written once, here, for both stores: a change reads the chain with its
//! version, computes the new chain, and writes it only if the version is unchanged (compare and
//! set in one atomic step in the store), retrying on a conflict. So concurrent updates from any
//! number of instances are applied one after another and none is lost.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{FieldProblem, StoreError};
use crate::store::{ChainFilter, ChainWrite, Store};

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
const MAX_CHAIN_ID_CHARS: usize = 200;
/// Attempts of one compare-and-set change before giving up (each conflict means another
/// writer's change went in, so the system as a whole makes progress).
const CAS_ATTEMPTS: usize = 50;

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

fn iso(t: DateTime<Utc>) -> String {
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

/// `POST /api/sessions/:id/chains` and `chain:compiled`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewChainBody {
    pub id: Option<String>,
    pub title: Option<String>,
    pub steps: Option<Vec<Value>>,
    pub total_steps: Option<u64>,
    pub source: Option<String>,
}

/// A checked [`NewChainBody`].
#[derive(Debug, Default, Clone)]
pub struct NewChain {
    pub title: String,
    pub steps: Vec<Step>,
    pub total_steps: Option<u64>,
    pub source: Option<String>,
}

pub fn check_chain_id(id: &str) -> Result<(), FieldProblem> {
    if id.is_empty() || id.chars().count() > MAX_CHAIN_ID_CHARS || id.chars().any(char::is_control)
    {
        return Err(FieldProblem::new(
            "id",
            format!("must be 1-{MAX_CHAIN_ID_CHARS} characters without control characters"),
        ));
    }
    Ok(())
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
                Some(k) if k >= 1 => k,
                _ => {
                    problems.push(FieldProblem::new(
                        format!("steps[{i}].stepNumber"),
                        "must be an integer of at least 1",
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
#[derive(Debug, Deserialize, Default, Clone)]
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
        if self.total_steps.is_some_and(|t| t > MAX_STEPS as u64) {
            problems.push(FieldProblem::new(
                "totalSteps",
                format!("must be at most {MAX_STEPS}"),
            ));
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

impl PartialEq for NewChain {
    fn eq(&self, o: &Self) -> bool {
        self.title == o.title && self.steps == o.steps && self.total_steps == o.total_steps
    }
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
            .filter(|n| *n >= 1)
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

/// Chain changes go through these, on any store.
pub struct Chains<'a> {
    pub store: &'a dyn Store,
    pub ttl: Duration,
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("chain not found")]
    NotFound,
    #[error("a chain with this id exists")]
    Exists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn decode(json: &str) -> Result<Chain, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("chain: {e}")))
}

impl Chains<'_> {
    fn write(&self, c: &Chain) -> ChainWrite {
        ChainWrite {
            id: c.id.clone(),
            session_id: c.session_id.clone(),
            json: serde_json::to_string(c).expect("a chain serializes"),
            active: is_active(&c.status),
            updated_ms: crate::time::parse(&c.updated_at)
                .map(|t| t.timestamp_millis())
                .unwrap_or_default(),
            ttl: self.ttl,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Chain>, StoreError> {
        match self.store.get_chain(id).await? {
            Some((_, json)) => decode(&json).map(Some),
            None => Ok(None),
        }
    }

    pub async fn create(&self, c: &Chain) -> Result<(), ChainError> {
        if self.store.put_chain(&self.write(c), 0).await? {
            Ok(())
        } else {
            Err(ChainError::Exists)
        }
    }

    /// Applies `change` to the chain's current state and writes it if nobody wrote in
    /// between; otherwise reads again and reapplies. `change` returns false to leave the chain
    /// as it is.
    pub async fn update(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Chain, DateTime<Utc>) -> bool,
    ) -> Result<Chain, ChainError> {
        for _ in 0..CAS_ATTEMPTS {
            let Some((version, json)) = self.store.get_chain(id).await? else {
                return Err(ChainError::NotFound);
            };
            let mut chain = decode(&json)?;
            let now = Utc::now();
            if !change(&mut chain, now) {
                return Ok(chain);
            }
            chain.recompute(now);
            if self.store.put_chain(&self.write(&chain), version).await? {
                return Ok(chain);
            }
        }
        Err(ChainError::Store(StoreError::Conflict))
    }

    pub async fn list(&self, filter: ChainFilter<'_>) -> Result<Vec<Chain>, StoreError> {
        self.store
            .list_chains(filter)
            .await?
            .iter()
            .map(|j| decode(j))
            .collect()
    }

    /// The session's newest chain, for events that do not name theirs.
    async fn latest(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .list_chains(ChainFilter::Session(session_id))
            .await?
            .last()
            .and_then(|j| decode(j).ok())
            .map(|c| c.id))
    }

    /// Applies a chain or step event of `session_id`. Every change here is idempotent, so an
    /// event applied twice (a retried post) leaves the chain as once.
    pub async fn apply_event(
        &self,
        session_id: &str,
        chain_id: Option<String>,
        what: ChainEvent,
    ) -> Result<Option<Chain>, ChainError> {
        if let ChainEvent::Compiled(spec) = what {
            let id = chain_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            let chain = Chain::new(id, session_id.to_string(), spec, Utc::now());
            return match self.create(&chain).await {
                Ok(()) => Ok(Some(chain)),
                Err(ChainError::Exists) => Ok(None),
                Err(e) => Err(e),
            };
        }
        let id = match chain_id {
            Some(id) => id,
            None => match self.latest(session_id).await? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        let result = self
            .update(&id, |c, now| {
                if c.session_id != session_id {
                    return false;
                }
                match &what {
                    ChainEvent::Compiled(_) => return false,
                    ChainEvent::Started => {
                        if c.status == "pending" {
                            c.set_status("in_progress", now);
                        }
                    }
                    ChainEvent::Step {
                        number,
                        status,
                        error,
                    } => c.set_step(*number, status, error.clone(), now),
                    ChainEvent::Finished { status, error } => {
                        if error.is_some() {
                            c.error = error.clone();
                        }
                        c.set_status(status, now);
                    }
                }
                true
            })
            .await;
        match result {
            Ok(c) => Ok(Some(c)),
            Err(ChainError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An acknowledged `pause`, `resume` or `cancel` moves the chains it is about: the one its
    /// payload names (`chainId`), else every active chain of the session.
    pub async fn apply_command(
        &self,
        session_id: &str,
        command: &Value,
    ) -> Result<Vec<Chain>, ChainError> {
        let kind = command["command"]["type"].as_str().unwrap_or_default();
        let (from, to): (&[&str], &str) = match kind {
            "pause" => (&["pending", "in_progress"], "paused"),
            "resume" => (&["paused"], "in_progress"),
            "cancel" => (&ACTIVE_STATUSES, "cancelled"),
            _ => return Ok(Vec::new()),
        };
        let ids: Vec<String> = match command["command"]["payload"]["chainId"].as_str() {
            Some(id) => vec![id.to_string()],
            None => self
                .list(ChainFilter::Session(session_id))
                .await?
                .into_iter()
                .filter(|c| is_active(&c.status))
                .map(|c| c.id)
                .collect(),
        };
        let mut moved = Vec::new();
        for id in ids {
            let r = self
                .update(&id, |c, now| {
                    if c.session_id != session_id || !from.contains(&c.status.as_str()) {
                        return false;
                    }
                    c.set_status(to, now);
                    true
                })
                .await;
            match r {
                Ok(c) => moved.push(c),
                Err(ChainError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// Active chains with no update for longer than `stale` become `failed` (`error:"stale"`).
    pub async fn cleanup(&self, stale: Duration) -> Result<usize, ChainError> {
        let cutoff = Utc::now() - chrono::Duration::from_std(stale).unwrap_or_default();
        let mut cleaned = 0;
        for c in self.list(ChainFilter::Active).await? {
            let old = crate::time::parse(&c.updated_at).is_some_and(|t| t < cutoff);
            if !old {
                continue;
            }
            let r = self
                .update(&c.id, |c, now| {
                    let still_old = crate::time::parse(&c.updated_at).is_some_and(|t| t < cutoff);
                    if !is_active(&c.status) || !still_old {
                        return false;
                    }
                    c.error = Some("stale".into());
                    c.set_status("failed", now);
                    true
                })
                .await;
            match r {
                Ok(c) if c.status == "failed" => cleaned += 1,
                Ok(_) | Err(ChainError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(cleaned)
    }
}

/// `GET /api/chains/stats`: every status counted (finished ones too), the active count, and
/// the average progress over all chains.
pub fn stats(chains: &[Chain]) -> Value {
    let mut by_status = Map::new();
    for s in CHAIN_STATUSES {
        by_status.insert(s.into(), 0.into());
    }
    let mut sum = 0.0;
    for c in chains {
        if let Some(n) = by_status.get_mut(&c.status) {
            *n = (n.as_u64().unwrap_or(0) + 1).into();
        }
        sum += c.progress;
    }
    let active = chains.iter().filter(|c| is_active(&c.status)).count();
    let average = if chains.is_empty() {
        0.0
    } else {
        (sum * 10.0 / chains.len() as f64).round() / 10.0
    };
    serde_json::json!({
        "total": chains.len(),
        "active": active,
        "byStatus": by_status,
        "averageProgress": average,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let s = stats(&[
            mk("completed", 100.0),
            mk("in_progress", 50.0),
            mk("paused", 0.0),
        ]);
        assert_eq!(s["total"], 3);
        assert_eq!(s["active"], 2);
        assert_eq!(s["byStatus"]["completed"], 1);
        assert_eq!(s["byStatus"]["cancelled"], 0);
        assert_eq!(s["averageProgress"], 50.0);
    }
}
