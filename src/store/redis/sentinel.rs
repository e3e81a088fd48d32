//! Redis under Sentinel: the primary is asked of the sentinels (each in turn, the first that
//! answers decides), confirmed by its own `ROLE` before anything is written through it, and
//! asked again every `REDIS_SENTINEL_CHECK_MS`, since a `+switch-master` can be missed and the
//! library follows none. When the primary moves, the store's connections are replaced
//! ([`super::links::Links::replace`]) and the pub/sub connection subscribes on the new one,
//! then every watched session is filled from the store, as after any reconnect.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::links::{Link, Links, Nodes};
use crate::config::{host_port, Sentinel as Settings};

/// How long one question to a sentinel or a node may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) struct Sentinel {
    settings: Settings,
    /// How to reach the data nodes, and the sentinels (with their own password).
    nodes: Nodes,
    sentinels: Nodes,
    /// The primary the store's connections now point at.
    current: Option<(String, u16)>,
}

impl Sentinel {
    pub(super) fn new(settings: Settings, nodes: Nodes) -> Sentinel {
        Sentinel {
            sentinels: nodes.with_credentials(None, settings.redis_sentinel_password.as_deref()),
            nodes,
            settings,
            current: None,
        }
    }

    /// A client of `host:port` with the data nodes' credentials.
    fn node(&self, host: &str, port: u16) -> redis::RedisResult<redis::Client> {
        self.nodes.client(host, port)
    }

    /// The primary's address as the first sentinel that answers names it.
    async fn ask(&self) -> Option<(String, u16)> {
        for s in &self.settings.redis_sentinels {
            // Checked at start (`Store::validate`).
            let Some((host, port)) = host_port(s) else {
                continue;
            };
            let answer = tokio::time::timeout(ASK_TIMEOUT, async {
                let mut c = self
                    .sentinels
                    .client(host, port)?
                    .get_multiplexed_async_connection()
                    .await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.settings.redis_sentinel_master)
                    .query_async::<Option<(String, u16)>>(&mut c)
                    .await
            })
            .await;
            match answer {
                Ok(Ok(Some(addr))) => return Some(addr),
                Ok(Ok(None)) => tracing::warn!(sentinel = %s, "the sentinel knows no such master"),
                Ok(Err(e)) => tracing::debug!(sentinel = %s, error = %e, "sentinel did not answer"),
                Err(_) => tracing::debug!(sentinel = %s, "sentinel timed out"),
            }
        }
        None
    }

    /// A link to `addr` once the server there says it is a primary.
    async fn confirmed(&self, addr: &(String, u16)) -> Option<Link> {
        let client = self.node(&addr.0, addr.1).ok()?;
        let role = tokio::time::timeout(ASK_TIMEOUT, async {
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("ROLE").query_async::<redis::Value>(&mut c).await
        })
        .await;
        let is_primary = match role {
            Ok(Ok(redis::Value::Array(items))) => matches!(
                items.first(),
                Some(redis::Value::BulkString(b)) if b == b"master"
            ),
            _ => false,
        };
        if !is_primary {
            tracing::debug!(host = %addr.0, port = addr.1, "not (yet) a primary");
            return None;
        }
        Link::to(client).ok()
    }

    /// The first link: the primary the sentinels name now, or, when none answers, a link
    /// that fails until [`Sentinel::watch`] finds one (the gateway reports not ready).
    pub(super) async fn first_link(&mut self) -> redis::RedisResult<Link> {
        if let Some(addr) = self.ask().await {
            if let Some(link) = self.confirmed(&addr).await {
                tracing::info!(host = %addr.0, port = addr.1, "redis primary, from the sentinels");
                self.current = Some(addr);
                return Ok(link);
            }
        }
        tracing::warn!("no sentinel named a primary yet; asking again");
        Link::to(self.node("127.0.0.1", 1)?)
    }

    /// Asks the sentinels every `REDIS_SENTINEL_CHECK_MS` until `shutdown`, and moves the
    /// store's connections to a new primary once it confirms it is one.
    pub(super) async fn watch(mut self, links: Arc<Links>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.redis_sentinel_check);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(addr) = self.ask().await else {
                continue;
            };
            if self.current.as_ref() == Some(&addr) {
                continue;
            }
            if let Some(link) = self.confirmed(&addr).await {
                tracing::warn!(host = %addr.0, port = addr.1, "the redis primary moved; following it");
                links.replace(link);
                self.current = Some(addr);
            }
        }
    }
}
