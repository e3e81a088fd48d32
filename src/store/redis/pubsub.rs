//! The instance's one pub/sub connection: subscribes to the events and control channels,
//! turns each message into a [`BusMessage`], reconnects with backoff on any drop (then asks
//! the fan-out to resync from the store), and probes itself so that a subscription that stays
//! open but no longer delivers is noticed too.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::keys::Keys;
use super::links::Links;
use crate::bus::{BusMessage, LiveEvent, Signal};
use crate::domain::control::ControlQueue;
use crate::metrics::Metrics;

const PUBSUB_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The message published on `{prefix}events`, as the contract writes it.
#[derive(Debug, Deserialize)]
struct PublishedEvent<'a> {
    #[serde(rename = "sessionId")]
    session_id: String,
    seq: u64,
    epoch: String,
    #[serde(borrow)]
    event: &'a RawValue,
}

/// The instance's one pub/sub connection and what it needs to keep it honest.
pub(super) struct PubSub {
    /// The server to subscribe on (and the command connection, for probe publishes); under
    /// Sentinel it moves, and the subscription follows.
    pub(super) links: Arc<Links>,
    pub(super) keys: Keys,
    pub(super) bus: broadcast::Sender<BusMessage>,
    pub(super) live: Arc<AtomicBool>,
    /// When a message last came (ms since the epoch), for `/api/health/redis`.
    pub(super) last_message_ms: Arc<AtomicI64>,
    pub(super) instance_id: Arc<str>,
    pub(super) probe_every: Duration,
    pub(super) metrics: Arc<Metrics>,
    pub(super) connect_timeout: Duration,
}

/// Why a subscription ended.
enum Ended {
    Shutdown,
    Dropped,
    Wedged,
    /// The primary moved (Sentinel): subscribe on the new one.
    Moved,
}

impl PubSub {
    /// Subscribes to the events and control channels, turns each message into a
    /// [`BusMessage`], and on any drop reconnects with backoff and sends
    /// [`BusMessage::Resync`] so the hub fills what was published meanwhile. Other
    /// tenants' channels come by one pattern per kind.
    pub(super) async fn run(self, shutdown: CancellationToken) {
        // On a Cluster the events travel on the partitions' sharded channels (`shards`); the
        // control channels stay classic: published on any node, heard on every node.
        let (channels, patterns) = if self.keys.clustered_layout() {
            (
                vec![self.keys.control_channel()],
                vec![self.keys.tenant_channels("control")],
            )
        } else {
            (
                vec![self.keys.events_channel(0), self.keys.control_channel()],
                vec![
                    self.keys.tenant_channels("events"),
                    self.keys.tenant_channels("control"),
                ],
            )
        };
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            // The link as it stands now; a move while subscribed ends the subscription.
            let mut moves = self.links.moves();
            moves.mark_unchanged();
            // A cluster's nodes in turn, so one that is down is not asked forever.
            let client = self.links.client(attempt);
            attempt += 1;
            let connected = async {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(&channels).await?;
                ps.psubscribe(&patterns).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(self.connect_timeout, connected) => r,
            };
            match attempt {
                Ok(Ok(ps)) => {
                    self.live.store(true, Ordering::Release);
                    self.metrics.pubsub_subscribes.inc();
                    backoff = Duration::from_millis(50);
                    tracing::info!(channel = %channels[0], "pub/sub subscribed");
                    let _ = self.bus.send(BusMessage::Resync);
                    let ended = self.pump(ps, &shutdown, &mut moves).await;
                    self.live.store(false, Ordering::Release);
                    match ended {
                        Ended::Shutdown => return,
                        Ended::Dropped => tracing::warn!("pub/sub connection lost; reconnecting"),
                        Ended::Moved => {
                            tracing::warn!("the redis primary moved; subscribing there");
                            continue;
                        }
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
    async fn pump(
        &self,
        ps: redis::aio::PubSub,
        shutdown: &CancellationToken,
        moves: &mut tokio::sync::watch::Receiver<u64>,
    ) -> Ended {
        let events_channel = self.keys.events_channel(0);
        let control_channel = self.keys.control_channel();
        let mut messages = ps.into_on_message();
        let mut probe = tokio::time::interval(self.probe_every);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent: u64 = 0;
        let mut awaiting: Option<u64> = None;
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return Ended::Shutdown,
                _ = moves.changed() => return Ended::Moved,
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
            self.last_message_ms
                .store(crate::time::now_ms(), Ordering::Relaxed);
            let channel = msg.get_channel_name();
            let (tenant, events) = if channel == events_channel {
                (None, true)
            } else if channel == control_channel {
                (None, false)
            } else {
                match self.keys.channel_tenant(channel) {
                    Some((tenant, kind)) => (Some(tenant), kind == "events"),
                    None => {
                        tracing::warn!(channel, "ignoring a message on a channel not ours");
                        continue;
                    }
                }
            };
            let decoded = if events {
                decode_event(msg.get_payload_bytes(), tenant)
            } else {
                decode_control(msg.get_payload_bytes()).map(|c| match c {
                    Control::Bus(m) => Control::Bus(m.for_tenant(tenant)),
                    probe => probe,
                })
            };
            match decoded {
                Some(Control::Bus(m)) => {
                    let _ = self.bus.send(m);
                }
                Some(Control::Probe { origin, n }) => {
                    if tenant.is_none()
                        && *origin == *self.instance_id
                        && awaiting.is_some_and(|a| n >= a)
                    {
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
        let mut conn = self.links.conn();
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
pub(super) enum Control {
    Bus(BusMessage),
    Probe { origin: String, n: u64 },
}

/// A stored event of `tenant`'s channel, its session id scoped as the hub keys it.
pub(super) fn decode_event(payload: &[u8], tenant: Option<&str>) -> Option<Control> {
    let p: PublishedEvent<'_> = serde_json::from_slice(payload).ok()?;
    Some(Control::Bus(BusMessage::Event(Arc::new(LiveEvent {
        session_id: crate::scope::scoped(tenant, &p.session_id).into(),
        seq: p.seq,
        epoch: p.epoch.into(),
        event: p.event.get().into(),
    }))))
}

#[derive(Deserialize)]
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
    #[serde(default)]
    signal: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    command: Option<&'a RawValue>,
    #[serde(default, borrow)]
    chain: Option<&'a RawValue>,
}

pub(super) fn decode_control(payload: &[u8]) -> Option<Control> {
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
            queue: ControlQueue::parse(m.queue.as_deref()?)?,
        })),
        "signal" => Some(Control::Bus(BusMessage::Signal {
            signal: Signal::parse(m.signal.as_deref()?)?,
            name: m.name?.into(),
        })),
        "probe" => Some(Control::Probe {
            origin: m.origin?,
            n: m.n?,
        }),
        _ => None,
    }
}
