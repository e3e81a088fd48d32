//! One simulated agent: it opens sessions, compiles chains of steps and works through them,
//! posting the events a real agent's hooks post, and it obeys the page: `pause` holds it until
//! `resume`, `cancel` ends the chain, `abort` ends the session, `retry` and `skip` act on the
//! named step. Every command is acknowledged with what the agent did.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::api::{Api, Refused};
use super::script::{self, ChainPlan};

pub struct Agent {
    pub api: Api,
    /// Which agent of the demo this is (1-based), for its host name.
    pub number: usize,
    /// Steps take their time divided by this.
    pub speed: f64,
}

/// How a stretch of work ended.
enum Work {
    Done,
    Retry(u64),
    Skip,
    Cancel,
    Abort(String),
}

/// How a chain ended.
enum Ended {
    Finished,
    Aborted(String),
}

impl Agent {
    /// Runs sessions one after another until the demo stops.
    pub async fn run(self) {
        let mut round = 0;
        while !self.api.stopped() {
            if let Err(e) = self.session(round).await {
                if !self.api.stopped() {
                    tracing::warn!(agent = self.number, error = %e, "demo agent: session ended early");
                }
            }
            if !self.api.sleep(self.scaled(2000)).await {
                break;
            }
            round += 1;
        }
    }

    fn scaled(&self, ms: u64) -> Duration {
        Duration::from_millis((ms as f64 / self.speed).max(1.0) as u64)
    }

    async fn event(&self, sid: &str, kind: &str, mut fields: Value) -> Result<Value, Refused> {
        fields["sessionId"] = json!(sid);
        fields["type"] = json!(kind);
        fields["eventId"] = json!(uuid::Uuid::now_v7().to_string());
        self.api.post("/api/events", &fields).await
    }

    async fn session(&self, round: usize) -> Result<(), Refused> {
        let (user, project) = script::person(self.number + round);
        let cwd = format!("/home/{user}/src/{project}");
        let session = self
            .api
            .post(
                "/api/sessions",
                &json!({
                    "cwd": cwd, "userId": user, "hostname": format!("demo-agent-{}", self.number),
                    "platform": "linux", "metadata": {"demo": true, "project": project},
                }),
            )
            .await?;
        let sid = session["id"].as_str().unwrap_or_default().to_string();
        self.event(&sid, "session:started", json!({"cwd": cwd, "user": user}))
            .await?;
        let plans = script::chains(self.number + round);
        for (k, plan) in plans.iter().enumerate() {
            // The first chain of every session stops to ask the person watching.
            if let Ended::Aborted(reason) = self.chain(&sid, plan, k == 0).await? {
                self.event(&sid, "session:ended", json!({"reason": reason}))
                    .await?;
                let path = format!("/api/sessions/{sid}");
                let body = json!({"status": "failed", "endReason": reason});
                self.api.patch(&path, &body).await?;
                return Ok(());
            }
            if !self.api.sleep(self.scaled(800)).await {
                return Ok(());
            }
        }
        self.event(&sid, "session:ended", json!({"reason": "completed"}))
            .await?;
        let summary = format!("{} chains done in {project}", plans.len());
        let body = json!({"status": "completed", "summary": summary});
        self.api
            .patch(&format!("/api/sessions/{sid}"), &body)
            .await?;
        Ok(())
    }

