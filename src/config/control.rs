//! The settings of each session's command and input queues.

use clap::Args;

use super::values::{bad, ConfigError};

pub const DEFAULT_QUEUE_TTL_SECS: u64 = 300;
pub const DEFAULT_MCP_TASK_MAX_SECS: u64 = 86_400;
pub const DEFAULT_MCP_TASK_KEEP_SECS: u64 = 3_600;

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Commands and input")]
pub struct Control {
    /// Seconds each command and each input item lives in its queue (its own clock).
    #[arg(long, env = "QUEUE_TTL_SECS", value_name = "QUEUE_TTL_SECS", default_value_t = DEFAULT_QUEUE_TTL_SECS)]
    pub queue_ttl_secs: u64,
    /// Live items one session's command queue (and its input queue) holds at most; a push past
    /// it gets 429 `queue_full`.
    #[arg(
        long,
        env = "QUEUE_MAX_ITEMS",
        value_name = "QUEUE_MAX_ITEMS",
        default_value_t = 256
    )]
    pub queue_max_items: usize,
    /// The longest an MCP client's `ask_human` task waits for its answer (its `timeoutSecs`
    /// at most); a plain call of the tool waits 60 s at most whatever this is.
    #[arg(
        long,
        env = "MCP_TASK_MAX_SECS",
        value_name = "MCP_TASK_MAX_SECS",
        default_value_t = DEFAULT_MCP_TASK_MAX_SECS
    )]
    pub mcp_task_max_secs: u64,
    /// How long a settled `ask_human` task (answered, timed out, declined or cancelled) can
    /// still be read with `tasks/get`.
    #[arg(
        long,
        env = "MCP_TASK_KEEP_SECS",
        value_name = "MCP_TASK_KEEP_SECS",
        default_value_t = DEFAULT_MCP_TASK_KEEP_SECS
    )]
    pub mcp_task_keep_secs: u64,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            queue_ttl_secs: DEFAULT_QUEUE_TTL_SECS,
            queue_max_items: 256,
            mcp_task_max_secs: DEFAULT_MCP_TASK_MAX_SECS,
            mcp_task_keep_secs: DEFAULT_MCP_TASK_KEEP_SECS,
        }
    }
}

impl Control {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_ttl_secs == 0 || self.queue_ttl_secs > 7 * 24 * 3600 {
            return Err(bad(
                "QUEUE_TTL_SECS",
                "must be between 1 and 604800 seconds",
            ));
        }
        if self.queue_max_items == 0 || self.queue_max_items > 100_000 {
            return Err(bad("QUEUE_MAX_ITEMS", "must be between 1 and 100000"));
        }
        if self.mcp_task_max_secs == 0 || self.mcp_task_max_secs > 30 * 24 * 3600 {
            return Err(bad(
                "MCP_TASK_MAX_SECS",
                "must be between 1 and 2592000 seconds",
            ));
        }
        if self.mcp_task_keep_secs == 0 || self.mcp_task_keep_secs > 7 * 24 * 3600 {
            return Err(bad(
                "MCP_TASK_KEEP_SECS",
                "must be between 1 and 604800 seconds",
            ));
        }
        Ok(())
    }
}
