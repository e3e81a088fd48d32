//! The Redis store: the key layout of PROTOCOL §3, every multi-step change as one Lua script
//! (loaded once, called by SHA), one multiplexed command connection that reconnects by itself,
//! and one pub/sub connection per instance feeding the bus.
//!
//! Scripts build keys from the prefix at run time, so this store targets a single Redis
//! server (or a primary with replicas), not Redis Cluster.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    page_sessions, AckedCommand, ChainFilter, ChainWrite, Now, Store, StoreSettings, BUS_CAPACITY,
};
use crate::control::Queue;
use crate::error::StoreError;
use crate::metrics::Metrics;
use crate::model::{
    field, index_member, Appended, BusMessage, EventDraft, EventRange, Fields, LiveEvent,
    PublishedEvent, ReadFrom, Session, SessionPage, SessionQuery,
};

pub mod keys;
use keys::Keys;

const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const PUBSUB_BACKOFF_MAX: Duration = Duration::from_secs(1);

struct Scripts {
    append: Script,
    read: Script,
    create_session: Script,
    update_session: Script,
    delete_session: Script,
    push_command: Script,
    pending_commands: Script,
    ack_command: Script,
    push_input: Script,
    take_input: Script,
    ack_input: Script,
    put_chain: Script,
    list_chains: Script,
}

impl Scripts {
    fn load() -> Scripts {
        Scripts {
            append: Script::new(include_str!("scripts/append.lua")),
            read: Script::new(include_str!("scripts/read.lua")),
            create_session: Script::new(include_str!("scripts/create_session.lua")),
            update_session: Script::new(include_str!("scripts/update_session.lua")),
            delete_session: Script::new(include_str!("scripts/delete_session.lua")),
            push_command: Script::new(include_str!("scripts/push_command.lua")),
            pending_commands: Script::new(include_str!("scripts/pending_commands.lua")),
            ack_command: Script::new(include_str!("scripts/ack_command.lua")),
            push_input: Script::new(include_str!("scripts/push_input.lua")),
            take_input: Script::new(include_str!("scripts/take_input.lua")),
            ack_input: Script::new(include_str!("scripts/ack_input.lua")),
            put_chain: Script::new(include_str!("scripts/put_chain.lua")),
            list_chains: Script::new(include_str!("scripts/list_chains.lua")),
        }
    }
}

pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
    settings: StoreSettings,
    bus: broadcast::Sender<BusMessage>,
    /// True while the pub/sub connection is subscribed; `/ready` reports false otherwise.
    pubsub_live: Arc<AtomicBool>,
}

impl RedisStore {
    pub async fn start(
        url: &str,
        prefix: &str,
        settings: StoreSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Arc<dyn Store>, StoreError> {
        let client = redis::Client::open(url)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        // Lazy: the gateway starts (and reports not ready) while Redis is still coming up.
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)?;
        let keys = Keys::new(prefix);
        let bus = broadcast::channel(BUS_CAPACITY).0;
        let pubsub_live = Arc::new(AtomicBool::new(false));
        let pubsub = PubSub {
            client,
            conn: conn.clone(),
            keys: keys.clone(),
            bus: bus.clone(),
            live: Arc::clone(&pubsub_live),
            instance_id: Arc::clone(&settings.instance_id),
            probe_every: settings.pubsub_probe_every,
            metrics: Arc::clone(&settings.metrics),
        };
        tasks.spawn(pubsub.run(shutdown));
        Ok(Arc::new(RedisStore {
            conn,
            keys,
            scripts: Scripts::load(),
            settings,
            bus,
            pubsub_live,
        }))
    }

