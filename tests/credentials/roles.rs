//! Every route of the router × every kind of credential: none, a wrong key, an expired token,
//! a viewer's key and token, an agent's key, an admin's key. Without valid credentials every
//! route but the open ones answers 401; with too small a role 403; otherwise the route runs
//! (whatever it answers then, it is not 401 or 403). On memory, and on Redis through two
//! instances (requests alternate between them).

use reqwest::Method;
use serde_json::{json, Value};

use super::support::{Endpoint, Gateway, RedisServer};
use super::{config, token, ADMIN_KEY, AGENT_KEY, VIEWER_KEY};

/// What a route needs, as the contract says (docs/security.md): reads `viewer` (taking input
/// is a write), writes `agent`, the operations routes `admin`; health and readiness nothing.
fn needs(method: &Method, path: &str) -> Option<u8> {
    if matches!(path, "/health" | "/ready") {
        return None;
    }
    let read = method == Method::GET;
    let admin = matches!(path, "/metrics" | "/api/health/redis" | "/api/ops/summary")
        || (path == "/api/demo" && !read)
        || (method == Method::POST
            && (path == "/api/chains/cleanup" || path == "/api/workflow-state/cleanup"))
        || (method == Method::DELETE && path == "/api/cache")
        || (method == Method::PUT && path == "/api/permission-rules");
    Some(if admin {
        2
    } else if read && !path.ends_with("/input") {
        0
    } else {
        1
    })
}

