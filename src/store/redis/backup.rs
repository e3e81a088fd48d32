//! Backup and restore of every key under the prefix, as JSON lines: a header, one line per key
//! (`{key, type, expiresAt, dump}`: `DUMP`'s payload in base64 and the key's absolute expiry
//! in ms, or null), and a footer. Keys are read with `SCAN` in batches, so memory stays flat
//! whatever the size (on a Cluster, each primary in turn). Each key is copied whole (one
//! `DUMP`); a session's hash and its event list are copied together in one `MULTI`, so a
//! restored session's `_seq` is its last event's seq even when the backup ran while events
//! were posted.

use std::io::{BufRead, Write};
use std::time::Instant;

use base64::Engine;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
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

/// Where a backup reads and a restore writes: one server, or a Cluster, whose primaries are
/// each scanned on a connection of their own (a key lives on one of them) and whose restores
/// the cluster client routes.
pub enum Target {
    One(MultiplexedConnection),
    Cluster {
        primaries: Vec<MultiplexedConnection>,
        all: ClusterConnection,
    },
}

/// A connection to the one server `url` names (for the backup and restore commands).
pub async fn connect(url: &str, ca: Option<&std::path::Path>) -> Result<Target, StoreError> {
    let client = super::links::client(url, ca)?;
    Ok(Target::One(
        client.get_multiplexed_async_connection().await?,
    ))
}

/// Connections to the Cluster `REDIS_CLUSTER_NODES` names: the cluster client, and one to
/// each primary `CLUSTER NODES` lists (with the data nodes' TLS and credentials).
pub async fn connect_cluster(config: &crate::config::Store) -> Result<Target, StoreError> {
    let nodes = super::links::Nodes::data(config)?;
    let client = nodes.cluster_client(&config.cluster.redis_cluster_nodes, None)?;
    let mut all = client.get_async_connection().await?;
    let listing: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut all)
        .await?;
    let mut primaries = Vec::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (f.get(1), f.get(2)) else {
            continue;
        };
        if !flags.split(',').any(|x| x == "master") || flags.contains("fail") {
            continue;
        }
        let addr = addr.split(['@', ',']).next().unwrap_or_default();
        let Some((host, port)) = crate::config::host_port(addr) else {
            continue;
        };
        let node = nodes.client(host, port)?;
        primaries.push(node.get_multiplexed_async_connection().await?);
    }
    if primaries.is_empty() {
        return Err(StoreError::Unavailable(
            "CLUSTER NODES lists no primary".into(),
        ));
    }
    Ok(Target::Cluster { primaries, all })
}

/// The Cluster slot of `key`: CRC16 of its hash tag (or of the whole key).
fn slot(key: &str) -> u16 {
    let tag = key
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(t, _)| t)
        .filter(|t| !t.is_empty())
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tag.as_bytes()) % 16384
}

/// Writes every key under `prefix` to `out`; `progress` hears every batch.
pub async fn backup(
    target: &mut Target,
    prefix: &str,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<Summary, StoreError> {
    let started = Instant::now();
    let (nodes, clustered) = match target {
        Target::One(c) => (std::slice::from_mut(c), false),
        Target::Cluster { primaries, .. } => (primaries.as_mut_slice(), true),
    };
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut nodes[0])
        .await?;
    let version = crate::store::health::info_field(&info, "redis_version").unwrap_or("");
    let header = json!({"afwBackup": 1, "prefix": prefix, "startedAt": crate::time::now().0, "redisVersion": version});
    writeln!(out, "{header}").map_err(io)?;
    let mut summary = Summary::default();
    for conn in nodes {
        let mut at = Node {
            conn,
            clustered,
            started,
        };
        at.scan(prefix, out, &mut summary, progress).await?;
    }
    let footer =
        json!({"endedAt": crate::time::now().0, "keys": summary.keys, "gone": summary.gone});
    writeln!(out, "{footer}").map_err(io)?;
    out.flush().map_err(io)?;
    Ok(summary)
}

/// One server (or one Cluster primary) being backed up.
struct Node<'a> {
    conn: &'a mut MultiplexedConnection,
    clustered: bool,
    started: Instant,
}

