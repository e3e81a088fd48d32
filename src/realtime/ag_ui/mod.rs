//! The AG-UI profile of a session's stream (`GET /api/sessions/:id/stream?format=ag-ui`): the
//! same events, in the same order and with the same `id:` lines, as AG-UI events (the
//! agent-user interaction protocol of CopilotKit, `@ag-ui/core` 1.0), so that its client
//! (`@ag-ui/client`) follows a session with its verifier satisfied.
//!
//! The session is the AG-UI *thread*; a *run* is what goes on between a start and a stop:
//!
//! | Stored event | AG-UI events |
//! |---|---|
//! | an AG-UI event (any `type` of the protocol's) | itself, without the members the gateway added |
//! | `chain:started` / `chain:completed`, `chain:failed`, `chain:cancelled` | `STEP_STARTED` / `STEP_FINISHED` named `chain <title or id>` (closing its open steps) |
//! | `step:started` / `step:completed`, `step:failed`, `step:skipped` | `STEP_STARTED` / `STEP_FINISHED` named `step <n>` |
//! | `message` (`role`, `content` or `text`), `claude:UserPromptSubmit` (a user message), `claude:Stop` with `last_assistant_message` | `TEXT_MESSAGE_START`, `_CONTENT`, `_END` |
//! | `tool:started`, `claude:PreToolUse` | `TOOL_CALL_START`, `_ARGS` (the input as JSON), `_END` |
//! | `tool:used` (PostToolUse), `tool:completed`, `tool:failed`, `claude:PostToolUseFailure` | `TOOL_CALL_RESULT` (after the call's `START` … `END` when none was sent) |
//! | `interaction:awaiting-input`, `permission:requested` | `RUN_FINISHED` with outcome `interrupt` (reason `input_required` or `tool_approval`) |
//! | `claude:Stop`, `session:ended` | `RUN_FINISHED` |
//! | anything else | `CUSTOM` named by its `type`, the event as `value` |
//!
//! A `command` message is a `CUSTOM` event named `command`; `chain` messages are left out.
//! Every mapped event carries the stored one as `rawEvent` on the last of its group. An event
//! that comes while no run is open starts one (`RUN_STARTED`) and re-opens what was open;
//! a run finishes with every open step, message and tool call closed (they are opened again
//! in the next run), as the protocol's verifier requires. A stream starts with a *prelude*:
//! `RUN_STARTED`, a `STATE_SNAPSHOT` of the session, a `START` for each construct still open
//! where the stream starts, and the interrupt still waiting, if one is.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::domain::ag_ui;

mod ours;

/// Tool calls remembered as announced (their result needs no `START` first) at most.
const ANNOUNCED_MAX: usize = 4096;

/// One stream's AG-UI state: what is open, and the run in progress.
#[derive(Debug, Default)]
pub struct AgUi {
    thread: String,
    /// The run in progress (`None` between runs).
    run: Option<String>,
    /// Open steps: a key (`chain:<id>`, `step:<n>`, `ag-ui:<name>`) and the step's name.
    steps: Vec<(String, String)>,
    /// Open text messages posted as AG-UI events: id and role.
    messages: Vec<(String, Value)>,
    /// Open tool calls posted as AG-UI events: id and name.
    tools: Vec<(String, String)>,
    announced: HashSet<String>,
    /// The outcome of the run that stopped to wait for someone, until something comes.
    interrupt: Option<Value>,
}

impl AgUi {
    pub fn new(thread: &str) -> AgUi {
        AgUi {
            thread: thread.to_string(),
            ..AgUi::default()
        }
    }

    /// Takes in an event from before the stream's start (its AG-UI events are not sent).
    pub fn fold(&mut self, stored: &str) {
        self.event(stored);
    }

    /// The stream's first events: a run, the session's state, what is open, what waits.
    pub fn prelude(&mut self, snapshot: Value) -> Vec<Value> {
        let mut out = Vec::new();
        let waiting = self.interrupt.take();
        self.run = None;
        let state = json!({"type": "STATE_SNAPSHOT", "snapshot": snapshot});
        self.start_run(&mut out, Some(state));
        if let Some(outcome) = waiting {
            self.finish(&mut out, Some(outcome.clone()), false);
            self.interrupt = Some(outcome);
        }
        out
    }

    /// A stored event's AG-UI events (its JSON as stored).
    pub fn event(&mut self, stored: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let Ok(Value::Object(ev)) = serde_json::from_str::<Value>(stored) else {
            return out;
        };
        let kind = str_of(&ev, "type").unwrap_or_default().to_string();
        if ag_ui::is_type(&kind) {
            self.native(own(ev), &kind, &mut out);
            return out;
        }
        self.ours(&ev, &kind, &mut out);
        if let Some(Value::Object(last)) = out.last_mut() {
            let custom = last.get("type").and_then(Value::as_str) == Some("CUSTOM");
            if !custom && !last.contains_key("rawEvent") {
                last.insert("rawEvent".into(), Value::Object(ev));
            }
        }
        out
    }

