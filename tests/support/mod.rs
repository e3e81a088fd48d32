//! Test support: a real `redis-server` on a free loopback port, real gateway instances on
//! `127.0.0.1:0`, and WebSocket / HTTP clients. Everything started here is stopped by its
//! `Drop` (processes by pid), so a failing test leaves nothing behind.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use afw_gateway::Config;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
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
    persistent: bool,
    _dir: tempfile::TempDir,
}

fn redis_server_binary() -> String {
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

/// The HTTP and WebSocket address of a gateway instance, with request helpers. Both kinds of
/// instance ([`Gateway`] in this process, [`GatewayProcess`] as a child) deref to it.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
}

impl Endpoint {
    pub fn new(addr: std::net::SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("HTTP client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Waits until `/ready` answers 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = self.http.get(self.url("/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gateway on {} never became ready",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
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

    /// The value of one metric line of `/metrics` (e.g. `afw_gap_fills_total`), 0 if absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                (k == name).then(|| v.parse().ok())?
            })
            .unwrap_or(0.0)
    }
}

/// One gateway instance running in this process on its own loopback port.
pub struct Gateway {
    endpoint: Endpoint,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl std::ops::Deref for Gateway {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
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
            endpoint: Endpoint::new(addr),
            stop: Some(stop),
            handle: Some(handle),
        };
        gw.wait_ready().await;
        gw
    }

    pub fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
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

/// The gateway binary as a child process (for faults a process can suffer: `kill -9`,
/// SIGTERM, its own RSS). It binds port 0 and the test reads the address from its log.
pub struct GatewayProcess {
    endpoint: Endpoint,
    child: Child,
}