impl Node<'_> {
    /// Every key of this server under `prefix`, `SCAN_COUNT` at a time.
    async fn scan(
        &mut self,
        prefix: &str,
        out: &mut dyn Write,
        summary: &mut Summary,
        progress: Progress<'_>,
    ) -> Result<(), StoreError> {
        let conn = &mut *self.conn;
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
            // Units copied whole: a key, or a session with its events.
            let mut groups: std::collections::BTreeMap<u16, Vec<(String, bool)>> =
                Default::default();
            for key in keys {
                if session_of(&key).is_some() && has_session.next() == Some(true) {
                    continue;
                }
                let group = groups.entry(if self.clustered { slot(&key) } else { 0 });
                let group = group.or_default();
                let sibling = events_of(&key);
                group.push((key, true));
                group.extend(sibling.map(|e| (e, false)));
            }
            // One MULTI per slot (the whole batch on one server): each key whole, a session
            // with its events at one moment.
            let mut pipe = redis::pipe();
            for batch in groups.values() {
                pipe.cmd("MULTI");
                for (k, _) in batch {
                    pipe.cmd("TYPE")
                        .arg(k)
                        .cmd("PTTL")
                        .arg(k)
                        .cmd("DUMP")
                        .arg(k);
                }
                pipe.cmd("EXEC");
            }
            let now_ms = crate::time::now_ms();
            let replies: Vec<Value> = if groups.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(conn).await?
            };
            // Each MULTI answers OK, QUEUED per command, then EXEC's array.
            let mut execs = replies.into_iter().filter_map(|v| match v {
                Value::Array(a) => Some(a),
                _ => None,
            });
            for batch in groups.values() {
                let mut replies = execs.next().unwrap_or_default().into_iter();
                for (k, scanned) in batch {
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
            }
            progress(summary.keys, self.started.elapsed());
            cursor = next;
            if cursor == 0 {
                return Ok(());
            }
        }
    }
}

/// Puts the keys of a backup back, each with what is left of its TTL (one already expired is
/// skipped); an existing key is left alone unless `replace`. With `prefix`, the keys go under
/// it instead of the backup's.
pub async fn restore(
    target: &mut Target,
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
    let mut batch: Vec<redis::Cmd> = Vec::with_capacity(SCAN_COUNT);
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
        let mut cmd = redis::cmd("RESTORE");
        cmd.arg(&key).arg(ttl).arg(dump);
        if replace {
            cmd.arg("REPLACE");
        }
        batch.push(cmd);
        if batch.len() == SCAN_COUNT {
            restore_batch(target, &mut batch, &mut summary).await?;
            progress(summary.keys, started.elapsed());
        }
    }
    if !batch.is_empty() {
        restore_batch(target, &mut batch, &mut summary).await?;
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

/// Sends the queued `RESTORE`s (one pipeline on one server; on a Cluster each to its
/// primary, all at once); a key that exists (`BUSYKEY`) is counted, any other error ends the
/// restore.
async fn restore_batch(
    target: &mut Target,
    batch: &mut Vec<redis::Cmd>,
    summary: &mut Summary,
) -> Result<(), StoreError> {
    let replies: Vec<Result<(), String>> = match target {
        Target::One(conn) => {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for c in batch.drain(..) {
                pipe.add_command(c);
            }
            let replies: Vec<Value> = pipe.query_async(conn).await?;
            replies
                .into_iter()
                .map(|r| match r {
                    Value::ServerError(e) => Err(e.code().to_string()),
                    _ => Ok(()),
                })
                .collect()
        }
        Target::Cluster { all, .. } => {
            let sends = batch.iter().map(|c| {
                let mut conn = all.clone();
                async move {
                    let r: redis::RedisResult<Value> = c.query_async(&mut conn).await;
                    r.map(|_| ())
                        .map_err(|e| e.code().unwrap_or("error").to_string())
                }
            });
            futures::future::join_all(sends).await
        }
    };
    batch.clear();
    for r in replies {
        match r {
            Err(code) if code == "BUSYKEY" => summary.existing += 1,
            Err(code) => return Err(StoreError::Unavailable(format!("RESTORE: {code}"))),
            Ok(()) => summary.keys += 1,
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
