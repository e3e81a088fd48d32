//! Permission prompts answered from anywhere: a Claude Code hook that asks ([`Permissions::ask`])
//! is answered by a rule at once, or opens a request and waits, held by the instance that
//! received it, until a decision lands on any instance ([`Permissions::decide`]: the first
//! wins), its deadline passes, or its agent goes away. The hold registers with the instance's
//! [`Waiters`] before it reads the store, and the settlement's announcement on the bus wakes it:
//! never a poll of the store on a timer.
//!
//! Every request and settlement is also an event of its session (`permission:requested`,
//! `permission:decided` with who decided, where and how long it waited), so the stream is the
//! audit trail.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::events::Events;
use super::waiters::Waiters;
use super::ServiceError;
use crate::bus::Signal;
use crate::domain::event::{draft_event, EventContext};
use crate::domain::permission_rules::{self as rules, RuleBehavior};
use crate::domain::permissions::{self as domain, Decision, Hook, Record, Status};
use crate::store::permissions::{Opened, PermissionLimits, PermissionStore};
use crate::time::{now_ms, Now};

/// A listing narrowed to a settled status looks among this many times as many requests as it
/// may show (the newest).
pub const SCAN_PER_LISTED: usize = 10;

#[derive(Clone)]
pub struct Permissions {
    pub store: Arc<dyn PermissionStore>,
    /// Where requests and decisions are recorded as events of their sessions.
    pub events: Events,
    pub waiters: Arc<Waiters>,
    /// How long a request waits (`PERMISSION_TIMEOUT_SECS`).
    pub timeout: Duration,
    pub limits: PermissionLimits,
    /// Cancelled on shutdown: held hooks are answered at once.
    pub shutdown: CancellationToken,
}

/// A hook that asks for a tool call: who, which tool, with what.
pub struct Ask<'a> {
    pub hook: Hook,
    /// The request's id (derived from the hook, so a hook delivered again finds its request).
    pub id: String,
    pub session_id: &'a str,
    pub tool: &'a str,
    pub input: &'a Value,
    /// Fields of the hook kept with the request (`toolUseId`, `suggestions`).
    pub extra: Map<String, Value>,
    /// The instance holding the hook.
    pub instance: &'a str,
}

impl Permissions {
    /// The hook's answer: a rule's, a person's, or (no decision by the deadline, or the
    /// gateway stopping) the one that has Claude Code ask in its terminal. A `PreToolUse` that
    /// no rule sends to a person is answered `{}` at once (Claude Code goes on as it would).
    pub async fn ask(&self, ask: Ask<'_>) -> Result<Value, ServiceError> {
        let in_force = self.rules().await?;
        let rule = rules::decide(&in_force, ask.tool, ask.input);
        match (rule, ask.hook) {
            (Some(r), _) if r.behavior != RuleBehavior::Ask => {
                let (behavior, status) = if r.behavior == RuleBehavior::Allow {
                    ("allow", Status::Allowed)
                } else {
                    ("deny", Status::Denied)
                };
                let mut decision = json!({
                    "behavior": behavior,
                    "decidedBy": format!("rule:{}", r.id),
                    "decidedAt": Now::get().iso,
                    "instance": ask.instance,
                    "latencyMs": 0,
                });
                if let Some(m) = &r.message {
                    decision["message"] = m.as_str().into();
                }
                let mut event = request_fields(&ask);
                event.insert("status".into(), status.as_str().into());
                event.insert("decision".into(), decision.clone());
                self.record(&ask.id, "decided", ask.session_id, event).await;
                Ok(ask.hook.answer(&decision))
            }
            (None, Hook::PreToolUse) => Ok(json!({})),
            _ => self.hold(ask).await,
        }
    }

