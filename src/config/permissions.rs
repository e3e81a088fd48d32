//! The settings of Claude Code's permission prompts (`/api/permissions`).

use clap::Args;

use super::values::{bad, ConfigError};
use crate::domain::permissions::PermissionLimits;

pub const DEFAULT_PERMISSION_TIMEOUT_SECS: u64 = 110;

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Permission prompts")]
pub struct Permissions {
    /// Seconds a permission request waits for a decision; then its hook is answered so that
    /// Claude Code asks in its terminal, and the request is `expired`. Keep it below the
    /// hook's own `timeout`.
    #[arg(
        long,
        env = "PERMISSION_TIMEOUT_SECS",
        value_name = "PERMISSION_TIMEOUT_SECS",
        default_value_t = DEFAULT_PERMISSION_TIMEOUT_SECS
    )]
    pub permission_timeout_secs: u64,
    /// Seconds a permission request is kept (for `GET /api/permissions`) after its deadline.
    #[arg(
        long,
        env = "PERMISSION_KEEP_SECS",
        value_name = "PERMISSION_KEEP_SECS",
        default_value_t = 86_400
    )]
    pub permission_keep_secs: u64,
    /// Permission requests waiting at once; one more gets 429 `queue_full` (and Claude Code
    /// asks in its terminal).
    #[arg(
        long,
        env = "PERMISSION_MAX_PENDING",
        value_name = "PERMISSION_MAX_PENDING",
        default_value_t = 1000
    )]
    pub permission_max_pending: usize,
    /// Permission requests kept in all; past it the oldest go.
    #[arg(
        long,
        env = "PERMISSION_MAX_KEPT",
        value_name = "PERMISSION_MAX_KEPT",
        default_value_t = 10_000
    )]
    pub permission_max_kept: usize,
    /// A JSON file of permission rules (`{"rules": [...]}`, as `PUT /api/permission-rules`
    /// takes them), set at start in place of the stored ones.
    #[arg(
        long,
        env = "PERMISSION_RULES_FILE",
        value_name = "PERMISSION_RULES_FILE"
    )]
    pub permission_rules_file: Option<std::path::PathBuf>,
}

impl Default for Permissions {
    fn default() -> Self {
        Permissions {
            permission_timeout_secs: DEFAULT_PERMISSION_TIMEOUT_SECS,
            permission_keep_secs: 86_400,
            permission_max_pending: 1000,
            permission_max_kept: 10_000,
            permission_rules_file: None,
        }
    }
}

impl Permissions {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.permission_timeout_secs == 0 || self.permission_timeout_secs > 3600 {
            return Err(bad(
                "PERMISSION_TIMEOUT_SECS",
                "must be between 1 and 3600 seconds",
            ));
        }
        if self.permission_keep_secs > 30 * 86_400 {
            return Err(bad(
                "PERMISSION_KEEP_SECS",
                "must be at most 2592000 seconds",
            ));
        }
        if self.permission_max_pending == 0 || self.permission_max_pending > 100_000 {
            return Err(bad(
                "PERMISSION_MAX_PENDING",
                "must be between 1 and 100000",
            ));
        }
        if self.permission_max_kept < self.permission_max_pending
            || self.permission_max_kept > 1_000_000
        {
            return Err(bad(
                "PERMISSION_MAX_KEPT",
                "must be at least PERMISSION_MAX_PENDING and at most 1000000",
            ));
        }
        Ok(())
    }

    /// The rules of `PERMISSION_RULES_FILE`, checked, when it is set.
    pub fn rules_file(&self) -> Result<Option<serde_json::Value>, ConfigError> {
        let Some(path) = &self.permission_rules_file else {
            return Ok(None);
        };
        let var = "PERMISSION_RULES_FILE";
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(var, format!("cannot read {}: {e}", path.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(var, format!("{} is not JSON: {e}", path.display())))?;
        if let Err(problems) = crate::domain::permission_rules::parse_rules(&value) {
            let first = &problems[0];
            return Err(bad(
                var,
                format!("{}: {}: {}", path.display(), first.field, first.problem),
            ));
        }
        Ok(Some(value))
    }

    pub fn limits(&self) -> PermissionLimits {
        PermissionLimits {
            keep_ms: self.permission_keep_secs * 1000,
            max_pending: self.permission_max_pending,
            max_kept: self.permission_max_kept,
        }
    }
}
