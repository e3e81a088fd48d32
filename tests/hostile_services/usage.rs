//! Usage totals at the end of their range.

use serde_json::json;

use crate::support::{self, WsClient};
use crate::Pair;

/// A day's total that has grown to the top of Redis's integers: the next usage event is still
/// stored, published and answered 201, and the total stays at its bound, marked saturated
/// (once the append script failed halfway: stored, never published, answered 503 "nothing was
/// written", and so for every later usage event of that day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_at_the_end_of_its_range_stops_nothing() {
    let pair = Pair::start(&[]).await;
    let (a, b) = (pair.a.endpoint(), pair.b.endpoint());
    let mut conn = pair.redis.connection().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!(
            "{}usage:{{tenant}}:d:2026-12-02",
            support::key_space()
        ))
        .arg("in")
        .arg(i64::MAX - 10)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut watcher = WsClient::connect(&b.ws_url()).await;
    watcher.subscribe("spend", None, None).await;
    for n in 1..=3 {
        let event = json!({"sessionId": "spend", "type": "llm:call", "timestamp": "2026-12-02T10:00:00Z",
            "usage": {"inputTokens": 1_000_000, "costUsd": 0.5}});
        let (s, v) = a.post("/api/events", event).await;
        assert_eq!(s, 201, "{v}");
        let m = watcher.next_event().await;
        assert_eq!(m["seq"], n, "published in the same step: {m}");
    }
    let (_, day) = b.get("/api/usage?date=2026-12-02").await;
    assert_eq!(day["inputTokens"], 1_000_000_000_000_000u64, "{day}");
    assert_eq!(
        (&day["saturated"], &day["events"]),
        (&json!(true), &json!(3))
    );
    assert_eq!(day["costMicroUsd"], 1_500_000);
    pair.finish().await;
}
