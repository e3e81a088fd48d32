//! Test support: a real `redis-server` on a free loopback port, real gateway instances on
//! `127.0.0.1:0`, and WebSocket / HTTP clients. Everything started here is stopped by its
//! `Drop` (processes by pid), so a failing test leaves nothing behind.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use afw_gateway::Config;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A `redis-server` child process with its own temp dir.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn redis_server_binary() -> String {
    std::env::var("AFW_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

/// Starts redis-server on `port` (loopback only, no persistence). Panics, failing the test,
/// when the binary cannot run: the Redis tests are required, never skipped.
fn spawn_redis(port: u16, dir: &std::path::Path) -> Child {
    Command::new(redis_server_binary())
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
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

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// Starts redis-server and waits until it answers PING. Fails the test (never skips it)
    /// when redis-server is not installed: `scripts/test.sh` installs it.
    pub async fn start() -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("temp dir");
            let child = spawn_redis(port, dir.path());
            let mut server = RedisServer {
                child,
                port,
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

    /// Stops the server and starts a new one on the same port with no data (as a Redis
    /// without persistence comes back from a crash).
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_redis(self.port, self._dir.path());
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

    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
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

/// One gateway instance running in this process on its own loopback port.
pub struct Gateway {
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    pub http: reqwest::Client,
}

impl Gateway {
    /// Starts an instance and waits until `/ready` answers 200.
    pub async fn start(config: Config) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            afw_gateway::run(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("gateway run");
        });
        let gw = Gateway {
            addr,
            stop: Some(stop),
            handle: Some(handle),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = gw.http.get(gw.url("/ready")).send().await {
                if r.status() == 200 {
                    return gw;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gateway on {addr} never became ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops the instance and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(WAIT, h).await;
        }
    }

    /// Sends a request (with a JSON body when given) and reads the JSON answer.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        status_json(rb.send().await.expect("HTTP request")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    /// Posts an event and returns its seq (panics unless stored).
    pub async fn post_event(&self, body: Value) -> u64 {
        let (status, v) = self.post("/api/events", body).await;
        assert!(status == 201 || status == 200, "post event: {status} {v}");
        v["seq"].as_u64().expect("seq")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

pub async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
    };
    (status, v)
}

/// A gateway config on the given Redis (or the memory store for `None`).
pub fn config(redis: Option<&RedisServer>) -> Config {
    Config {
        redis_url: redis.map(|r| r.url()),
        ..Config::default()
    }
}

/// A WebSocket client speaking the gateway protocol.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub client_id: String,
    pub instance_id: String,
}

impl WsClient {
    /// Connects and reads the greeting.
    pub async fn connect(url: &str) -> WsClient {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut c = WsClient {
            ws,
            client_id: String::new(),
            instance_id: String::new(),
        };
        let hello = c.recv().await;
        assert_eq!(hello["type"], "subscription_confirmed", "{hello}");
        c.client_id = hello["payload"]["clientId"]
            .as_str()
            .expect("clientId")
            .to_string();
        c.instance_id = hello["payload"]["instanceId"]
            .as_str()
            .expect("instanceId")
            .to_string();
        c
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("ws send");
    }

    /// The next JSON message (pings are answered by the library and skipped).
    pub async fn recv(&mut self) -> Value {
        self.try_recv(WAIT)
            .await
            .expect("a message within the wait")
    }

    /// The next JSON message within `wait`, or None.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let m = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match m.expect("ws read") {
                Message::Text(t) => {
                    return Some(serde_json::from_str(&t).expect("server sent JSON"))
                }
                Message::Close(f) => panic!("connection closed: {f:?}"),
                _ => continue,
            }
        }
    }

    /// Fails if any message arrives within a short while.
    pub async fn assert_quiet(&mut self, why: &str) {
        if let Some(m) = self.try_recv(Duration::from_millis(300)).await {
            panic!("{why}: got {m}");
        }
    }

    /// Reads until the close frame and returns its code.
    pub async fn recv_close(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?
            {
                Some(Ok(Message::Close(f))) => {
                    // Finish the closing handshake as browsers do: reading on after the
                    // server's Close makes the library send its reply.
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.next()).await;
                    return f.map(|f| f.code.into());
                }
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Subscribes and returns the confirmation.
    pub async fn subscribe(
        &mut self,
        session_id: &str,
        since: Option<u64>,
        epoch: Option<&str>,
    ) -> Value {
        let mut msg = serde_json::json!({"type": "subscribe", "sessionId": session_id});
        if let Some(s) = since {
            msg["since"] = s.into();
        }
        if let Some(e) = epoch {
            msg["epoch"] = e.into();
        }
        self.send(msg).await;
        let confirm = self.recv().await;
        assert_eq!(confirm["type"], "subscription_confirmed", "{confirm}");
        assert_eq!(confirm["sessionId"], session_id, "{confirm}");
        confirm
    }

    /// The next `event` message (fails on anything else).
    pub async fn next_event(&mut self) -> Value {
        let m = self.recv().await;
        assert_eq!(m["type"], "event", "expected an event, got {m}");
        m
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
