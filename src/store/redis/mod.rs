//! The Redis store: the key layout of docs/redis.md (built in [`keys`]), every multi-step
//! change as one Lua script (loaded once, called by SHA) that takes its keys in `KEYS[]`,
//! one multiplexed command connection that reconnects by itself, and one pub/sub connection
//! per instance feeding the bus (`pubsub`). The server is one (`REDIS_URL`), the primary
//! sentinels name (`sentinel`), or a Cluster (`REDIS_CLUSTER_NODES`), whose events travel on
//! sharded channels (`shards`).
//!
//! Each service's implementation is a file of its own with its scripts beside it in
//! `scripts/{service}_*.lua`; nothing else in the gateway sends a Redis command.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Bus, StoreError, StoreSettings, Stores, TenantStores};
use crate::bus::{BusMessage, BUS_CAPACITY};
use crate::domain::session::Session;

pub mod backup;
mod cache;
mod chains;
pub mod cleanup;
mod control;
mod events;
mod group_commit;
mod health;
mod instances;
mod jobs;
pub mod keys;
mod links;
mod locks;
pub(crate) mod measured;
mod permissions;
mod pubsub;
mod quota;
mod rate;
mod sentinel;
mod sessions;
mod shards;
mod usage;
mod user_context;

use keys::Keys;

const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries of one read on a dropped connection (see [`RedisStore::read`]).
const READ_ATTEMPTS: u64 = 3;

/// Loads a script of `scripts/` once per process, by file name.
macro_rules! script {
    ($file:literal) => {{
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            $crate::store::redis::measured::named(
                $file,
                redis::Script::new(include_str!(concat!("scripts/", $file))),
            )
        });
        &*SCRIPT
    }};
}
pub(crate) use script;

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

pub struct RedisStore {
    /// The command and read connections (replaced when a Sentinel primary moves).
    links: Arc<links::Links>,
    keys: Keys,
    settings: StoreSettings,
    bus: broadcast::Sender<BusMessage>,
    /// True while the pub/sub connection is subscribed; `/ready` reports false otherwise.
    pubsub_live: Arc<AtomicBool>,
    /// On a Cluster, true while every partition's sharded channel is subscribed.
    shards_live: Arc<AtomicBool>,
    /// When the pub/sub connection last had a message (ms since the epoch; 0: never).
    last_message_ms: Arc<AtomicI64>,
    /// How Redis is reached: `standalone`, `sentinel` or `cluster`.
    mode: &'static str,
    /// The tenant whose key space this is (`None`: the default tenant's).
    tenant: Option<Arc<str>>,
    /// On one server, the appends' group commit (shared by every tenant's store); on a
    /// Cluster each append is its own call.
    group: Option<Arc<group_commit::GroupCommit>>,
}

