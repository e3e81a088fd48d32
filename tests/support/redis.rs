//! A real `redis-server` on a free loopback port, with its own temp dir, stopped (by pid) on drop.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process with its own temp dir.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    persistent: bool,
    _dir: tempfile::TempDir,
}

pub fn redis_server_binary() -> String {
    std::env::var("AFW_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

/// Starts redis-server on `port` (loopback only). Persistent: an append-only file synced on
/// every write, so whatever Redis acknowledged survives `kill -9`; otherwise no persistence
/// at all. Panics, failing the test, when the binary cannot run: the Redis tests are
/// required, never skipped.
fn spawn_redis(port: u16, dir: &std::path::Path, persistent: bool) -> Child {
    let (appendonly, fsync) = if persistent {
        ("yes", "always")
    } else {
        ("no", "no")
    };
    Command::new(redis_server_binary())
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            appendonly,
            "--appendfsync",
            fsync,
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run redis-server ({e}). The Redis tests are required: install it \
                 (scripts/test.sh does, or `apt-get install redis-server`), or point \
                 AFW_REDIS_SERVER at the binary"
            )
        })
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// Starts redis-server and waits until it answers PING. Fails the test (never skips it)
    /// when redis-server is not installed: `scripts/test.sh` installs it.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(false).await
    }

    /// Starts redis-server with an fsync-always append-only file (see [`spawn_redis`]).
    pub async fn start_persistent() -> RedisServer {
        RedisServer::start_with(true).await
    }

    async fn start_with(persistent: bool) -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("temp dir");
            let child = spawn_redis(port, dir.path(), persistent);
            let mut server = RedisServer {
                child,
                port,
                persistent,
                _dir: dir,
            };
            if server.wait_ready().await {
                return server;
            }
            // Port taken between our probe and redis's bind: try another.
            let _ = server.child.kill();
        }
        panic!("redis-server did not start after 5 attempts");
    }

    /// `kill -9` and start again on the same port: with no data, or with everything it
    /// acknowledged when persistent.
    pub async fn restart(&mut self) {
        self.kill9();
        self.start_again().await;
    }

    /// `kill -9`: clients see their connections drop, and the port refuses new ones.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again after [`RedisServer::kill9`], on the same port and directory.
    pub async fn start_again(&mut self) {
        self.child = spawn_redis(self.port, self._dir.path(), self.persistent);
        assert!(
            self.wait_ready().await,
            "redis-server did not come back on port {}",
            self.port
        );
    }

    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut c) = self.connection().await {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
                if pong.is_ok() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `CLIENT KILL TYPE pubsub`: drops every subscriber connection; returns how many.
    pub async fn kill_pubsub_clients(&self) -> i64 {
        let mut c = self.connection().await.expect("redis connection");
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut c)
            .await
            .expect("CLIENT KILL")
    }

    /// Makes the server require `password` (`CONFIG SET requirepass`); the URL that carries it.
    pub async fn require_password(&self, password: &str) -> String {
        let mut c = self.connection().await.expect("redis connection");
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(password)
            .query_async(&mut c)
            .await
            .expect("CONFIG SET requirepass");
        self.url()
            .replace("redis://", &format!("redis://:{password}@"))
    }

    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    /// A key's time to live in milliseconds (-2: no such key, -1: none).
    pub async fn pttl(&self, key: &str) -> i64 {
        let mut c = self.connection().await.expect("redis connection");
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .expect("PTTL")
    }

    /// Every key, via SCAN.
    pub async fn keys(&self) -> Vec<String> {
        let mut c = self.connection().await.expect("redis connection");
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every key matching `pattern`, sorted, by `SCAN`.
pub async fn scan(c: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(c)
            .await
            .unwrap();
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            keys.sort();
            keys.dedup();
            return keys;
        }
    }
}

/// A key's type, content (sorted where Redis does not keep an order) and TTL (ms; -1: none).
pub async fn copy_of(
    c: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> (String, Vec<String>, i64) {
    let (kind, pttl): (String, i64) = redis::pipe()
        .cmd("TYPE")
        .arg(key)
        .cmd("PTTL")
        .arg(key)
        .query_async(c)
        .await
        .unwrap();
    let read = match kind.as_str() {
        "hash" => redis::cmd("HGETALL").arg(key).clone(),
        "list" => redis::cmd("LRANGE").arg(key).arg(0).arg(-1).clone(),
        "zset" => redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .clone(),
        "set" => redis::cmd("SMEMBERS").arg(key).clone(),
        _ => redis::cmd("GET").arg(key).clone(),
    };
    let content: redis::Value = read.query_async(c).await.unwrap();
    let mut items: Vec<String> = match content {
        redis::Value::Array(v) => v.into_iter().map(|x| format!("{x:?}")).collect(),
        redis::Value::Map(m) => m.into_iter().map(|(k, v)| format!("{k:?}={v:?}")).collect(),
        other => vec![format!("{other:?}")],
    };
    if kind == "hash" || kind == "set" {
        items.sort();
    }
    (kind, items, pttl)
}

/// Runs `afw-gateway` (its path: `env!("CARGO_BIN_EXE_afw-gateway")`) with `args` and only
/// the environment `env`, to its end.
pub fn afw_command(bin: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(bin)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

/// The Python the tests run PyPI's tools with: `AFW_PYTHON`, else scripts/test.sh's
/// virtualenv (`target/pyvenv`) when there is one, else `python3`.
pub fn python() -> String {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyvenv/bin/python");
    std::env::var("AFW_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.to_string_lossy().into_owned()
        } else {
            "python3".into()
        }
    })
}
