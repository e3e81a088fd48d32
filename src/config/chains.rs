//! The chains' settings: how large a chain and one of its values may be, and when an active
//! chain counts as stale.

use clap::Args;

use super::values::{bad, ConfigError};
use crate::domain::chain::ChainLimits;

pub const DEFAULT_CHAIN_STALE_SECS: u64 = 3600;
pub const DEFAULT_CHAIN_MAX_BYTES: usize = 256 * 1024;
pub const DEFAULT_CHAIN_VALUE_MAX_BYTES: usize = 16 * 1024;
/// Room a `chain` frame needs around the chain itself.
pub const CHAIN_FRAME_OVERHEAD: usize = 4096;

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Chains")]
pub struct Chains {
    /// Seconds without an update after which `POST /api/chains/cleanup` fails an active chain.
    #[arg(long, env = "CHAIN_STALE_SECS", value_name = "CHAIN_STALE_SECS", default_value_t = DEFAULT_CHAIN_STALE_SECS)]
    pub chain_stale_secs: u64,
    /// Largest stored chain, in bytes of JSON; a change past it is refused (413 on the chain
    /// routes; logged and counted for chain events). Unset: a quarter of
    /// WS_OUTBOUND_LIMIT_BYTES (256 KiB). Must leave room below WS_OUTBOUND_LIMIT_BYTES, so one
    /// chain frame never closes a reader that keeps up.
    #[arg(long, env = "CHAIN_MAX_BYTES", value_name = "CHAIN_MAX_BYTES")]
    pub chain_max_bytes: Option<usize>,
    /// Largest free-form value of a chain (an error, data, a step's fields) kept as given;
    /// a larger one is replaced by `{"truncated":true,"bytes":N,"preview":"..."}`.
    #[arg(long, env = "CHAIN_VALUE_MAX_BYTES", value_name = "CHAIN_VALUE_MAX_BYTES", default_value_t = DEFAULT_CHAIN_VALUE_MAX_BYTES)]
    pub chain_value_max_bytes: usize,
}

impl Default for Chains {
    fn default() -> Self {
        Chains {
            chain_stale_secs: DEFAULT_CHAIN_STALE_SECS,
            chain_max_bytes: None,
            chain_value_max_bytes: DEFAULT_CHAIN_VALUE_MAX_BYTES,
        }
    }
}

impl Chains {
    /// What one chain may hold, given the outbound budget of a WebSocket
    /// (`WS_OUTBOUND_LIMIT_BYTES`) its frame must fit.
    pub fn limits(&self, ws_outbound_limit_bytes: usize) -> ChainLimits {
        let room = ws_outbound_limit_bytes.saturating_sub(CHAIN_FRAME_OVERHEAD);
        ChainLimits {
            max_bytes: self
                .chain_max_bytes
                .unwrap_or(DEFAULT_CHAIN_MAX_BYTES.min(room)),
            max_value_bytes: self.chain_value_max_bytes,
        }
    }

    /// Checks these against the outbound budget their frames must fit.
    pub fn validate(&self, ws_outbound_limit_bytes: usize) -> Result<(), ConfigError> {
        if self.chain_stale_secs == 0 {
            return Err(bad("CHAIN_STALE_SECS", "must be at least 1 second"));
        }
        let max = self.limits(ws_outbound_limit_bytes).max_bytes;
        if max < 4096 || max + CHAIN_FRAME_OVERHEAD > ws_outbound_limit_bytes {
            return Err(bad(
                "CHAIN_MAX_BYTES",
                format!("must be at least 4096 and at most WS_OUTBOUND_LIMIT_BYTES - {CHAIN_FRAME_OVERHEAD}"),
            ));
        }
        if self.chain_value_max_bytes < 512 || self.chain_value_max_bytes > max {
            return Err(bad(
                "CHAIN_VALUE_MAX_BYTES",
                "must be at least 512 and at most CHAIN_MAX_BYTES",
            ));
        }
        Ok(())
    }
}
