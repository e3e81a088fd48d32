//! Tenants kept apart, as a matrix: tenant `acme` stores one of everything (a session with
//! events, usage, a command, input, a chain, a lock, a job, a cache entry, a user context),
//! each under the id the route matrix names it by. Then every route of the router is called
//! by two other tenants (`globex`, and the default tenant) naming those same ids: each answers
//! exactly as it answers `acme` for ids that do not exist (so 404 where a missing id is 404),
//! and no answer carries anything of `acme`'s. Every write route is called by them too, and
//! `acme`'s data is the same afterwards. Subscribers and long polls of equal session ids in
//! two tenants hear only their own. On memory, and on Redis through two instances (on a Redis
//! Cluster: `cluster.rs`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::support::{Endpoint, Gateway, RedisServer, WsClient};
use super::{config, ADMIN_KEY};

pub(super) const ACME: &str = "acme-admin-key-0123456789";
const GLOBEX: &str = "globex-admin-key-012345678";
/// In every value `acme` stores: no other tenant's answer may hold it.
const MARK: &str = "acme-only-7f3e";

pub(super) fn tenants_config(redis: Option<&RedisServer>) -> afw_gateway::Config {
    let mut c = config(redis);
    c.auth.api_keys.push(format!("acme:{ACME}:admin"));
    c.auth.api_keys.push(format!("globex:{GLOBEX}:admin"));
    c
}

async fn send(ep: &Endpoint, method: Method, path: &str, body: Option<Value>) -> (u16, String) {
    let mut rb = ep.http.request(method, ep.url(path));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let mut r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r.headers().get("content-type").cloned();
    if kind.is_some_and(|c| c == "text/event-stream") {
        // A session's stream runs until dropped: its first chunk says what it is.
        let first = tokio::time::timeout(super::support::WAIT, r.chunk()).await;
        let chunk = first.expect("a first chunk").unwrap().unwrap_or_default();
        return (status, String::from_utf8_lossy(&chunk).into_owned());
    }
    (status, r.text().await.unwrap())
}