    fn ttl_secs(&self) -> u64 {
        self.settings.session_ttl.as_secs().max(1)
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn session_from_reply(
    reply: Option<HashMap<String, String>>,
) -> Result<Option<Session>, StoreError> {
    match reply {
        None => Ok(None),
        Some(map) if map.is_empty() => Ok(None),
        Some(map) => Session::from_fields(&map).map(Some),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("unexpected reply from {what} script"))
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn create_session(
        &self,
        id: &str,
        fields: Fields,
        now: &Now,
    ) -> Result<Session, StoreError> {
        let epoch = uuid::Uuid::now_v7().simple().to_string();
        let mut inv = self.scripts.create_session.prepare_invoke();
        inv.arg(self.keys.prefix())
            .arg(id)
            .arg(self.ttl_secs())
            .arg(index_member(now.ms, id))
            .arg(epoch);
        for (k, v) in &fields {
            inv.arg(*k).arg(v);
        }
        let reply: Option<HashMap<String, String>> =
            inv.invoke_async(&mut self.conn.clone()).await?;
        match session_from_reply(reply)? {
            Some(s) => Ok(s),
            None => Err(StoreError::Conflict),
        }
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let map: HashMap<String, String> = self.conn.clone().hgetall(self.keys.session(id)).await?;
        session_from_reply(Some(map))
    }

    async fn update_session(
        &self,
        id: &str,
        fields: Fields,
    ) -> Result<Option<Session>, StoreError> {
        let mut inv = self.scripts.update_session.prepare_invoke();
        inv.arg(self.keys.prefix()).arg(id).arg(self.ttl_secs());
        for (k, v) in &fields {
            inv.arg(*k).arg(v);
        }
        let reply: Option<HashMap<String, String>> =
            inv.invoke_async(&mut self.conn.clone()).await?;
        session_from_reply(reply)
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let existed: i64 = self
            .scripts
            .delete_session
            .arg(self.keys.prefix())
            .arg(id)
            .arg(json_string(id))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(existed == 1)
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        let index = self.keys.session_index();
        page_sessions(query, |cursor, n| {
            let mut conn = self.conn.clone();
            let index = index.clone();
            async move {
                let max = match &cursor {
                    Some(c) => format!("({c}"),
                    None => "+".to_string(),
                };
                let members: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
                    .arg(&index)
                    .arg(max)
                    .arg("-")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(n)
                    .query_async(&mut conn)
                    .await?;
                let mut pipe = redis::pipe();
                for m in &members {
                    let id = m.split_once(':').map(|(_, id)| id).unwrap_or_default();
                    pipe.hgetall(self.keys.session(id));
                }
                let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
                let mut rows = Vec::with_capacity(members.len());
                let mut stale = Vec::new();
                for (m, map) in members.into_iter().zip(maps) {
                    // A member is live only if its session names it: an expired session
                    // leaves its member behind, and the id may since have been used again.
                    let session = if map.get(field::INDEX) == Some(&m) {
                        session_from_reply(Some(map))?
                    } else {
                        None
                    };
                    if session.is_none() {
                        stale.push(m.clone());
                    }
                    rows.push((m, session));
                }
                if !stale.is_empty() {
                    let _: i64 = conn.zrem(&index, stale).await?;
                }
                Ok(rows)
            }
        })
        .await
    }

    async fn append(&self, drafts: &[EventDraft], now: &Now) -> Result<Vec<Appended>, StoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.append.prepare_invoke();
        inv.arg(self.keys.prefix())
            .arg(self.settings.max_events_per_session)
            .arg(self.ttl_secs())
            .arg(self.settings.dedup_window.as_secs().max(1))
            .arg(&now.iso)
            .arg(index_member(now.ms, ""))
            .arg(&*self.settings.instance_id)
            .arg(uuid::Uuid::now_v7().simple().to_string());
        for d in drafts {
            inv.arg(&d.session_id)
                .arg(json_string(&d.session_id))
                .arg(&d.event_id)
                .arg(&d.json_head);
        }
        let reply: Vec<Vec<Value>> = inv.invoke_async(&mut self.conn.clone()).await?;
        if reply.len() != drafts.len() {
            return Err(corrupt("append"));
        }
        drafts
            .iter()
            .zip(reply)
            .map(|(d, r)| match r.as_slice() {
                [seq, epoch, dup] => Ok(Appended {
                    session_id: d.session_id.clone(),
                    event_id: d.event_id.clone(),
                    seq: int(seq).ok_or_else(|| corrupt("append"))?,
                    epoch: text(epoch).ok_or_else(|| corrupt("append"))?,
                    duplicate: int(dup) == Some(1),
                }),
                _ => Err(corrupt("append")),
            })
            .collect()
    }

    async fn read_events(
        &self,
        session_id: &str,
        from: ReadFrom,
        limit: usize,
    ) -> Result<EventRange, StoreError> {
        let (mode, n) = match from {
            ReadFrom::After(after) => ("after", after),
            ReadFrom::Tail(n) => ("tail", n as u64),
        };
        let (head, epoch, first, events): (u64, String, i64, Vec<String>) = self
            .scripts
            .read
            .arg(self.keys.prefix())
            .arg(session_id)
            .arg(mode)
            .arg(n)
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(EventRange {
            head_seq: head,
            first_seq: u64::try_from(first).map_err(|_| corrupt("read"))?,
            epoch: (!epoch.is_empty()).then_some(epoch),
            events: events.into_iter().map(Arc::from).collect(),
        })
    }

    async fn push_command(
        &self,
        session_id: &str,
        command_id: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .scripts
            .push_command
            .arg(self.keys.prefix())
            .arg(session_id)
            .arg(json_string(session_id))
            .arg(command_id)
            .arg(record)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn pending_commands(
        &self,
        session_id: &str,
        consume: bool,
    ) -> Result<Vec<Arc<str>>, StoreError> {
        let records: Vec<String> = self
            .scripts
            .pending_commands
            .arg(self.keys.prefix())
            .arg(session_id)
            .arg(if consume { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(records.into_iter().map(Arc::from).collect())
    }

    async fn ack_command(
        &self,
        command_id: &str,
        session_id: Option<&str>,
        ack: &str,
    ) -> Result<Option<AckedCommand>, StoreError> {
        let reply: Option<(String, String, i64)> = self
            .scripts
            .ack_command
            .arg(self.keys.prefix())
            .arg(command_id)
            .arg(ack)
            .arg(session_id.unwrap_or(""))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(reply.map(|(record, session_id, first)| AckedCommand {
            session_id,
            record: record.into(),
            first: first == 1,
        }))
    }

    async fn push_input(
        &self,
        session_id: &str,
        input_id: &str,
        item: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .scripts
            .push_input
            .arg(self.keys.prefix())
            .arg(session_id)
            .arg(json_string(session_id))
            .arg(input_id)
            .arg(item)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn take_input(
        &self,
        session_id: &str,
        consume: bool,
    ) -> Result<Vec<Arc<str>>, StoreError> {
        let items: Vec<String> = self
            .scripts
            .take_input
            .arg(self.keys.prefix())
            .arg(session_id)
            .arg(if consume { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(items.into_iter().map(Arc::from).collect())
    }

    async fn ack_input(&self, session_id: &str, input_id: &str) -> Result<bool, StoreError> {
        let removed: i64 = self
            .scripts
            .ack_input
            .arg(self.keys.prefix())
            .arg(session_id)
            .arg(input_id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed == 1)
    }

    async fn get_chain(&self, id: &str) -> Result<Option<(u64, Arc<str>)>, StoreError> {
        let (v, json): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.chain(id))
            .arg("v")
            .arg("json")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(match (v, json) {
            (Some(v), Some(json)) => Some((v, json.into())),
            _ => None,
        })
    }

    async fn put_chain(&self, c: &ChainWrite, expected: u64) -> Result<bool, StoreError> {
        let version: u64 = self
            .scripts
            .put_chain
            .arg(self.keys.prefix())
            .arg(&c.id)
            .arg(&c.session_id)
            .arg(json_string(&c.session_id))
            .arg(expected)
            .arg(&c.json)
            .arg(if c.active { "1" } else { "0" })
            .arg(c.updated_ms)
            .arg(c.ttl.as_secs().max(1))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(version > 0)
    }

    async fn list_chains(&self, filter: ChainFilter<'_>) -> Result<Vec<Arc<str>>, StoreError> {
        let (mode, sid) = match filter {
            ChainFilter::Session(s) => ("session", s),
            ChainFilter::Active => ("active", ""),
            ChainFilter::All => ("all", ""),
        };
        let chains: Vec<String> = self
            .scripts
            .list_chains
            .arg(self.keys.prefix())
            .arg(mode)
            .arg(sid)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(chains.into_iter().map(Arc::from).collect())
    }

    fn subscribe_bus(&self) -> broadcast::Receiver<BusMessage> {
        self.bus.subscribe()
    }

    async fn readiness(&self) -> Result<(), String> {
        let pong: Result<String, _> = redis::cmd("PING").query_async(&mut self.conn.clone()).await;
        if let Err(e) = pong {
            return Err(format!("redis does not answer: {e}"));
        }
        if !self.pubsub_live.load(Ordering::Acquire) {
            return Err("redis pub/sub subscription is not live".into());
        }
        Ok(())
    }
}

/// The instance's one pub/sub connection and what it needs to keep it honest.
struct PubSub {
    client: redis::Client,
    /// The command connection, for probe publishes.
    conn: ConnectionManager,
    keys: Keys,
    bus: broadcast::Sender<BusMessage>,
    live: Arc<AtomicBool>,
    instance_id: Arc<str>,
    probe_every: Duration,
    metrics: Arc<Metrics>,
}

/// Why a subscription ended.
enum Ended {
    Shutdown,
    Dropped,
    Wedged,
}

impl PubSub {
    /// Subscribes to the events and control channels, turns each message into a
    /// [`BusMessage`], and on any drop reconnects with backoff and sends
    /// [`BusMessage::Resync`] so the hub fills what was published meanwhile.
    async fn run(self, shutdown: CancellationToken) {
        let channels = [self.keys.events_channel(), self.keys.control_channel()];
        let mut backoff = Duration::from_millis(50);
        loop {
            let connected = async {
                let mut ps = self.client.get_async_pubsub().await?;
                ps.subscribe(&channels).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(CONNECT_TIMEOUT * 2, connected) => r,
            };
            match attempt {
                Ok(Ok(ps)) => {
                    self.live.store(true, Ordering::Release);
                    self.metrics.pubsub_subscribes.inc();
                    backoff = Duration::from_millis(50);
                    tracing::info!(channel = %channels[0], "pub/sub subscribed");
                    let _ = self.bus.send(BusMessage::Resync);
                    let ended = self.pump(ps, &shutdown).await;
                    self.live.store(false, Ordering::Release);
                    match ended {
                        Ended::Shutdown => return,
                        Ended::Dropped => tracing::warn!("pub/sub connection lost; reconnecting"),
                        Ended::Wedged => {
                            self.metrics.pubsub_probe_timeouts.inc();
                            tracing::warn!(
                                probe_every = ?self.probe_every,
                                "pub/sub probe did not come back: the subscription is wedged; \
                                 resubscribing"
                            );
                        }
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "pub/sub connect failed"),
                Err(_) => tracing::warn!("pub/sub connect timed out"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(PUBSUB_BACKOFF_MAX);
        }
    }

    /// Forwards messages until the subscription ends. Every `probe_every` it publishes a
    /// probe on the control channel; a connection can stay open while Redis no longer
    /// delivers to it, and a probe still missing at the next tick shows exactly that.
    async fn pump(&self, ps: redis::aio::PubSub, shutdown: &CancellationToken) -> Ended {
        let events_channel = self.keys.events_channel();
        let control_channel = self.keys.control_channel();
        let mut messages = ps.into_on_message();
        let mut probe = tokio::time::interval(self.probe_every);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent: u64 = 0;
        let mut awaiting: Option<u64> = None;
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return Ended::Shutdown,
                _ = probe.tick() => {
                    if awaiting.is_some() {
                        return Ended::Wedged;
                    }
                    sent += 1;
                    awaiting = Some(sent);
                    self.publish_probe(&control_channel, sent);
                    continue;
                }
                m = messages.next() => m,
            };
            let Some(msg) = msg else {
                return Ended::Dropped;
            };
            let decoded = if msg.get_channel_name() == events_channel {
                decode_event(msg.get_payload_bytes())
            } else {
                decode_control(msg.get_payload_bytes())
            };
            match decoded {
                Some(Control::Bus(m)) => {
                    let _ = self.bus.send(m);
                }
                Some(Control::Probe { origin, n }) => {
                    if *origin == *self.instance_id && awaiting.is_some_and(|a| n >= a) {
                        awaiting = None;
                    }
                }
                None => tracing::warn!(
                    channel = msg.get_channel_name(),
                    "ignoring a pub/sub message this gateway cannot read"
                ),
            }
        }
    }

    /// Publishes probe `n` without holding up the message loop; a failed publish shows up
    /// as a probe that does not come back.
    fn publish_probe(&self, channel: &str, n: u64) {
        let mut conn = self.conn.clone();
        let channel = channel.to_string();
        let payload =
            serde_json::json!({"kind": "probe", "origin": &*self.instance_id, "n": n}).to_string();
        tokio::spawn(async move {
            let r: redis::RedisResult<i64> = conn.publish(channel, payload).await;
            if let Err(e) = r {
                tracing::debug!(error = %e, "pub/sub probe publish failed");
            }
        });
    }
}

/// A message from one of the instance's channels.
enum Control {
    Bus(BusMessage),
    Probe { origin: String, n: u64 },
}

fn decode_event(payload: &[u8]) -> Option<Control> {
    let p: PublishedEvent<'_> = serde_json::from_slice(payload).ok()?;
    Some(Control::Bus(BusMessage::Event(Arc::new(LiveEvent {
        session_id: p.session_id.into(),
        seq: p.seq,
        epoch: p.epoch.into(),
        event: p.event.get().into(),
    }))))
}

#[derive(serde::Deserialize)]
struct ControlMessage<'a> {
    kind: String,
    #[serde(rename = "sessionId", default)]
    session_id: Option<String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default, borrow)]
    command: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    chain: Option<&'a serde_json::value::RawValue>,
}

fn decode_control(payload: &[u8]) -> Option<Control> {
    let m: ControlMessage<'_> = serde_json::from_slice(payload).ok()?;
    match m.kind.as_str() {
        "session_deleted" => Some(Control::Bus(BusMessage::SessionDeleted(
            m.session_id?.into(),
        ))),
        "command" => Some(Control::Bus(BusMessage::Command {
            session_id: m.session_id?.into(),
            record: m.command?.get().into(),
        })),
        "chain" => Some(Control::Bus(BusMessage::Chain {
            session_id: m.session_id?.into(),
            chain: m.chain?.get().into(),
        })),
        "wake" => Some(Control::Bus(BusMessage::Wake {
            session_id: m.session_id?.into(),
            queue: Queue::parse(m.queue.as_deref()?)?,
        })),
        "probe" => Some(Control::Probe {
            origin: m.origin?,
            n: m.n?,
        }),
        _ => None,
    }
}
