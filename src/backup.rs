//! `afw-gateway backup` and `afw-gateway restore`: every key under `REDIS_PREFIX` to a file of
//! JSON lines and back ([`crate::store::redis::backup`] says what the file holds); and
//! `afw-gateway cleanup`: what nothing expires by itself, removed
//! ([`crate::store::redis::cleanup`] says what). They reach Redis as the gateway does
//! (`REDIS_URL`, `REDIS_TLS_CA_FILE`, `REDIS_PREFIX` from the environment); the embedded store
//! lives in the gateway's process.

use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::config::Config;
use crate::domain::usage::DEFAULT_TENANT;
use crate::store::redis::backup::{self, Summary};
use crate::store::redis::cleanup::{Cleaned, ScanOn};
use crate::store::redis::RedisStore;

#[derive(Parser, Debug)]
#[command(
    name = "afw-gateway backup",
    about = "Write every key under REDIS_PREFIX, with its type, value and TTL, as JSON lines"
)]
pub struct BackupArgs {
    /// The file to write; `-` for stdout.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Parser, Debug)]
#[command(
    name = "afw-gateway restore",
    about = "Put back the keys of a backup with what is left of their TTLs"
)]
pub struct RestoreArgs {
    /// The backup to read; `-` for stdin.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Overwrite keys that exist (without it they are left as they are, and counted).
    #[arg(long)]
    pub replace: bool,
    /// Restore under this prefix instead of the backup's.
    #[arg(long)]
    pub prefix: Option<String>,
}

#[derive(Parser, Debug)]
#[command(
    name = "afw-gateway cleanup",
    about = "Remove what no expiry removes: index entries of sessions, chains and permission \
             requests that are gone, finished jobs past JOB_KEEP_SECS, stale cache tag members"
)]
pub struct CleanupArgs {
    /// Count what would go, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What a cleanup did: the default tenant's key space first, then each other tenant's.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    pub dry_run: bool,
    pub tenants: Vec<(String, Cleaned)>,
    pub total: Cleaned,
}

/// The Redis a command works on: the one server `REDIS_URL` names, or the Cluster
/// `REDIS_CLUSTER_NODES` names (under Sentinel, `REDIS_URL` must name the primary).
async fn target(config: &Config) -> Result<backup::Target, String> {
    let store = &config.store;
    match &store.redis_url {
        Some(url) => backup::connect(url, store.redis_tls_ca_file.as_deref())
            .await
            .map_err(|e| e.to_string()),
        None if store.cluster.enabled() => backup::connect_cluster(store)
            .await
            .map_err(|e| e.to_string()),
        None if store.on_redis() => {
            Err("under Sentinel, set REDIS_URL to the primary's address".into())
        }
        None => Err(
            "the embedded store lives in the gateway's process: keep it across \
            restarts with MEMORY_SNAPSHOT_FILE; set REDIS_URL to back up Redis"
                .into(),
        ),
    }
}

/// Prints progress on a terminal (stderr), at most once a second.
fn progress() -> impl FnMut(u64, Duration) {
    let tty = std::io::stderr().is_terminal();
    let mut shown = Duration::ZERO;
    move |keys, elapsed| {
        if tty && elapsed >= shown + Duration::from_secs(1) {
            shown = elapsed;
            let rate = keys as f64 / elapsed.as_secs_f64().max(1e-3);
            eprint!("\r{keys} keys, {rate:.0} keys/s   ");
        }
    }
}

pub async fn backup(config: &Config, args: &BackupArgs) -> Result<Summary, String> {
    let mut target = target(config).await?;
    let mut out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        let f = std::fs::File::create(&args.out)
            .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
        Box::new(std::io::BufWriter::new(f))
    };
    let mut shown = progress();
    backup::backup(
        &mut target,
        &config.store.redis_prefix,
        &mut out,
        &mut shown,
    )
    .await
    .map_err(|e| e.to_string())
}

pub async fn restore(config: &Config, args: &RestoreArgs) -> Result<Summary, String> {
    let mut target = target(config).await?;
    let mut input: Box<dyn std::io::BufRead> = if args.input.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let f = std::fs::File::open(&args.input)
            .map_err(|e| format!("cannot read {}: {e}", args.input.display()))?;
        Box::new(BufReader::new(f))
    };
    let mut shown = progress();
    let prefix = args.prefix.as_deref();
    backup::restore(&mut target, &mut input, args.replace, prefix, &mut shown)
        .await
        .map_err(|e| e.to_string())
}

/// Cleans the default tenant's key space and every other tenant's that has keys.
pub async fn cleanup(config: &Config, args: &CleanupArgs) -> Result<CleanupReport, String> {
    if !config.store.on_redis() {
        return Err(
            "the embedded store lives in the gateway's process and drops what \
            expires every 30 s itself; set REDIS_URL"
                .into(),
        );
    }
    // On a Cluster, `SCAN` runs on each primary.
    let on = match config.store.cluster.enabled() {
        true => match target(config).await? {
            backup::Target::Cluster { primaries, .. } => ScanOn(primaries),
            backup::Target::One(_) => ScanOn::default(),
        },
        false => ScanOn::default(),
    };
    let tasks = tokio_util::task::TaskTracker::new();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let metrics = Arc::new(crate::metrics::Metrics::new(true));
    let settings = crate::store::settings(config, "cleanup".into(), metrics);
    let done = async {
        let store = RedisStore::open(&config.store, settings, &tasks, shutdown.clone()).await?;
        let mut report = CleanupReport {
            dry_run: args.dry_run,
            tenants: vec![(
                DEFAULT_TENANT.to_string(),
                store.cleanup(args.dry_run, &on).await?,
            )],
            total: Cleaned::default(),
        };
        for tenant in store.tenants(&on).await? {
            let cleaned = store.scoped(&tenant).cleanup(args.dry_run, &on).await?;
            report.tenants.push((tenant.to_string(), cleaned));
        }
        for (_, c) in &report.tenants {
            report.total.add(c);
        }
        Ok::<_, crate::store::StoreError>(report)
    }
    .await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    done.map_err(|e| e.to_string())
}
