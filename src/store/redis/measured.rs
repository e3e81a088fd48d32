//! The store's connections, measured: each command counted by op (a script by its file's
//! name, else the command's), timed, and its failures counted by kind, for `/metrics`
//! (`redis_commands_total`, `redis_commands_failed_total`, `redis_command_duration_seconds`,
//! `redis_connection_status`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Instant;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::links::Conn;
use crate::metrics::Metrics;

/// Each script's SHA1 and its file's name (filled as [`super::script!`] loads each).
static SCRIPTS: LazyLock<RwLock<HashMap<String, &'static str>>> = LazyLock::new(Default::default);

/// Notes a script's name under its hash; the script as it was.
pub(crate) fn named(file: &'static str, script: redis::Script) -> redis::Script {
    let name = file.strip_suffix(".lua").unwrap_or(file);
    if let Ok(mut m) = SCRIPTS.write() {
        m.insert(script.get_hash().to_string(), name);
    }
    script
}

/// What a command is, as a label: a script's name, or the command in lower case.
fn op(cmd: &Cmd) -> &'static str {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        redis::Arg::Simple(b) => Some(b),
        _ => None,
    });
    let Some(name) = args.next() else {
        return "other";
    };
    if name.eq_ignore_ascii_case(b"EVALSHA") {
        let sha = args.next().and_then(|s| std::str::from_utf8(s).ok());
        let known = sha.and_then(|s| SCRIPTS.read().ok()?.get(s).copied());
        return known.unwrap_or("evalsha");
    }
    const KNOWN: [&str; 34] = [
        "get",
        "set",
        "del",
        "exists",
        "expire",
        "pexpire",
        "pexpireat",
        "ttl",
        "pttl",
        "type",
        "hget",
        "hset",
        "hgetall",
        "hmget",
        "hdel",
        "hlen",
        "incr",
        "incrby",
        "lpush",
        "rpush",
        "lrange",
        "llen",
        "zadd",
        "zrange",
        "zrangebyscore",
        "zrem",
        "zcard",
        "publish",
        "spublish",
        "scan",
        "ping",
        "info",
        "dbsize",
        "eval",
    ];
    KNOWN
        .iter()
        .find(|k| k.as_bytes().eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or("other")
}

fn kind(e: &RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        "connection"
    } else {
        "error"
    }
}

/// A connection of the store, measured.
#[derive(Clone)]
pub(super) struct Measured {
    pub(super) raw: Conn,
    pub(super) metrics: Arc<Metrics>,
}

impl Measured {
    fn count<T>(&self, op: &'static str, started: Instant, r: &redis::RedisResult<T>) {
        let failed = r.as_ref().err().map(kind);
        self.metrics.store_command(op, started.elapsed(), failed);
    }
}

impl ConnectionLike for Measured {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.raw.req_packed_command(cmd).await;
            self.count(op(cmd), started, &r);
            r
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.raw.req_packed_commands(cmd, offset, count).await;
            self.count("pipeline", started, &r);
            r
        })
    }

    fn get_db(&self) -> i64 {
        self.raw.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_scripts_by_name_or_commands() {
        let s = named("events_test.lua", redis::Script::new("return 1"));
        let mut c = redis::cmd("EVALSHA");
        c.arg(s.get_hash()).arg(0);
        assert_eq!(op(&c), "events_test");
        assert_eq!(op(redis::cmd("HGETALL").arg("k")), "hgetall");
        assert_eq!(op(&redis::cmd("OBJECT")), "other");
        let mut unknown = redis::cmd("EVALSHA");
        unknown.arg("0000").arg(0);
        assert_eq!(op(&unknown), "evalsha");
    }
}
