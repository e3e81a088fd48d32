//! Test support, one file per job: a real `redis-server` ([`redis`]), Redis under Sentinel
//! ([`sentinel`]) and a Redis Cluster ([`redis_cluster`], its slots moved and replicas
//! promoted in [`redis_cluster_moves`]), real gateway instances ([`gateway`]), a WebSocket
//! client ([`ws`]) and an SSE reader ([`sse`]), a TCP proxy that can wedge pub/sub
//! ([`proxy`]), and crowds of resuming clients and retrying agents ([`crowd`]). Everything
//! started here is stopped by its `Drop` (processes by pid), so a failing test leaves nothing
//! behind.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

pub mod bystander;
pub mod cluster;
pub mod crowd;
pub mod gateway;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod redis_cluster;
pub mod redis_cluster_moves;
pub mod sentinel;
pub mod sse;
pub mod tls;
pub mod ws;

pub use bystander::*;
pub use cluster::*;
pub use crowd::*;
pub use gateway::*;
pub use proxy::*;
pub use raw::*;
pub use redis::*;
pub use redis_cluster::*;
pub use sentinel::*;
pub use sse::*;
pub use tls::*;
pub use ws::*;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The load generator's binary. It is a workspace member of its own, so its binary is not
/// one of this package's: built here when `scripts/test.sh` has not built it already.
pub fn loadgen_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            // target/{profile}/deps/{test binary}
            let profile_dir = exe
                .parent()
                .and_then(|d| d.parent())
                .expect("a target directory")
                .to_path_buf();
            let bin = profile_dir.join("afw-loadgen");
            if !bin.exists() {
                let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                    Some("debug") | None => "dev".to_string(),
                    Some(p) => p.to_string(),
                };
                let status = std::process::Command::new(env!("CARGO"))
                    .args(["build", "-p", "afw-loadgen", "--profile", &profile])
                    .arg("--target-dir")
                    .arg(profile_dir.parent().expect("a target directory"))
                    .status()
                    .expect("run cargo to build afw-loadgen");
                assert!(
                    status.success(),
                    "could not build afw-loadgen (cargo build -p afw-loadgen)"
                );
            }
            bin
        })
        .clone()
}