/// `acme` stores one of everything, under the ids [`concrete`] gives with prefix `m`.
async fn seed(acme: &Endpoint) -> String {
    let created = |s: u16, what: &str| assert!((200..300).contains(&s), "{what}: {s}");
    let (s, _) = acme
        .post(
            "/api/sessions",
            json!({"id": "m-id", "userId": "m-id", "cwd": MARK}),
        )
        .await;
    created(s, "session");
    for sid in ["m-id", "m-session_id"] {
        let (s, _) = acme
            .post(
                "/api/events",
                json!({"sessionId": sid, "type": "note", "text": MARK, "userId": "m-id",
                       "usage": {"inputTokens": 7, "model": "m"}}),
            )
            .await;
        created(s, "event");
    }
    let (s, _) = acme
        .post(
            "/api/sessions/m-id/chains",
            json!({"id": "m-id", "title": MARK, "totalSteps": 3}),
        )
        .await;
    created(s, "chain");
    let (s, cmd) = acme
        .post(
            "/api/sessions/m-id/commands",
            json!({"type": "pause", "reason": MARK}),
        )
        .await;
    created(s, "command");
    let (s, _) = acme
        .post("/api/sessions/m-id/input", json!({"input": MARK}))
        .await;
    created(s, "input");
    let (s, _) = acme
        .post(
            "/api/locks/m-name",
            json!({"owner": MARK, "ttlMs": 600_000}),
        )
        .await;
    created(s, "lock");
    let (s, _) = acme
        .post(
            "/api/queues/m-queue/jobs",
            json!({"type": "t", "jobId": "m-id", "data": {"m": MARK}}),
        )
        .await;
    created(s, "job");
    let (s, _) = send(
        acme,
        Method::PUT,
        "/api/cache/m-key",
        Some(json!({"value": MARK, "ttlSeconds": 600, "tags": ["m-tag"]})),
    )
    .await;
    created(s, "cache");
    let (s, _) = acme
        .post(
            "/api/context",
            json!({"userId": "m-id", "preferences": {"p": MARK}}),
        )
        .await;
    created(s, "context");
    cmd["commandId"]
        .as_str()
        .or(cmd["command"]["id"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// What `acme` reads of what it stored: each must stay as it is, whatever others do.
async fn acme_view(acme: &Endpoint) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in [
        "/api/sessions/m-id",
        "/api/events/m-id",
        "/api/events/m-session_id",
        "/api/sessions/m-id/commands",
        "/api/sessions/m-id/input?consume=false",
        "/api/chains/m-id",
        "/api/locks/m-name",
        "/api/queues/m-queue/jobs/m-id",
        "/api/cache/m-key",
        "/api/context?userId=m-id",
        "/api/usage",
    ] {
        let (s, v) = acme.get(path).await;
        assert_eq!(s, 200, "acme reads {path}: {v}");
        out.push((path.to_string(), stable(v)));
    }
    out
}

/// An answer without what changes by itself (times, the time left).
fn stable(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    !(k.contains("time")
                        || k.ends_with("at")
                        || k.contains("ttl")
                        || k == "requestid")
                })
                .map(|(k, v)| (k, stable(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(stable).collect()),
        v => v,
    }
}

async fn tenants_are_kept_apart(a: &Gateway, b: &Gateway) {
    let acme = a.with_key(ACME);
    let command_id = seed(&acme).await;
    let before = acme_view(&acme).await;
    assert!(
        before
            .iter()
            .filter(|(_, v)| v.to_string().contains(MARK))
            .count()
            >= 9,
        "acme reads what it stored: {before:?}"
    );
    let routes = super::routes::routes();
    let outsiders = [(GLOBEX, "globex"), (ADMIN_KEY, "the default tenant")];
    let mut compared = 0;
    let mut not_found = 0;
    // Reads first: each outsider's answer is acme's for ids acme does not have.
    for (i, route) in routes.iter().enumerate() {
        let (method, pattern) = route.split_once(' ').unwrap();
        if pattern == "/ws" || !matches!(method, "GET" | "ANY") {
            continue;
        }
        let path = super::routes::concrete(pattern, "m");
        let missing = super::routes::concrete(pattern, "zz");
        let gw = if i % 2 == 0 { a } else { b };
        let (s_missing, _) = send(&gw.with_key(ACME), Method::GET, &missing, None).await;
        for (key, who) in outsiders {
            let gw = if i % 2 == 0 { b } else { a };
            let (s, text) = send(&gw.with_key(key), Method::GET, &path, None).await;
            assert!(!text.contains(MARK), "{who}: GET {path}: {text}");
            let instance_wide = super::INSTANCE_WIDE.contains(&pattern);
            if instance_wide && key == GLOBEX {
                assert_eq!(s, 403, "{who}: GET {path}: {text}");
                continue;
            }
            if pattern.contains(":") {
                assert_eq!(
                    s, s_missing,
                    "{who}: GET {path} answers as for an id that does not exist: {text}"
                );
                not_found += usize::from(s == 404);
            }
            compared += 1;
        }
    }
    assert!(compared > 40, "{compared}");
    assert!(not_found >= 10, "{not_found}");
    // Writes: every write route, with an empty body and with the bodies that would change
    // acme's data if it reached it.
    let attacks: Vec<(Method, String, Value)> = vec![
        (Method::DELETE, "/api/sessions/m-id".into(), json!({})),
        (
            Method::PATCH,
            "/api/sessions/m-id".into(),
            json!({"status": "completed"}),
        ),
        (
            Method::PATCH,
            "/api/chains/m-id".into(),
            json!({"status": "failed"}),
        ),
        (
            Method::POST,
            format!("/api/commands/{command_id}/ack"),
            json!({"result": "x"}),
        ),
        (
            Method::DELETE,
            "/api/locks/m-name?token=x".into(),
            json!({}),
        ),
        (
            Method::POST,
            "/api/queues/m-queue/claim".into(),
            json!({"workerId": "w", "max": 10}),
        ),
        (
            Method::POST,
            "/api/queues/m-queue/jobs/m-id/complete".into(),
            json!({"workerId": "w"}),
        ),
        (Method::DELETE, "/api/cache/m-key".into(), json!({})),
        (Method::DELETE, "/api/cache".into(), json!({})),
        (
            Method::POST,
            "/api/cache/invalidate".into(),
            json!({"tags": ["m-tag"]}),
        ),
        (Method::DELETE, "/api/context?userId=m-id".into(), json!({})),
        (Method::GET, "/api/sessions/m-id/input".into(), json!(null)),
        (
            Method::GET,
            "/api/sessions/m-id/commands?consume=true".into(),
            json!(null),
        ),
        (
            Method::POST,
            "/api/workflow-state/m-id/cancel".into(),
            json!({}),
        ),
        (
            Method::POST,
            "/api/chains/cleanup".into(),
            json!({"staleSecs": 1}),
        ),
    ];
    let mut writes = 0;
    for (i, route) in routes.iter().enumerate() {
        let (method, pattern) = route.split_once(' ').unwrap();
        if pattern == "/ws" || matches!(method, "GET" | "ANY") || pattern == "/api/demo" {
            continue;
        }
        let method: Method = method.parse().unwrap();
        for (key, who) in outsiders {
            let gw = if i % 2 == 0 { a } else { b };
            let path = super::routes::concrete(pattern, "m");
            let (s, text) = send(&gw.with_key(key), method.clone(), &path, Some(json!({}))).await;
            assert!(!text.contains(MARK), "{who}: {method} {path}: {s} {text}");
            writes += 1;
        }
    }
    assert!(writes > 50, "{writes}");
    for (method, path, body) in attacks {
        for (key, who) in outsiders {
            let body = (!body.is_null()).then(|| body.clone());
            let (s, text) = send(&b.with_key(key), method.clone(), &path, body).await;
            assert!(!text.contains(MARK), "{who}: {method} {path}: {s} {text}");
        }
    }
    // A lock of the same name is another tenant's own: globex gets it while acme holds its.
    let (s, v) = b
        .with_key(GLOBEX)
        .post("/api/locks/m-name", json!({"owner": "g", "ttlMs": 60_000}))
        .await;
    assert_eq!((s, v["acquired"].as_bool()), (200, Some(true)), "{v}");
    // A `tenantId` of another tenant is as unknown as any name.
    for path in [
        "/api/usage?tenantId=acme",
        "/api/context?userId=m-id&tenantId=acme",
    ] {
        let (s, v) = b.with_key(GLOBEX).get(path).await;
        assert_eq!(s, 404, "{path}: {v}");
    }
    let after = acme_view(&acme).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(
            was, is,
            "acme's {path} changed by another tenant's requests"
        );
    }
    let (_, usage) = acme.get("/api/usage").await;
    assert_eq!(usage["tenantId"], "acme");
    assert_eq!(usage["inputTokens"], 14, "{usage}");
}

