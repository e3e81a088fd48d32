//! The store's connections to its Redis: the command connection, the read connection and the
//! client the pub/sub connection is made from. On one server they never change; under
//! Sentinel ([`super::sentinel`]) they are replaced, all three at once, when the primary moves,
//! and the pub/sub connection hears of it and subscribes again on the new primary.

use std::time::Duration;

use parking_lot::RwLock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

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
            let pem = std::fs::read(path).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "REDIS_TLS_CA_FILE cannot be read",
                    e.to_string(),
                ))
            })?;
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

/// One Redis server's connections.
#[derive(Clone)]
pub(super) struct Link {
    pub(super) client: redis::Client,
    pub(super) conn: ConnectionManager,
    /// A connection of its own for reads that may be large (event pages, listings), so
    /// appends and queue steps never wait behind them.
    pub(super) reads: ConnectionManager,
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
            conn: ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?,
            reads: ConnectionManager::new_lazy_with_config(client.clone(), config)?,
            client,
        })
    }
}

/// The store's current link, and who is told when it is replaced.
pub(super) struct Links {
    current: RwLock<Link>,
    moved: watch::Sender<u64>,
}

impl Links {
    pub(super) fn new(link: Link) -> Links {
        Links {
            current: RwLock::new(link),
            moved: watch::channel(0).0,
        }
    }

    pub(super) fn conn(&self) -> ConnectionManager {
        self.current.read().conn.clone()
    }

    pub(super) fn reads(&self) -> ConnectionManager {
        self.current.read().reads.clone()
    }

    pub(super) fn client(&self) -> redis::Client {
        self.current.read().client.clone()
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
