//! On a Redis Cluster, the instance's subscription to every partition's sharded events channel
//! (`SSUBSCRIBE`), kept by the gateway itself rather than by the library.
//!
//! A sharded subscription lives on the node that holds its channel's slot, and ends when the
//! slot moves away (a migration, a failover: the node sends an unrequested `sunsubscribe`) or
//! the node's connection drops. The library hears both but resubscribes with one `SSUBSCRIBE`
//! per node listing all of that node's channels, which the node refuses (`CROSSSLOT`) when
//! they span slots, and drops the error. So this task subscribes each partition's channel by
//! a command of its own, again after every `sunsubscribe` of it, after any disconnection, and
//! when the partition's probe does not come back; until every partition is subscribed again
//! the store reports not ready, and once they are it asks the hub to fill every watched
//! session from the store ([`BusMessage::Resync`]), as after any reconnect.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{PushKind, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::keys::Keys;
use super::links::{Links, Nodes};
use super::pubsub::{decode_control, decode_event, Control};
use crate::bus::BusMessage;
use crate::metrics::Metrics;

/// How long a partition stays unsubscribed before it is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(200);
/// How long the loop listens for more lost partitions before it resubscribes the first.
const GATHER: Duration = Duration::from_millis(100);
/// How long one `SSUBSCRIBE` may take.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Shards {
    /// The cluster's nodes, and how to reach them.
    pub(super) nodes: Vec<String>,
    pub(super) how: Nodes,
    /// The command connection, for the probes' `SPUBLISH`.
    pub(super) links: Arc<Links>,
    pub(super) keys: Keys,
    pub(super) bus: broadcast::Sender<BusMessage>,
    /// True while every partition is subscribed.
    pub(super) live: Arc<AtomicBool>,
    pub(super) instance_id: Arc<str>,
    pub(super) probe_every: Duration,
    pub(super) metrics: Arc<Metrics>,
}

/// The state of the partitions' subscriptions on one cluster connection.
struct Partitions {
    channels: Vec<String>,
    index: HashMap<String, usize>,
    /// Partitions not subscribed now.
    down: BTreeSet<usize>,
    /// Probes sent and not yet back, by partition.
    awaiting: BTreeMap<usize, u64>,
}

