//! The cache: reads that must create nothing, and invalidations and clears of a huge tag that
//! must not hold Redis.

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::{memory, together, Pair};

async fn put(at: &Endpoint, path: &str, body: Value) -> (u16, Value) {
    at.request(
        reqwest::Method::PUT,
        &format!("/api/cache/{path}"),
        Some(body),
    )
    .await
}

/// Forty thousand misses in namespaces that hold nothing, on a 4 MiB memory budget: they store
/// nothing, so a writer can still fill the budget, clear it and fill it again (once every miss
/// made a namespace that counted against the budget for good, and locked every writer out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_misses_store_nothing() {
    let gw = memory(&[("MEMORY_STORE_MAX_BYTES", "4194304")]).await;
    let at = gw.endpoint();
    together(16, |t| {
        let at = at.clone();
        async move {
            for i in 0..2500 {
                let (s, _) = at
                    .get(&format!("/api/cache/k?namespace=miss-{t}-{i}"))
                    .await;
                assert_eq!(s, 404);
            }
        }
    })
    .await;
    let value = "v".repeat(100 * 1024);
    for round in 0..2 {
        let mut stored = 0;
        for i in 0..60 {
            let (s, v) = put(
                &at,
                &format!("k{i}?namespace=mine"),
                json!({"value": value, "ttlSeconds": 600}),
            )
            .await;
            match s {
                200 => stored += 1,
                503 => assert_eq!(v["error"], "store_full", "{v}"),
                _ => panic!("{s} {v}"),
            }
        }
        println!("round {round}: {stored} values of 100 KiB stored in a 4 MiB budget");
        assert!(stored >= 30, "round {round}: only {stored} stored");
        // With the budget spent, reads still answer: a context that is not there is read as
        // its defaults, and stores nothing (it once answered 503).
        let (s, v) = at.get("/api/context?userId=reader").await;
        assert_eq!(s, 200, "{v}");
        let (s, _) = at.delete("/api/cache?namespace=mine").await;
        assert_eq!(s, 200);
        // What is held is counted again at most once a second (RECOUNT_EVERY).
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
}

/// Twenty thousand entries under one tag: invalidating the tag takes them a batch per script
/// call, so no call holds Redis for long and an agent on another instance is served throughout
/// (once one script walked the whole tag: 60,000 entries held Redis for 3.2 s, and every other
/// instance's writes failed); clearing a namespace frees it off Redis's main thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_tag_is_invalidated_in_batches() {
    let pair = Pair::start(&[]).await;
    let a = pair.a.endpoint();
    for (ns, each) in [("tagged", 1250), ("cleared", 250)] {
        together(16, |t| {
            let a = a.clone();
            async move {
                for i in 0..each {
                    let body =
                        json!({"value": i, "ttlSeconds": 600, "tags": ["all", format!("t{t}")]});
                    let (s, v) = put(&a, &format!("k{t}-{i}?namespace={ns}"), body).await;
                    assert_eq!(s, 200, "{v}");
                }
            }
        })
        .await;
    }
    // Each invalidation call ends by counting what is left on its tags (one ZCARD per tag),
    // which no other script of this test does: Redis's own count of ZCARDs is the calls'.
    let before = pair.command_calls("zcard").await;
    let (s, v) = a
        .post(
            "/api/cache/invalidate?namespace=tagged",
            json!({"tags": ["all"]}),
        )
        .await;
    assert_eq!((s, &v["invalidated"]), (200, &json!(20_000)), "{v}");
    let calls = pair.command_calls("zcard").await - before;
    println!("20,000 entries invalidated in {calls} script calls");
    assert!(
        calls >= 20,
        "at most 1,000 entries per script call: {calls} calls"
    );
    let (_, st) = a.get("/api/cache/stats?namespace=tagged").await;
    assert_eq!(st["keys"], 0, "{st}");
    let (s, v) = a.delete("/api/cache?namespace=cleared").await;
    assert_eq!((s, &v["cleared"]), (200, &json!(4_000)), "{v}");
    pair.finish().await;
}
