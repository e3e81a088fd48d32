//! The HTTP edge: every bad input gets a JSON error and stores nothing, ids are carried,
//! credentials are checked, a store that is down answers 503, a bad config stops start-up.

mod support;

use std::process::Command;

use afw_gateway::Config;
use serde_json::{json, Value};
use support::{status_json, Gateway, RedisServer};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], want_code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["requestId"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_error_and_stores_nothing() {
    let gw = Gateway::start(support::config(None)).await;
    let http = &gw.http;
    let post_raw = |path: &str, ct: Option<&str>, body: String| {
        let mut rb = http.post(gw.url(path)).body(body);
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        rb.send()
    };
    let json_ct = Some("application/json");
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "/api/events",
            json_ct,
            r#"{"type":"t"}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/events",
            json_ct,
            r#"{"sessionId":"bad","type":7}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/events",
            json_ct,
            r#"{"sessionId":"bad","type":""}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/events",
            json_ct,
            r#"{"sessionId":"bad","type":"t","timestamp":"noon"}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/events",
            json_ct,
            r#"{"sessionId":"bad","type":"t","eventId":5}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/events",
            json_ct,
            r#"["sessionId","bad"]"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/events",
            json_ct,
            r#"{"sessionId":"bad","type":"t""#.into(),
            400,
            "invalid_json",
        ),
        (
            "/api/events",
            json_ct,
            r#"{"sessionId":"bad","type":"t"} trailing"#.into(),
            400,
            "invalid_json",
        ),
        (
            "/api/events",
            Some("text/plain"),
            r#"{"sessionId":"bad","type":"t"}"#.into(),
            415,
            "unsupported_media_type",
        ),
        (
            "/api/events",
            None,
            r#"{"sessionId":"bad","type":"t"}"#.into(),
            415,
            "unsupported_media_type",
        ),
        (
            "/api/events",
            json_ct,
            format!(
                r#"{{"sessionId":"bad","type":"t","pad":"{}"}}"#,
                "x".repeat(afw_gateway::config::DEFAULT_MAX_EVENT_BYTES + 1000)
            ),
            413,
            "payload_too_large",
        ),
        (
            "/api/events/batch",
            json_ct,
            r#"{"events":{}}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/events/batch",
            json_ct,
            r#"{"evnts":[]}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/events/batch",
            json_ct,
            format!(
                r#"{{"events":[{{"sessionId":"bad","type":"t","pad":"{}"}}]}}"#,
                "x".repeat(afw_gateway::config::DEFAULT_MAX_EVENT_BYTES + 1000)
            ),
            413,
            "payload_too_large",
        ),
        (
            "/api/sessions",
            json_ct,
            r#"{"id":"bad","colour":"red"}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/sessions",
            json_ct,
            r#"{"id":7}"#.into(),
            400,
            "validation_failed",
        ),
        (
            "/api/sessions",
            json_ct,
            format!(r#"{{"id":"{}"}}"#, "b".repeat(201)),
            400,
            "validation_failed",
        ),
    ];
    for (path, ct, body, status, code) in cases {
        let (s, v) = status_json(post_raw(path, ct, body.clone()).await.unwrap()).await;
        assert_error(s, &v, status, code);
    }
    let (s, v) = gw.get("/api/events/bad").await;
    assert_eq!(
        (s, v["count"].as_u64()),
        (200, Some(0)),
        "nothing was stored: {v}"
    );
    let (s, _) = gw.get("/api/sessions/bad").await;
    assert_eq!(s, 404, "no session was created");

    gw.post("/api/sessions", json!({"id": "keep"})).await;
    let (s, v) = gw.patch("/api/sessions/keep", json!({})).await;
    assert_error(s, &v, 400, "validation_failed");
    let (s, v) = gw.patch("/api/sessions/keep", json!({"status": 3})).await;
    assert_error(s, &v, 400, "validation_failed");
    let (s, v) = gw.patch("/api/sessions/keep", json!({"owner": "me"})).await;
    assert_error(s, &v, 400, "validation_failed");
    let (_, v) = gw.get("/api/sessions/keep").await;
    assert_eq!(
        v["status"], "in_progress",
        "rejected patches changed nothing"
    );

    let (s, v) = gw.get("/api/events/keep?limit=ten").await;
    assert_error(s, &v, 400, "invalid_query");
    let (s, v) = gw.get("/api/events/keep?bogus=1").await;
    assert_error(s, &v, 400, "invalid_query");
    let (s, v) = gw.get("/no/such/route").await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = gw.get("/api/sessions/keep/nothing-here").await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = gw.delete("/api/events").await;
    assert_error(s, &v, 405, "method_not_allowed");
    let (s, v) = status_json(http.put(gw.url("/health")).send().await.unwrap()).await;
    assert_error(s, &v, 405, "method_not_allowed");
    let (s, v) = gw.get("/ws").await;
    assert_error(s, &v, 400, "upgrade_required");

    let (s, v) = gw.get("/health").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("ok")),
        "the process is alive"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_correlation_ids_are_carried() {
    let gw = Gateway::start(support::config(None)).await;
    let r = gw
        .http
        .post(gw.url("/api/events"))
        .header("x-request-id", "req-123")
        .header("x-correlation-id", "corr-9")
        .json(&json!({"sessionId": "ids", "type": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-123");
    assert_eq!(r.status(), 201);
    let (_, v) = gw.get("/api/events/ids").await;
    assert_eq!(v["events"][0]["correlationId"], "corr-9");

    let r = gw.http.get(gw.url("/nowhere")).send().await.unwrap();
    let header = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let (_, body) = status_json(r).await;
    assert_eq!(
        body["requestId"],
        header.as_str(),
        "the error names the request it answers"
    );
    assert!(header.len() >= 32, "a fresh id is made: {header}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_guard_every_route_but_health_and_ready() {
    let mut config = support::config(None);
    config.auth.api_keys = vec!["key-one-0123456789".into(), "key-two-0123456789".into()];
    let gw = Gateway::start(config).await;
    let http = &gw.http;
    for path in ["/health", "/ready"] {
        assert_eq!(
            http.get(gw.url(path)).send().await.unwrap().status(),
            200,
            "{path} is open"
        );
    }
    let (s, v) = gw.get("/api/sessions").await;
    assert_error(s, &v, 401, "unauthorized");
    let r = http
        .get(gw.url("/api/sessions"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let (s, v) = status_json(r).await;
    assert_error(s, &v, 401, "invalid_token");
    let r = http
        .post(gw.url("/api/events"))
        .json(&json!({"sessionId": "a", "type": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(gw.url("/api/events"))
        .bearer_auth("key-two-0123456789")
        .json(&json!({"sessionId": "a", "type": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .get(gw.url("/api/events/a"))
        .bearer_auth("key-one-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Without a token the socket opens but serves nothing before an `auth` message.
    let mut pending = support::WsClient::connect(&gw.ws_url()).await;
    pending
        .send(json!({"type": "subscribe", "sessionId": "a"}))
        .await;
    let answer = pending.recv().await;
    assert_eq!(answer["code"], "unauthorized", "{answer}");
    let refused = tokio_tungstenite::connect_async(format!("{}?token=nope", gw.ws_url())).await;
    assert!(refused.is_err(), "a wrong token, no WebSocket");
    let mut c =
        support::WsClient::connect(&format!("{}?token=key-one-0123456789", gw.ws_url())).await;
    c.subscribe("a", None, None).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_answers_503_and_never_2xx() {
    let redis = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&redis))).await;
    gw.post_event(json!({"sessionId": "down", "type": "t"}))
        .await;
    drop(redis);
    let r = gw
        .http
        .post(gw.url("/api/events"))
        .json(&json!({"sessionId": "down", "type": "t"}))
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let (s, v) = status_json(r).await;
    assert_error(s, &v, 503, "store_unavailable");
    assert_eq!(retry.as_deref(), Some("1"));
    let (s, v) = gw.get("/api/sessions/down").await;
    assert_error(s, &v, 503, "store_unavailable");
    let (s, v) = gw.get("/ready").await;
    assert_error(s, &v, 503, "not_ready");
    let (s, _) = gw.get("/health").await;
    assert_eq!(s, 200, "alive while the store is down");
    gw.stop().await;
}

fn run_binary(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_afw-gateway"));
    for var in [
        "PORT",
        "HOST",
        "REDIS_URL",
        "REDIS_PREFIX",
        "AFW_API_KEYS",
        "AFW_INSECURE",
        "MAX_EVENTS_PER_SESSION",
        "SESSION_TTL_SECS",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run afw-gateway");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (var, value) in [
        ("PORT", "abc"),
        ("MAX_EVENTS_PER_SESSION", "0"),
        ("REDIS_URL", "http://x"),
        ("SESSION_TTL_SECS", "-5"),
    ] {
        let (code, stderr) = run_binary(&[(var, value)]);
        assert_eq!(code, Some(64), "{var}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(var), "the line names {var}: {stderr}");
    }
    for key in ["k", "change-me-to-a-long-random-key"] {
        let (code, stderr) = run_binary(&[("AFW_API_KEYS", key)]);
        assert_eq!(code, Some(64), "{key}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("AFW_API_KEYS"), "{stderr}");
    }
    let (code, stderr) = run_binary(&[("HOST", "0.0.0.0")]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("AFW_API_KEYS") && stderr.contains("AFW_INSECURE"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_for_configured_origins() {
    let gw = Gateway::start(Config {
        cors_origins: vec!["http://dash.test".into()],
        ..support::config(None)
    })
    .await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, gw.url("/api/events"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let r = preflight("http://dash.test").await.unwrap();
    assert_eq!(r.status(), 204, "a preflight's answer has no content");
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://dash.test"
    );
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    assert!(r.headers().contains_key("access-control-allow-headers"));
    let r = preflight("http://evil.test").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    gw.stop().await;

    let plain = Gateway::start(support::config(None)).await;
    let r = plain
        .http
        .get(plain.url("/health"))
        .header("origin", "http://dash.test")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "no CORS unless configured"
    );
    plain.stop().await;
}
