//! The store's connections to its Redis: the command connection, the read connection and the
//! client the pub/sub connection is made from. On one server they never change; under
//! Sentinel ([`super::sentinel`]) they are replaced, all three at once, when the primary moves,
//! and the pub/sub connection hears of it and subscribes again on the new primary. On a
//! Cluster the command and read connections are cluster connections (each command goes to the
//! node of its key's slot, following `MOVED` and failovers), and the pub/sub connection of
//! the classic channels is made to any node that answers.

use std::time::Duration;

use std::sync::Arc;

use parking_lot::RwLock;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisConnectionInfo, RedisFuture, Value,
};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// A connection the store sends commands on: to one server, or to a cluster. A cluster
/// connection whose command times out asks for the link to be renewed ([`Links::renewal`]).
#[derive(Clone)]
pub(super) enum Conn {
    One(ConnectionManager),
    Cluster(ClusterConnection, Arc<Notify>),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::One(c) => c.req_packed_command(cmd),
            Conn::Cluster(c, renew) => Box::pin(async move {
                let r = c.req_packed_command(cmd).await;
                stalled(&r, renew);
                r
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::One(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c, renew) => Box::pin(async move {
                let r = c.req_packed_commands(cmd, offset, count).await;
                stalled(&r, renew);
                r
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::One(c) => c.get_db(),
            Conn::Cluster(c, _) => c.get_db(),
        }
    }
}

/// Asks for a renewal when a cluster command timed out: after a failover under load a cluster
/// connection of the library can keep sending to a node that no longer answers for the slot
/// and never learn otherwise (seen with redis-rs 1.8 and Redis 7.0: every command timing out
/// for as long as the test ran), while a new connection works at once.
fn stalled<T>(r: &redis::RedisResult<T>, renew: &Notify) {
    if r.as_ref().is_err_and(|e| e.is_timeout()) {
        renew.notify_one();
    }
}

/// How to reach the data nodes (under Sentinel, the nodes the sentinels name; on a Cluster,
/// its nodes) or the sentinels: their credentials, and TLS (`REDIS_TLS`) trusting the
/// authority of `REDIS_TLS_CA_FILE` when given, else the system's roots.
#[derive(Clone, Default)]
pub(super) struct Nodes {
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) tls: bool,
    /// The authority's PEM.
    pub(super) ca: Option<Vec<u8>>,
}

impl Nodes {
    /// The data nodes' settings of `config`.
    pub(super) fn data(config: &crate::config::Store) -> redis::RedisResult<Nodes> {
        let ca = match &config.redis_tls_ca_file {
            Some(path) if config.redis_tls => Some(read_ca(path)?),
            _ => None,
        };
        if config.redis_tls {
            // The process's one TLS crypto provider; installed once, later calls change nothing.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        Ok(Nodes {
            username: config.sentinel.redis_username.clone(),
            password: config.sentinel.redis_password.clone(),
            tls: config.redis_tls,
            ca,
        })
    }

    /// The same TLS, with other credentials (the sentinels').
    pub(super) fn with_credentials(&self, username: Option<&str>, password: Option<&str>) -> Nodes {
        Nodes {
            username: username.map(str::to_string),
            password: password.map(str::to_string),
            ..self.clone()
        }
    }

    fn certificates(&self) -> Option<redis::TlsCertificates> {
        self.ca.as_ref().map(|pem| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }

    fn info(&self, host: &str, port: u16) -> redis::RedisResult<redis::ConnectionInfo> {
        let mut redis = RedisConnectionInfo::default();
        if let Some(u) = &self.username {
            redis = redis.set_username(u);
        }
        if let Some(p) = &self.password {
            redis = redis.set_password(p);
        }
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.to_string(), port)
        };
        Ok("redis://127.0.0.1"
            .into_connection_info()?
            .set_addr(addr)
            .set_redis_settings(redis))
    }

    /// A client of `host:port`.
    pub(super) fn client(&self, host: &str, port: u16) -> redis::RedisResult<redis::Client> {
        let info = self.info(host, port)?;
        match self.certificates() {
            Some(certs) => redis::Client::build_with_tls(info, certs),
            None => redis::Client::open(info),
        }
    }

    /// A client of a `host:port` entry of `REDIS_CLUSTER_NODES`.
    fn entry_client(&self, entry: &str) -> redis::RedisResult<redis::Client> {
        let (host, port) = entry_addr(entry)?;
        self.client(host, port)
    }

    /// A cluster client learning the cluster from `nodes` (`host:port`); with `push`, over
    /// RESP3 with its pushes (sharded pub/sub) sent there.
    pub(super) fn cluster_client(
        &self,
        nodes: &[String],
        push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
    ) -> redis::RedisResult<ClusterClient> {
        let mut infos = Vec::with_capacity(nodes.len());
        for n in nodes {
            let (host, port) = entry_addr(n)?;
            infos.push(self.info(host, port)?);
        }
        let mut b = redis::cluster::ClusterClientBuilder::new(infos)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(6)
            .min_retry_wait(50)
            .max_retry_wait(1000);
        if let Some(u) = &self.username {
            b = b.username(u);
        }
        if let Some(p) = &self.password {
            b = b.password(p);
        }
        if let Some(certs) = self.certificates() {
            b = b.certs(certs);
        }
        if let Some(tx) = push {
            b = b
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(tx);
        }
        b.build()
    }
}

