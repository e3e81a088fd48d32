//! Sessions: create, read, update field by field, delete, expire, list, awaiting input.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{events_of, Env};

async fn session_crud(env: Env) {
    let gw = &env.gw;
    let (s, v) = gw
        .post("/api/sessions", json!({"id": "crud-1", "cwd": "/w", "hostname": "h", "platform": "linux", "userId": "u1", "metadata": {"k": [1, 2]}}))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["id"], "crud-1");
    assert_eq!(v["status"], "in_progress");
    assert_eq!(v["metadata"], json!({"k": [1, 2]}));
    assert!(v["startedAt"].as_str().unwrap().ends_with('Z'));

    let (s, v) = gw.post("/api/sessions", json!({"id": "crud-1"})).await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")));

    let (s, v) = gw.post("/api/sessions", json!({})).await;
    assert_eq!(s, 201, "an id is made when none is given: {v}");
    assert!(!v["id"].as_str().unwrap().is_empty());

    let (s, v) = gw.get("/api/sessions/crud-1").await;
    assert_eq!(
        (s, v["cwd"].as_str(), v["userId"].as_str()),
        (200, Some("/w"), Some("u1"))
    );

    let (s, v) = gw
        .patch(
            "/api/sessions/crud-1",
            json!({"status": "completed", "summary": "done"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["summary"], "done");
    assert!(v["endedAt"].is_string(), "endedAt is set on completed: {v}");
    assert_eq!(v["cwd"], "/w", "a patch keeps the other fields");

    let (s, v) = gw
        .patch("/api/sessions/crud-1", json!({"status": "exploded"}))
        .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("validation_failed")));
    let (s, _) = gw
        .patch("/api/sessions/nope", json!({"status": "failed"}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = gw.get("/api/sessions/crud-1").await;
    assert_eq!(s, 200);

    let (s, _) = gw.delete("/api/sessions/crud-1").await;
    assert_eq!(s, 204);
    let (s, v) = gw.get("/api/sessions/crud-1").await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")));
    let (s, _) = gw.delete("/api/sessions/crud-1").await;
    assert_eq!(s, 404);
}

async fn concurrent_patches_of_different_fields_both_survive(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "atomic"})).await;
    for round in 0..20 {
        let a = gw.patch(
            "/api/sessions/atomic",
            json!({"summary": format!("s{round}")}),
        );
        let b = gw.patch(
            "/api/sessions/atomic",
            json!({"metadata": {"round": round}}),
        );
        let c = gw.patch(
            "/api/sessions/atomic",
            json!({"endReason": format!("r{round}")}),
        );
        let ((sa, _), (sb, _), (sc, _)) = tokio::join!(a, b, c);
        assert_eq!((sa, sb, sc), (200, 200, 200));
        let (_, v) = gw.get("/api/sessions/atomic").await;
        assert_eq!(v["summary"], format!("s{round}"), "{v}");
        assert_eq!(v["metadata"], json!({"round": round}), "{v}");
        assert_eq!(v["endReason"], format!("r{round}"), "{v}");
    }
}

async fn sessions_expire_and_their_stream_starts_a_new_epoch(env: Env) {
    let gw = &env.gw;
    gw.post_event(json!({"sessionId": "ttl", "type": "t"}))
        .await;
    let old_epoch = events_of(gw, "ttl", "").await["epoch"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = gw.get("/api/sessions/ttl").await;
        if s == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        events_of(gw, "ttl", "").await["count"],
        0,
        "its events expire with it"
    );
    let seq = gw
        .post_event(json!({"sessionId": "ttl", "type": "t"}))
        .await;
    assert_eq!(seq, 1, "a new stream starts at 1");
    let new_epoch = events_of(gw, "ttl", "").await["epoch"].clone();
    assert_ne!(old_epoch, new_epoch, "and has a new epoch");
    let (s, v) = gw.get("/api/sessions?limit=10").await;
    assert_eq!(s, 200);
    let listed = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == "ttl")
        .count();
    assert_eq!(
        listed, 1,
        "the session comes back once, not once per life: {v}"
    );
}

async fn sessions_list_pages_and_filters(env: Env) {
    let gw = &env.gw;
    for i in 0..7 {
        let user = if i % 2 == 0 { "even" } else { "odd" };
        let (s, _) = gw
            .post(
                "/api/sessions",
                json!({"id": format!("list-{i}"), "userId": user}),
            )
            .await;
        assert_eq!(s, 201);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    gw.patch("/api/sessions/list-3", json!({"status": "failed"}))
        .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let q = match &cursor {
            Some(c) => format!("/api/sessions?limit=3&cursor={c}"),
            None => "/api/sessions?limit=3".to_string(),
        };
        let (s, v) = gw.get(&q).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["count"].as_u64().unwrap() as usize,
            v["sessions"].as_array().unwrap().len()
        );
        seen.extend(
            v["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string()),
        );
        match v["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("list-{i}")).collect();
    assert_eq!(seen, expected, "newest first, each once");

    let (_, v) = gw.get("/api/sessions?userId=odd").await;
    let ids: HashSet<_> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from(["list-1", "list-3", "list-5"]));
    let (_, v) = gw.get("/api/sessions?status=failed").await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["sessions"][0]["id"], "list-3");
    assert_eq!(v["nextCursor"], Value::Null);
    let (s, _) = gw.get("/api/sessions?status=nope").await;
    assert_eq!(s, 400);
    let (s, _) = gw.get("/api/sessions?cursor=zz").await;
    assert_eq!(s, 400);

    gw.delete("/api/sessions/list-0").await;
    let (_, v) = gw.get("/api/sessions?userId=even").await;
    assert_eq!(v["count"], 3, "a deleted session leaves the listing: {v}");
}