    /// A message about the session that is not a stored event: a `command` as `CUSTOM`; a
    /// `chain` is left out (its step events already say what it says).
    pub fn message(&mut self, frame: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(frame) else {
            return out;
        };
        let name = str_of(&m, "type").unwrap_or("message").to_string();
        if name != "chain" {
            let value = m.remove("payload").unwrap_or(Value::Null);
            self.emit(
                &mut out,
                json!({"type": "CUSTOM", "name": name, "value": value}),
            );
        }
        out
    }

    /// The stream's last event when it ends for `code` (resume with `Last-Event-ID`).
    pub fn error(code: &str, message: &str) -> Value {
        json!({"type": "RUN_ERROR", "code": code, "message": message})
    }

    /// An event posted as AG-UI: passed on, with the run and what is open kept in step.
    fn native(&mut self, ev: Map<String, Value>, kind: &str, out: &mut Vec<Value>) {
        let id = |k: &str| str_of(&ev, k).unwrap_or_default().to_string();
        match kind {
            "RUN_STARTED" => {
                if self.run.is_some() {
                    self.finish(out, None, false);
                }
                self.run = Some(id("runId"));
                self.interrupt = None;
                out.push(Value::Object(ev));
                self.reopen(out);
                return;
            }
            "RUN_FINISHED" => {
                self.ensure_run(out);
                self.close_all(out);
                self.run = None;
                self.interrupt = ev
                    .get("outcome")
                    .filter(|o| o["type"] == "interrupt")
                    .cloned();
                out.push(Value::Object(ev));
                return;
            }
            "RUN_ERROR" => {
                self.run = None;
                out.push(Value::Object(ev));
                return;
            }
            _ => self.ensure_run(out),
        }
        match kind {
            "TEXT_MESSAGE_START" => {
                let role = ev
                    .get("role")
                    .cloned()
                    .unwrap_or_else(|| "assistant".into());
                self.messages.push((id("messageId"), role));
            }
            "TEXT_MESSAGE_CONTENT" | "TEXT_MESSAGE_END" => {
                let m = id("messageId");
                if !self.messages.iter().any(|(open, _)| *open == m) {
                    out.push(
                        json!({"type": "TEXT_MESSAGE_START", "messageId": m, "role": "assistant"}),
                    );
                    self.messages.push((m.clone(), "assistant".into()));
                }
                if kind == "TEXT_MESSAGE_END" {
                    self.messages.retain(|(open, _)| *open != m);
                }
            }
            "TOOL_CALL_START" => {
                let t = id("toolCallId");
                self.tools.push((t.clone(), id("toolCallName")));
                self.announce(t);
            }
            "TOOL_CALL_ARGS" | "TOOL_CALL_END" => {
                let t = id("toolCallId");
                if !self.tools.iter().any(|(open, _)| *open == t) {
                    out.push(json!({"type": "TOOL_CALL_START", "toolCallId": t, "toolCallName": "unknown"}));
                    self.tools.push((t.clone(), "unknown".into()));
                }
                if kind == "TOOL_CALL_END" {
                    self.tools.retain(|(open, _)| *open != t);
                }
            }
            "STEP_STARTED" => self
                .steps
                .push((format!("ag-ui:{}", id("stepName")), id("stepName"))),
            "STEP_FINISHED" => {
                let key = format!("ag-ui:{}", id("stepName"));
                if !self.steps.iter().any(|(k, _)| *k == key) {
                    out.push(json!({"type": "STEP_STARTED", "stepName": id("stepName")}));
                }
                self.steps.retain(|(k, _)| *k != key);
            }
            _ => {}
        }
        out.push(Value::Object(ev));
    }

    fn open_step(&mut self, out: &mut Vec<Value>, key: String, name: String) {
        if self.steps.iter().any(|(k, _)| *k == key) {
            // Started again (a retry): one step, still open.
            self.emit(
                out,
                json!({"type": "CUSTOM", "name": "step:restarted", "value": name}),
            );
            return;
        }
        self.emit(out, json!({"type": "STEP_STARTED", "stepName": name}));
        self.steps.push((key, name));
    }

    /// Finishes the step `key`; one never started (skipped, or joined after its start) is
    /// started and finished at once, named `name`.
    fn close_step(&mut self, out: &mut Vec<Value>, key: &str, name: Option<String>) {
        self.ensure_run(out);
        match self.steps.iter().position(|(k, _)| k == key) {
            Some(i) => {
                let (_, name) = self.steps.remove(i);
                out.push(json!({"type": "STEP_FINISHED", "stepName": name}));
            }
            None => {
                let Some(name) = name else { return };
                out.push(json!({"type": "STEP_STARTED", "stepName": name}));
                out.push(json!({"type": "STEP_FINISHED", "stepName": name}));
            }
        }
    }

    /// Ends the run, waiting for the answer `interrupt` asks for.
    fn interrupted(&mut self, out: &mut Vec<Value>, interrupt: Value) {
        let outcome = json!({"type": "interrupt", "interrupts": [interrupt]});
        self.finish(out, Some(outcome.clone()), false);
        self.interrupt = Some(outcome);
    }

