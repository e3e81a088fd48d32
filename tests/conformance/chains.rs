//! Chains: progress from events, route validation, stats and cleanup, commands moving chains.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::Gateway;
use crate::Env;

pub async fn post_events(gw: &Gateway, events: Vec<Value>) {
    for e in events {
        let (s, v) = gw.post("/api/events", e).await;
        assert!(s == 201 || s == 200, "{v}");
    }
}

pub async fn chain(gw: &Gateway, id: &str) -> Value {
    let (s, v) = gw.get(&format!("/api/chains/{id}")).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn chain_progress_follows_its_events(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "wf"})).await;
    let ev = |t: &str, extra: Value| {
        let mut e = json!({"sessionId": "wf", "type": t, "chainId": "c1"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    post_events(
        gw,
        vec![
            ev("chain:compiled", json!({"title": "Release", "source": "planner", "steps": ["plan", {"title": "code", "model": "m1"}, "test", "ship"]})),
            ev("chain:started", json!({})),
            ev("step:started", json!({"stepNumber": 1})),
            ev("step:completed", json!({"stepNumber": 1})),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The step number may also sit in the payload.
    post_events(
        gw,
        vec![
            json!({"sessionId": "wf", "type": "step:started", "payload": {"chainId": "c1", "stepNumber": 2}}),
            ev("step:completed", json!({"stepNumber": 2})),
        ],
    )
    .await;
    let c = chain(gw, "c1").await;
    assert_eq!(c["sessionId"], "wf");
    assert_eq!(c["title"], "Release");
    assert_eq!(c["source"], "planner");
    assert_eq!(c["status"], "in_progress");
    assert_eq!(
        (c["completedSteps"].as_u64(), c["totalSteps"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(c["currentStep"], 2);
    assert_eq!(c["progress"], 50.0);
    assert_eq!(
        c["steps"][1]["model"], "m1",
        "what the agent said about a step is kept"
    );
    assert_eq!(c["steps"][1]["status"], "completed");
    assert_eq!(c["steps"][2]["status"], "pending");
    let started = chrono::DateTime::parse_from_rfc3339(c["startedAt"].as_str().unwrap()).unwrap();
    let updated = chrono::DateTime::parse_from_rfc3339(c["updatedAt"].as_str().unwrap()).unwrap();
    let eta =
        chrono::DateTime::parse_from_rfc3339(c["estimatedCompletion"].as_str().unwrap()).unwrap();
    // At 50% the estimate is the start plus twice the elapsed time (to the ms of rounding).
    let want = started + (updated - started) * 2;
    assert!(
        (eta - want).num_milliseconds().abs() <= 2,
        "eta {eta} vs {want}"
    );

    let (_, list) = gw.get("/api/sessions/wf/chains").await;
    assert_eq!(
        (list["count"].as_u64(), &list["chains"][0]["id"]),
        (Some(1), &json!("c1"))
    );
    let (_, session) = gw.get("/api/sessions/wf").await;
    assert_eq!(session["chainsCount"], 1);
    // The Session comes with its chains (docs/protocol.md).
    assert_eq!(session["chains"][0], list["chains"][0], "{session}");
    // A compiled chain without an id takes the event's id, so a retried post is harmless.
    for _ in 0..2 {
        post_events(gw, vec![json!({"sessionId": "wf", "type": "chain:compiled", "eventId": "ev-77", "title": "Again"})]).await;
    }
    assert_eq!(chain(gw, "ev-77").await["title"], "Again");
    assert_eq!(gw.get("/api/sessions/wf/chains").await.1["count"], 2);

    post_events(gw, vec![ev("chain:completed", json!({}))]).await;
    let c = chain(gw, "c1").await;
    assert_eq!(c["status"], "completed");
    assert_eq!(c["progress"], 100.0);
    assert_eq!(c["completedSteps"], 4);
    assert!(c["completedAt"].is_string());
    assert!(c.get("estimatedCompletion").is_none(), "{c}");
    // Step events for a chain the session does not name go to its newest chain.
    post_events(
        gw,
        vec![json!({"sessionId": "wf", "type": "chain:failed", "error": "boom"})],
    )
    .await;
    let c = chain(gw, "ev-77").await;
    assert_eq!(
        (c["status"].as_str(), c["error"].as_str()),
        (Some("failed"), Some("boom"))
    );
}

async fn chain_routes_check_their_input(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "cr"})).await;
    let (s, c) = gw
        .post(
            "/api/sessions/cr/chains",
            json!({"id": "k1", "title": "Deploy", "totalSteps": 5}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(
        (c["status"].as_str(), c["progress"].as_f64()),
        (Some("pending"), Some(0.0))
    );
    let (s, _) = gw
        .post(
            "/api/sessions/cr/chains",
            json!({"id": "k1", "title": "Again"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, v) = gw
        .post("/api/sessions/cr/chains", json!({"steps": [1]}))
        .await;
    assert_eq!(s, 400, "{v}");
    let fields: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "steps[0]"]);
    let (s, _) = gw
        .post("/api/sessions/nobody/chains", json!({"title": "x"}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = gw
        .post(
            "/api/sessions/cr/chains",
            json!({"title": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(s, 400, "unknown fields are refused");

    let (s, c) = gw
        .patch(
            "/api/chains/k1",
            json!({"status": "in_progress", "completedSteps": 2, "data": {"pr": 12}}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(
        (c["progress"].as_f64(), &c["data"]),
        (Some(40.0), &json!({"pr": 12}))
    );
    assert!(c["startedAt"].is_string());
    let (s, _) = gw
        .patch("/api/chains/k1", json!({"status": "exploded"}))
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw
        .patch("/api/chains/missing", json!({"status": "paused"}))
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        chain(gw, "k1").await["data"],
        json!({"pr": 12}),
        "a refused patch changed nothing"
    );
    let (s, _) = gw.get("/api/chains?status=bogus").await;
    assert_eq!(s, 400);
    let (s, _) = gw.get("/api/chains/missing").await;
    assert_eq!(s, 404);
}

async fn chain_stats_count_finished_chains_and_cleanup_fails_stale_ones(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "st"})).await;
    for id in ["a", "b", "c"] {
        gw.post(
            "/api/sessions/st/chains",
            json!({"id": id, "title": id, "totalSteps": 2}),
        )
        .await;
    }
    gw.patch("/api/chains/a", json!({"status": "completed"}))
        .await;
    gw.patch(
        "/api/chains/b",
        json!({"status": "in_progress", "completedSteps": 1}),
    )
    .await;
    let (_, s) = gw.get("/api/chains/stats").await;
    assert_eq!(s["total"], 3, "{s}");
    assert_eq!(s["active"], 2);
    assert_eq!(s["byStatus"]["completed"], 1);
    assert_eq!(s["byStatus"]["in_progress"], 1);
    assert_eq!(s["byStatus"]["pending"], 1);
    assert_eq!(s["byStatus"]["cancelled"], 0);
    assert_eq!(s["averageProgress"], 50.0, "(100 + 50 + 0) / 3");
    let (_, active) = gw.get("/api/chains?status=active").await;
    let ids: HashSet<&str> = active["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from(["b", "c"]));

    let (s, v) = gw.post("/api/chains/cleanup", json!({})).await;
    assert_eq!((s, &v["cleaned"]), (200, &json!(0)), "nothing is stale yet");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    gw.patch("/api/chains/c", json!({"data": {"touched": true}}))
        .await;
    let (_, v) = gw
        .post("/api/chains/cleanup", json!({"staleSecs": 1}))
        .await;
    assert_eq!(v["cleaned"], 1, "only b had no update for a second: {v}");
    let b = chain(gw, "b").await;
    assert_eq!(
        (b["status"].as_str(), b["error"].as_str()),
        (Some("failed"), Some("stale"))
    );
    let (_, s) = gw.get("/api/chains/stats").await;
    assert_eq!(
        (s["active"].as_u64(), &s["byStatus"]["failed"]),
        (Some(1), &json!(1))
    );
}

async fn acknowledged_commands_move_chains(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "cc"})).await;
    gw.post(
        "/api/sessions/cc/chains",
        json!({"id": "run", "title": "Run"}),
    )
    .await;
    gw.post(
        "/api/sessions/cc/chains",
        json!({"id": "done", "title": "Done"}),
    )
    .await;
    gw.patch("/api/chains/run", json!({"status": "in_progress"}))
        .await;
    gw.patch("/api/chains/done", json!({"status": "completed"}))
        .await;
    let command = |t: &'static str| async move {
        let (_, v) = gw
            .post("/api/sessions/cc/commands", json!({"type": t}))
            .await;
        v["commandId"].as_str().unwrap().to_string()
    };
    let id = command("pause").await;
    assert_eq!(
        chain(gw, "run").await["status"],
        "in_progress",
        "not before the ack"
    );
    gw.post(
        &format!("/api/commands/{id}/ack"),
        json!({"result": "paused"}),
    )
    .await;
    assert_eq!(chain(gw, "run").await["status"], "paused");
    assert_eq!(
        chain(gw, "done").await["status"],
        "completed",
        "finished chains stay"
    );
    let id = command("resume").await;
    gw.post(
        &format!("/api/commands/{id}/ack"),
        json!({"error": "cannot resume"}),
    )
    .await;
    assert_eq!(
        chain(gw, "run").await["status"],
        "paused",
        "a failed ack moves nothing"
    );
    let id = command("resume").await;
    gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    assert_eq!(chain(gw, "run").await["status"], "in_progress");
    let id = command("cancel").await;
    gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    let c = chain(gw, "run").await;
    assert_eq!(c["status"], "cancelled");
    assert!(c["completedAt"].is_string());
}

async fn cleanup_limits_are_checked_and_change_nothing_when_bad(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "stale"})).await;
    let (s, v) = gw
        .post(
            "/api/sessions/stale/chains",
            json!({"id": "keep", "title": "t"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // Overflowing and absurd limits once failed every chain, or panicked.
    for body in [
        r#"{"staleSecs":0}"#,
        r#"{"staleSecs":18446744073709551615}"#,
        r#"{"staleSecs":10000000000000}"#,
        r#"{"staleSecs":-1}"#,
    ] {
        let body: Value = serde_json::from_str(body).unwrap();
        let (s, v) = gw.post("/api/chains/cleanup", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
    }
    let (s, v) = gw
        .post("/api/chains/cleanup", json!({"staleSecs": 315_360_000}))
        .await;
    assert_eq!((s, v["cleaned"].as_u64()), (200, Some(0)), "{v}");
    assert_eq!(chain(gw, "keep").await["status"], "pending");
}

async fn chains_belong_to_their_session(env: Env) {
    let gw = &env.gw;
    let compiled = |sid: &str| json!({"sessionId": sid, "type": "chain:compiled", "chainId": "release", "title": sid});
    post_events(gw, vec![compiled("A")]).await;
    // B once got 201 for changes that were never made to A's chain.
    let step =
        json!({"sessionId": "B", "type": "step:failed", "chainId": "release", "stepNumber": 1});
    for body in [
        compiled("B"),
        step.clone(),
        json!({"events": [{"sessionId": "B", "type": "note"}, step]}),
    ] {
        let path = if body.get("events").is_some() {
            "/api/events/batch"
        } else {
            "/api/events"
        };
        let (s, v) = gw.post(path, body).await;
        assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{v}");
        assert!(v["details"][0]["field"]
            .as_str()
            .unwrap()
            .ends_with("chainId"));
    }
    let (s, v) = gw.get("/api/events/B").await;
    assert!(
        s == 404 || v["events"].as_array().unwrap().is_empty(),
        "nothing of B stored: {v}"
    );
    let c = chain(gw, "release").await;
    assert_eq!(
        (c["sessionId"].as_str(), c["title"].as_str()),
        (Some("A"), Some("A"))
    );
    assert_eq!(c["steps"].as_array().unwrap().len(), 0, "{c}");
    // The same session compiling again (a retried post) is fine.
    post_events(gw, vec![compiled("A")]).await;
}

conformance! {
    chains_belong_to_their_session => crate::defaults,
    chain_progress_follows_its_events => crate::defaults,
    chain_routes_check_their_input => crate::defaults,
    chain_stats_count_finished_chains_and_cleanup_fails_stale_ones => crate::defaults,
    acknowledged_commands_move_chains => crate::defaults,
    cleanup_limits_are_checked_and_change_nothing_when_bad => crate::defaults,
}