impl std::ops::Deref for GatewayProcess {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl GatewayProcess {
    /// Starts `afw-gateway` with `env` (plus PORT=0 and JSON logs) and waits until ready.
    pub async fn start(env: &[(&str, String)]) -> GatewayProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_afw-gateway"));
        cmd.env_clear()
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn afw-gateway");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log for the bound address, then keeps draining it so the child never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = &tx {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v["fields"]["message"] == "afw-gateway listening" {
                            if let Some(addr) = v["fields"]["addr"].as_str() {
                                let _ = t.send(addr.to_string());
                                tx = None;
                            }
                        }
                    }
                }
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(WAIT))
            .await
            .expect("join")
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("afw-gateway did not log its address")
            });
        let gw = GatewayProcess {
            endpoint: Endpoint::new(addr.parse().expect("socket address")),
            child,
        };
        gw.wait_ready().await;
        gw
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }

    /// `kill -9`: the process ends without closing anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM.
    pub fn term(&self) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }

    /// Waits up to `limit` for the process to exit; its status, or None if still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident memory of the process, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
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
        WsClient::greeted(ws).await
    }

    /// Connects with a 4 KiB socket receive buffer, so that a client that stops reading backs
    /// up into the server's queue after kilobytes rather than the megabytes of kernel buffers.
    pub async fn connect_small_buffer(addr: std::net::SocketAddr) -> WsClient {
        let stream = small_buffer_stream(addr).await.expect("tcp connect");
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("ws handshake");
        WsClient::greeted(ws).await
    }

    async fn greeted(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
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

/// A TCP proxy in front of Redis that can wedge the pub/sub connections going through it:
/// their sockets stay open, but nothing is forwarded any more in either direction (what a
/// half-dead NAT entry or a stuck Redis connection looks like from the gateway).
pub struct Proxy {
    pub port: u16,
    wedge: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    accept: JoinHandle<()>,
    conns: std::sync::Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target_port: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let wedge = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
        let conns = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (w, c) = (wedge.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
                    continue;
                };
                c.lock()
                    .push(tokio::spawn(pipe(client, server, w.subscribe())));
            }
        });
        Proxy {
            port,
            wedge,
            accept,
            conns,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// From now on, every connection that has sent SUBSCRIBE stops forwarding (and keeps its
    /// sockets open). Connections made later are not affected.
    pub fn wedge_subscribers(&self) {
        let _ = self.wedge.send(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }
}

/// Forwards both ways until either side closes; a subscriber connection wedges for good when
/// the wedge is set.
async fn pipe(client: TcpStream, server: TcpStream, mut wedge: tokio::sync::watch::Receiver<bool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let subscriber = AtomicBool::new(false);
    // The futures borrow the socket halves, so dropping them when the wedge wins leaves the
    // sockets open.
    let wedged = async {
        loop {
            if wedge.changed().await.is_err() {
                return std::future::pending::<()>().await;
            }
            if *wedge.borrow() && subscriber.load(Ordering::Acquire) {
                return;
            }
        }
    };
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if buf[..n]
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE"))
            {
                subscriber.store(true, Ordering::Release);
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let wedged_now = tokio::select! {
        _ = up => false,
        _ = down => false,
        _ = wedged => true,
    };
    if wedged_now {
        // Forward nothing and keep both sockets open until the proxy is dropped.
        std::future::pending::<()>().await;
    }
}

async fn small_buffer_stream(addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    socket.connect(addr).await
}

/// What one resuming client saw: every event seq in arrival order, and how it got them.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub session: String,
    pub seqs: Vec<u64>,
    pub connects: u32,
    /// Close codes the server sent, with counts.
    pub closes: std::collections::BTreeMap<u16, u32>,
    /// Subscribes with `since` answered `recovered:true` (exact resumes).
    pub resumed: u32,
    /// Subscribes with `since` answered `recovered:false`.
    pub unrecovered: u32,
}

/// Delivered, lost, duplicated and reordered events of a [`Tally`] against the head seq.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

impl Verdict {
    pub fn add(&mut self, o: Verdict) {
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
    }
}

impl Tally {
    pub fn last(&self) -> u64 {
        self.seqs.iter().copied().max().unwrap_or(0)
    }

    pub fn verdict(&self, head: u64) -> Verdict {
        let mut seen = std::collections::BTreeSet::new();
        let mut v = Verdict::default();
        let mut max = 0;
        for &seq in &self.seqs {
            v.delivered += 1;
            if !seen.insert(seq) {
                v.duplicated += 1;
            } else if seq < max {
                v.reordered += 1;
            }
            max = max.max(seq);
        }
        v.lost = (1..=head).filter(|s| !seen.contains(s)).count() as u64;
        v
    }
}

/// How a resuming client behaves.
#[derive(Clone)]
pub struct Follow {
    pub session: String,
    /// Instances to use, shared with the test (which swaps dead ones out); the client starts at
    /// `start` and moves to the next one on every disconnect.
    pub instances: std::sync::Arc<parking_lot::Mutex<Vec<std::net::SocketAddr>>>,
    pub start: usize,
    /// Stop reading once.
    pub stall: Option<Stall>,
}

/// A pause in a client's reading: starts `after` the client starts, lasts until `resume` turns
/// true (when given), or `max` at most.
#[derive(Clone)]
pub struct Stall {
    pub after: Duration,
    pub max: Duration,
    pub resume: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Stall {
    async fn wait(mut self) {
        let resumed = async {
            match &mut self.resume {
                Some(rx) => {
                    let _ = rx.wait_for(|r| *r).await;
                }
                None => std::future::pending().await,
            }
        };
        let _ = tokio::time::timeout(self.max, resumed).await;
    }
}

/// A client as a browser should be written: subscribes with `since` = the last seq it has and
/// the epoch it knows, and on any close or error reconnects to the next instance. Returns when
/// it holds the session's `target` seq (set by the test once posting is over).
pub async fn follow(f: Follow, mut target: tokio::sync::watch::Receiver<Option<u64>>) -> Tally {
    let mut tally = Tally {
        session: f.session.clone(),
        ..Tally::default()
    };
    let mut epoch: Option<String> = None;
    let mut next = f.start;
    let stall_at = f
        .stall
        .map(|st| (tokio::time::Instant::now() + st.after, st));
    let mut stalled = false;
    let reached = |t: &Tally, target: Option<u64>| target.is_some_and(|h| t.last() >= h);
    loop {
        if reached(&tally, *target.borrow()) {
            return tally;
        }
        let addr = {
            let list = f.instances.lock();
            list[next % list.len()]
        };
        next += 1;
        let connected = tokio::time::timeout(Duration::from_secs(5), async {
            let stream = small_buffer_stream(addr).await.ok()?;
            let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
                .await
                .ok()?;
            Some(ws)
        })
        .await;
        let Ok(Some(mut ws)) = connected else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tally.connects += 1;
        let mut sub =
            serde_json::json!({"type": "subscribe", "sessionId": f.session, "since": tally.last()});
        if let Some(e) = &epoch {
            sub["epoch"] = e.as_str().into();
        }
        if ws
            .send(Message::Text(sub.to_string().into()))
            .await
            .is_err()
        {
            continue;
        }
        let asked_since = tally.last() > 0;
        loop {
            if let Some((at, st)) = &stall_at {
                if !stalled && tokio::time::Instant::now() >= *at {
                    stalled = true;
                    st.clone().wait().await;
                }
            }
            let m = tokio::select! {
                m = ws.next() => m,
                _ = target.changed() => {
                    if reached(&tally, *target.borrow()) {
                        let _ = ws.close(None).await;
                        return tally;
                    }
                    continue;
                }
            };
            let text = match m {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(frame))) => {
                    if let Some(fr) = frame {
                        *tally.closes.entry(fr.code.into()).or_default() += 1;
                    }
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break,
            };
            let v: Value = serde_json::from_str(&text).expect("server sent JSON");
            match v["type"].as_str() {
                Some("subscription_confirmed") if v["sessionId"] == f.session.as_str() => {
                    if asked_since {
                        if v["payload"]["recovered"] == true {
                            tally.resumed += 1;
                        } else {
                            tally.unrecovered += 1;
                        }
                    }
                    if let Some(e) = v["payload"]["epoch"].as_str() {
                        epoch = Some(e.to_string());
                    }
                }
                Some("event") => {
                    tally.seqs.push(v["seq"].as_u64().expect("seq"));
                    if let Some(e) = v["epoch"].as_str() {
                        epoch = Some(e.to_string());
                    }
                    if let Some(e) = v["epoch"].as_str() {
                        epoch = Some(e.to_string());
                    }
                    if reached(&tally, *target.borrow()) {
                        let _ = ws.close(None).await;
                        return tally;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Instances a test spreads its clients over; the test swaps dead ones out while they run.
pub type Instances = std::sync::Arc<parking_lot::Mutex<Vec<std::net::SocketAddr>>>;

pub fn instances(addrs: &[std::net::SocketAddr]) -> Instances {
    std::sync::Arc::new(parking_lot::Mutex::new(addrs.to_vec()))
}

/// An agent that posts each event until it is stored, as a careful agent must: with its
/// `eventId`, so a retry after a lost answer cannot store it twice, moving to the next instance
/// after each failure. Only 503 (with Retry-After) and no answer at all count as retryable;
/// anything else fails the test.
pub struct Poster {
    http: reqwest::Client,
    instances: Instances,
    next: usize,
    /// Failed attempts by status (0: no answer).
    pub failures: BTreeMap<u16, u32>,
}

impl Poster {
    pub fn new(instances: Instances, start: usize) -> Poster {
        Poster {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
            instances,
            next: start,
            failures: BTreeMap::new(),
        }
    }

    /// Posts `event` (which must carry an `eventId`) until stored; returns its seq.
    pub async fn post(&mut self, event: &Value) -> u64 {
        assert!(event["eventId"].is_string(), "retries need an eventId");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "event never stored: {event} (failures {:?})",
                self.failures
            );
            let addr = {
                let list = self.instances.lock();
                list[self.next % list.len()]
            };
            match self
                .http
                .post(format!("http://{addr}/api/events"))
                .json(event)
                .send()
                .await
            {
                Ok(r) if r.status() == 201 || r.status() == 200 => {
                    let v: Value = r.json().await.expect("JSON answer");
                    return v["seq"].as_u64().expect("seq");
                }
                Ok(r) if r.status() == 503 => {
                    assert!(
                        r.headers().contains_key("retry-after"),
                        "a 503 says when to retry"
                    );
                    *self.failures.entry(503).or_default() += 1;
                }
                Ok(r) => {
                    let status = r.status();
                    panic!(
                        "unexpected {status}: {}",
                        r.text().await.unwrap_or_default()
                    )
                }
                Err(_) => *self.failures.entry(0).or_default() += 1,
            }
            self.next += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every stored event of a session (all pages), as (seq, eventId).
pub async fn stored_events(at: &Endpoint, session: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (s, page) = at
            .get(&format!("/api/events/{session}?after={after}&limit=1000"))
            .await;
        assert_eq!(s, 200, "{page}");
        let events = page["events"].as_array().expect("events");
        if events.is_empty() {
            return out;
        }
        for e in events {
            after = e["seq"].as_u64().expect("seq");
            out.push((after, e["eventId"].as_str().expect("eventId").to_string()));
        }
    }
}

/// Resuming clients run as tasks, one target channel per session.
#[derive(Default)]
pub struct Crowd {
    handles: Vec<JoinHandle<Tally>>,
    targets: BTreeMap<String, tokio::sync::watch::Sender<Option<u64>>>,
}

impl Crowd {
    /// Starts one more client.
    pub fn add(&mut self, f: Follow) {
        let target = self
            .targets
            .entry(f.session.clone())
            .or_insert_with(|| tokio::sync::watch::channel(None).0)
            .subscribe();
        self.handles.push(tokio::spawn(follow(f, target)));
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Tells every client its session's head seq (read from `at`), waits until each holds it,
    /// and sums their verdicts.
    pub async fn finish(self, at: &Endpoint) -> (Verdict, Vec<Tally>) {
        let mut heads = BTreeMap::new();
        for (s, tx) in &self.targets {
            let (status, page) = at.get(&format!("/api/events/{s}?limit=1")).await;
            assert_eq!(status, 200, "{page}");
            let head = page["headSeq"].as_u64().expect("headSeq");
            heads.insert(s.clone(), head);
            tx.send_replace(Some(head));
        }
        let mut total = Verdict::default();
        let mut tallies = Vec::new();
        for h in self.handles {
            let t = tokio::time::timeout(Duration::from_secs(60), h)
                .await
                .expect("every client reaches its session's head seq")
                .expect("client task");
            total.add(t.verdict(heads[&t.session]));
            tallies.push(t);
        }
        (total, tallies)
    }
}
