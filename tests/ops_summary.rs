//! `GET /api/ops/summary` over two gateways on one Redis: either instance answers for both
//! (each records its figures in the store every `OPS_REPORT_SECS`), the figures follow what
//! each instance did (connections, subscriptions, events in, deliveries, closes, the fan-out
//! latency's buckets), the named job queues and Redis are in it, and an instance that stops
//! drops out. On the embedded store it shows the one instance and Redis `disabled`.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Gateway, RedisServer, WsClient};

fn config(redis: Option<&RedisServer>) -> afw_gateway::Config {
    let mut c = support::config(redis);
    c.operations.ops_report_secs = 1;
    c.operations.metrics_job_queues = vec!["builds".into()];
    c
}

/// The summary `gw` serves once `ready` holds of it (a report is at most a second away).
async fn summary_when(gw: &Gateway, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (s, v) = gw.get("/api/ops/summary").await;
        assert_eq!(s, 200, "{v}");
        if ready(&v) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the summary never got there: {last}");
}

fn instance<'a>(summary: &'a Value, id: &str) -> Option<&'a Value> {
    summary["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
}

async fn id_of(gw: &Gateway) -> String {
    let (_, h) = gw.get("/health").await;
    h["instanceId"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_instance_summarizes_both_and_a_stopped_one_drops_out() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(config(Some(&redis))).await;
    let b = Gateway::start(config(Some(&redis))).await;
    let (id_a, id_b) = (id_of(&a).await, id_of(&b).await);

    // Two watchers of one session on B; ten events posted on A.
    let mut watchers = Vec::new();
    for _ in 0..2 {
        let mut ws = WsClient::connect(&b.ws_url()).await;
        ws.subscribe("ops-1", None, None).await;
        watchers.push(ws);
    }
    for i in 0..10 {
        a.post_event(json!({"sessionId": "ops-1", "type": "t", "i": i}))
            .await;
    }
    for ws in &mut watchers {
        for _ in 0..10 {
            ws.next_event().await;
        }
    }
    a.post("/api/queues/builds/jobs", json!({"type": "compile"}))
        .await;

    let s = summary_when(&a, |s| {
        instance(s, &id_b).is_some_and(|b| b["deliveries"] == 20 && b["connections"] == 2)
    })
    .await;
    let fig_a = instance(&s, &id_a).expect("A lists itself");
    let fig_b = instance(&s, &id_b).unwrap();
    assert_eq!(s["instances"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(s["servedBy"], id_a.as_str());
    assert_eq!(fig_a["eventsIn"], 10, "{fig_a}");
    assert_eq!(fig_a["deliveries"], 0, "{fig_a}");
    assert_eq!(fig_b["eventsIn"], 0, "{fig_b}");
    assert_eq!(fig_b["subscriptions"], 2, "{fig_b}");
    assert_eq!(fig_b["sessionsWatched"], 1, "{fig_b}");
    assert_eq!(fig_b["version"], env!("CARGO_PKG_VERSION"));
    assert!(fig_b["uptimeSecs"].as_f64().unwrap() >= 0.0);
    let buckets = fig_b["fanoutLatency"].as_array().unwrap();
    assert_eq!(
        buckets.len(),
        s["fanoutLatencyBucketsMs"].as_array().unwrap().len() + 1,
        "a count per bound and +Inf"
    );
    assert_eq!(s["redis"]["status"], "up", "{s}");
    assert!(s["redis"]["keys"].as_u64().unwrap() > 0);
    assert_eq!(
        s["jobQueues"],
        json!([{"queue": "builds", "waiting": 1, "delayed": 0, "active": 0,
            "completed": 0, "failed": 0, "dead": 0}])
    );

    // B serves the same instances; A's figures as A last recorded them.
    let from_b = summary_when(&b, |s| {
        instance(s, &id_a).is_some_and(|a| a["eventsIn"] == 10)
    })
    .await;
    assert_eq!(from_b["instances"].as_array().unwrap().len(), 2);

    // A watcher gone; then B stops and drops out of A's summary within three reports.
    watchers.pop().unwrap().close().await;
    summary_when(&a, |s| {
        instance(s, &id_b).is_some_and(|b| b["connections"] == 1)
    })
    .await;
    drop(watchers);
    b.stop().await;
    let s = summary_when(&a, |s| instance(s, &id_b).is_none()).await;
    assert_eq!(s["instances"].as_array().unwrap().len(), 1, "{s}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_it_shows_the_one_instance() {
    let gw = Gateway::start(config(None)).await;
    let id = id_of(&gw).await;
    let s = summary_when(&gw, |s| instance(s, &id).is_some()).await;
    assert_eq!(s["instances"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["redis"]["status"], "disabled");
    assert_eq!(s["instances"][0]["store"], "memory");
    assert_eq!(s["errors"], json!([]));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_and_input_waiting_in_watched_sessions_are_counted_at_the_scrape() {
    let redis = RedisServer::start().await;
    let gw = Gateway::start(config(Some(&redis))).await;
    let mut watchers = Vec::new();
    for sid in ["q-1", "q-2"] {
        gw.post("/api/sessions", json!({"id": sid})).await;
        let mut ws = WsClient::connect(&gw.ws_url()).await;
        ws.subscribe(sid, None, None).await;
        watchers.push(ws);
    }
    gw.post("/api/sessions", json!({"id": "q-unwatched"})).await;
    for sid in ["q-1", "q-1", "q-unwatched"] {
        let (s, v) = gw
            .post(
                &format!("/api/sessions/{sid}/commands"),
                json!({"type": "pause"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = gw
        .post("/api/sessions/q-2/input", json!({"input": "yes"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let items = |q: &str| format!("afw_control_queue_items{{queue=\"{q}\"}}");
    assert_eq!(gw.metric(&items("commands")).await, 2.0);
    assert_eq!(gw.metric(&items("input")).await, 1.0);
    assert_eq!(gw.metric("afw_control_queue_sessions_read").await, 2.0);
    // Taken by the agent: no longer waiting.
    let (s, _) = gw.get("/api/sessions/q-2/input").await;
    assert_eq!(s, 200);
    gw.get("/api/sessions/q-1/commands?consume=true").await;
    assert_eq!(gw.metric(&items("input")).await, 0.0);
    assert_eq!(gw.metric(&items("commands")).await, 0.0);
    drop(watchers);
    gw.stop().await;
}
