//! Gateway instances for tests: in this process on `127.0.0.1:0` ([`Gateway`]) or as a child
//! process of the real binary ([`GatewayProcess`]), both reached through an [`Endpoint`].
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use afw_gateway::Config;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::redis::RedisServer;
use super::WAIT;

/// The HTTP and WebSocket address of a gateway instance, with request helpers. Both kinds of
/// instance ([`Gateway`] in this process, [`GatewayProcess`] as a child) deref to it.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
    /// The API key every request (and the WebSocket URL) carries, if any.
    pub key: Option<String>,
}

impl Endpoint {
    pub fn new(addr: std::net::SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("HTTP client"),
            key: None,
        }
    }

    /// The same endpoint, with `key` on every request.
    pub fn with_key(&self, key: &str) -> Endpoint {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}").parse().expect("a header value"),
        );
        Endpoint {
            addr: self.addr,
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .default_headers(headers)
                .build()
                .expect("HTTP client"),
            key: Some(key.to_string()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        match &self.key {
            Some(k) => format!("ws://{}/ws?token={k}", self.addr),
            None => format!("ws://{}/ws", self.addr),
        }
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
        // In a keyed run the instance's metrics are its operator's.
        let mut rb = self.http.get(self.url("/metrics"));
        if let (Some(k), Some(run)) = (&self.key, tenant_key()) {
            if *k == run {
                rb = rb.bearer_auth(operator_key(k));
            }
        }
        let text = rb
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
        let keyed = tenant_key().is_some_and(|k| {
            config
                .auth
                .api_keys
                .iter()
                .any(|e| e.split(':').nth(1) == Some(k.as_str()))
        });
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
            endpoint: endpoint_for(addr, keyed),
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
        let keyed = tenant_key().is_some() && !env.iter().any(|(k, _)| *k == "AFW_API_KEYS");
        if keyed {
            cmd.env("AFW_API_KEYS", run_keys().unwrap_or_default().join(","))
                .env("RATE_LIMIT_RPS", RUN_RATE)
                .env("RATE_LIMIT_BURST", RUN_BURST);
        }
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
            endpoint: endpoint_for(addr.parse().expect("socket address"), keyed),
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

/// A gateway config on the given Redis (or the memory store for `None`). With
/// `AFW_TEST_TENANT_KEY` set (as `scripts/test.sh` does for a second run of the hostile
/// suites), credentials are required: that key, as the admin of tenant `hostile`, which every
/// [`Gateway`] and [`GatewayProcess`] then sends, and an operator's key (the default tenant's
/// admin) for `/metrics`.
pub fn config(redis: Option<&RedisServer>) -> Config {
    let mut config = Config::default();
    config.store.redis_url = redis.map(|r| r.url());
    if let Some(keys) = run_keys() {
        config.auth.api_keys = keys;
        // The limiter stays in every request's path, with room for the suites' floods.
        config.rate_limits.rate_limit_rps = RUN_RATE.parse().unwrap();
        config.rate_limits.rate_limit_burst = RUN_BURST.parse().unwrap();
    }
    config
}

/// A keyed run's rate limit: the suites' own floods are what they test, not the limiter.
const RUN_RATE: &str = "1000000";
const RUN_BURST: &str = "10000000";

/// The key entries of a run with `AFW_TEST_TENANT_KEY`.
fn run_keys() -> Option<Vec<String>> {
    let key = tenant_key()?;
    Some(vec![format!("hostile:{key}:admin"), operator_key(&key)])
}

/// The default tenant's admin key of a keyed run (the instance's own routes are its).
fn operator_key(key: &str) -> String {
    format!("{key}-operator")
}

/// `Authorization: Bearer …\r\n` for a hand-written request of a keyed run, else nothing.
pub fn auth_header() -> String {
    tenant_key().map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"))
}

/// Where this run's data lives in Redis: the default tenant's `afw:`, or in a keyed run
/// tenant `hostile`'s `afw:t:hostile:`.
pub fn key_space() -> &'static str {
    if tenant_key().is_some() {
        "afw:t:hostile:"
    } else {
        "afw:"
    }
}

/// The key every gateway of this test run requires, if the run requires one.
pub fn tenant_key() -> Option<String> {
    std::env::var("AFW_TEST_TENANT_KEY")
        .ok()
        .filter(|k| !k.is_empty())
}

/// An endpoint at `addr` that sends the run's key when it has one and the gateway needs it.
fn endpoint_for(addr: std::net::SocketAddr, keyed: bool) -> Endpoint {
    match tenant_key().filter(|_| keyed) {
        Some(k) => Endpoint::new(addr).with_key(&k),
        None => Endpoint::new(addr),
    }
}
