//! Tenant quotas (`TENANT_MAX_*`): live sessions, events a day, cache bytes and WebSocket
//! connections. Past each, 429 `quota` and nothing stored; a deleted session or cache entry
//! frees its place; a refused request's events are given back; each tenant counts its own,
//! and the default tenant none. On Redis the counts are keys of the tenant's space that
//! expire.

use afw_gateway::Config;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Endpoint, WsClient};
use crate::Env;

const ACME: &str = "quota-acme-key-0123456789";
const GLOBEX: &str = "quota-globex-key-012345678";
const ADMIN: &str = "quota-admin-key-012345678";

fn quotas(c: &mut Config) {
    c.auth.api_keys = vec![
        ADMIN.into(),
        format!("acme:{ACME}:admin"),
        format!("globex:{GLOBEX}:admin"),
    ];
    c.quotas.tenant_max_sessions = 3;
    c.quotas.tenant_max_events_per_day = 10;
    c.quotas.tenant_max_cache_bytes = 100;
    c.quotas.tenant_max_connections = 2;
}

fn quota_refusal(what: &str, s: u16, v: &Value) {
    assert_eq!(
        (s, v["error"].as_str()),
        (429, Some("quota")),
        "{what}: {v}"
    );
}

async fn post_session(ep: &Endpoint, id: &str) -> (u16, Value) {
    ep.post("/api/sessions", json!({ "id": id })).await
}

async fn live_sessions_past_the_quota_are_refused(env: Env) {
    let acme = env.gw.with_key(ACME);
    for id in ["s1", "s2", "s3"] {
        assert_eq!(post_session(&acme, id).await.0, 201, "{id}");
    }
    let (s, v) = post_session(&acme, "s4").await;
    quota_refusal("a fourth session", s, &v);
    // An event of a live session is taken; one that would start a fourth is not, and
    // stores nothing.
    let (s, _) = acme
        .post("/api/events", json!({"sessionId": "s1", "type": "t"}))
        .await;
    assert_eq!(s, 201);
    let (s, v) = acme
        .post("/api/events", json!({"sessionId": "s5", "type": "t"}))
        .await;
    quota_refusal("an event starting a fourth session", s, &v);
    assert_eq!(acme.get("/api/sessions/s5").await.0, 404);
    assert_eq!(acme.get("/api/sessions/s4").await.0, 404);
    // A deleted session frees its place.
    assert_eq!(acme.delete("/api/sessions/s1").await.0, 204);
    assert_eq!(post_session(&acme, "s4").await.0, 201);
    // Another tenant counts its own; the default tenant has no quota.
    let globex = env.gw.with_key(GLOBEX);
    for id in ["s1", "s2", "s3"] {
        assert_eq!(post_session(&globex, id).await.0, 201, "globex {id}");
    }
    let admin = env.gw.with_key(ADMIN);
    for i in 0..6 {
        assert_eq!(post_session(&admin, &format!("d{i}")).await.0, 201);
    }
    let refused = admin
        .metric("afw_quota_refused_total{quota=\"sessions\"}")
        .await;
    assert_eq!(
        refused, 2.0,
        "the fourth session and the event that would start one"
    );
    if let Some(redis) = &env.redis {
        for key in [
            "afw:t:acme:quota:{acme}:sessions",
            "afw:t:acme:quota:{acme}:sessions:w",
        ] {
            let ttl = redis.pttl(key).await;
            assert!(ttl > 0, "{key} expires: {ttl}");
        }
    }
}

fn quotas_short_sessions(c: &mut Config) {
    quotas(c);
    c.events.session_ttl_secs = 1;
}

/// Sessions that expired leave the quota by themselves, and a later hold sees it.
async fn expired_sessions_free_their_places(env: Env) {
    let acme = env.gw.with_key(ACME);
    for id in ["a1", "a2", "a3"] {
        assert_eq!(post_session(&acme, id).await.0, 201, "{id}");
    }
    let (s, v) = post_session(&acme, "a4").await;
    quota_refusal("a fourth live session", s, &v);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for id in ["b1", "b2", "b3"] {
        assert_eq!(
            post_session(&acme, id).await.0,
            201,
            "{id} once a1-a3 expired"
        );
    }
    let (s, v) = post_session(&acme, "b4").await;
    quota_refusal("a fourth live session again", s, &v);
}

