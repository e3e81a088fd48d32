//! The cache: versions and TTLs, hits and misses, tags (whose indexes outlive their entries
//! and leave with them), atomic increments, compare-and-set, namespaces, and bounds.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::Env;

async fn put(gw: &Endpoint, path: &str, body: Value) -> Value {
    let (s, v) = gw
        .request(
            reqwest::Method::PUT,
            &format!("/api/cache/{path}"),
            Some(body),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn stats(gw: &Endpoint, ns: &str) -> Value {
    gw.get(&format!("/api/cache/stats?namespace={ns}")).await.1
}

async fn entries_have_versions_ttls_hits_and_misses(env: Env) {
    let gw: &Endpoint = &env.gw;
    let value = json!({"profile": {"name": "Ada", "langs": [], "score": 2.5}});
    let v = put(gw, "user:1", json!({"value": value, "ttlSeconds": 60})).await;
    assert_eq!(v["version"], 1);
    let (s, got) = gw.get("/api/cache/user:1").await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(
        (got["value"].clone(), got["version"].clone()),
        (value, json!(1))
    );
    assert!((59..=60).contains(&got["ttlSeconds"].as_u64().unwrap()));
    assert_eq!(
        put(gw, "user:1", json!({"value": 7, "ttlSeconds": 1})).await["version"],
        2
    );
    let (s, miss) = gw.get("/api/cache/nobody").await;
    assert_eq!((s, miss["error"].as_str()), (404, Some("not_found")));
    let st = stats(gw, "default").await;
    assert_eq!(
        (
            st["hits"].as_u64(),
            st["misses"].as_u64(),
            st["keys"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        gw.get("/api/cache/user:1").await.0,
        404,
        "expired on its own clock"
    );
    assert_eq!(stats(gw, "default").await["keys"], 0);
    put(gw, "gone", json!({"value": null, "ttlSeconds": 60})).await;
    assert_eq!(
        gw.get("/api/cache/gone").await.1["value"],
        Value::Null,
        "null is a value"
    );
    let (s, d) = gw.delete("/api/cache/gone").await;
    assert_eq!((s, &d["deleted"]), (200, &json!(true)));
    assert_eq!(gw.delete("/api/cache/gone").await.1["deleted"], false);
}

async fn tags_invalidate_exactly_what_carries_them(env: Env) {
    let gw: &Endpoint = &env.gw;
    for (k, tags) in [
        ("a", json!(["t1"])),
        ("b", json!(["t1", "t2"])),
        ("c", json!(["t2"])),
        ("d", json!([])),
    ] {
        put(gw, k, json!({"value": k, "ttlSeconds": 60, "tags": tags})).await;
    }
    let (s, v) = gw
        .post("/api/cache/invalidate", json!({"tags": ["t1"]}))
        .await;
    assert_eq!((s, v["invalidated"].as_u64()), (200, Some(2)), "{v}");
    for (k, live) in [("a", false), ("b", false), ("c", true), ("d", true)] {
        assert_eq!(
            gw.get(&format!("/api/cache/{k}")).await.0 == 200,
            live,
            "{k}"
        );
    }
    // c no longer carries t2: invalidating t2 leaves it.
    put(
        gw,
        "c",
        json!({"value": "c2", "ttlSeconds": 60, "tags": ["t3"]}),
    )
    .await;
    assert_eq!(
        gw.post("/api/cache/invalidate", json!({"tags": ["t2", "t9"]}))
            .await
            .1["invalidated"],
        0
    );
    assert_eq!(gw.get("/api/cache/c").await.1["value"], "c2");
    assert_eq!(
        gw.post("/api/cache/invalidate", json!({"tags": ["t3"]}))
            .await
            .1["invalidated"],
        1
    );

    let Some(redis) = &env.redis else { return };
    // On Redis: a tag's index lives exactly as long as its longest entry, and entries that
    // expired leave it.
    let mut conn = redis.connection().await.unwrap();
    for i in 0..50 {
        put(
            gw,
            &format!("short{i}"),
            json!({"value": i, "ttlSeconds": 1, "tags": ["bulk"]}),
        )
        .await;
    }
    put(
        gw,
        "long",
        json!({"value": 1, "ttlSeconds": 30, "tags": ["bulk"]}),
    )
    .await;
    let tag_key = "afw:cache:{default}:tag:bulk";
    let pttl: i64 = ::redis::cmd("PTTL")
        .arg(tag_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        pttl > 29_000,
        "the tag index outlives its longest entry: {pttl}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    put(
        gw,
        "later",
        json!({"value": 1, "ttlSeconds": 2, "tags": ["bulk"]}),
    )
    .await;
    let n: i64 = ::redis::cmd("ZCARD")
        .arg(tag_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2, "expired entries left the tag's index");
    put(
        gw,
        "alone",
        json!({"value": 1, "ttlSeconds": 1, "tags": ["solo"]}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let exists: i64 = ::redis::cmd("EXISTS")
        .arg("afw:cache:{default}:tag:solo")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "a tag whose entries all expired is gone");
}

async fn increments_are_atomic_and_puts_can_compare_and_set(env: Env) {
    let gw: Endpoint = (*env.gw).clone();
    let (s, v) = gw.post("/api/cache/hits/incr", json!({})).await;
    assert_eq!(
        (s, v["value"].as_i64(), v["version"].as_u64()),
        (200, Some(1), Some(1)),
        "{v}"
    );
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.post("/api/cache/hits/incr", json!({"by": 2})).await.0 })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(gw.get("/api/cache/hits").await.1["value"], 101);
    assert_eq!(
        gw.post("/api/cache/hits/incr", json!({"by": -101})).await.1["value"],
        0
    );
    put(&gw, "word", json!({"value": "x", "ttlSeconds": 60})).await;
    let (s, v) = gw.post("/api/cache/word/incr", json!({"by": 1})).await;
    assert_eq!((s, v["error"].as_str()), (409, Some("not_integer")));
    let (s, _) = gw
        .post(
            "/api/cache/hits/incr",
            json!({"by": 9_007_199_254_740_991i64}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        gw.post("/api/cache/hits/incr", json!({"by": 1})).await.0,
        409,
        "no sum past 2^53 - 1"
    );

    let (s, v) = gw
        .request(
            reqwest::Method::PUT,
            "/api/cache/cas",
            Some(json!({"value": 1, "ttlSeconds": 60, "ifVersion": 0})),
        )
        .await;
    assert_eq!(
        (s, v["version"].as_u64()),
        (200, Some(1)),
        "ifVersion 0 creates: {v}"
    );
    let (s, v) = gw
        .request(
            reqwest::Method::PUT,
            "/api/cache/cas",
            Some(json!({"value": 2, "ttlSeconds": 60, "ifVersion": 0})),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str(), v["currentVersion"].as_u64()),
        (409, Some("version_mismatch"), Some(1))
    );
    let (s, _) = gw
        .request(
            reqwest::Method::PUT,
            "/api/cache/cas",
            Some(json!({"value": 3, "ttlSeconds": 60, "ifVersion": 1})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        gw.get("/api/cache/cas").await.1["value"],
        3,
        "the mismatched put changed nothing"
    );
}

async fn namespaces_are_apart_and_clear_one_at_a_time(env: Env) {
    let gw: &Endpoint = &env.gw;
    put(
        gw,
        "k?namespace=ws-1",
        json!({"value": 1, "ttlSeconds": 60}),
    )
    .await;
    put(
        gw,
        "k2?namespace=ws-1",
        json!({"value": 1, "ttlSeconds": 60, "tags": ["x"]}),
    )
    .await;
    put(
        gw,
        "k?namespace=ws-2",
        json!({"value": 2, "ttlSeconds": 60, "tags": ["x"]}),
    )
    .await;
    assert_eq!(gw.get("/api/cache/k?namespace=ws-2").await.1["value"], 2);
    assert_eq!(
        gw.get("/api/cache/k").await.0,
        404,
        "the default namespace is another"
    );
    assert_eq!(
        gw.post(
            "/api/cache/invalidate?namespace=ws-1",
            json!({"tags": ["x"]})
        )
        .await
        .1["invalidated"],
        1
    );
    let (s, v) = gw.delete("/api/cache?namespace=ws-1").await;
    assert_eq!((s, v["cleared"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(gw.get("/api/cache/k?namespace=ws-1").await.0, 404);
    assert_eq!(gw.get("/api/cache/k?namespace=ws-2").await.0, 200);
    assert_eq!(stats(gw, "ws-2").await["keys"], 1);
}

async fn bad_cache_requests_name_the_field_and_change_nothing(env: Env) {
    let gw: &Endpoint = &env.gw;
    for (body, field) in [
        (json!({"value": 1}), "ttlSeconds"),
        (json!({"value": 1, "ttlSeconds": 0}), "ttlSeconds"),
        (json!({"value": 1, "ttlSeconds": 99_999_999}), "ttlSeconds"),
        (json!({"ttlSeconds": 5}), "value"),
        (json!({"value": 1, "ttlSeconds": 5, "tags": [1]}), "tags"),
        (json!({"value": 1, "ttlSeconds": 5, "tags": [""]}), "tags"),
        (
            json!({"value": 1, "ttlSeconds": 5, "tags": (0..40).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "tags",
        ),
        (json!({"value": 1, "ttlSeconds": 5, "colour": 1}), "colour"),
    ] {
        let (s, v) = gw
            .request(reqwest::Method::PUT, "/api/cache/k", Some(body.clone()))
            .await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    let (s, v) = gw
        .request(
            reqwest::Method::PUT,
            "/api/cache/big",
            Some(json!({"value": "x".repeat(5000), "ttlSeconds": 5})),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (413, Some("too_large")), "{v}");
    let (s, _) = gw.post("/api/cache/invalidate", json!({"tags": []})).await;
    assert_eq!(s, 400);
    let long = "n".repeat(201);
    assert_eq!(
        gw.get(&format!("/api/cache/k?namespace={long}")).await.0,
        400
    );
    assert_eq!(
        gw.post("/api/cache/k/incr", json!({"by": "one"})).await.0,
        400
    );
    let st = stats(gw, "default").await;
    assert_eq!(
        (st["keys"].as_u64(), st["hits"].as_u64()),
        (Some(0), Some(0)),
        "nothing was stored"
    );
}

fn small_values(c: &mut afw_gateway::Config) {
    c.services.cache_max_value_bytes = 4096;
}

/// Reads create no state: a miss where the namespace holds nothing stores nothing (not even
/// a count), and a namespace's counts go with its last entry. Once, every miss made its
/// namespace (memory) or a stats key kept 30 days (Redis).
async fn reads_create_no_state(env: Env) {
    let gw: &Endpoint = &env.gw;
    let keys_before = match &env.redis {
        Some(r) => r.keys().await.len(),
        None => 0,
    };
    for i in 0..50 {
        let (s, _) = gw.get(&format!("/api/cache/k?namespace=nobody-{i}")).await;
        assert_eq!(s, 404);
    }
    let st = stats(gw, "nobody-1").await;
    assert_eq!(
        (&st["hits"], &st["misses"], &st["keys"]),
        (&json!(0), &json!(0), &json!(0)),
        "{st}"
    );
    if let Some(r) = &env.redis {
        assert_eq!(r.keys().await.len(), keys_before, "{:?}", r.keys().await);
    }
    // Where the namespace has entries, hits and misses count, and go with it.
    put(gw, "k?namespace=live", json!({"value": 1, "ttlSeconds": 1})).await;
    gw.get("/api/cache/k?namespace=live").await;
    gw.get("/api/cache/other?namespace=live").await;
    let st = stats(gw, "live").await;
    assert_eq!((&st["hits"], &st["misses"]), (&json!(1), &json!(1)), "{st}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(gw.get("/api/cache/k?namespace=live").await.0, 404);
    // An expired entry is no longer there to invalidate either.
    put(
        gw,
        "t?namespace=tags",
        json!({"value": 1, "ttlSeconds": 1, "tags": ["x"]}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (s, v) = gw
        .post(
            "/api/cache/invalidate?namespace=tags",
            json!({"tags": ["x"]}),
        )
        .await;
    assert_eq!((s, &v["invalidated"]), (200, &json!(0)), "{v}");
    // Counters cannot be pushed past their bound from either end, i64::MIN included.
    for by in [i64::MIN, i64::MAX, -(1 << 53)] {
        let (s, v) = gw.post("/api/cache/c/incr", json!({ "by": by })).await;
        assert_eq!(s, 400, "{by}: {v}");
    }
    assert_eq!(gw.get("/api/cache/c").await.0, 404, "nothing stored");
}

conformance! {
    reads_create_no_state => crate::defaults,
    entries_have_versions_ttls_hits_and_misses => crate::defaults,
    tags_invalidate_exactly_what_carries_them => crate::defaults,
    increments_are_atomic_and_puts_can_compare_and_set => crate::defaults,
    namespaces_are_apart_and_clear_one_at_a_time => crate::defaults,
    bad_cache_requests_name_the_field_and_change_nothing => super::small_values,
}
