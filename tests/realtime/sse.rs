//! A session's stream as server-sent events: history and live events with `id: epoch:seq`,
//! exact resume with `Last-Event-ID` on any instance (also across a SIGKILL), keep-alive
//! comments, the byte budget, and bad requests refused with JSON.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{self, Endpoint, Gateway, GatewayProcess, RedisServer, SseClient};

async fn post(ep: &Endpoint, session: &str, n: u64) -> u64 {
    ep.post_event(json!({"sessionId": session, "type": "t", "n": n}))
        .await
}

/// Replay from `since=0`, live events, a resume with `Last-Event-ID` on `b`, and a stream
/// opened without `since` that starts at the live edge.
async fn replay_live_and_resume(a: &Endpoint, b: &Endpoint) {
    for n in 1..=5 {
        post(a, "sse1", n).await;
    }
    let mut s = SseClient::open(a, "/api/sessions/sse1/stream?since=0", None).await;
    let confirm = s.next_data().await.unwrap();
    assert_eq!(
        confirm.data["type"], "subscription_confirmed",
        "{confirm:?}"
    );
    assert_eq!(confirm.data["payload"]["recovered"], true);
    assert_eq!(confirm.data["payload"]["headSeq"], 5);
    assert!(confirm.id.is_none(), "only stored events carry an id");
    let epoch = confirm.data["payload"]["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    for seq in 1..=5 {
        let (id, frame) = s.next_event().await;
        assert_eq!(id, format!("{epoch}:{seq}"));
        assert_eq!(frame["payload"]["n"], seq);
    }
    let mut live = SseClient::open(a, "/api/sessions/sse1/stream", None).await;
    let head = live.next_data().await.unwrap();
    assert_eq!(head.data["payload"]["recovered"], false, "{head:?}");
    for n in 6..=8 {
        post(b, "sse1", n).await;
    }
    for seq in 6..=8 {
        assert_eq!(s.next_event().await.1["seq"], seq);
        assert_eq!(
            live.next_event().await.1["seq"],
            seq,
            "live from now on only"
        );
    }
    drop(s);
    let mut again =
        SseClient::open(b, "/api/sessions/sse1/stream", Some(&format!("{epoch}:6"))).await;
    assert_eq!(
        again.next_data().await.unwrap().data["payload"]["recovered"],
        true
    );
    assert_eq!(again.next_event().await.1["seq"], 7, "resumes after 6");
    assert_eq!(again.next_event().await.1["seq"], 8);
    post(a, "sse1", 9).await;
    assert_eq!(again.next_event().await.1["seq"], 9);
    // An id of another epoch cannot be resumed: it says so and goes on live.
    let mut other = SseClient::open(b, "/api/sessions/sse1/stream", Some("old-epoch:3")).await;
    let m = other.next_data().await.unwrap();
    assert_eq!(m.data["payload"]["recovered"], false, "{m:?}");
    assert_eq!(m.data["payload"]["headSeq"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_memory_a_stream_replays_goes_live_and_resumes_from_its_last_id() {
    let gw = Gateway::start(support::config(None)).await;
    replay_live_and_resume(&gw, &gw).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_stream_resumes_on_another_instance() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(support::config(Some(&redis))).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    replay_live_and_resume(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_requests_get_json_errors() {
    let gw = Gateway::start(support::config(None)).await;
    for (path, last_id, code, field) in [
        (
            "/api/sessions/s/stream",
            Some("no-seq"),
            "validation_failed",
            "Last-Event-ID",
        ),
        (
            "/api/sessions/s/stream",
            Some("e:-1"),
            "validation_failed",
            "Last-Event-ID",
        ),
        (
            "/api/sessions/s/stream?since=x",
            None,
            "invalid_query",
            "since",
        ),
        (
            "/api/sessions/s/stream?format=xml",
            None,
            "validation_failed",
            "format",
        ),
        (
            "/api/sessions/bad%01id/stream",
            None,
            "validation_failed",
            "sessionId",
        ),
    ] {
        let (status, resp) = SseClient::request(&gw, path, last_id).await;
        assert_eq!(status, 400, "{path} {last_id:?}");
        let body = resp.json::<Value>().await.unwrap();
        assert_eq!(body["error"], code, "{body}");
        assert!(body.to_string().contains(field), "{field}: {body}");
    }
    let (s, _) = gw.get("/api/sessions/s").await;
    assert_eq!(s, 404, "nothing was created");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_gets_keep_alive_comments_and_ends_at_shutdown() {
    let mut config = support::config(None);
    config.realtime.sse_keepalive_every = Duration::from_millis(200);
    let gw = Gateway::start(config).await;
    let mut s = SseClient::open(&gw, "/api/sessions/quiet/stream", None).await;
    assert!(s.next_data().await.is_some(), "the confirmation");
    let m = s.next().await.unwrap();
    assert!(m.comment, "a keep-alive comment: {m:?}");
    gw.stop().await;
    let last = s.next_data().await.expect("told why");
    assert_eq!(last.data["code"], "going_away", "{last:?}");
    assert!(s.next().await.is_none(), "then the stream ends");
}

/// A stream whose reader stops is ended at its byte budget with `slow_consumer`, the reader
/// that keeps up is not, and the slow one resumes from its last id with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stops_reading_ends_with_slow_consumer_and_resumes_whole() {
    let mut config = support::config(None);
    config.events.max_event_bytes = 64 * 1024;
    config.events.max_batch_bytes = 256 * 1024;
    config.realtime.ws_outbound_limit_bytes = 256 * 1024;
    let gw = Gateway::start(config).await;
    let path = "/api/sessions/flood/stream?since=0";
    let mut slow = SseClient::open(&gw, path, None).await;
    let mut fast = SseClient::open(&gw, path, None).await;
    assert!(fast.next_data().await.is_some());
    const BATCHES: u64 = 120;
    const PER_BATCH: u64 = 10;
    let pad = "y".repeat(16 * 1024);
    for batch in 0..BATCHES {
        let events: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({"sessionId": "flood", "type": "t", "b": batch, "i": i, "pad": pad}))
            .collect();
        let (s, v) = gw
            .post("/api/events/batch", json!({"events": events}))
            .await;
        assert_eq!(s, 201, "{v}");
        for i in 0..PER_BATCH {
            let seq = batch * PER_BATCH + i + 1;
            assert_eq!(fast.next_event().await.1["seq"], seq, "the fast reader");
        }
    }
    let mut next = 1;
    let mut ended = None;
    while let Some(m) = slow.next_data().await {
        match m.data["type"].as_str() {
            Some("event") => {
                assert_eq!(m.data["seq"], next, "in order up to the end");
                next += 1;
            }
            Some("error") => ended = Some(m.data["code"].clone()),
            _ => {}
        }
    }
    assert_eq!(ended, Some(json!("slow_consumer")));
    assert!(next <= BATCHES * PER_BATCH, "it fell behind: {next}");
    let last = slow.last_id.clone().expect("it got some events");
    let mut resumed = SseClient::open(&gw, "/api/sessions/flood/stream", Some(&last)).await;
    assert_eq!(
        resumed.next_data().await.unwrap().data["payload"]["recovered"],
        true
    );
    while next <= BATCHES * PER_BATCH {
        assert_eq!(resumed.next_event().await.1["seq"], next);
        next += 1;
    }
    assert_eq!(gw.metric("afw_sse_streams").await, 2.0);
    gw.stop().await;
}

/// A reader on an instance killed with SIGKILL reconnects to another with its last id and
/// gets every event once, in order, while an agent posts on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_a_killed_instance_resumes_elsewhere_with_every_event_once() {
    let redis = RedisServer::start().await;
    let env = [("REDIS_URL", redis.url())];
    let mut a = GatewayProcess::start(&env).await;
    let b = GatewayProcess::start(&env).await;
    let (a_ep, b_ep) = (a.endpoint(), b.endpoint());
    const TOTAL: u64 = 300;
    let poster = tokio::spawn(async move {
        for n in 1..=TOTAL {
            post(&b_ep, "killed", n).await;
            if n % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let mut s = SseClient::open(&a_ep, "/api/sessions/killed/stream?since=0", None).await;
    let mut seen = Vec::new();
    let mut on_b = false;
    while (seen.len() as u64) < TOTAL {
        match s.next_data().await {
            Some(m) if m.data["type"] == "event" => {
                seen.push(m.data["payload"]["n"].as_u64().unwrap())
            }
            Some(_) => {}
            None => {
                assert!(!on_b, "the stream on B ended");
                on_b = true;
                let last = s.last_id.clone();
                s = SseClient::open(
                    &b.endpoint(),
                    "/api/sessions/killed/stream",
                    last.as_deref(),
                )
                .await;
                continue;
            }
        }
        if seen.len() == 100 && !on_b {
            a.kill9();
        }
    }
    poster.await.unwrap();
    assert!(on_b, "the reader moved to B");
    assert_eq!(
        seen,
        (1..=TOTAL).collect::<Vec<_>>(),
        "every event once, in order"
    );
}