async fn events_past_the_day_quota_are_refused(env: Env) {
    let acme = env.gw.with_key(ACME);
    let batch = |n: usize| {
        json!({"events": (0..n).map(|i| json!({"sessionId": "e", "type": "t", "i": i}))
            .collect::<Vec<_>>()})
    };
    assert_eq!(acme.post("/api/events/batch", batch(8)).await.0, 201);
    let (s, v) = acme.post("/api/events/batch", batch(3)).await;
    quota_refusal("a batch past the day's quota", s, &v);
    let (_, v) = acme.get("/api/events/e").await;
    assert_eq!(v["count"], 8, "nothing of the refused batch was stored");
    // A request refused for another reason gives its events back.
    let (s, _) = acme
        .post("/api/events", json!({"sessionId": "e", "type": ""}))
        .await;
    assert_eq!(s, 400);
    for (i, want) in [201, 201, 429].into_iter().enumerate() {
        let (s, v) = acme
            .post(
                "/api/events",
                json!({"sessionId": "e", "type": "t", "n": i}),
            )
            .await;
        assert_eq!(s, want, "event {i}: {v}");
    }
    // Another tenant's day is its own.
    let globex = env.gw.with_key(GLOBEX);
    assert_eq!(globex.post("/api/events/batch", batch(10)).await.0, 201);
    if let Some(redis) = &env.redis {
        let day = chrono::Utc::now().format("%Y-%m-%d");
        let ttl = redis
            .pttl(&format!("afw:t:acme:quota:{{acme}}:events:d:{day}"))
            .await;
        assert!(ttl > 0, "the day's count expires: {ttl}");
    }
}

async fn cache_bytes_past_the_quota_are_refused(env: Env) {
    let acme = env.gw.with_key(ACME);
    let put = |key: &'static str, bytes: usize| {
        let acme = acme.clone();
        async move {
            let value = "x".repeat(bytes - 2); // a JSON string: two quotes
            acme.request(
                reqwest::Method::PUT,
                &format!("/api/cache/{key}"),
                Some(json!({"value": value, "ttlSeconds": 600})),
            )
            .await
        }
    };
    assert_eq!(put("k1", 60).await.0, 200);
    let (s, v) = put("k2", 60).await;
    quota_refusal("a second 60-byte value", s, &v);
    assert_eq!(acme.get("/api/cache/k2").await.0, 404, "nothing stored");
    // Replacing a value counts its new size only.
    assert_eq!(put("k1", 30).await.0, 200);
    assert_eq!(put("k2", 60).await.0, 200);
    // A deleted entry frees its bytes.
    assert_eq!(acme.delete("/api/cache/k1").await.0, 200);
    assert_eq!(put("k3", 40).await.0, 200);
    let (s, v) = put("k4", 10).await;
    quota_refusal("past 100 bytes", s, &v);
}

async fn connections_past_the_quota_are_refused(env: Env) {
    let url = format!("{}?token={ACME}", env.gw.ws_url());
    let first = WsClient::connect(&url).await;
    let second = WsClient::connect(&url).await;
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 429)
        }
        other => panic!("a third connection: {:?}", other.map(|(_, r)| r.status())),
    }
    // Credentials in the first message: an `error` `quota`, then 1008.
    let (mut ws, _) = tokio_tungstenite::connect_async(env.gw.ws_url().as_str())
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"type": "auth", "token": ACME}).to_string(),
    ))
    .await
    .unwrap();
    let mut saw_quota = false;
    let mut code = None;
    while let Some(Ok(m)) = futures::StreamExt::next(&mut ws).await {
        match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                saw_quota |= v["type"] == "error" && v["code"] == "quota";
            }
            Message::Close(f) => {
                code = f.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    assert!(saw_quota);
    assert_eq!(code, Some(1008));
    // Another tenant has its own; a closed connection frees its place.
    let g = format!("{}?token={GLOBEX}", env.gw.ws_url());
    let (g1, g2) = (WsClient::connect(&g).await, WsClient::connect(&g).await);
    first.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let third = WsClient::connect(&url).await;
    for c in [second, third, g1, g2] {
        c.close().await;
    }
}

conformance! {
    live_sessions_past_the_quota_are_refused => super::quotas,
    events_past_the_day_quota_are_refused => super::quotas,
    cache_bytes_past_the_quota_are_refused => super::quotas,
    connections_past_the_quota_are_refused => super::quotas,
    expired_sessions_free_their_places => super::quotas_short_sessions,
}