/// The PEM file `REDIS_TLS_CA_FILE` names.
fn read_ca(path: &std::path::Path) -> redis::RedisResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "REDIS_TLS_CA_FILE cannot be read",
            e.to_string(),
        ))
    })
}

/// The host and port of a `host:port` entry (checked at start, `Store::validate`).
fn entry_addr(entry: &str) -> redis::RedisResult<(&str, u16)> {
    crate::config::host_port(entry).ok_or_else(|| {
        redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "not host:port"))
    })
}

/// A cluster connection that connects in the background (the gateway starts, and reports not
/// ready, while the cluster is still coming up).
pub(super) fn cluster_conn(client: &ClusterClient) -> ClusterConnection {
    client.get_pending_async_connection_with_config(
        ClusterConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT),
    )
}

use super::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

/// A client of `url`; a `rediss://` one trusts the certificate authority in `ca` (a PEM
/// file) when given, else the system's roots (rustls, with the ring provider).
pub(super) fn client(url: &str, ca: Option<&std::path::Path>) -> redis::RedisResult<redis::Client> {
    if url.starts_with("rediss://") {
        // The process's one TLS crypto provider; installed once, later calls change nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    match ca {
        None => redis::Client::open(url),
        Some(path) => {
            let pem = read_ca(path)?;
            redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
        }
    }
}

/// One Redis server's (or one cluster's) connections.
#[derive(Clone)]
pub(super) struct Link {
    /// The server the classic pub/sub channels are subscribed on; on a cluster, each of
    /// the configured nodes in turn (a message published on any node reaches every node).
    pub(super) clients: Vec<redis::Client>,
    pub(super) conn: Conn,
    /// A connection of its own for reads that may be large (event pages, listings), so
    /// appends and queue steps never wait behind them.
    pub(super) reads: Conn,
}

impl Link {
    /// Connections to `client`'s server, made lazily: the gateway starts (and reports not
    /// ready) while Redis is still coming up.
    pub(super) fn to(client: redis::Client) -> redis::RedisResult<Link> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        Ok(Link {
            conn: Conn::One(ConnectionManager::new_lazy_with_config(
                client.clone(),
                config.clone(),
            )?),
            reads: Conn::One(ConnectionManager::new_lazy_with_config(
                client.clone(),
                config,
            )?),
            clients: vec![client],
        })
    }

    /// Connections to the cluster that `nodes` belong to; their timeouts notify `renew`.
    pub(super) fn to_cluster(
        nodes: &[String],
        how: &Nodes,
        renew: &Arc<Notify>,
    ) -> redis::RedisResult<Link> {
        let cluster = how.cluster_client(nodes, None)?;
        let mut clients = Vec::with_capacity(nodes.len());
        for n in nodes {
            clients.push(how.entry_client(n)?);
        }
        Ok(Link {
            conn: Conn::Cluster(cluster_conn(&cluster), Arc::clone(renew)),
            reads: Conn::Cluster(cluster_conn(&cluster), Arc::clone(renew)),
            clients,
        })
    }
}

/// The store's current link, and who is told when it is replaced.
pub(super) struct Links {
    current: RwLock<Link>,
    moved: watch::Sender<u64>,
    /// Notified when a cluster command timed out.
    renew: Arc<Notify>,
}

/// Least time between two renewals of a cluster's connections.
const RENEW_EVERY: Duration = Duration::from_secs(1);

impl Links {
    pub(super) fn new(link: Link) -> Links {
        Links::with_renewal(link, Arc::new(Notify::new()))
    }

    pub(super) fn with_renewal(link: Link, renew: Arc<Notify>) -> Links {
        Links {
            current: RwLock::new(link),
            moved: watch::channel(0).0,
            renew,
        }
    }

    /// Renews the cluster connections (with `make`) each time a command of theirs timed out,
    /// once a [`RENEW_EVERY`] at most. The classic pub/sub connection is not moved: it
    /// watches itself with its probes.
    pub(super) async fn renewal(
        self: Arc<Self>,
        make: impl Fn(&Arc<Notify>) -> redis::RedisResult<Link>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.renew.notified() => {}
            }
            match make(&self.renew) {
                Ok(link) => {
                    tracing::warn!("a cluster command timed out; renewing the cluster connections");
                    let mut current = self.current.write();
                    current.conn = link.conn;
                    current.reads = link.reads;
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the cluster connections"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RENEW_EVERY) => {}
            }
        }
    }

    pub(super) fn conn(&self) -> Conn {
        self.current.read().conn.clone()
    }

    pub(super) fn reads(&self) -> Conn {
        self.current.read().reads.clone()
    }

    /// The client of the classic pub/sub subscription's `attempt`th try.
    pub(super) fn client(&self, attempt: usize) -> redis::Client {
        let link = self.current.read();
        link.clients[attempt % link.clients.len()].clone()
    }

    /// Replaces every connection with `link`'s (the primary moved); the pub/sub connection
    /// follows.
    pub(super) fn replace(&self, link: Link) {
        *self.current.write() = link;
        self.moved.send_modify(|n| *n += 1);
    }

    /// Changes each time the link is replaced.
    pub(super) fn moves(&self) -> watch::Receiver<u64> {
        self.moved.subscribe()
    }
}
