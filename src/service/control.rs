//! The agent control loop: commands (posted by people, polled and acknowledged by the agent)
//! and input (answers for an agent that waits), over one queue store. Polls can long-poll:
//! they register with the instance's [`Waiters`] *before* reading, and the bus wakes them
//! when an item is queued on any instance.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::events::Events;
use super::sessions::Sessions;
use super::waiters::Waiters;
use super::ServiceError;
use crate::domain::control::{self, CommandAck, ControlQueue, NewCommand, NewInput};
use crate::domain::session::{check_session_id, field};
use crate::metrics::Metrics;
use crate::store::{ControlStore, StoreError};
use crate::time::Now;

/// Longest item id an acknowledgement may name.
const MAX_ITEM_ID_CHARS: usize = 200;

#[derive(Clone)]
pub struct Control {
    pub store: Arc<dyn ControlStore>,
    pub sessions: Sessions,
    /// Stores `command:acknowledged` events, and through its chains moves them on acks.
    pub events: Events,
    pub waiters: Arc<Waiters>,
    /// How long a queued item lives (`QUEUE_TTL_SECS`).
    pub ttl: Duration,
    /// Cancelled on shutdown: long polls answer at once.
    pub shutdown: CancellationToken,
    pub metrics: Arc<Metrics>,
}

/// An ISO time `ttl` from now.
fn expires_at(ttl: Duration) -> String {
    let later = chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    crate::time::format(later)
}

impl Control {
    /// Queues a command for an existing session and announces it; returns its record.
    pub async fn push_command(
        &self,
        session_id: &str,
        body: NewCommand,
    ) -> Result<Value, ServiceError> {
        self.sessions.require(session_id).await?;
        let command_id = uuid::Uuid::now_v7().to_string();
        let now = Now::get();
        let record = control::command_record(
            body,
            session_id,
            &command_id,
            &now.iso,
            &expires_at(self.ttl),
        )
        .map_err(ServiceError::Invalid)?;
        self.store
            .push(
                ControlQueue::Commands,
                session_id,
                &command_id,
                &record.to_string(),
                self.ttl,
            )
            .await?;
        self.settle_before(session_id, &command_id, &record).await;
        Ok(record)
    }