impl Shards {
    pub(super) async fn run(self, shutdown: CancellationToken) {
        let channels = self.keys.events_channels();
        loop {
            let (tx, rx) = mpsc::unbounded_channel();
            let client = match self.how.cluster_client(&self.nodes, Some(tx)) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "sharded pub/sub: no cluster client");
                    return;
                }
            };
            let conn = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = tokio::time::timeout(SUBSCRIBE_TIMEOUT, client.get_async_connection()) => c,
            };
            match conn {
                Ok(Ok(conn)) => {
                    let parts = Partitions {
                        index: channels
                            .iter()
                            .enumerate()
                            .map(|(i, c)| (c.clone(), i))
                            .collect(),
                        down: (0..channels.len()).collect(),
                        awaiting: BTreeMap::new(),
                        channels: channels.clone(),
                    };
                    if self.keep(conn, rx, parts, &shutdown).await {
                        return;
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "sharded pub/sub: cluster connect failed"),
                Err(_) => tracing::warn!("sharded pub/sub: cluster connect timed out"),
            }
            self.live.store(false, Ordering::Release);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    }

    /// Keeps every partition subscribed on `conn` and forwards what they carry; returns true
    /// on shutdown, false when the connection is gone for good.
    async fn keep(
        &self,
        mut conn: redis::cluster_async::ClusterConnection,
        mut pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
        mut p: Partitions,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut probe = tokio::time::interval(self.probe_every);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        probe.reset();
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent: u64 = 0;
        loop {
            if !p.down.is_empty() {
                self.live.store(false, Ordering::Release);
                self.subscribe_down(&mut conn, &mut p, shutdown).await;
                if p.down.is_empty() {
                    self.live.store(true, Ordering::Release);
                    self.metrics.pubsub_subscribes.inc();
                    tracing::info!(partitions = p.channels.len(), "sharded pub/sub subscribed");
                    // What was published while a partition was away comes from the store.
                    let _ = self.bus.send(BusMessage::Resync);
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return true,
                _ = retry.tick(), if !p.down.is_empty() => {}
                _ = probe.tick() => {
                    let wedged: Vec<usize> = p.awaiting.keys().copied().collect();
                    for i in wedged {
                        self.metrics.pubsub_probe_timeouts.inc();
                        tracing::warn!(channel = %p.channels[i], "sharded pub/sub probe did not come back; resubscribing");
                        p.awaiting.remove(&i);
                        p.down.insert(i);
                    }
                    sent += 1;
                    for i in 0..p.channels.len() {
                        if !p.down.contains(&i) {
                            p.awaiting.insert(i, sent);
                            self.publish_probe(&p.channels[i], sent);
                        }
                    }
                }
                push = pushes.recv() => {
                    let Some(push) = push else { return false };
                    let was_down = !p.down.is_empty();
                    self.on_push(push, &mut p);
                    if !was_down && !p.down.is_empty() {
                        // A failover or a migration takes several partitions at once: what
                        // else it takes is heard first, so that one resubscription and one
                        // fill from the store cover all of them.
                        tokio::time::sleep(GATHER).await;
                    }
                    while let Ok(push) = pushes.try_recv() {
                        self.on_push(push, &mut p);
                    }
                }
            }
        }
    }

    /// One `SSUBSCRIBE` per partition that is down (each its own slot); those that fail stay
    /// down for the next try.
    async fn subscribe_down(
        &self,
        conn: &mut redis::cluster_async::ClusterConnection,
        p: &mut Partitions,
        shutdown: &CancellationToken,
    ) {
        let down: Vec<usize> = p.down.iter().copied().collect();
        for i in down {
            let r = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(SUBSCRIBE_TIMEOUT, conn.ssubscribe(&p.channels[i])) => r,
            };
            match r {
                Ok(Ok(())) => {
                    p.down.remove(&i);
                }
                Ok(Err(e)) => {
                    tracing::debug!(channel = %p.channels[i], error = %e, "SSUBSCRIBE failed");
                }
                Err(_) => tracing::debug!(channel = %p.channels[i], "SSUBSCRIBE timed out"),
            }
        }
    }

    fn on_push(&self, push: redis::PushInfo, p: &mut Partitions) {
        let channel = |v: Option<&Value>| match v {
            Some(Value::BulkString(b)) => std::str::from_utf8(b).ok().map(str::to_string),
            _ => None,
        };
        match push.kind {
            PushKind::SMessage => {
                let (Some(ch), Some(Value::BulkString(payload))) =
                    (channel(push.data.first()), push.data.get(1))
                else {
                    return;
                };
                let Some(&i) = p.index.get(&ch) else { return };
                match decode_event(payload, None).or_else(|| decode_control(payload)) {
                    Some(Control::Bus(m)) => {
                        let _ = self.bus.send(m);
                    }
                    Some(Control::Probe { origin, n }) => {
                        if *origin == *self.instance_id
                            && p.awaiting.get(&i).is_some_and(|a| n >= *a)
                        {
                            p.awaiting.remove(&i);
                        }
                    }
                    None => {
                        tracing::warn!(channel = ch, "ignoring a message this gateway cannot read")
                    }
                }
            }
            // The node no longer holds the channel's slot (or dropped it): subscribe again
            // wherever the slot is now.
            PushKind::SUnsubscribe => {
                if let Some(&i) = channel(push.data.first()).and_then(|c| p.index.get(&c)) {
                    tracing::info!(channel = %p.channels[i], "sharded channel unsubscribed by the cluster; resubscribing");
                    p.down.insert(i);
                    p.awaiting.remove(&i);
                }
            }
            // A node's connection dropped: which partitions it held is not known here, so all
            // are subscribed again (a second `SSUBSCRIBE` of a live one changes nothing).
            PushKind::Disconnection => {
                tracing::warn!(
                    "a cluster node's connection dropped; resubscribing every partition"
                );
                p.down.extend(0..p.channels.len());
                p.awaiting.clear();
            }
            _ => {}
        }
    }

    /// Publishes probe `n` on a partition's channel without holding up the loop; a failed
    /// publish shows up as a probe that does not come back.
    fn publish_probe(&self, channel: &str, n: u64) {
        let mut conn = self.links.conn();
        let mut cmd = redis::cmd("SPUBLISH");
        cmd.arg(channel).arg(
            serde_json::json!({"kind": "probe", "origin": &*self.instance_id, "n": n}).to_string(),
        );
        tokio::spawn(async move {
            if let Err(e) = cmd.query_async::<i64>(&mut conn).await {
                tracing::debug!(error = %e, "sharded pub/sub probe publish failed");
            }
        });
    }
}