impl RedisStore {
    /// Opens the store `config` names: one server (`REDIS_URL`), or the primary the
    /// sentinels name (`REDIS_SENTINELS`), followed when it moves.
    pub async fn start(
        config: &crate::config::Store,
        settings: StoreSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Stores, StoreError> {
        let store = Self::open(config, settings, tasks, shutdown).await?;
        Ok(Stores::of("redis", store))
    }

    /// [`RedisStore::start`]'s store itself, for what works on it beside the services
    /// (`afw-gateway cleanup`).
    pub async fn open(
        config: &crate::config::Store,
        settings: StoreSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Arc<RedisStore>, StoreError> {
        let prefix = config.redis_prefix.as_str();
        let cluster = &config.cluster;
        let nodes = links::Nodes::data(config)?;
        let links = match &config.redis_url {
            Some(url) => {
                let client = links::client(url, config.redis_tls_ca_file.as_deref())?;
                Arc::new(links::Links::new(links::Link::to(client)?))
            }
            None if cluster.enabled() => {
                let (list, how) = (cluster.redis_cluster_nodes.clone(), nodes.clone());
                let make = move |renew: &Arc<tokio::sync::Notify>| {
                    links::Link::to_cluster(&list, &how, renew)
                };
                let renew = Arc::new(tokio::sync::Notify::new());
                let links = Arc::new(links::Links::with_renewal(make(&renew)?, renew));
                tasks.spawn(Arc::clone(&links).renewal(make, shutdown.clone()));
                links
            }
            None => {
                let mut sentinel = sentinel::Sentinel::new(config.sentinel.clone(), nodes.clone());
                let links = Arc::new(links::Links::new(sentinel.first_link().await?));
                tasks.spawn(sentinel.watch(Arc::clone(&links), shutdown.clone()));
                links
            }
        };
        let keys = if cluster.enabled() {
            Keys::clustered(prefix, cluster.redis_pubsub_partitions)
        } else {
            Keys::new(prefix)
        };
        let bus = broadcast::channel(BUS_CAPACITY).0;
        let pubsub_live = Arc::new(AtomicBool::new(false));
        let last_message_ms = Arc::new(AtomicI64::new(0));
        let mode = if config.redis_url.is_some() {
            "standalone"
        } else if cluster.enabled() {
            "cluster"
        } else {
            "sentinel"
        };
        // Live unless there are sharded subscriptions to keep (a Cluster's).
        let shards_live = Arc::new(AtomicBool::new(!cluster.enabled()));
        if cluster.enabled() {
            let shards = shards::Shards {
                nodes: cluster.redis_cluster_nodes.clone(),
                how: nodes,
                links: Arc::clone(&links),
                keys: keys.clone(),
                bus: bus.clone(),
                live: Arc::clone(&shards_live),
                instance_id: Arc::clone(&settings.instance_id),
                probe_every: settings.pubsub_probe_every,
                metrics: Arc::clone(&settings.metrics),
            };
            tasks.spawn(shards.run(shutdown.clone()));
        }
        let pubsub = pubsub::PubSub {
            links: Arc::clone(&links),
            keys: keys.clone(),
            bus: bus.clone(),
            live: Arc::clone(&pubsub_live),
            last_message_ms: Arc::clone(&last_message_ms),
            instance_id: Arc::clone(&settings.instance_id),
            probe_every: settings.pubsub_probe_every,
            metrics: Arc::clone(&settings.metrics),
            connect_timeout: CONNECT_TIMEOUT * 2,
        };
        tasks.spawn(pubsub.run(shutdown));
        let group = (!cluster.enabled()).then(|| {
            Arc::new(group_commit::GroupCommit::start(
                Arc::clone(&links),
                Arc::clone(&settings.metrics),
                settings.wait_replicas,
                settings.max_batch_bytes,
            ))
        });
        let store = Arc::new(RedisStore {
            links,
            keys,
            settings,
            bus,
            pubsub_live,
            shards_live,
            last_message_ms,
            mode,
            tenant: None,
            group,
        });
        Ok(store)
    }

    /// A handle on the shared multiplexed connection.
    fn conn(&self) -> measured::Measured {
        measured::Measured {
            raw: self.links.conn(),
            metrics: Arc::clone(&self.settings.metrics),
        }
    }

    fn read_conn(&self) -> measured::Measured {
        measured::Measured {
            raw: self.links.reads(),
            metrics: Arc::clone(&self.settings.metrics),
        }
    }

    /// Runs a read on the read connection, and again (up to [`READ_ATTEMPTS`] in all) when
    /// the connection had dropped: a connection learns that Redis restarted only from the
    /// next command, and reconnects after failing it. Reads change nothing, so a retry is
    /// safe; a timeout is not retried (it would only multiply the wait).
    async fn read<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(measured::Measured) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let mut attempt = 1;
        loop {
            match op(self.read_conn()).await {
                Ok(v) => return Ok(v),
                Err(e)
                    if attempt < READ_ATTEMPTS
                        && !e.is_timeout()
                        && (e.is_io_error()
                            || e.is_connection_dropped()
                            || e.is_connection_refusal()) =>
                {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The session an owner key names (`key_of` names it in a partition). On a Cluster the key
    /// is in its session's partition, which an item's id alone does not tell: every partition
    /// is asked at once, and at most one holds it.
    async fn owner(&self, key_of: impl Fn(usize) -> String) -> Result<Option<String>, StoreError> {
        let asks = (0..self.keys.partitions()).map(|p| {
            let mut conn = self.conn();
            let key = key_of(p);
            async move { conn.get::<_, Option<String>>(key).await }
        });
        let found = futures::future::try_join_all(asks).await?;
        Ok(found.into_iter().flatten().next())
    }

    /// The names of the keys of a `tenantId` that data names (usage, user context): the
    /// store's own for the default one, and always in a credential tenant's own store (a
    /// tenant's data cannot name its way into another's key space).
    fn tenant_keys(&self, tenant: &str) -> std::borrow::Cow<'_, Keys> {
        if self.tenant.is_some() || tenant == crate::domain::usage::DEFAULT_TENANT {
            std::borrow::Cow::Borrowed(&self.keys)
        } else {
            std::borrow::Cow::Owned(self.keys.for_tenant(tenant))
        }
    }

    fn ttl_secs(&self) -> u64 {
        self.settings.session_ttl.as_secs().max(1)
    }
}

impl RedisStore {
    /// The store of a tenant other than the default one: the same connections, the tenant's
    /// key space.
    pub fn scoped(&self, tenant: &Arc<str>) -> RedisStore {
        RedisStore {
            links: Arc::clone(&self.links),
            keys: self.keys.for_tenant(tenant),
            settings: self.settings.clone(),
            bus: self.bus.clone(),
            pubsub_live: Arc::clone(&self.pubsub_live),
            shards_live: Arc::clone(&self.shards_live),
            last_message_ms: Arc::clone(&self.last_message_ms),
            mode: self.mode,
            tenant: Some(Arc::clone(tenant)),
            group: self.group.clone(),
        }
    }
}

impl TenantStores for RedisStore {
    fn tenant(&self, tenant: &Arc<str>) -> Stores {
        Stores::of("redis", Arc::new(self.scoped(tenant)))
    }
}

impl Bus for RedisStore {
    fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.bus.subscribe()
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
        Some(map) => super::sessions::decode(&map).map(Some),
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

/// An integer reply that may be negative (scores, sums, status codes of the scripts).
fn signed(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
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
