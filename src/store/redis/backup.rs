//! Backup and restore of every key under the prefix, as JSON lines: a header, one line per key
//! (`{key, type, expiresAt, dump}`: `DUMP`'s payload in base64 and the key's absolute expiry
//! in ms, or null), and a footer. Keys are read with `SCAN` in batches, so memory stays flat
//! whatever the size. Each key is copied whole (one `DUMP`); a session's hash and its event
//! list are copied together in one `MULTI`, so a restored session's `_seq` is its last event's
//! seq even when the backup ran while events were posted.

use std::io::{BufRead, Write};
use std::time::Instant;

use base64::Engine;
use redis::aio::MultiplexedConnection;
use redis::Value;
use serde_json::{json, Value as Json};

use crate::store::StoreError;

/// Keys read per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// What a backup or a restore did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Keys written (backup) or restored.
    pub keys: u64,
    /// Restore: keys that were there already (left as they were, without `--replace`).
    pub existing: u64,
    /// Keys that expired, or went, between the scan and their copy, or before the restore.
    pub gone: u64,
}

/// A progress report: keys so far and the elapsed time.
pub type Progress<'a> = &'a mut dyn FnMut(u64, std::time::Duration);

fn io(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("writing the backup: {e}"))
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The event list that goes with a session hash (same hash tag), if `key` is one.
fn events_of(key: &str) -> Option<String> {
    let i = key.find(":sessions:{")?;
    Some(format!(
        "{}:events:{}",
        &key[..i],
        &key[i + ":sessions:".len()..]
    ))
}

/// The session hash an event list goes with, if `key` is one.
fn session_of(key: &str) -> Option<String> {
    let i = key.find(":events:{")?;
    Some(format!(
        "{}:sessions:{}",
        &key[..i],
        &key[i + ":events:".len()..]
    ))
}

/// One key's line; `None` when it went before it was read.
fn line(key: &str, kind: Value, pttl: Value, dump: Value, now_ms: i64) -> Option<Json> {
    let (Value::BulkString(dump), Value::Int(pttl)) = (dump, pttl) else {
        return None;
    };
    let kind = match kind {
        Value::SimpleString(s) => s,
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => return None,
    };
    let expires = (pttl >= 0).then_some(now_ms + pttl);
    Some(json!({"key": key, "type": kind, "expiresAt": expires, "dump": b64().encode(dump)}))
}

/// A connection to the one server `url` names (for the backup and restore commands).
pub async fn connect(
    url: &str,
    ca: Option<&std::path::Path>,
) -> Result<MultiplexedConnection, StoreError> {
    let client = super::links::client(url, ca)?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// Writes every key under `prefix` to `out`; `progress` hears every batch.
pub async fn backup(
    conn: &mut MultiplexedConnection,
    prefix: &str,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<Summary, StoreError> {
    let started = Instant::now();
    let info: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    let version = crate::store::health::info_field(&info, "redis_version").unwrap_or("");
    let header = json!({"afwBackup": 1, "prefix": prefix, "startedAt": crate::time::now().0, "redisVersion": version});
    writeln!(out, "{header}").map_err(io)?;
    let mut summary = Summary::default();
    let mut cursor: u64 = 0;
    let pattern = format!("{}*", prefix.replace('*', "\\*").replace('?', "\\?"));
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await?;
        // An event list goes with its session (copied below with it), unless it has none.
        let lists: Vec<String> = keys.iter().filter_map(|k| session_of(k)).collect();
        let mut exists = redis::pipe();
        for s in &lists {
            exists.cmd("EXISTS").arg(s);
        }
        let exists: Vec<bool> = if lists.is_empty() {
            Vec::new()
        } else {
            exists.query_async(conn).await?
        };
        let mut has_session = exists.into_iter();
        let mut batch = Vec::with_capacity(keys.len() * 2);
        for key in keys {
            if session_of(&key).is_some() && has_session.next() == Some(true) {
                continue;
            }
            let sibling = events_of(&key);
            batch.push((key, true));
            batch.extend(sibling.map(|e| (e, false)));
        }
        // One MULTI for the batch: each key whole, a session with its events at one moment.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (k, _) in &batch {
            pipe.cmd("TYPE")
                .arg(k)
                .cmd("PTTL")
                .arg(k)
                .cmd("DUMP")
                .arg(k);
        }
        let now_ms = crate::time::now_ms();
        let replies: Vec<Value> = if batch.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(conn).await?
        };
        let mut replies = replies.into_iter();
        for (k, scanned) in &batch {
            let (Some(kind), Some(pttl), Some(dump)) =
                (replies.next(), replies.next(), replies.next())
            else {
                break;
            };
            match line(k, kind, pttl, dump, now_ms) {
                Some(l) => {
                    writeln!(out, "{l}").map_err(io)?;
                    summary.keys += 1;
                }
                // A scanned key counts as gone; a session without events has no list.
                None if *scanned => summary.gone += 1,
                None => {}
            }
        }
        progress(summary.keys, started.elapsed());
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let footer =
        json!({"endedAt": crate::time::now().0, "keys": summary.keys, "gone": summary.gone});
    writeln!(out, "{footer}").map_err(io)?;
    out.flush().map_err(io)?;
    Ok(summary)
}