/// The status and, when the answer is JSON, its body (`/metrics` is text; an SSE stream is
/// left unread).
async fn send(ep: &Endpoint, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = ep.http.request(method, ep.url(path));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    if r.headers()
        .get("content-type")
        .is_some_and(|c| c == "text/event-stream")
    {
        return (status, Value::Null); // a session's stream: it runs until dropped
    }
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn every_route_needs_its_role(a: &Gateway, b: &Gateway) {
    let expired = token("ada", "admin", -120);
    // (credential, role it has: None for none or an invalid one)
    let creds: Vec<(Option<String>, Option<u8>, &str)> = vec![
        (None, None, "no credentials"),
        (Some("wrong-key-0123456789".into()), None, "a wrong key"),
        (Some(expired), None, "an expired token"),
        (Some(VIEWER_KEY.into()), Some(0), "a viewer key"),
        (
            Some(token("vera", "viewer", 600)),
            Some(0),
            "a viewer token",
        ),
        (Some(AGENT_KEY.into()), Some(1), "an agent key"),
        (Some(token("ada", "agent", 600)), Some(1), "an agent token"),
        (Some(ADMIN_KEY.into()), Some(2), "an admin key"),
    ];
    let routes = super::routes::routes();
    assert!(
        routes.len() > 50,
        "the router's routes were read: {routes:?}"
    );
    let mut checked = 0;
    for (i, route) in routes.iter().enumerate() {
        let (method, pattern) = route.split_once(' ').unwrap();
        if pattern == "/ws" {
            continue; // the WebSocket has tests of its own
        }
        let method = match method {
            "ANY" => Method::GET,
            m => m.parse::<Method>().unwrap(),
        };
        let path = super::routes::concrete(pattern, "m");
        let need = needs(&method, pattern);
        for (j, (cred, role, what)) in creds.iter().enumerate() {
            let gw: &Endpoint = if (i + j) % 2 == 0 { a } else { b };
            let ep = match cred {
                Some(c) => gw.with_key(c),
                None => gw.clone(),
            };
            let body = (method != Method::GET).then(|| json!({}));
            let (status, v) = send(&ep, method.clone(), &path, body).await;
            let route = format!("{method} {path} with {what}");
            match (need, role) {
                (None, _) => assert!(status != 401 && status != 403, "{route}: {status} {v}"),
                (Some(_), None) => {
                    assert_eq!(status, 401, "{route}: {v}");
                    let code = v["error"].as_str().unwrap_or_default();
                    assert!(
                        ["unauthorized", "invalid_token", "token_expired"].contains(&code),
                        "{route}: {v}"
                    );
                    if what.contains("expired") {
                        assert_eq!(code, "token_expired", "{route}");
                    }
                }
                (Some(n), Some(r)) if r < &n => {
                    assert_eq!(status, 403, "{route}: {v}");
                    assert_eq!(v["error"], "forbidden", "{route}");
                }
                (Some(_), Some(_)) => {
                    assert!(status != 401 && status != 403, "{route}: {status} {v}")
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 400, "{checked}");
    // The admin's POST /api/demo started the demo agents: stop them.
    let (s, _) = a.with_key(ADMIN_KEY).delete("/api/demo").await;
    assert!(s < 300);
    let (s, _) = b.with_key(ADMIN_KEY).delete("/api/demo").await;
    assert!(s < 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_memory_every_route_needs_its_role() {
    let gw = Gateway::start(config(None)).await;
    every_route_needs_its_role(&gw, &gw).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_through_two_instances_every_route_needs_its_role() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(config(Some(&redis))).await;
    let b = Gateway::start(config(Some(&redis))).await;
    every_route_needs_its_role(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_narrowed_to_sessions_reaches_only_those() {
    let gw = Gateway::start(config(None)).await;
    let agent = gw.with_key(AGENT_KEY);
    for sid in ["build-1", "deploy-1"] {
        agent
            .post_event(json!({"sessionId": sid, "type": "t"}))
            .await;
    }
    let narrowed = super::hs256(
        super::SECRET,
        &json!({"sub": "vera", "exp": super::now() + 600, "sessions": ["build-*"]}),
    );
    let v = gw.with_key(&narrowed);
    assert_eq!(v.get("/api/events/build-1").await.0, 200);
    assert_eq!(v.get("/api/sessions/build-1").await.0, 200);
    let (s, body) = v.get("/api/events/deploy-1").await;
    assert_eq!((s, body["error"].as_str()), (403, Some("forbidden")));
    // A listing spans sessions: a narrowed token does not get one.
    assert_eq!(v.get("/api/sessions").await.0, 403);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_commands_and_input_but_takes_neither() {
    let gw = Gateway::start(config(None)).await;
    let agent = gw.with_key(AGENT_KEY);
    let viewer = gw.with_key(VIEWER_KEY);
    agent
        .post_event(json!({"sessionId": "q", "type": "t"}))
        .await;
    let (s, _) = agent
        .post("/api/sessions/q/commands", json!({"type": "pause"}))
        .await;
    assert_eq!(s, 201);
    let (s, _) = agent
        .post("/api/sessions/q/input", json!({"input": "yes"}))
        .await;
    assert!(s < 300, "{s}");
    for path in [
        "/api/sessions/q/commands?consume=true",
        "/api/sessions/q/commands?consume=1",
        "/api/commands/q/commands?consume=true",
        "/api/sessions/q/input",
        "/api/sessions/q/input?consume=true",
    ] {
        let (s, v) = viewer.get(path).await;
        assert_eq!((s, v["error"].as_str()), (403, Some("forbidden")), "{path}");
    }
    let (s, v) = viewer.get("/api/sessions/q/commands").await;
    assert_eq!((s, v["count"].as_u64()), (200, Some(1)));
    let (s, v) = viewer.get("/api/sessions/q/input?consume=false").await;
    assert_eq!((s, v["count"].as_u64()), (200, Some(1)), "{v}");
    // Nothing was taken: the agent still gets both.
    let (_, v) = agent.get("/api/sessions/q/commands?consume=true").await;
    assert_eq!(v["count"], 1);
    let (_, v) = agent.get("/api/sessions/q/input").await;
    assert_eq!(v["count"], 1);
    gw.stop().await;
}

/// A session's SSE stream: credentials in the header or, for `EventSource`, in `?token=`;
/// none is a 401, a token narrowed to other sessions a 403, and a tenant sees its own
/// session of a name another tenant uses too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_takes_its_token_in_the_query_and_serves_only_what_it_reaches() {
    use super::support::SseClient;
    let gw = Gateway::start(super::tenants::tenants_config(None)).await;
    let agent = gw.with_key(AGENT_KEY);
    agent
        .post_event(json!({"sessionId": "build-1", "type": "default-tenant"}))
        .await;
    let acme = gw.with_key(super::tenants::ACME);
    acme.post_event(json!({"sessionId": "build-1", "type": "acme"}))
        .await;
    let open = gw.endpoint();
    let (s, _) = SseClient::request(&open, "/api/sessions/build-1/stream", None).await;
    assert_eq!(s, 401);
    let path = format!("/api/sessions/build-1/stream?since=0&token={VIEWER_KEY}");
    let mut viewer = SseClient::open(&open, &path, None).await;
    assert!(viewer.next_data().await.is_some());
    assert_eq!(
        viewer.next_event().await.1["payload"]["type"],
        "default-tenant"
    );
    let mut theirs = SseClient::open(&acme, "/api/sessions/build-1/stream?since=0", None).await;
    assert!(theirs.next_data().await.is_some());
    assert_eq!(theirs.next_event().await.1["payload"]["type"], "acme");
    let narrowed = super::hs256(
        super::SECRET,
        &json!({"sub": "vera", "exp": super::now() + 600, "sessions": ["deploy-*"]}),
    );
    let path = format!("/api/sessions/build-1/stream?token={narrowed}");
    assert_eq!(SseClient::request(&open, &path, None).await.0, 403);
    // Live: each stream gets its own tenant's next event only.
    acme.post_event(json!({"sessionId": "build-1", "type": "acme-2"}))
        .await;
    agent
        .post_event(json!({"sessionId": "build-1", "type": "default-2"}))
        .await;
    assert_eq!(viewer.next_event().await.1["payload"]["type"], "default-2");
    assert_eq!(theirs.next_event().await.1["payload"]["type"], "acme-2");
    gw.stop().await;
}
