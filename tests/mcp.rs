//! The MCP endpoint through the official Python SDK (`mcp` from PyPI, installed by
//! `scripts/test.sh` into `target/pyvenv`): `tests/agents/mcp_client.py` lists the tools and
//! calls each against instance A of two on one Redis, with `ask_human` answered through
//! instance B's HTTP API while the call waits on A; bad calls get JSON-RPC errors or tool
//! errors and store nothing. Then what the tools did is checked through the API.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::{Endpoint, Gateway, RedisServer};

/// Runs the SDK client against `a`'s `/mcp`, answering on `b`; what each step got.
async fn run_client(a: &Endpoint, b: &Endpoint, session: &str, key: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/mcp_client.py");
    let mut cmd = Command::new(support::python());
    cmd.arg(script)
        .env("MCP_URL", a.url("/mcp"))
        .env("API_B", b.url(""))
        .env("SESSION", session)
        .env("KEY", key);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/test.sh",
                support::python()
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the MCP client failed:\n{stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)))
}

fn ok(r: &Value, step: &str) -> Value {
    assert_eq!(r[step]["isError"], false, "{step}: {}", r[step]);
    r[step]["answer"].clone()
}

fn check(r: &Value) {
    assert_eq!(r["server"], "afw-gateway");
    let tools = r["tools"].as_object().unwrap();
    for name in [
        "report",
        "report_step",
        "ask_human",
        "next_command",
        "ack_command",
        "acquire_lock",
        "release_lock",
        "enqueue_job",
        "claim_job",
        "complete_job",
    ] {
        assert_eq!(tools[name]["type"], "object", "{name} has a JSON schema");
    }
    assert_eq!(tools.len(), 10);
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/agents.md"))
        .unwrap();
    for name in tools.keys() {
        assert!(
            doc.contains(&format!("### `{name}`")),
            "docs/agents.md documents {name}"
        );
    }
    assert_eq!(ok(r, "report")["seq"], 1);
    let again = ok(r, "report_again");
    assert_eq!(
        (again["seq"].clone(), again["duplicate"].clone()),
        (json!(1), json!(true))
    );
    ok(r, "chain");
    ok(r, "step_started");
    ok(r, "step_completed");
    assert_eq!(ok(r, "no_command")["count"], 0);
    assert_eq!(r["command_posted"][0], 201, "{}", r["command_posted"]);
    let command = ok(r, "command");
    assert_eq!(command["commands"][0]["type"], "pause", "{command}");
    assert_eq!(ok(r, "ack")["acknowledged"], true);
    assert_eq!(ok(r, "lock")["acquired"], true);
    assert_eq!(
        r["lock_taken"]["isError"], true,
        "a held lock is a tool error"
    );
    assert_eq!(r["lock_taken"]["answer"]["error"], "lock_held");
    assert_eq!(ok(r, "unlock")["released"], true);
    assert_eq!(ok(r, "enqueue")["job"]["id"], "j1");
    assert_eq!(ok(r, "claim")["jobs"][0]["id"], "j1");
    assert_eq!(ok(r, "complete")["job"]["state"], "completed");
    assert_eq!(r["prompt_seen_on_b"], "Ship it?");
    assert_eq!(r["answered_on_b"], 201);
    let ask = ok(r, "ask");
    assert_eq!(
        (ask["answered"].clone(), ask["input"]["input"].clone()),
        (json!(true), json!("yes")),
        "{ask}"
    );
    assert_eq!(ok(r, "ask_unanswered")["answered"], false);
    assert_eq!(r["bad_tool"]["rpcError"], -32602, "{}", r["bad_tool"]);
    assert_eq!(r["bad_args"]["rpcError"], -32602, "{}", r["bad_args"]);
    assert_eq!(r["bad_type"]["isError"], true);
    assert_eq!(r["bad_type"]["answer"]["error"], "validation_failed");
    assert_eq!(r["bad_lock"]["isError"], true);
    ok(r, "other_session");
}

/// What the tools stored, read through the API: the events in order, the chain's step.
async fn check_stored(b: &Endpoint, session: &str) {
    let (s, v) = b.get(&format!("/api/events/{session}")).await;
    assert_eq!(s, 200);
    let types: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &types[..4],
        ["note", "chain:compiled", "step:started", "step:completed"],
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "note").count(),
        1,
        "the retry stored nothing"
    );
    let (_, chain) = b.get("/api/chains/c1").await;
    assert_eq!(chain["steps"][0]["status"], "completed", "{chain}");
    let (s, _) = b.get("/api/sessions/mcp-other").await;
    assert_eq!(s, 200, "a call may name its session");
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

/// One JSON-RPC message posted to `/mcp` by hand: status, headers, body text.
async fn raw(ep: &Endpoint, msg: &Value) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = ep
        .http
        .post(ep.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(msg)
        .send()
        .await
        .unwrap();
    let (status, head) = (resp.status().as_u16(), resp.headers().clone());
    (status, head, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_calls_every_tool_and_ask_human_is_answered_on_another_instance() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(support::config(Some(&redis))).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    let r = run_client(&a, &b, "mcp-s1", "").await;
    check(&r);
    check_stored(&b, "mcp-s1").await;
    // Stateless: no session id is handed out, and a call goes to any instance on its own.
    let (status, head, _) = raw(&a, &initialize()).await;
    assert_eq!(status, 200);
    assert!(!head.contains_key("mcp-session-id"), "{head:?}");
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "report", "arguments": {"sessionId": "mcp-raw", "type": "t", "eventId": "raw-1"}}});
    let (status, _, body) = raw(&b, &call).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"\"seq\":1"#), "{body}");
    let (status, _, body) = raw(&b, &json!({"jsonrpc": "2.0", "id": 3, "method": "no/such"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("-32601"), "method not found: {body}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_memory_with_credentials_the_tools_act_as_the_caller() {
    let mut config = support::config(None);
    config.auth.api_keys = vec![
        "admin-key-0123456789".into(),
        "default:viewer-key-012345678:viewer".into(),
    ];
    let gw = Gateway::start(config).await;
    let admin = gw.with_key("admin-key-0123456789");
    let r = run_client(&admin, &admin, "mcp-s2", "admin-key-0123456789").await;
    check(&r);
    check_stored(&admin, "mcp-s2").await;
    // Without credentials the endpoint answers 401; a viewer may not post to it (403).
    let init = initialize();
    for (ep, want) in [
        (gw.endpoint(), 401),
        (gw.with_key("viewer-key-012345678"), 403),
    ] {
        let resp = ep
            .http
            .post(ep.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&init)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want);
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string(), "the API's JSON error: {body}");
    }
    // A web page of another origin is refused before the endpoint sees it.
    let resp = admin
        .http
        .post(admin.url("/mcp"))
        .header("origin", "https://evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    gw.stop().await;
}