/// Puts the keys of a backup back, each with what is left of its TTL (one already expired is
/// skipped); an existing key is left alone unless `replace`. With `prefix`, the keys go under
/// it instead of the backup's.
pub async fn restore(
    conn: &mut MultiplexedConnection,
    input: &mut dyn BufRead,
    replace: bool,
    prefix: Option<&str>,
    progress: Progress<'_>,
) -> Result<Summary, StoreError> {
    let started = Instant::now();
    let bad = |m: String| StoreError::Unavailable(format!("not a backup of afw-gateway: {m}"));
    let mut lines = input.lines();
    let header: Json = match lines.next() {
        Some(Ok(l)) => serde_json::from_str(&l).map_err(|e| bad(e.to_string()))?,
        _ => return Err(bad("it is empty".into())),
    };
    if header["afwBackup"] != 1 {
        return Err(bad("no afwBackup header".into()));
    }
    let old = header["prefix"].as_str().unwrap_or_default().to_string();
    let mut summary = Summary::default();
    let mut complete = false;
    let (mut pipe, mut queued) = (redis::pipe(), 0);
    pipe.ignore_errors();
    for l in lines {
        let l = l.map_err(|e| bad(e.to_string()))?;
        let v: Json = serde_json::from_str(&l).map_err(|e| bad(e.to_string()))?;
        if v.get("endedAt").is_some() {
            complete = true;
            break;
        }
        let (Some(key), Some(dump)) = (v["key"].as_str(), v["dump"].as_str()) else {
            return Err(bad(format!("a line without key or dump: {l}")));
        };
        let key = match prefix {
            Some(p) => format!("{p}{}", key.strip_prefix(old.as_str()).unwrap_or(key)),
            None => key.to_string(),
        };
        let dump = b64().decode(dump).map_err(|e| bad(e.to_string()))?;
        let ttl = match v["expiresAt"].as_i64() {
            None => 0,
            Some(at) => match at - crate::time::now_ms() {
                left if left > 0 => left,
                _ => {
                    summary.gone += 1;
                    continue;
                }
            },
        };
        pipe.cmd("RESTORE").arg(&key).arg(ttl).arg(dump);
        if replace {
            pipe.arg("REPLACE");
        }
        queued += 1;
        if queued == SCAN_COUNT {
            restore_batch(conn, &mut pipe, &mut summary).await?;
            queued = 0;
            progress(summary.keys, started.elapsed());
        }
    }
    if queued > 0 {
        restore_batch(conn, &mut pipe, &mut summary).await?;
    }
    if !complete {
        return Err(bad(format!(
            "it ends before its footer (cut short?); {} keys were restored",
            summary.keys
        )));
    }
    progress(summary.keys, started.elapsed());
    Ok(summary)
}

/// Sends the queued `RESTORE`s; a key that exists (`BUSYKEY`) is counted, any other error
/// ends the restore.
async fn restore_batch(
    conn: &mut MultiplexedConnection,
    pipe: &mut redis::Pipeline,
    summary: &mut Summary,
) -> Result<(), StoreError> {
    let replies: Vec<Value> = pipe.query_async(conn).await?;
    pipe.clear();
    for r in replies {
        match r {
            Value::ServerError(e) if e.code() == "BUSYKEY" => summary.existing += 1,
            Value::ServerError(e) => {
                return Err(StoreError::Unavailable(format!("RESTORE: {e:?}")))
            }
            _ => summary.keys += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_and_its_events_are_siblings() {
        assert_eq!(
            events_of("afw:sessions:{s1}").as_deref(),
            Some("afw:events:{s1}")
        );
        assert_eq!(
            session_of("afw:t:x:events:{3-17}{s1}").as_deref(),
            Some("afw:t:x:sessions:{3-17}{s1}")
        );
        assert_eq!(events_of("afw:events:{s1}"), None);
        assert_eq!(session_of("afw:sessions:{s1}"), None);
    }
}
