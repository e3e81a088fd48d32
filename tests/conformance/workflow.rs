//! The workflow-state routes of the workstation's workflow-state manager as views of chains, with pause, resume and cancel that
//! really move the execution (through its agent's acknowledgement); and sessions extended
//! with a TTL of their own (as the Node.js and Python backends extended theirs).

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::Env;

async fn state(gw: &Endpoint, id: &str) -> Value {
    let (s, v) = gw.get(&format!("/api/workflow-state/{id}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    v["state"].clone()
}

/// The agent's side: takes its pending commands and acknowledges each with success.
async fn agent_acks(gw: &Endpoint, sid: &str) -> Vec<String> {
    let (_, v) = gw
        .get(&format!("/api/sessions/{sid}/commands?consume=true"))
        .await;
    let mut types = Vec::new();
    for c in v["commands"].as_array().unwrap() {
        let id = c["commandId"].as_str().unwrap();
        types.push(c["command"]["type"].as_str().unwrap().to_string());
        let (s, a) = gw
            .post(
                &format!("/api/commands/{id}/ack"),
                json!({"result": "done"}),
            )
            .await;
        assert_eq!(s, 200, "{a}");
    }
    types
}

async fn executions_are_chains_in_the_managers_shapes_and_really_pause(env: Env) {
    let gw: &Endpoint = &env.gw;
    gw.post("/api/sessions", json!({"id": "wf"})).await;
    gw.post(
        "/api/sessions/wf/chains",
        json!({"id": "exec-1", "title": "Video", "steps": ["Fetch", "Process", "Upload"]}),
    )
    .await;
    gw.post(
        "/api/sessions/wf/chains",
        json!({"id": "exec-2", "title": "Other", "totalSteps": 2}),
    )
    .await;
    gw.patch("/api/chains/exec-1", json!({"status": "in_progress", "currentStep": 2, "completedSteps": 1, "data": {"workflowId": "wk-9"}})).await;
    gw.patch(
        "/api/chains/exec-2",
        json!({"status": "completed", "completedSteps": 2}),
    )
    .await;

    let s = state(gw, "exec-1").await;
    assert_eq!(
        (
            s["executionId"].as_str(),
            s["workflowId"].as_str(),
            s["status"].as_str()
        ),
        (Some("exec-1"), Some("wk-9"), Some("running"))
    );
    assert_eq!(
        (
            s["currentStep"].as_str(),
            s["totalSteps"].as_u64(),
            s["completedSteps"].as_u64()
        ),
        (Some("Process"), Some(3), Some(1))
    );
    assert_eq!(s["progress"], 33);
    assert!(
        s["startedAt"].as_i64().unwrap() > 1_700_000_000_000,
        "ms timestamps"
    );
    assert!(s["updatedAt"].as_i64() >= s["startedAt"].as_i64());
    assert!(
        s["estimatedCompletion"].as_i64() >= s["updatedAt"].as_i64(),
        "{s}"
    );
    assert_eq!(state(gw, "exec-2").await["workflowId"], "Other");
    assert_eq!(gw.get("/api/workflow-state/nope").await.0, 404);

    let (_, list) = gw.get("/api/workflow-state/active/list").await;
    assert_eq!(
        (list["activeExecutions"].clone(), list["count"].clone()),
        (json!(["exec-1"]), json!(1))
    );
    let (_, detailed) = gw.get("/api/workflow-state/active/detailed").await;
    assert_eq!(
        detailed["workflows"],
        json!([{"executionId": "exec-1", "status": "running", "progress": 33, "currentStep": "Process"}])
    );
    let (_, stats) = gw.get("/api/workflow-state/stats/overview").await;
    let st = &stats["statistics"];
    assert_eq!(
        (
            st["activeExecutions"].as_u64(),
            st["averageProgress"].as_u64()
        ),
        (Some(1), Some(33))
    );
    assert_eq!(
        (
            st["executionsByStatus"]["running"].as_u64(),
            st["executionsByStatus"]["completed"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // Pause reaches the agent, and the state says paused only once it acknowledged.
    let (s, v) = gw.post("/api/workflow-state/exec-1/pause", json!({})).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(
        state(gw, "exec-1").await["status"],
        "running",
        "not before the agent acknowledges"
    );
    assert_eq!(agent_acks(gw, "wf").await, ["pause"]);
    assert_eq!(state(gw, "exec-1").await["status"], "paused");
    assert_eq!(
        gw.post("/api/workflow-state/exec-1/resume", json!({}))
            .await
            .0,
        202
    );
    agent_acks(gw, "wf").await;
    assert_eq!(state(gw, "exec-1").await["status"], "running");
    assert_eq!(
        gw.post("/api/workflow-state/exec-1/cancel", json!({}))
            .await
            .0,
        202
    );
    agent_acks(gw, "wf").await;
    assert_eq!(state(gw, "exec-1").await["status"], "cancelled");
    let (s, v) = gw.post("/api/workflow-state/exec-1/pause", json!({})).await;
    assert_eq!(s, 409, "a finished execution cannot be paused: {v}");
    assert_eq!(v["details"][0]["field"], "executionId");
    assert_eq!(
        gw.post("/api/workflow-state/exec-2/explode", json!({}))
            .await
            .0,
        404
    );
    assert_eq!(
        gw.get("/api/workflow-state/active/list").await.1["count"],
        0
    );
}

async fn cleanup_fails_stale_executions(env: Env) {
    let gw: &Endpoint = &env.gw;
    gw.post("/api/sessions", json!({"id": "st"})).await;
    gw.post(
        "/api/sessions/st/chains",
        json!({"id": "old", "title": "Old"}),
    )
    .await;
    gw.patch("/api/chains/old", json!({"status": "in_progress"}))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = gw
        .post("/api/workflow-state/cleanup", json!({"staleSecs": 1}))
        .await;
    assert_eq!(
        (s, v["cleaned"].as_u64(), v["errors"].as_u64()),
        (200, Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(state(gw, "old").await["status"], "failed");
    assert_eq!(
        gw.post("/api/workflow-state/cleanup", json!({"staleSecs": 0}))
            .await
            .0,
        400
    );
}

async fn an_extended_session_keeps_its_own_ttl(env: Env) {
    let gw: &Endpoint = &env.gw;
    gw.post("/api/sessions", json!({"id": "long", "userId": "ada"}))
        .await;
    gw.post("/api/sessions", json!({"id": "short"})).await;
    gw.post(
        "/api/sessions/long/chains",
        json!({"id": "long-chain", "title": "Kept"}),
    )
    .await;
    let (s, v) = gw
        .post("/api/sessions/long/extend", json!({"ttlSecs": 60}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session"]["id"], "long");
    assert!(v["expiresAt"].as_str().unwrap().ends_with('Z'));
    // Activity after the extension renews with the session's own TTL, not the default.
    gw.post_event(json!({"sessionId": "long", "type": "note"}))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        gw.get("/api/sessions/short").await.0,
        404,
        "the default TTL (2 s) ran out"
    );
    assert_eq!(
        gw.get("/api/sessions/long").await.0,
        200,
        "the extended one lives"
    );
    assert_eq!(
        gw.get("/api/chains/long-chain").await.0,
        200,
        "and so do its chains"
    );
    assert_eq!(
        gw.get("/api/events/long").await.1["events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, mine) = gw.get("/api/sessions?userId=ada").await;
    assert_eq!(
        mine["sessions"][0]["id"], "long",
        "a user's sessions across devices: {mine}"
    );
    for (body, status) in [
        (json!({}), 400),
        (json!({"ttlSecs": 0}), 400),
        (json!({"ttlSecs": 40_000_000}), 400),
    ] {
        assert_eq!(gw.post("/api/sessions/long/extend", body).await.0, status);
    }
    assert_eq!(
        gw.post("/api/sessions/nope/extend", json!({"ttlSecs": 5}))
            .await
            .0,
        404
    );
}

fn two_second_sessions(c: &mut afw_gateway::Config) {
    c.events.session_ttl_secs = 2;
}

/// Stats come from counters kept by every write and removal (a deleted session's chains leave
/// them), and the active views page with a cursor, each execution once.
async fn stats_follow_every_change_and_active_views_page(env: Env) {
    let gw: &Endpoint = &env.gw;
    for (sid, n) in [("a", 5), ("b", 3)] {
        gw.post("/api/sessions", json!({ "id": sid })).await;
        for i in 0..n {
            let (s, v) = gw
                .post(
                    &format!("/api/sessions/{sid}/chains"),
                    json!({"id": format!("{sid}{i}"), "title": "t", "totalSteps": 4}),
                )
                .await;
            assert_eq!(s, 201, "{v}");
        }
    }
    gw.patch(
        "/api/chains/b0",
        json!({"status": "completed", "completedSteps": 4}),
    )
    .await;
    gw.patch(
        "/api/chains/b1",
        json!({"status": "in_progress", "completedSteps": 1}),
    )
    .await;
    let overview = |v: &Value| {
        let st = &v["statistics"];
        (
            st["activeExecutions"].as_u64().unwrap(),
            st["executionsByStatus"]["pending"].as_u64().unwrap(),
            st["executionsByStatus"]["running"].as_u64().unwrap(),
            st["executionsByStatus"]["completed"].as_u64().unwrap(),
            st["averageProgress"].as_u64().unwrap(),
        )
    };
    let (_, v) = gw.get("/api/workflow-state/stats/overview").await;
    assert_eq!(
        overview(&v),
        (7, 6, 1, 1, 4),
        "25% over 7 active rounds to 4: {v}"
    );
    let (_, c) = gw.get("/api/chains/stats").await;
    assert_eq!(
        (&c["total"], &c["averageProgress"]),
        (&json!(8), &json!(15.6)),
        "{c}"
    );
    // Pages of two, each active execution once.
    let mut seen = Vec::new();
    let mut path = "/api/workflow-state/active/list?limit=2".to_string();
    loop {
        let (s, v) = gw.get(&path).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["count"].as_u64().unwrap() <= 2);
        for id in v["activeExecutions"].as_array().unwrap() {
            seen.push(id.as_str().unwrap().to_string());
        }
        match v["nextCursor"].as_str() {
            Some(c) => path = format!("/api/workflow-state/active/list?limit=2&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["a0", "a1", "a2", "a3", "a4", "b1", "b2"]);
    let (_, d) = gw.get("/api/workflow-state/active/detailed?limit=3").await;
    assert_eq!(d["count"], 3);
    assert!(d["nextCursor"].is_string(), "{d}");
    assert_eq!(
        gw.get("/api/workflow-state/active/list?cursor=zz").await.0,
        400
    );
    // Deleting a session takes its chains out of the counters in the same step.
    assert_eq!(gw.delete("/api/sessions/a").await.0, 204);
    let (_, v) = gw.get("/api/workflow-state/stats/overview").await;
    assert_eq!(overview(&v), (2, 1, 1, 1, 13), "{v}");
    let (_, c) = gw.get("/api/chains/stats").await;
    assert_eq!(c["total"], 3, "{c}");
}

conformance! {
    stats_follow_every_change_and_active_views_page => crate::defaults,
    executions_are_chains_in_the_managers_shapes_and_really_pause => crate::defaults,
    cleanup_fails_stale_executions => crate::defaults,
    an_extended_session_keeps_its_own_ttl => super::two_second_sessions,
}
