//! `afw-gateway backup` and `afw-gateway restore`: every key under `REDIS_PREFIX` to a file of
//! JSON lines and back ([`crate::store::redis::backup`] says what the file holds). They reach
//! Redis as the gateway does (`REDIS_URL`, `REDIS_TLS_CA_FILE`, `REDIS_PREFIX` from the
//! environment); the embedded store has nothing to back up, as it lives in the process.

use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::config::Config;
use crate::store::redis::backup::{self, Summary};

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

/// The Redis a command works on: `REDIS_URL` (under Sentinel, the primary's URL).
fn redis_of(config: &Config) -> Result<(String, Option<PathBuf>), String> {
    match &config.store.redis_url {
        Some(url) => Ok((url.clone(), config.store.redis_tls_ca_file.clone())),
        None if config.store.on_redis() => Err("set REDIS_URL to one server: under Sentinel, \
            the primary's; a Cluster is backed up node by node with its own tools"
            .into()),
        None => Err(
            "the embedded store lives in the gateway's process and has nothing to \
            back up or restore; set REDIS_URL"
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
    let (url, ca) = redis_of(config)?;
    let mut conn = backup::connect(&url, ca.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let mut out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        let f = std::fs::File::create(&args.out)
            .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
        Box::new(std::io::BufWriter::new(f))
    };
    let mut shown = progress();
    backup::backup(&mut conn, &config.store.redis_prefix, &mut out, &mut shown)
        .await
        .map_err(|e| e.to_string())
}

pub async fn restore(config: &Config, args: &RestoreArgs) -> Result<Summary, String> {
    let (url, ca) = redis_of(config)?;
    let mut conn = backup::connect(&url, ca.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let mut input: Box<dyn std::io::BufRead> = if args.input.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let f = std::fs::File::open(&args.input)
            .map_err(|e| format!("cannot read {}: {e}", args.input.display()))?;
        Box::new(BufReader::new(f))
    };
    let mut shown = progress();
    let prefix = args.prefix.as_deref();
    backup::restore(&mut conn, &mut input, args.replace, prefix, &mut shown)
        .await
        .map_err(|e| e.to_string())
}
