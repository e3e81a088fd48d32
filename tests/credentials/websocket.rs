//! The WebSocket's credentials: `?token=` on the upgrade or an `auth` message first; a fresh
//! token replaces an expiring one without a reconnect (every event delivered once); a token
//! that expires without one closes the connection with 1008 after the grace; `sessions` claims
//! and roles decide what a connection may subscribe to and send.

use std::time::Duration;

use serde_json::json;

use super::support::{Gateway, RedisServer, WsClient};
use super::{config, hs256, now, token, AGENT_KEY, SECRET, VIEWER_KEY};

fn quick(redis: Option<&RedisServer>) -> afw_gateway::Config {
    let mut c = config(redis);
    c.auth.ws_auth_timeout = Duration::from_millis(500);
    c.auth.ws_auth_grace = Duration::from_secs(1);
    c
}

/// The raw WebSocket URL, without credentials.
fn bare(gw: &Gateway) -> String {
    format!("ws://{}/ws", gw.addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_on_the_upgrade_or_in_the_first_message() {
    let gw = Gateway::start(quick(None)).await;
    // On the upgrade.
    let mut c = WsClient::connect(&format!("{}?token={VIEWER_KEY}", bare(&gw))).await;
    c.subscribe("s", None, None).await;
    // A wrong one on the upgrade: no WebSocket at all.
    let refused = tokio_tungstenite::connect_async(format!("{}?token=nope", bare(&gw))).await;
    assert!(refused.is_err());
    // In the first message: nothing is served before it.
    let mut c = WsClient::connect(&bare(&gw)).await;
    c.send(json!({"type": "subscribe", "sessionId": "s"})).await;
    assert_eq!(c.recv().await["code"], "unauthorized");
    c.send(json!({"type": "ping"})).await;
    assert_eq!(c.recv().await["code"], "unauthorized");
    let t = token("vera", "viewer", 600);
    c.send(json!({"type": "auth", "token": t})).await;
    let ok = c.recv().await;
    assert_eq!(ok["type"], "auth_ok", "{ok}");
    assert!(
        ok["expiresAt"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{ok}"
    );
    c.subscribe("s", None, None).await;
    // Past the auth timeout, an authenticated connection stays.
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.send(json!({"type": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_in_time_or_bad_ones_close_with_1008() {
    let gw = Gateway::start(quick(None)).await;
    let mut silent = WsClient::connect(&bare(&gw)).await;
    assert_eq!(silent.recv_close().await, Some(1008));
    let mut wrong = WsClient::connect(&bare(&gw)).await;
    wrong.send(json!({"type": "auth", "token": "nope"})).await;
    assert_eq!(wrong.recv().await["code"], "invalid_token");
    assert_eq!(wrong.recv_close().await, Some(1008));
    let mut expired = WsClient::connect(&bare(&gw)).await;
    expired
        .send(json!({"type": "auth", "token": token("vera", "viewer", -120)}))
        .await;
    assert_eq!(expired.recv().await["code"], "token_expired");
    assert_eq!(expired.recv_close().await, Some(1008));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_token_keeps_the_connection_past_the_first_one_and_loses_nothing() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(quick(Some(&redis))).await;
    let b = Gateway::start(quick(Some(&redis))).await;
    let agent = b.with_key(AGENT_KEY);
    // The first token lives 2-3 s (exp has whole seconds), the grace is 1 s: the connection
    // would close within 4 s without the fresh token sent after half a second.
    let first = token("vera", "viewer", 3);
    let mut c = WsClient::connect(&format!("{}?token={first}", bare(&a))).await;
    c.subscribe("r", None, None).await;
    let mut want = Vec::new();
    for round in 0..10 {
        want.push(
            agent
                .post_event(json!({"sessionId": "r", "type": "t", "i": round}))
                .await,
        );
        if round == 1 {
            c.send(json!({"type": "auth", "token": token("vera", "viewer", 600)}))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // 5 s in: past the first token's expiry and its grace.
    let mut got = Vec::new();
    while got.len() < want.len() {
        let m = c.recv().await;
        match m["type"].as_str() {
            Some("event") => got.push(m["seq"].as_u64().unwrap()),
            Some("auth_ok") => {}
            _ => panic!("unexpected {m}"),
        }
    }
    assert_eq!(got, want, "every event once, in order");
    c.send(json!({"type": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong", "still open");
    // Fresh credentials of someone else are refused; the connection keeps its own.
    c.send(json!({"type": "auth", "token": token("mallory", "admin", 600)}))
        .await;
    assert_eq!(c.recv().await["code"], "forbidden");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_closes_with_1008_and_a_fresh_one_resumes_without_a_loss() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(quick(Some(&redis))).await;
    let b = Gateway::start(quick(Some(&redis))).await;
    let agent = b.with_key(AGENT_KEY);
    // Expires within a second (exp has whole seconds), closed a grace of 1 s after that.
    let t0 = std::time::Instant::now();
    let mut c = WsClient::connect(&format!(
        "{}?token={}",
        bare(&a),
        token("vera", "viewer", 1)
    ))
    .await;
    c.subscribe("x", None, None).await;
    let first = agent
        .post_event(json!({"sessionId": "x", "type": "t"}))
        .await;
    assert_eq!(c.next_event().await["seq"], first);
    assert_eq!(c.recv_close().await, Some(1008));
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
    // Events posted while it was away reach it when it resumes with a fresh token.
    let missed = agent
        .post_event(json!({"sessionId": "x", "type": "t"}))
        .await;
    let mut c = WsClient::connect(&format!(
        "{}?token={}",
        bare(&b),
        token("vera", "viewer", 600)
    ))
    .await;
    let confirm = c.subscribe("x", Some(first), None).await;
    assert_eq!(confirm["payload"]["recovered"], true, "{confirm}");
    assert_eq!(c.next_event().await["seq"], missed);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_claims_and_roles_decide_subscriptions_and_input() {
    let gw = Gateway::start(quick(None)).await;
    let narrowed = hs256(
        SECRET,
        &json!({"sub": "vera", "exp": now() + 600, "sessions": ["build-*", "ops"]}),
    );
    let mut c = WsClient::connect(&format!("{}?token={narrowed}", bare(&gw))).await;
    c.subscribe("build-7", None, None).await;
    c.subscribe("ops", None, None).await;
    c.send(json!({"type": "subscribe", "sessionId": "deploy-1"}))
        .await;
    let refused = c.recv().await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("forbidden"))
    );
    assert_eq!(refused["sessionId"], "deploy-1");
    // A viewer sends no input.
    c.send(json!({"type": "input", "sessionId": "ops", "payload": "yes"}))
        .await;
    assert_eq!(c.recv().await["code"], "forbidden");
    // Fresh credentials that no longer reach a subscribed session end that subscription.
    let narrower = hs256(
        SECRET,
        &json!({"sub": "vera", "exp": now() + 600, "sessions": ["ops"]}),
    );
    c.send(json!({"type": "auth", "token": narrower})).await;
    let gone = c.recv().await;
    assert_eq!(
        (gone["type"].as_str(), gone["sessionId"].as_str()),
        (Some("unsubscribed"), Some("build-7")),
        "{gone}"
    );
    assert_eq!(gone["reason"], "forbidden");
    assert_eq!(c.recv().await["type"], "auth_ok");
    let agent = gw.with_key(AGENT_KEY);
    agent
        .post_event(json!({"sessionId": "build-7", "type": "t"}))
        .await;
    let seq = agent
        .post_event(json!({"sessionId": "ops", "type": "t"}))
        .await;
    let e = c.next_event().await;
    assert_eq!(
        (e["sessionId"].as_str(), e["seq"].as_u64()),
        (Some("ops"), Some(seq))
    );
    // An agent's input goes through.
    let mut agent_ws = WsClient::connect(&format!("{}?token={AGENT_KEY}", bare(&gw))).await;
    agent_ws
        .send(json!({"type": "input", "sessionId": "ops", "payload": "yes"}))
        .await;
    assert_eq!(agent_ws.recv().await["type"], "input_queued");
    gw.stop().await;
}