/// Subscribers of one session id in two tenants, on two instances: each hears its own
/// tenant's events only; long polls likewise.
async fn equal_ids_are_two_streams(a: &Gateway, b: &Gateway) {
    let mut acme_ws = WsClient::connect(&format!("{}?token={ACME}", a.ws_url())).await;
    let mut globex_ws = WsClient::connect(&format!("{}?token={GLOBEX}", a.ws_url())).await;
    let mut default_ws = WsClient::connect(&format!("{}?token={ADMIN_KEY}", a.ws_url())).await;
    for c in [&mut acme_ws, &mut globex_ws, &mut default_ws] {
        let ok = c.subscribe("shared", None, None).await;
        assert_eq!(ok["payload"]["headSeq"], 0, "{ok}");
    }
    for (key, n) in [(ACME, 3), (GLOBEX, 2), (ADMIN_KEY, 1)] {
        for i in 0..n {
            b.with_key(key)
                .post_event(json!({"sessionId": "shared", "type": "t", "from": key, "i": i}))
                .await;
        }
    }
    for (c, key, n) in [
        (&mut acme_ws, ACME, 3),
        (&mut globex_ws, GLOBEX, 2),
        (&mut default_ws, ADMIN_KEY, 1),
    ] {
        for seq in 1..=n {
            let ev = c.next_event().await;
            assert_eq!(ev["seq"], seq, "{ev}");
            assert_eq!(ev["sessionId"], "shared", "{ev}");
            let from = ev["payload"]["from"].as_str();
            assert_eq!(from, Some(key), "{ev}");
        }
        c.assert_quiet("no other tenant's event").await;
    }
    // A long poll of acme's commands is not answered by globex's command of the same id.
    let acme = b.with_key(ACME);
    let poll = tokio::spawn(async move {
        acme.get("/api/sessions/shared/commands?consume=true&wait=3")
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = a
        .with_key(GLOBEX)
        .post("/api/sessions/shared/commands", json!({"type": "pause"}))
        .await;
    assert_eq!(s, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = a
        .with_key(ACME)
        .post(
            "/api/sessions/shared/commands",
            json!({"type": "resume", "reason": "acme's"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = poll.await.unwrap();
    assert_eq!(s, 200);
    let types: Vec<&str> = v["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["resume"], "{v}");
    // Each tenant's subscribers were told of its own command only.
    for (c, want) in [(&mut acme_ws, "resume"), (&mut globex_ws, "pause")] {
        let m = c.recv().await;
        assert_eq!(m["type"], "command", "{m}");
        assert!(m.to_string().contains(want), "{m}");
    }
    default_ws.assert_quiet("no other tenant's command").await;
    // Every WebSocket message of another tenant, naming acme's session: `input` finds no such
    // session, `auth` with acme's key is refused (a connection keeps its tenant), a subscribe
    // sees an empty stream, and an unsubscribe ends only its own.
    globex_ws
        .send(json!({"type": "input", "sessionId": "m-id", "payload": {"input": "g"}}))
        .await;
    let e = globex_ws.recv().await;
    assert_eq!(
        (&e["type"], &e["code"]),
        (&json!("error"), &json!("not_found")),
        "{e}"
    );
    globex_ws.send(json!({"type": "auth", "token": ACME})).await;
    let e = globex_ws.recv().await;
    assert_eq!(
        (&e["type"], &e["code"]),
        (&json!("error"), &json!("forbidden")),
        "{e}"
    );
    let ok = globex_ws.subscribe("m-id", Some(0), None).await;
    assert_eq!(ok["payload"]["headSeq"], 0, "{ok}");
    globex_ws
        .send(json!({"type": "unsubscribe", "sessionId": "shared"}))
        .await;
    assert_eq!(globex_ws.recv().await["type"], "unsubscribed");
    b.with_key(ACME)
        .post_event(json!({"sessionId": "shared", "type": "t", "from": ACME, "i": 3}))
        .await;
    assert_eq!(acme_ws.next_event().await["seq"], 4);
    let (_, v) = a
        .with_key(ACME)
        .get("/api/sessions/m-id/input?consume=false")
        .await;
    assert_eq!(v["count"], 1, "acme's input is its own: {v}");
    globex_ws.assert_quiet("nothing of acme's").await;
    for c in [acme_ws, globex_ws, default_ws] {
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_memory_tenants_are_kept_apart() {
    let gw = Gateway::start(tenants_config(None)).await;
    tenants_are_kept_apart(&gw, &gw).await;
    equal_ids_are_two_streams(&gw, &gw).await;
    gw.stop().await;
}

/// Two instances on one store, each made from `config`.
pub(super) async fn kept_apart_through_two_instances(config: impl Fn() -> afw_gateway::Config) {
    let a = Gateway::start(config()).await;
    let b = Gateway::start(config()).await;
    tenants_are_kept_apart(&a, &b).await;
    equal_ids_are_two_streams(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_through_two_instances_tenants_are_kept_apart() {
    let redis = RedisServer::start().await;
    kept_apart_through_two_instances(|| tenants_config(Some(&redis))).await;
}
