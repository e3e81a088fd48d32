//! Properties over every request decoder, checked with generated input through the real router
//! (on the memory store, in process, no sockets): no input panics, every answer is a 2xx or a
//! 4xx, and every 4xx is the API's JSON error. Plus the WebSocket message parser and the Redis
//! key builder. `PROPTEST_CASES` sets the cases per property (default 300; CI runs that).

use std::sync::OnceLock;

use afw_gateway::realtime::protocol::ClientMessage;
use afw_gateway::store::redis::keys::Keys;
use afw_gateway::Config;
use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    router: Router,
}

/// One gateway (memory store) for every case of every property in this file.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let router = rt.block_on(async {
            let config = Config::default();
            let token = tokio_util::sync::CancellationToken::new();
            let tasks = tokio_util::task::TaskTracker::new();
            let app = afw_gateway::build(config, &tasks, &token).await.unwrap();
            afw_gateway::http::router(app)
        });
        World { rt, router }
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Sends one request and checks the answer's shape; returns the status.
fn check(method: Method, uri: &str, body: Vec<u8>) -> Result<u16, TestCaseError> {
    let w = world();
    let Ok(req) = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
    else {
        return Ok(0); // not a URI an HTTP client could send
    };
    let (status, bytes) = w.rt.block_on(async {
        let resp = w.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes)
    });
    prop_assert!(
        (200..300).contains(&status) || (400..500).contains(&status),
        "{uri}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    if status >= 400 {
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{uri}: {status} body is not JSON ({e})")))?;
        prop_assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
    Ok(status)
}

/// Member names the gateway reads, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sessionId".to_string()),
        Just("type".to_string()),
        Just("eventId".to_string()),
        Just("timestamp".to_string()),
        Just("seq".to_string()),
        Just("receivedAt".to_string()),
        Just("chainId".to_string()),
        Just("stepNumber".to_string()),
        Just("step".to_string()),
        Just("steps".to_string()),
        Just("title".to_string()),
        Just("status".to_string()),
        Just("error".to_string()),
        Just("payload".to_string()),
        Just("data".to_string()),
        Just("input".to_string()),
        Just("id".to_string()),
        Just("metadata".to_string()),
        Just("totalSteps".to_string()),
        Just("staleSecs".to_string()),
        Just("events".to_string()),
        "\\PC{0,8}",
    ]
}

/// Strings a hostile client sends: ids with separators, braces, control characters,
/// non-ASCII, event types that move chains.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9:{}%*. -]{0,12}",
        "\\PC{0,20}",
        "[\\x00-\\x1f\\u{7f}\\u{2028}]{1,4}",
        Just("chain:compiled".to_string()),
        Just("step:started".to_string()),
        Just("step:failed".to_string()),
        Just("chain:completed".to_string()),
        Just("2026-01-01T00:00:00.000Z".to_string()),
        Just("s".to_string()),
        "x{190,210}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object that often looks like a real event, chain body or queue item.
fn object() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((key(), value()), 0..8),
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(|(kv, sid, kind)| {
            let mut m: Map<String, Value> = kv.into_iter().collect();
            if let Some(s) = sid {
                m.insert("sessionId".into(), s.into());
            }
            if let Some(t) = kind {
                m.insert("type".into(), t.into());
            }
            Value::Object(m)
        })
}

/// Bytes that are JSON, nearly JSON, or not JSON at all.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => object().prop_map(|v| v.to_string().into_bytes()),
        2 => value().prop_map(|v| v.to_string().into_bytes()),
        1 => object().prop_map(|v| { let mut s = v.to_string().into_bytes(); s.truncate(s.len() / 2); s }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(br#"{"sessionId":"s","type":"t","type":"u","n":123456789012345678901234567890}"#.to_vec()),
    ]
}

fn path_id() -> impl Strategy<Value = String> {
    text().prop_map(|s| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn event_posts_are_stored_or_refused_with_a_json_4xx(b in body()) {
        check(Method::POST, "/api/events", b)?;
    }

    #[test]
    fn batches_are_stored_or_refused_with_a_json_4xx(events in prop::collection::vec(object(), 0..6), raw in body()) {
        check(Method::POST, "/api/events/batch", json!({"events": events}).to_string().into_bytes())?;
        check(Method::POST, "/api/events/batch", raw)?;
    }

    #[test]
    fn session_bodies_are_checked(b in body(), id in path_id()) {
        check(Method::POST, "/api/sessions", b.clone())?;
        check(Method::PATCH, &format!("/api/sessions/{id}"), b.clone())?;
        check(Method::POST, &format!("/api/sessions/{id}/awaiting"), b)?;
    }

    #[test]
    fn chain_bodies_are_checked(b in body(), id in path_id()) {
        check(Method::POST, "/api/sessions", json!({"id": "chains"}).to_string().into_bytes())?;
        check(Method::POST, "/api/sessions/chains/chains", b.clone())?;
        check(Method::PATCH, &format!("/api/chains/{id}"), b.clone())?;
        check(Method::POST, "/api/chains/cleanup", b)?;
    }

    #[test]
    fn queue_bodies_are_checked(b in body(), id in path_id()) {
        check(Method::POST, "/api/sessions", json!({"id": "queues"}).to_string().into_bytes())?;
        check(Method::POST, "/api/sessions/queues/commands", b.clone())?;
        check(Method::POST, "/api/sessions/queues/input", b.clone())?;
        check(Method::POST, &format!("/api/commands/{id}/ack"), b.clone())?;
        check(Method::POST, &format!("/api/sessions/queues/input/{id}/ack"), b)?;
    }

    #[test]
    fn queries_are_checked(q in prop::collection::vec((prop_oneof![Just("status"), Just("userId"), Just("limit"), Just("cursor"), Just("after"), Just("since"), Just("seconds"), Just("x")], text()), 0..4), id in path_id()) {
        let query: String = q.iter().map(|(k, v)| {
            let v: String = v.bytes().map(|b| format!("%{b:02X}")).collect();
            format!("{k}={v}&")
        }).collect();
        for path in ["/api/sessions".to_string(), format!("/api/events/{id}"), format!("/api/events/{id}/recent"), "/api/chains".to_string(), format!("/api/sessions/{id}/chains"), format!("/api/chains/{id}")] {
            check(Method::GET, &format!("{path}?{query}"), Vec::new())?;
        }
    }

    #[test]
    fn websocket_messages_never_panic_the_parser(v in value(), raw in "\\PC{0,64}") {
        let _ = ClientMessage::parse(&v.to_string());
        let _ = ClientMessage::parse(&raw);
        let mut m = json!({"type": "subscribe", "sessionId": v.clone(), "since": v.clone(), "epoch": v});
        let _ = ClientMessage::parse(&m.to_string());
        m["type"] = json!("input");
        let _ = ClientMessage::parse(&m.to_string());
    }

    #[test]
    fn no_two_distinct_ids_give_one_key(a in (text(), text()), b in (text(), text()), tenant in "[a-z:{}]{0,4}") {
        let keys = Keys::new("afw:");
        let keys = if tenant.is_empty() { keys } else { keys.for_tenant(&tenant) };
        if a != b {
            prop_assert_ne!(keys.dedup(&a.0, &a.1), keys.dedup(&b.0, &b.1));
            prop_assert_ne!(keys.chain(&a.0, &a.1), keys.chain(&b.0, &b.1));
        }
        if a.0 != b.0 {
            prop_assert_ne!(keys.session(&a.0), keys.session(&b.0));
            prop_assert_ne!(keys.events(&a.0), keys.events(&b.0));
        }
    }
}
