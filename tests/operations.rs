//! What operators look at: Redis as it reports itself (`/api/health/redis`) and each
//! dependency's state (`/health?checks=true`), on the embedded store, on a live Redis, on one
//! whose policy can evict the gateway's keys, and on one that is gone; its password never in
//! an answer.

mod support;

use serde_json::json;
use support::ws::WsClient;
use support::{Gateway, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_redis_is_disabled_and_the_checks_are_healthy() {
    let gw = Gateway::start(support::config(None)).await;
    let (s, body) = gw.get("/api/health/redis").await;
    assert_eq!((s, &body["status"]), (200, &json!("disabled")), "{body}");
    let (s, body) = gw.get("/health?checks=true").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["checks"]["store"]["status"], "up", "{body}");
    let (s, body) = gw.get("/health").await;
    assert_eq!((s, &body["status"]), (200, &json!("ok")));
    assert!(
        body.get("checks").is_none(),
        "plain /health asks nothing: {body}"
    );
    let (s, body) = gw.get("/health?checks=maybe").await;
    assert_eq!(s, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reports_itself_warns_of_an_evicting_policy_and_is_503_when_gone() {
    let mut redis = RedisServer::start().await;
    let mut c = redis.connection().await.unwrap();
    const PASSWORD: &str = "s3cret-redis-pass";
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(PASSWORD)
        .query_async(&mut c)
        .await
        .unwrap();
    let mut config = support::config(Some(&redis));
    let url = redis
        .url()
        .replace("redis://", &format!("redis://:{PASSWORD}@"));
    config.store.redis_url = Some(url);
    let gw = Gateway::start(config).await;
    gw.post_event(json!({"sessionId": "ops-1", "type": "t"}))
        .await;

    let (s, r) = gw.get("/api/health/redis").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "up", "{r}");
    assert_eq!(r["mode"], "standalone", "{r}");
    assert_eq!(r["role"], "master", "{r}");
    assert!(r["latencyMs"].as_f64().is_some_and(|l| l >= 0.0), "{r}");
    assert!(
        r["keys"].as_u64().is_some_and(|k| k >= 2),
        "the event's keys: {r}"
    );
    assert!(r["usedMemory"].as_u64().is_some_and(|m| m > 0), "{r}");
    assert!(r["usedMemoryHuman"].is_string(), "{r}");
    assert_eq!(r["maxMemory"], 0, "{r}");
    assert_eq!(r["evictionPolicy"], "noeviction", "{r}");
    assert!(r["version"].as_str().is_some_and(|v| !v.is_empty()), "{r}");
    assert!(
        r["connectedClients"].as_u64().is_some_and(|n| n >= 2),
        "{r}"
    );
    assert_eq!(r["pubsub"]["subscribed"], true, "{r}");
    assert_eq!(r["pubsub"]["channels"], 4, "{r}");
    assert_eq!(r["pubsub"]["reconnects"], 0, "{r}");
    assert!(
        r["pubsub"]["lastMessageAgeMs"].is_u64(),
        "the event came by pub/sub: {r}"
    );
    assert_eq!(r["warnings"], json!([]), "{r}");
    let (s, h) = gw.get("/health?checks=true").await;
    assert_eq!((s, &h["status"]), (200, &json!("healthy")), "{h}");
    assert_eq!(h["checks"]["redis"]["status"], "up", "{h}");
    assert_eq!(h["checks"]["pubsub"]["status"], "up", "{h}");

    let mut c = redis::Client::open(format!(
        "redis://:{PASSWORD}@{}",
        redis.url().trim_start_matches("redis://")
    ))
    .unwrap()
    .get_multiplexed_async_connection()
    .await
    .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut c)
        .await
        .unwrap();
    let (_, r) = gw.get("/api/health/redis").await;
    let warning = r["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("allkeys-lru") && warning.contains("noeviction"),
        "{r}"
    );

    redis.kill9();
    let (s, r) = gw.get("/api/health/redis").await;
    assert_eq!((s, &r["status"]), (503, &json!("down")), "{r}");
    assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
    let (s, h) = gw.get("/health?checks=true").await;
    assert_eq!((s, &h["status"]), (503, &json!("unhealthy")), "{h}");
    assert_eq!(h["checks"]["redis"]["status"], "down", "{h}");
    let (s, _) = gw.get("/health").await;
    assert_eq!(s, 200, "liveness does not depend on Redis");
    for body in [r.to_string(), h.to_string()] {
        assert!(!body.contains(PASSWORD), "the password leaked: {body}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_health_is_the_operators() {
    let mut config = support::config(None);
    config.auth.api_keys = vec![
        "admin-key-0123456789".into(),
        "default:viewer-key-012345678:viewer".into(),
        "other:other-admin-key-01234567:admin".into(),
    ];
    let gw = Gateway::start(config).await;
    let (s, _) = gw.endpoint().get("/api/health/redis").await;
    assert_eq!(s, 401);
    let (s, _) = gw
        .with_key("viewer-key-012345678")
        .get("/api/health/redis")
        .await;
    assert_eq!(s, 403, "a viewer");
    let (s, _) = gw
        .with_key("other-admin-key-01234567")
        .get("/api/health/redis")
        .await;
    assert_eq!(s, 403, "another tenant's admin");
    let (s, _) = gw
        .with_key("admin-key-0123456789")
        .get("/api/health/redis")
        .await;
    assert_eq!(s, 200);
    let (s, h) = gw.endpoint().get("/health?checks=true").await;
    assert_eq!(s, 200, "probes need no credentials: {h}");
    gw.stop().await;
}

/// Every sample of `/metrics` whose name and labels start with `prefix`, summed.
async fn sample(gw: &Gateway, prefix: &str) -> f64 {
    let text = gw
        .http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_histograms_by_route_fan_out_latency_and_redis_commands() {
    let mut redis = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&redis))).await;
    let mut ws = WsClient::connect(&gw.ws_url()).await;
    gw.post("/api/sessions", json!({"id": "m-1"})).await;
    ws.subscribe("m-1", None, None).await;
    for i in 0..5 {
        gw.post_event(json!({"sessionId": "m-1", "type": "t", "i": i}))
            .await;
        ws.next_event().await;
    }
    let (s, _) = gw.get("/no/such/route").await;
    assert_eq!(s, 404);
    let count = "afw_http_request_duration_seconds_count";
    let events = format!("{count}{{route=\"/api/events\",class=\"2xx\"}}");
    assert_eq!(sample(&gw, &events).await, 5.0);
    let bucket =
        "afw_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/api/events\",class=\"2xx\"}";
    assert_eq!(sample(&gw, bucket).await, 5.0);
    let unmatched = format!("{count}{{route=\"unmatched\",class=\"4xx\"}}");
    assert_eq!(
        sample(&gw, &unmatched).await,
        1.0,
        "a raw path is never a label"
    );
    // Each delivery is counted; the latencies once per batch a connection wrote.
    assert!(sample(&gw, "afw_frames_out_total{type=\"event\"}").await >= 5.0);
    assert!(sample(&gw, "afw_bytes_out_total").await > 0.0);
    assert!(sample(&gw, "afw_fanout_latency_seconds_count").await >= 1.0);
    assert!(sample(&gw, "afw_hub_queue_seconds_count").await >= 1.0);
    assert_eq!(sample(&gw, "afw_subscriptions ").await, 1.0);
    assert_eq!(sample(&gw, "afw_sessions_watched ").await, 1.0);
    // The store's commands by op: the append script by its name (its first call is sent
    // again once the script is loaded).
    let appends = "redis_commands_total{op=\"events_append\"}";
    assert!((5.0..=6.0).contains(&sample(&gw, appends).await));
    let timed = "redis_command_duration_seconds_count{op=\"events_append\"}";
    assert_eq!(sample(&gw, timed).await, sample(&gw, appends).await);
    assert_eq!(sample(&gw, "redis_connection_status ").await, 1.0);

    redis.kill9();
    let (s, _) = gw.get("/api/sessions/m-1").await;
    assert_eq!(s, 503);
    assert!(sample(&gw, "redis_commands_failed_total{").await >= 1.0);
    assert_eq!(sample(&gw, "redis_connection_status ").await, 0.0);
    ws.close().await;
    gw.stop().await;
}