    /// Opens the request (or finds it, for a hook delivered again) and waits for it to settle.
    async fn hold(&self, ask: Ask<'_>) -> Result<Value, ServiceError> {
        let waiting = self.waiters.register_signal(Signal::Permission, &ask.id);
        let mut woken = Box::pin(waiting.notify.notified());
        woken.as_mut().enable();
        let now = Now::get();
        let expires_at_ms = now.ms + self.timeout.as_millis() as i64;
        let mut request = request_fields(&ask);
        request.insert("id".into(), ask.id.as_str().into());
        request.insert("createdAt".into(), now.iso.as_str().into());
        request.insert("expiresAt".into(), crate::time::iso_ms(expires_at_ms));
        request.insert("answerRole".into(), "agent".into());
        let request = Value::Object(request);
        let mut record = match self
            .store
            .open(&ask.id, &request.to_string(), expires_at_ms, self.limits)
            .await?
        {
            Opened::New(r) => {
                let fields = request.as_object().cloned().unwrap_or_default();
                self.record(&ask.id, "requested", ask.session_id, fields)
                    .await;
                r
            }
            Opened::Existing(r) => r,
        };
        let mut gone = Abandon {
            permissions: self.clone(),
            id: Some(ask.id.clone()),
            session_id: ask.session_id.to_string(),
            instance: ask.instance.to_string(),
        };
        let left = Duration::from_millis((record.expires_at_ms - now_ms()).max(0) as u64);
        let deadline = tokio::time::sleep(left);
        tokio::pin!(deadline);
        loop {
            if let Some(answer) = answer_of(ask.hook, &record, self.timeout) {
                gone.id = None;
                return Ok(answer);
            }
            tokio::select! {
                _ = woken.as_mut() => {
                    woken = Box::pin(waiting.notify.notified());
                    woken.as_mut().enable();
                    match self.store.permission(&ask.id).await? {
                        Some(r) => record = r,
                        // Dropped as the oldest past PERMISSION_MAX_KEPT: nobody can answer it.
                        None => {
                            gone.id = None;
                            return Ok(ask.hook.fallback("the request is no longer kept"));
                        }
                    }
                }
                _ = &mut deadline => {
                    record = self.settle_unanswered(&ask.id, ask.session_id, Status::Expired, ask.instance).await?;
                }
                _ = self.shutdown.cancelled() => {
                    record = self.settle_unanswered(&ask.id, ask.session_id, Status::Abandoned, ask.instance).await?;
                }
            }
            // A record read back pending (a wake-up for another delivery) waits on.
            if record.status == Status::Pending && record.expires_at_ms <= now_ms() {
                record = self
                    .settle_unanswered(&ask.id, ask.session_id, Status::Expired, ask.instance)
                    .await?;
            }
        }
    }

    /// Settles a request nobody answered (`expired`, `abandoned`), recording it if this did;
    /// the request as it stands either way.
    async fn settle_unanswered(
        &self,
        id: &str,
        session_id: &str,
        status: Status,
        instance: &str,
    ) -> Result<Record, ServiceError> {
        let decided_by = match status {
            Status::Expired => "timeout",
            _ => "agent",
        };
        let decision = json!({
            "decidedBy": decided_by,
            "decidedAt": Now::get().iso,
            "instance": instance,
        });
        let (record, won) = self
            .store
            .settle(id, status, &decision.to_string())
            .await?
            .ok_or(ServiceError::NotFound("permission request"))?;
        if won {
            self.record_settled(&record, session_id).await;
        }
        Ok(record)
    }

    /// Decides a request as `decider` (the credentials' user) on `instance`: the settled
    /// request and whether this decision was the one that settled it (else it is the
    /// winner's, or the request expired or was abandoned).
    pub async fn decide(
        &self,
        id: &str,
        decision: Decision,
        decider: &str,
        instance: &str,
    ) -> Result<(Value, bool), ServiceError> {
        let record = self
            .store
            .permission(id)
            .await?
            .ok_or(ServiceError::NotFound("permission request"))?;
        let now = Now::get();
        let request: Value = serde_json::from_str(&record.request).unwrap_or_default();
        let created = request["createdAt"]
            .as_str()
            .and_then(crate::time::parse)
            .map_or(now.ms, |t| t.timestamp_millis());
        let mut stored = json!({
            "behavior": if decision.behavior == domain::Behavior::Allow { "allow" } else { "deny" },
            "decidedBy": decider,
            "decidedAt": now.iso,
            "instance": instance,
            "latencyMs": (now.ms - created).max(0),
        });
        if let Some(m) = decision.message {
            stored["message"] = m.into();
        }
        if let Some(i) = decision.updated_input {
            stored["updatedInput"] = Value::Object(i);
        }
        let (record, won) = self
            .store
            .settle(id, decision.behavior.status(), &stored.to_string())
            .await?
            .ok_or(ServiceError::NotFound("permission request"))?;
        if won {
            let session = request["sessionId"].as_str().unwrap_or_default();
            self.record_settled(&record, session).await;
        }
        Ok((record.view(now_ms()), won))
    }

    pub async fn get(&self, id: &str) -> Result<Value, ServiceError> {
        let record = self
            .store
            .permission(id)
            .await?
            .ok_or(ServiceError::NotFound("permission request"))?;
        Ok(record.view(now_ms()))
    }

