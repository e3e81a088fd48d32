//! What each tenant other than the default one may hold, counted across every instance (the
//! default tenant is the operator's own and is never held to these).

use clap::Args;

use super::values::ConfigError;

#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Tenant quotas")]
pub struct Quotas {
    /// Live sessions one tenant may have (a session counts from its creation until it
    /// expires or is deleted; each event renews it). Past it, a new session gets 429 `quota`.
    /// 0: no limit.
    #[arg(
        long,
        env = "TENANT_MAX_SESSIONS",
        value_name = "TENANT_MAX_SESSIONS",
        default_value_t = 0
    )]
    pub tenant_max_sessions: u64,
    /// Events one tenant may post a UTC day (each posted event counts, a retried duplicate
    /// too); past it, 429 `quota`. 0: no limit.
    #[arg(
        long,
        env = "TENANT_MAX_EVENTS_PER_DAY",
        value_name = "TENANT_MAX_EVENTS_PER_DAY",
        default_value_t = 0
    )]
    pub tenant_max_events_per_day: u64,
    /// WebSocket connections one tenant may hold on each instance; past it, the upgrade gets
    /// 429 `quota` (or, with credentials sent in the first message, an `error` `quota` and
    /// close 1008). 0: no limit.
    #[arg(
        long,
        env = "TENANT_MAX_CONNECTIONS",
        value_name = "TENANT_MAX_CONNECTIONS",
        default_value_t = 0
    )]
    pub tenant_max_connections: u64,
    /// Bytes of cache values one tenant may hold (each value counts until it expires, is
    /// replaced or deleted by its key); past it, a put gets 429 `quota`. 0: no limit.
    #[arg(
        long,
        env = "TENANT_MAX_CACHE_BYTES",
        value_name = "TENANT_MAX_CACHE_BYTES",
        default_value_t = 0
    )]
    pub tenant_max_cache_bytes: u64,
}

impl Quotas {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Whether any quota is set.
    pub fn any(&self) -> bool {
        self.tenant_max_sessions > 0
            || self.tenant_max_events_per_day > 0
            || self.tenant_max_connections > 0
            || self.tenant_max_cache_bytes > 0
    }
}