    async fn chain(&self, sid: &str, plan: &ChainPlan, ask: bool) -> Result<Ended, Refused> {
        let chain_id = uuid::Uuid::now_v7().to_string();
        let steps: Vec<Value> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"stepNumber": i + 1, "title": s.title, "action": s.action}))
            .collect();
        let total = steps.len() as u64;
        self.event(
            sid,
            "chain:compiled",
            json!({"chainId": chain_id, "title": plan.title, "steps": steps, "source": "demo"}),
        )
        .await?;
        self.event(sid, "chain:started", json!({"chainId": chain_id}))
            .await?;
        let mut step: u64 = 1;
        let mut skip = BTreeSet::new();
        let mut failed_once = BTreeSet::new();
        let mut asked = !ask;
        while step <= total {
            let at = json!({"chainId": chain_id, "stepNumber": step});
            if skip.remove(&step) {
                self.event(sid, "step:skipped", at).await?;
                step += 1;
                continue;
            }
            let title = &plan.steps[step as usize - 1].title;
            let mut started = at.clone();
            started["title"] = json!(title);
            self.event(sid, "step:started", started).await?;
            let began = Instant::now();
            let took = self.scaled(1500 + script::random(2500) as u64);
            let outcome = self.work(sid, step, total, took, &mut skip).await?;
            let outcome = match outcome {
                Work::Done if !asked && step == 2 => {
                    asked = true;
                    self.finish_step(sid, &at, began).await?;
                    step += 1;
                    match self.ask(sid, step, total, &mut skip).await? {
                        Work::Done => continue,
                        other => other,
                    }
                }
                other => other,
            };
            match outcome {
                Work::Done if step > 1 && failed_once.insert(step) && script::random(100) < 15 => {
                    let mut failed = at.clone();
                    failed["error"] = json!(script::failure(step));
                    self.event(sid, "step:failed", failed).await?;
                    if !self.api.sleep(self.scaled(700)).await {
                        return Err(Refused("stopped".into()));
                    }
                    // Tried again: the loop starts the same step once more.
                }
                Work::Done => {
                    self.finish_step(sid, &at, began).await?;
                    step += 1;
                }
                Work::Retry(n) => step = n,
                Work::Skip => {
                    let at = json!({"chainId": chain_id, "stepNumber": step});
                    self.event(sid, "step:skipped", at).await?;
                    step += 1;
                }
                Work::Cancel => {
                    let body = json!({"chainId": chain_id, "status": "cancelled"});
                    self.event(sid, "chain:cancelled", body).await?;
                    return Ok(Ended::Finished);
                }
                Work::Abort(reason) => {
                    let body = json!({"chainId": chain_id, "status": "failed", "error": reason});
                    self.event(sid, "chain:failed", body).await?;
                    return Ok(Ended::Aborted(reason));
                }
            }
        }
        let done = json!({"chainId": chain_id, "status": "completed", "success": true});
        self.event(sid, "chain:completed", done).await?;
        Ok(Ended::Finished)
    }

    async fn finish_step(&self, sid: &str, at: &Value, began: Instant) -> Result<(), Refused> {
        let mut done = at.clone();
        done["durationMs"] = json!(began.elapsed().as_millis() as u64);
        self.event(sid, "step:completed", done).await?;
        Ok(())
    }

    /// Works on `step` for `took`, posting tool events and obeying commands meanwhile.
    async fn work(
        &self,
        sid: &str,
        step: u64,
        total: u64,
        took: Duration,
        skip: &mut BTreeSet<u64>,
    ) -> Result<Work, Refused> {
        let mut deadline = Instant::now() + took;
        let tool_every = self.scaled(700);
        let mut next_tool = Instant::now() + tool_every;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Work::Done);
            }
            let wait = deadline.min(next_tool).saturating_duration_since(now);
            for command in self.commands(sid, wait).await? {
                match self.obey(&command, step, total, skip).await? {
                    Obeyed::Go => {}
                    Obeyed::Paused => {
                        let from = Instant::now();
                        if let Some(w) = self.paused(sid, step, total, skip).await? {
                            return Ok(w);
                        }
                        deadline += from.elapsed();
                        next_tool = Instant::now() + tool_every;
                    }
                    Obeyed::Stop(w) => return Ok(w),
                }
            }
            if Instant::now() >= next_tool {
                let (tool, target) = script::tool_use(step);
                self.event(
                    sid,
                    "tool:used",
                    json!({"tool": tool, "target": target, "stepNumber": step}),
                )
                .await?;
                next_tool += tool_every;
            }
        }
    }

    /// Asks the person watching and waits for the answer (obeying commands meanwhile).
    async fn ask(
        &self,
        sid: &str,
        step: u64,
        total: u64,
        skip: &mut BTreeSet<u64>,
    ) -> Result<Work, Refused> {
        let (prompt, answers) = script::question();
        let body = json!({"promptType": "choice", "promptText": prompt, "quickResponses": answers});
        self.api
            .post(&format!("/api/sessions/{sid}/awaiting"), &body)
            .await?;
        let input_path = format!("/api/sessions/{sid}/input?wait=20&consume=false");
        loop {
            // Both long polls at once; the input is not taken until it is acknowledged, so
            // the poll that loses the race loses nothing.
            let wait = Duration::from_secs(20);
            let commands = tokio::select! {
                input = self.api.get(&input_path, wait) => {
                    let input = input?;
                    let Some(item) = input["input"].as_object() else { continue };
                    let answer = item.get("input").cloned().unwrap_or(Value::Null);
                    let id = item.get("inputId").and_then(Value::as_str).unwrap_or_default();
                    self.event(sid, "interaction:input-received", json!({"input": answer, "prompt": prompt}))
                        .await?;
                    self.api.post(&format!("/api/sessions/{sid}/input/{id}/ack"), &json!({})).await?;
                    self.api
                        .patch(&format!("/api/sessions/{sid}"), &json!({"conversationState": "idle"}))
                        .await?;
                    return Ok(Work::Done);
                }
                commands = self.commands(sid, wait) => commands?,
            };
            for command in commands {
                match self.obey(&command, step, total, skip).await? {
                    Obeyed::Go => {}
                    Obeyed::Paused => {
                        if let Some(w) = self.paused(sid, step, total, skip).await? {
                            return Ok(w);
                        }
                    }
                    Obeyed::Stop(w) => return Ok(w),
                }
            }
        }
    }

    /// Holds until `resume`; a command that ends the step ends the pause too.
    async fn paused(
        &self,
        sid: &str,
        step: u64,
        total: u64,
        skip: &mut BTreeSet<u64>,
    ) -> Result<Option<Work>, Refused> {
        loop {
            for command in self.commands(sid, Duration::from_secs(20)).await? {
                if command["command"]["type"] == "resume" {
                    self.ack(&command, Ok("resumed")).await?;
                    return Ok(None);
                }
                match self.obey(&command, step, total, skip).await? {
                    Obeyed::Go | Obeyed::Paused => {}
                    Obeyed::Stop(w) => return Ok(Some(w)),
                }
            }
        }
    }

    async fn commands(&self, sid: &str, wait: Duration) -> Result<Vec<Value>, Refused> {
        let path = format!(
            "/api/sessions/{sid}/commands?timeout={}",
            wait.as_millis().max(1)
        );
        let answer = self.api.get(&path, wait).await?;
        Ok(answer["commands"].as_array().cloned().unwrap_or_default())
    }

    async fn ack(&self, command: &Value, outcome: Result<&str, String>) -> Result<(), Refused> {
        let id = command["commandId"].as_str().unwrap_or_default();
        let body = match outcome {
            Ok(result) => json!({"result": result}),
            Err(error) => json!({"error": error}),
        };
        match self
            .api
            .post(&format!("/api/commands/{id}/ack"), &body)
            .await
        {
            // Expired meanwhile: nothing left to answer.
            Err(Refused(e)) if e.contains("404") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Does what a command asks (acknowledging it) and says how the work goes on.
    async fn obey(
        &self,
        command: &Value,
        step: u64,
        total: u64,
        skip: &mut BTreeSet<u64>,
    ) -> Result<Obeyed, Refused> {
        let what = &command["command"];
        let n = what["stepNumber"].as_u64().unwrap_or(0);
        let (outcome, obeyed) = match what["type"].as_str().unwrap_or_default() {
            "pause" => (Ok("paused".to_string()), Obeyed::Paused),
            "resume" => (Ok("was not paused".into()), Obeyed::Go),
            "cancel" => (Ok("chain cancelled".into()), Obeyed::Stop(Work::Cancel)),
            "abort" => {
                let reason = what["reason"].as_str().unwrap_or("aborted").to_string();
                (
                    Ok(format!("aborted: {reason}")),
                    Obeyed::Stop(Work::Abort(reason)),
                )
            }
            "retry" if (1..=step).contains(&n) => (
                Ok(format!("retrying step {n}")),
                Obeyed::Stop(Work::Retry(n)),
            ),
            "retry" => (Err(format!("step {n} has not run yet")), Obeyed::Go),
            "skip" if n == step => (Ok(format!("skipped step {n}")), Obeyed::Stop(Work::Skip)),
            "skip" if n > step && n <= total => {
                skip.insert(n);
                (Ok(format!("will skip step {n}")), Obeyed::Go)
            }
            "skip" => (Err(format!("step {n} is not ahead")), Obeyed::Go),
            other => (Err(format!("unknown command {other}")), Obeyed::Go),
        };
        self.ack(command, outcome.as_deref().map_err(Clone::clone))
            .await?;
        Ok(obeyed)
    }
}

enum Obeyed {
    Go,
    Paused,
    Stop(Work),
}
