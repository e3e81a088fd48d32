//! `MEMORY_SNAPSHOT_FILE`: the embedded store written to a file when the gateway stops and
//! read back when it starts, so one process keeps its sessions, streams (epochs and seqs, so
//! clients resume exactly), queues, chains and services across a restart. Opt-in; a file that
//! cannot be read stops the start with why (it is never overwritten by an empty store).
//!
//! The file is JSON: `{afwMemorySnapshot: 1, savedAtMs, tenants: [{tenant, state, quotas}]}`.
//! Times the store keeps as `Instant`s are written as wall-clock milliseconds
//! ([`super::persisted`]). Rate-limit state and the instances' figures are not kept.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::quota::Quotas;
use super::State;

/// The file's format version.
const VERSION: u32 = 1;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct File {
    afw_memory_snapshot: u32,
    pub tenants: Vec<Tenant>,
}

/// One tenant's data (`tenant: null`: the default tenant's).
#[derive(Deserialize)]
pub(super) struct Tenant {
    pub tenant: Option<String>,
    pub state: State,
    pub quotas: Quotas,
}

/// [`Tenant`], as written.
#[derive(Serialize)]
pub(super) struct TenantRef<'a> {
    pub tenant: Option<&'a str>,
    pub state: &'a State,
    pub quotas: &'a Quotas,
}

/// Writes `tenants`' states to `path` (through a temporary file beside it, renamed, so a
/// crash mid-write leaves the last snapshot whole).
pub(super) fn write(path: &Path, tenants: Vec<TenantRef<'_>>) -> Result<(), String> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Out<'a> {
        afw_memory_snapshot: u32,
        saved_at_ms: i64,
        tenants: Vec<TenantRef<'a>>,
    }
    let out = Out {
        afw_memory_snapshot: VERSION,
        saved_at_ms: crate::time::now_ms(),
        tenants,
    };
    let tmp = path.with_extension("tmp");
    let file =
        std::fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut w, &out).map_err(|e| e.to_string())?;
    let file = w.into_inner().map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads a snapshot; `None` when there is no file yet.
pub(super) fn read(path: &Path) -> Result<Option<File>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let f: File = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
        format!(
            "{} is not a snapshot this gateway can read: {e}",
            path.display()
        )
    })?;
    if f.afw_memory_snapshot != VERSION {
        return Err(format!(
            "{} is a snapshot of format {}; this gateway reads {VERSION}",
            path.display(),
            f.afw_memory_snapshot
        ));
    }
    Ok(Some(f))
}