async fn awaiting_sets_state_and_publishes_an_event(env: Env) {
    let gw = &env.gw;
    let (s, _) = gw.post("/api/sessions/ghost/awaiting", json!({})).await;
    assert_eq!(s, 404);
    gw.post("/api/sessions", json!({"id": "aw"})).await;
    let (s, v) = gw
        .post("/api/sessions/aw/awaiting", json!({"promptType": "choice", "promptText": "Proceed?", "quickResponses": ["yes", "no"]}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["conversationState"], "awaiting_input");
    assert_eq!(v["lastPrompt"]["promptText"], "Proceed?");
    let page = events_of(gw, "aw", "").await;
    assert_eq!(page["events"][0]["type"], "interaction:awaiting-input");
    assert_eq!(page["events"][0]["quickResponses"], json!(["yes", "no"]));
}

async fn deleting_a_session_takes_its_stream_input_and_chains(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "gone"})).await;
    gw.post_event(json!({"sessionId": "gone", "type": "t"}))
        .await;
    gw.post("/api/sessions/gone/input", json!({"input": "yes"}))
        .await;
    let (s, cmd) = gw
        .post("/api/sessions/gone/commands", json!({"type": "pause"}))
        .await;
    assert_eq!(s, 201, "{cmd}");
    let (s, v) = gw
        .post(
            "/api/sessions/gone/chains",
            json!({"id": "gone-chain", "title": "t"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let (s, _) = gw.delete("/api/sessions/gone").await;
    assert_eq!(s, 204);
    let (s, _) = gw.get("/api/chains/gone-chain").await;
    assert_eq!(s, 404, "its chains go with it");
    gw.post("/api/sessions", json!({"id": "gone"})).await;
    let v = events_of(gw, "gone", "").await;
    assert_eq!(
        (v["count"].as_u64(), v["headSeq"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );
    let (_, v) = gw.get("/api/sessions/gone/input").await;
    assert_eq!(v["count"], 0, "its input goes with it: {v}");
    let (_, v) = gw.get("/api/sessions/gone/commands").await;
    assert_eq!(v["count"], 0, "its commands are no longer pending: {v}");
    let (_, v) = gw.get("/api/sessions/gone/chains").await;
    assert_eq!(v["count"], 0, "{v}");
    let id = cmd["commandId"].as_str().unwrap();
    let (s, v) = gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    assert_eq!(
        s, 200,
        "a late acknowledgement still finds its command: {v}"
    );
    gw.post("/api/sessions", json!({"id": "other"})).await;
    let (s, v) = gw
        .post(
            "/api/sessions/other/chains",
            json!({"id": "gone-chain", "title": "t"}),
        )
        .await;
    assert_eq!(s, 201, "the chain id is free again: {v}");
}

async fn a_listing_past_the_end_is_an_empty_page(env: Env) {
    let gw = &env.gw;
    let (s, v) = gw.get("/api/sessions").await;
    assert_eq!(
        (s, v["count"].as_u64()),
        (200, Some(0)),
        "an empty store: {v}"
    );
    let events: Vec<Value> = (0..100)
        .map(|i| json!({"sessionId": format!("end-{i}"), "type": "t"}))
        .collect();
    let (s, v) = gw
        .post("/api/events/batch", json!({"events": events}))
        .await;
    assert_eq!(s, 201, "{v}");
    for query in ["?status=failed&limit=10", "?limit=100", "?status=failed"] {
        let (s, v) = gw.get(&format!("/api/sessions{query}")).await;
        assert_eq!(s, 200, "{query}: {v}");
    }
    let (_, v) = gw.get("/api/sessions?limit=100").await;
    assert_eq!(
        (v["count"].as_u64(), v["nextCursor"].as_str()),
        (Some(100), None),
        "{v}"
    );
    // Cursors of "+", "(" and "-": the index's own range markers.
    for cursor in ["2b", "28", "2d"] {
        let (s, v) = gw.get(&format!("/api/sessions?cursor={cursor}")).await;
        assert_eq!(s, 200, "cursor {cursor}: {v}");
    }
}

conformance! {
    session_crud => crate::defaults,
    concurrent_patches_of_different_fields_both_survive => crate::defaults,
    sessions_expire_and_their_stream_starts_a_new_epoch => |c| c.events.session_ttl_secs = 1,
    sessions_list_pages_and_filters => crate::defaults,
    awaiting_sets_state_and_publishes_an_event => crate::defaults,
    deleting_a_session_takes_its_stream_input_and_chains => crate::defaults,
    a_listing_past_the_end_is_an_empty_page => crate::defaults,
}