    /// Ends the run (starting one first if none is open, as the protocol wants a run to end):
    /// closes what is open, forgetting it when `done` (the session ended).
    fn finish(&mut self, out: &mut Vec<Value>, outcome: Option<Value>, done: bool) {
        self.ensure_run(out);
        self.close_all(out);
        if done {
            self.steps.clear();
            self.messages.clear();
            self.tools.clear();
        }
        let run = self.run.take().unwrap_or_default();
        let mut fin = json!({"type": "RUN_FINISHED", "threadId": self.thread, "runId": run});
        if let Some(o) = outcome {
            fin["outcome"] = o;
        }
        out.push(fin);
    }

    /// `END`s for what is open (kept open in this state: the next run opens it again).
    fn close_all(&self, out: &mut Vec<Value>) {
        for (id, _) in self.tools.iter().rev() {
            out.push(json!({"type": "TOOL_CALL_END", "toolCallId": id}));
        }
        for (id, _) in self.messages.iter().rev() {
            out.push(json!({"type": "TEXT_MESSAGE_END", "messageId": id}));
        }
        for (_, name) in self.steps.iter().rev() {
            out.push(json!({"type": "STEP_FINISHED", "stepName": name}));
        }
    }

    fn emit(&mut self, out: &mut Vec<Value>, ev: Value) {
        self.ensure_run(out);
        out.push(ev);
    }

    fn ensure_run(&mut self, out: &mut Vec<Value>) {
        if self.run.is_none() {
            self.start_run(out, None);
        }
    }

    /// `RUN_STARTED` (then `also`), and a `START` for each construct still open.
    fn start_run(&mut self, out: &mut Vec<Value>, also: Option<Value>) {
        let run = uuid::Uuid::now_v7().to_string();
        out.push(json!({"type": "RUN_STARTED", "threadId": self.thread, "runId": run}));
        self.run = Some(run);
        self.interrupt = None;
        out.extend(also);
        self.reopen(out);
    }

    fn reopen(&self, out: &mut Vec<Value>) {
        for (_, name) in &self.steps {
            out.push(json!({"type": "STEP_STARTED", "stepName": name}));
        }
        for (id, role) in &self.messages {
            out.push(json!({"type": "TEXT_MESSAGE_START", "messageId": id, "role": role}));
        }
        for (id, name) in &self.tools {
            out.push(json!({"type": "TOOL_CALL_START", "toolCallId": id, "toolCallName": name}));
        }
    }
}

/// An AG-UI event as posted, without what the gateway added (`sessionId`, `eventId`, `seq`,
/// `receivedAt`, `correlationId`, a `timestamp` that is not AG-UI's number).
fn own(mut ev: Map<String, Value>) -> Map<String, Value> {
    for k in ["sessionId", "eventId", "seq", "receivedAt", "correlationId"] {
        ev.remove(k);
    }
    if ev.get("timestamp").is_some_and(|t| !t.is_number()) {
        ev.remove("timestamp");
    }
    ev
}

fn str_of<'a>(ev: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    ev.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(a: &mut AgUi, events: &[Value]) -> Vec<String> {
        let out: Vec<Value> = events
            .iter()
            .flat_map(|e| a.event(&e.to_string()))
            .collect();
        out.iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_join_reopens_what_is_open_and_repeats_what_waits() {
        let mut a = AgUi::new("s");
        for e in [
            json!({"type": "step:started", "stepNumber": 3}),
            json!({"type": "TOOL_CALL_START", "toolCallId": "t", "toolCallName": "x"}),
            json!({"type": "interaction:awaiting-input", "eventId": "q1", "promptText": "ok?"}),
        ] {
            a.fold(&e.to_string());
        }
        let out = a.prelude(json!({"id": "s"}));
        let types: Vec<&str> = out.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "RUN_STARTED",
                "STATE_SNAPSHOT",
                "STEP_STARTED",
                "TOOL_CALL_START",
                "TOOL_CALL_END",
                "STEP_FINISHED",
                "RUN_FINISHED"
            ]
        );
        assert_eq!(out[6]["outcome"]["interrupts"][0]["id"], "q1");
        // What comes next starts a run with the step and the tool call open again.
        let next = mapped(
            &mut a,
            &[json!({"type": "TOOL_CALL_END", "toolCallId": "t"})],
        );
        assert_eq!(
            next,
            [
                "RUN_STARTED",
                "STEP_STARTED",
                "TOOL_CALL_START",
                "TOOL_CALL_END"
            ]
        );
    }

    #[test]
    fn content_for_a_message_never_started_starts_it() {
        let mut a = AgUi::new("s");
        let got = mapped(
            &mut a,
            &[
                json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "x", "sessionId": "s", "seq": 1}),
            ],
        );
        assert_eq!(
            got,
            ["RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT"]
        );
        let skipped = mapped(&mut a, &[json!({"type": "step:skipped", "stepNumber": 2})]);
        assert_eq!(skipped, ["STEP_STARTED", "STEP_FINISHED"]);
    }
}
