//! The log of a gateway process (`LOG_FORMAT=json`, at debug level, so every line there is):
//! each line JSON with the documented fields, a request's lines carrying its request and
//! correlation ids, a WebSocket's lines its client id and peer address, and no secret in any
//! line or answer: not an API key (right or wrong), a token, the JWT secret or Redis's
//! password, through requests, a WebSocket and an SSE stream with a token in the query, and
//! Redis going away.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::ws::WsClient;
use support::{free_port, RedisServer};

const KEY: &str = "admin-key-SECRET-4f1c2d3e4f5a6b7c";
const WRONG_KEY: &str = "wrong-key-SECRET-99aa88bb77cc66dd";
const JWT_SECRET: &str = "jwt-secret-SECRET-0123456789abcdef0123456789";
const PASSWORD: &str = "redis-pass-SECRET-5e6f7a8b";

fn token() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_afw-gateway"))
        .args(["token", "--sub", "log-agent", "--role", "agent"])
        .env("AFW_JWT_SECRET", JWT_SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_is_json_with_its_context_and_no_secret() {
    let mut redis = RedisServer::start().await;
    let redis_url = redis.require_password(PASSWORD).await;
    let token = token();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_afw-gateway"))
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env("REDIS_URL", &redis_url)
        .env("AFW_API_KEYS", KEY)
        .env("AFW_JWT_SECRET", JWT_SECRET)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/ready")).send().await {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "{}", std::fs::read_to_string(&log_path).unwrap());

    let mut answers = Vec::new();
    let call = |rb: reqwest::RequestBuilder| async move {
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (s, b) = call(
        http.post(format!("{base}/api/events"))
            .bearer_auth(KEY)
            .header("x-correlation-id", "corr-log-1")
            .json(&json!({"sessionId": "log-1", "type": "t"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    answers.push(b);
    let (s, b) = call(
        http.get(format!("{base}/api/sessions"))
            .bearer_auth(WRONG_KEY),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    answers.push(b);
    let (s, b) = call(http.get(format!("{base}/api/sessions")).bearer_auth(&token)).await;
    assert_eq!(s, 200, "{b}");
    answers.push(b);
    let mut ws = WsClient::connect(&format!("ws://127.0.0.1:{port}/ws?token={token}")).await;
    let greeted = ws.client_id.clone();
    ws.subscribe("log-1", Some(0), None).await;
    ws.next_event().await;
    let sse = http
        .get(format!("{base}/api/sessions/log-1/stream?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    drop(sse);
    redis.kill9();
    let (s, b) = call(
        http.post(format!("{base}/api/events"))
            .bearer_auth(KEY)
            .json(&json!({"sessionId": "log-1", "type": "t"})),
    )
    .await;
    assert_eq!(s, 503, "{b}");
    answers.push(b);
    let (s, b) = call(
        http.get(format!("{base}/api/health/redis"))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(s, 503, "{b}");
    answers.push(b);
    ws.close().await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let _ = child.wait();

    let text = std::fs::read_to_string(&log_path).unwrap();
    for secret in [KEY, WRONG_KEY, JWT_SECRET, PASSWORD, token.as_str()] {
        assert!(!text.contains(secret), "a secret in the log: {secret}");
        for a in &answers {
            assert!(!a.contains(secret), "a secret in an answer: {a}");
        }
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10, "{text}");
    for l in &lines {
        for field in ["timestamp", "level", "target", "fields"] {
            assert!(l.get(field).is_some(), "no {field}: {l}");
        }
    }
    // A request's lines carry its ids; the answer's x-request-id is the same.
    let request = lines
        .iter()
        .find(|l| l["span"]["correlation_id"] == "corr-log-1")
        .unwrap_or_else(|| panic!("no line of the correlated request:\n{text}"));
    assert_eq!(request["span"]["name"], "request", "{request}");
    assert!(request["span"]["request_id"]
        .as_str()
        .is_some_and(|r| r.len() >= 32));
    // A WebSocket's lines carry its client id (as its greeting told it) and peer.
    let conn = lines
        .iter()
        .find(|l| l["span"]["name"] == "ws" && l["fields"]["message"] == "connected")
        .unwrap_or_else(|| panic!("no line of the WebSocket:\n{text}"));
    assert_eq!(conn["span"]["client_id"], greeted, "{conn}");
    assert_eq!(conn["span"]["peer"], "127.0.0.1", "{conn}");
}