    /// A newer command settles the pending ones it makes moot, so that the queue an agent
    /// reads says what it should do now: `resume` settles every pending `pause`, `cancel` and
    /// `abort` every command before them. Settled commands are acknowledged as failed
    /// (`error: "superseded by <type> <id>"`), so no chain moves for them. Best effort: a
    /// failure leaves them pending, which is what they were.
    async fn settle_before(&self, session_id: &str, newer_id: &str, newer: &Value) {
        let kind = newer["type"].as_str().unwrap_or_default();
        let settles = |older: &str| match kind {
            "resume" => older == "pause",
            "cancel" | "abort" => true,
            _ => false,
        };
        if !matches!(kind, "resume" | "cancel" | "abort") {
            return;
        }
        let pending = match self
            .store
            .pending(ControlQueue::Commands, session_id, false)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(session = %session_id, error = %e, "could not read commands to settle");
                return;
            }
        };
        for item in pending {
            let Ok(older) = serde_json::from_str::<Value>(&item) else {
                continue;
            };
            let Some(id) = older["commandId"].as_str() else {
                continue;
            };
            if id == newer_id || !settles(older["command"]["type"].as_str().unwrap_or_default()) {
                continue;
            }
            let ack = CommandAck {
                result: None,
                error: Some(format!("superseded by {kind} {newer_id}").into()),
            };
            if let Err(e) = self.ack_command(Some(session_id), id, ack).await {
                tracing::warn!(session = %session_id, command = %id, error = %e, "could not settle a command");
            }
        }
    }

    /// Queues input for an existing session (from HTTP or a WebSocket `input` message);
    /// returns the stored item.
    pub async fn push_input(
        &self,
        session_id: &str,
        body: NewInput,
        source: &str,
    ) -> Result<Value, ServiceError> {
        self.sessions.require(session_id).await?;
        let input_id = uuid::Uuid::now_v7().to_string();
        let now = Now::get();
        let item = control::input_item(body, &input_id, source, &now.iso, &expires_at(self.ttl))
            .map_err(ServiceError::Invalid)?;
        self.store
            .push(
                ControlQueue::Input,
                session_id,
                &input_id,
                &item.to_string(),
                self.ttl,
            )
            .await?;
        Ok(item)
    }

    /// The session's pending items of `queue`, waiting up to `wait` for one to arrive.
    pub async fn poll(
        &self,
        queue: ControlQueue,
        session_id: &str,
        wait: Duration,
        take: bool,
    ) -> Result<Vec<Arc<str>>, ServiceError> {
        check_session_id(session_id).map_err(ServiceError::invalid)?;
        let items = self.poll_queue(queue, session_id, wait, take).await?;
        if take && queue == ControlQueue::Input && !items.is_empty() {
            self.answered(session_id).await;
        }
        Ok(items)
    }

    async fn poll_queue(
        &self,
        queue: ControlQueue,
        session_id: &str,
        wait: Duration,
        take: bool,
    ) -> Result<Vec<Arc<str>>, ServiceError> {
        if wait.is_zero() {
            return Ok(self.store.pending(queue, session_id, take).await?);
        }
        // Registers before each read, so an item queued between the read and the wait still
        // wakes it. Ends early (empty) when the instance shuts down; dropping the future (the
        // client went away) unregisters.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let waiting = self.waiters.register(session_id, queue);
            let notified = waiting.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let items = self.store.pending(queue, session_id, take).await?;
            if !items.is_empty() {
                return Ok(items);
            }
            tokio::select! {
                _ = notified => continue,
                _ = tokio::time::sleep_until(deadline) => return Ok(items),
                _ = self.shutdown.cancelled() => return Ok(items),
            }
        }
    }

    /// Removes one queued input item; [`ServiceError::NotFound`] when it is not queued.
    pub async fn ack_input(&self, session_id: &str, input_id: &str) -> Result<(), ServiceError> {
        check_session_id(session_id).map_err(ServiceError::invalid)?;
        match self
            .store
            .ack(ControlQueue::Input, Some(session_id), input_id, "{}")
            .await?
        {
            Some(_) => {
                self.answered(session_id).await;
                Ok(())
            }
            None => Err(ServiceError::NotFound("input")),
        }
    }

    /// The agent has taken its input: a session that was `awaiting_input` is `idle` again and
    /// its `lastPrompt` is cleared (as the ActionFlows backend did). Best effort: the input
    /// is already taken, so a failure here is logged, not answered.
    async fn answered(&self, session_id: &str) {
        let result = async {
            let Some(s) = self.sessions.store.get_session(session_id).await? else {
                return Ok(());
            };
            if s.conversation_state.as_deref() == Some("awaiting_input") {
                let fields = vec![
                    (field::CONVERSATION_STATE, "idle".to_string()),
                    (field::LAST_PROMPT, "null".to_string()),
                    (field::UPDATED_AT, Now::get().iso),
                ];
                self.sessions
                    .store
                    .update_session(session_id, fields)
                    .await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(session = %session_id, error = %e, "could not mark the session idle");
        }
    }

    /// Acknowledges a command (of `session_id`, when given). The first acknowledgement is
    /// published as a `command:acknowledged` event, and a successful `pause`, `resume` or
    /// `cancel` moves the session's chains.
    pub async fn ack_command(
        &self,
        session_id: Option<&str>,
        command_id: &str,
        ack: CommandAck,
    ) -> Result<(), ServiceError> {
        if let Some(s) = session_id {
            check_session_id(s).map_err(ServiceError::invalid)?;
        }
        if command_id.is_empty() || command_id.chars().count() > MAX_ITEM_ID_CHARS {
            return Err(ServiceError::NotFound("command"));
        }
        let now = Now::get();
        let succeeded = ack.succeeded();
        let outcome = json!({"result": ack.result, "error": ack.error, "acknowledgedAt": now.iso});
        let Some(acked) = self
            .store
            .ack(
                ControlQueue::Commands,
                session_id,
                command_id,
                &outcome.to_string(),
            )
            .await?
        else {
            return Err(ServiceError::NotFound("command"));
        };
        if !acked.first {
            return Ok(());
        }
        let record: Value = serde_json::from_str(&acked.record).unwrap_or_default();
        let mut event = json!({
            "sessionId": acked.session_id,
            "type": "command:acknowledged",
            "commandId": command_id,
            "commandType": record["command"]["type"],
            "success": succeeded,
        });
        if let Some(r) = ack.result {
            event["result"] = r;
        }
        if let Some(e) = ack.error {
            event["error"] = e;
        }
        self.events.store_event(event, &now).await?;
        if succeeded {
            if let Err(e) = self
                .events
                .chains
                .apply_command(&acked.session_id, &record)
                .await
            {
                self.metrics.chain_update_failures.inc();
                tracing::warn!(session = %acked.session_id, error = %e, "could not move chains for a command");
            }
        }
        Ok(())
    }
}

/// Stored items as they are (not re-encoded). An item that is not JSON is an error, never
/// silently left out: with take-all it has already left the queue.
pub fn raw_items(items: &[Arc<str>]) -> Result<Vec<Box<serde_json::value::RawValue>>, StoreError> {
    items
        .iter()
        .map(|s| {
            serde_json::value::RawValue::from_string(s.to_string())
                .map_err(|e| StoreError::Corrupt(format!("queued item: {e}")))
        })
        .collect()
}
