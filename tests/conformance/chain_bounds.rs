//! Chains under load and at their limits: a batch of step events is one change of its chain,
//! a chain past `CHAIN_MAX_BYTES` is refused whole, and listings come in pages.

use std::time::Duration;

use serde_json::{json, Value};

use super::chains::{chain, post_events};
use crate::support::WsClient;
use crate::Env;

async fn chain_frames(ws: &mut WsClient) -> usize {
    let mut n = 0;
    while let Some(m) = ws.try_recv(Duration::from_millis(700)).await {
        n += usize::from(m["type"] == "chain");
    }
    n
}

async fn chains_are_bounded_and_a_batch_moves_each_once(env: Env) {
    let gw = &env.gw;
    let ev = |t: &str, extra: Value| {
        let mut e = json!({"sessionId": "big", "type": t, "chainId": "grow"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    // Errors of 60 KB once grew a chain to megabytes: now each is cut to a marker.
    let huge = "e".repeat(60_000);
    let mut events = vec![ev("chain:compiled", json!({"title": "grow"}))];
    events.extend((1..=50).map(|n| ev("step:failed", json!({"stepNumber": n, "error": huge}))));
    for e in events {
        let (s, v) = gw.post("/api/events", e).await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, text) = gw.get("/api/chains/grow").await;
    assert_eq!(s, 200);
    let c = text;
    assert_eq!(c["steps"].as_array().unwrap().len(), 50);
    let err = &c["steps"][0]["error"];
    assert_eq!(
        (err["truncated"].as_bool(), err["bytes"].as_u64()),
        (Some(true), Some(60_002)),
        "{err}"
    );
    assert!(c.to_string().len() < 256 * 1024);
    // A batch of 1,000 step events is one change of the chain, not 1,000 rewrites; step
    // numbers past the most a chain holds add nothing.
    let mut ws = WsClient::connect(&gw.ws_url()).await;
    ws.subscribe("big", None, None).await;
    // A chain frame of the posts above may still be on its way over pub/sub: let it pass.
    chain_frames(&mut ws).await;
    let mut batch: Vec<Value> = (1..=999)
        .map(|n| ev("step:started", json!({"stepNumber": n})))
        .collect();
    batch.push(ev("step:started", json!({"stepNumber": 5000})));
    let (s, v) = gw.post("/api/events/batch", json!({"events": batch})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        chain_frames(&mut ws).await,
        1,
        "one chain change for the whole batch"
    );
    let c = chain(gw, "grow").await;
    assert_eq!(c["steps"].as_array().unwrap().len(), 999);
    assert_eq!(c["currentStep"], 999);
    // Free-form values past CHAIN_VALUE_MAX_BYTES are cut through the route too.
    let (s, v) = gw
        .patch(
            "/api/chains/grow",
            json!({"data": {"blob": "d".repeat(20_000)}}),
        )
        .await;
    assert_eq!(
        (s, v["data"]["truncated"].as_bool()),
        (200, Some(true)),
        "{v}"
    );
    assert_eq!(chain_frames(&mut ws).await, 1);
}

async fn a_chain_past_its_limit_is_refused_whole(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "big"})).await;
    let steps: Vec<Value> = (0..100)
        .map(|i| json!({"title": format!("{i:0>400}")}))
        .collect();
    let (s, v) = gw
        .post(
            "/api/sessions/big/chains",
            json!({"id": "huge", "title": "t", "steps": steps}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (413, Some("too_large")), "{v}");
    assert_eq!(gw.get("/api/chains/huge").await.0, 404, "nothing was made");
    // Through events: they are stored, and the change that would pass the limit is not made.
    let ev = |n: u64| json!({"sessionId": "big", "type": "step:failed", "chainId": "small", "stepNumber": n, "error": "x".repeat(900)});
    post_events(
        gw,
        vec![
            json!({"sessionId": "big", "type": "chain:compiled", "chainId": "small", "title": "t"}),
        ],
    )
    .await;
    post_events(gw, (1..=10).map(ev).collect()).await;
    let before = chain(gw, "small").await;
    let failures = gw.metric("afw_chain_update_failures_total").await;
    post_events(gw, (11..=40).map(ev).collect()).await;
    let after = chain(gw, "small").await;
    assert!(
        after.to_string().len() <= 16_384,
        "{}",
        after.to_string().len()
    );
    assert!(after["steps"].as_array().unwrap().len() < 40);
    assert!(gw.metric("afw_chain_update_failures_total").await > failures);
    assert_eq!(
        before["steps"].as_array().unwrap()[..10],
        after["steps"].as_array().unwrap()[..10]
    );
}

async fn chain_listings_come_in_pages(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "pg"})).await;
    for i in 0..25 {
        let (s, v) = gw
            .post(
                "/api/sessions/pg/chains",
                json!({"id": format!("c{i:02}"), "title": "t"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        assert!(page < 10, "the walk ends");
        let path = match &cursor {
            Some(c) => format!("/api/chains?limit=10&cursor={c}"),
            None => "/api/chains?limit=10".to_string(),
        };
        let (s, v) = gw.get(&path).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["count"].as_u64().unwrap() <= 10);
        seen.extend(
            v["chains"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match v["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        (seen.len(), sorted.len()),
        (25, 25),
        "every chain once: {seen:?}"
    );
    // Most recently updated first.
    assert_eq!(seen[0], "c24");
    // A filter that matches nothing answers at once, with a cursor to go on.
    let (s, v) = gw.get("/api/chains?status=failed&limit=1").await;
    assert_eq!((s, v["count"].as_u64()), (200, Some(0)), "{v}");
    for bad in ["limit=0", "limit=1001", "cursor=nope", "cursor=1.zz"] {
        let (s, v) = gw.get(&format!("/api/chains?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
}

conformance! {
    chain_listings_come_in_pages => crate::defaults,
    a_chain_past_its_limit_is_refused_whole => |c| {
        c.chains.chain_max_bytes = Some(16_384);
        c.chains.chain_value_max_bytes = 1024;
    },
    chains_are_bounded_and_a_batch_moves_each_once => crate::defaults,
}
