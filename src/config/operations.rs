//! The settings of what operators look at: the store reads `/metrics` makes at a scrape, and
//! how often each instance records its figures for the operations view.

use clap::Args;

use super::values::{bad, ConfigError};

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Operations")]
pub struct Operations {
    /// Job queues (of the default tenant) whose depths `/metrics` reads from the store at each
    /// scrape, as `afw_job_queue_jobs{queue,state}`: a stats read per queue, at most 50 queues.
    #[arg(long, env = "METRICS_JOB_QUEUES", value_name = "METRICS_JOB_QUEUES", value_delimiter = ',', value_parser = super::values::trimmed)]
    pub metrics_job_queues: Vec<String>,
    /// Sessions (of the default tenant) with watchers on this instance whose commands and
    /// input still waiting `/metrics` counts at each scrape (`afw_control_queue_items`): two
    /// store reads per session, at most this many sessions (0: none).
    #[arg(
        long,
        env = "METRICS_QUEUE_SESSIONS",
        value_name = "METRICS_QUEUE_SESSIONS",
        default_value_t = 100
    )]
    pub metrics_queue_sessions: usize,
    /// Seconds between an instance's records of its figures for the operations view
    /// (`GET /api/ops/summary`, one store write each); an instance silent for three of them
    /// is left out.
    #[arg(
        long,
        env = "OPS_REPORT_SECS",
        value_name = "OPS_REPORT_SECS",
        default_value_t = 2
    )]
    pub ops_report_secs: u64,
}

impl Default for Operations {
    fn default() -> Self {
        Operations {
            metrics_job_queues: Vec::new(),
            metrics_queue_sessions: 100,
            ops_report_secs: 2,
        }
    }
}

impl Operations {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.metrics_job_queues.len() > 50 {
            return Err(bad("METRICS_JOB_QUEUES", "must name at most 50 queues"));
        }
        if self.metrics_queue_sessions > 1000 {
            return Err(bad("METRICS_QUEUE_SESSIONS", "must be between 0 and 1000"));
        }
        if !(1..=60).contains(&self.ops_report_secs) {
            return Err(bad("OPS_REPORT_SECS", "must be between 1 and 60 seconds"));
        }
        Ok(())
    }
}