    /// The requests, newest first; `status` narrows them to one.
    pub async fn list(
        &self,
        status: Option<Status>,
        limit: usize,
    ) -> Result<Vec<Value>, ServiceError> {
        let pending = status == Some(Status::Pending);
        let now = now_ms();
        // Narrowed to a settled status, a listing looks among the newest `SCAN_PER_LISTED`
        // times as many and keeps what matches.
        let read = if status.is_some() && !pending {
            (limit * SCAN_PER_LISTED).min(self.limits.max_kept)
        } else {
            limit
        };
        Ok(self
            .store
            .permissions(pending, read)
            .await?
            .into_iter()
            .filter(|r| status.is_none_or(|s| r.status_at(now) == s))
            .take(limit)
            .map(|r| r.view(now))
            .collect())
    }

    /// The rules in force (none until set).
    pub async fn rules(&self) -> Result<Vec<rules::Rule>, ServiceError> {
        let Some(text) = self.store.rules().await? else {
            return Ok(Vec::new());
        };
        let value: Value = serde_json::from_str(&text)
            .map_err(|_| crate::store::StoreError::Corrupt("permission rules".into()))?;
        rules::parse_rules(&value)
            .map_err(|_| crate::store::StoreError::Corrupt("permission rules".into()).into())
    }

    /// Replaces the rules with `body`'s (`{"rules": [...]}`); the rules as stored.
    pub async fn set_rules(&self, body: &Value) -> Result<Value, ServiceError> {
        let rules = rules::parse_rules(body).map_err(ServiceError::Invalid)?;
        let stored = rules::rules_json(&rules);
        self.store.set_rules(&stored.to_string()).await?;
        Ok(stored)
    }

    /// Records a settled request as its session's `permission:decided` event.
    async fn record_settled(&self, record: &Record, session_id: &str) {
        let Value::Object(mut fields) = record.view(now_ms()) else {
            return;
        };
        let id = fields
            .remove("id")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        fields.remove("sessionId");
        self.record(&id, "decided", session_id, fields).await;
    }

    /// Appends `permission:{what}` to the session, with `fields` and the request's id as
    /// `permissionId`; its `eventId` is the request's and `what`, so it is stored once. A
    /// failure is logged: the request or decision stands, stored where it is.
    async fn record(&self, id: &str, what: &str, session_id: &str, mut fields: Map<String, Value>) {
        fields.remove("id");
        fields.insert("sessionId".into(), session_id.into());
        fields.insert("type".into(), format!("permission:{what}").into());
        fields.insert("eventId".into(), format!("{id}-{what}").into());
        fields.insert("permissionId".into(), id.into());
        let now = Now::get();
        let ctx = EventContext {
            received_at: now.iso.clone(),
            correlation_id: None,
        };
        let raw = serde_json::value::to_raw_value(&Value::Object(fields))
            .expect("a JSON value serializes");
        let stored = match draft_event(&raw, &ctx, "") {
            Ok(draft) => self.events.post(vec![draft], &now).await.map(|_| ()),
            Err(p) => Err(ServiceError::Invalid(p)),
        };
        if let Err(e) = stored {
            tracing::warn!(permission = %id, error = %e, "could not record permission:{what}");
        }
    }
}

/// The request's own fields from the hook.
fn request_fields(ask: &Ask<'_>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sessionId".into(), ask.session_id.into());
    m.insert("hook".into(), ask.hook.name().into());
    m.insert("tool".into(), ask.tool.into());
    m.insert("input".into(), ask.input.clone());
    m.insert("instance".into(), ask.instance.into());
    for (k, v) in &ask.extra {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// The hook's answer once the request is settled.
fn answer_of(hook: Hook, record: &Record, timeout: Duration) -> Option<Value> {
    let decision = || -> Value {
        record
            .decision
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    };
    match record.status {
        Status::Pending => None,
        Status::Allowed | Status::Denied => Some(hook.answer(&decision())),
        Status::Expired => Some(hook.fallback(&format!(
            "nobody answered on the dashboard within {} s",
            timeout.as_secs()
        ))),
        Status::Abandoned => Some(hook.fallback("the gateway stopped waiting")),
    }
}

/// Marks the request `abandoned` when its hook stops waiting unanswered: its connection
/// closed (the handler's future dropped) or the hold failed.
struct Abandon {
    permissions: Permissions,
    /// `None` once the hook is answered.
    id: Option<String>,
    session_id: String,
    instance: String,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let p = self.permissions.clone();
        let (session, instance) = (
            std::mem::take(&mut self.session_id),
            std::mem::take(&mut self.instance),
        );
        rt.spawn(async move {
            if let Err(e) = p
                .settle_unanswered(&id, &session, Status::Abandoned, &instance)
                .await
            {
                tracing::warn!(permission = %id, error = %e, "could not mark a permission request abandoned");
            }
        });
    }
}
