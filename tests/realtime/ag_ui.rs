//! The AG-UI profile on the wire (`?format=ag-ui`), and AG-UI events on ingest: checked for
//! what their schema requires, refused whole with 400 otherwise, stored as they came. (AG-UI's
//! own client follows the profile in `tests/web/ag-ui.test.mjs`.)

use serde_json::{json, Value};

use crate::support::{self, Gateway, SseClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ag_ui_events_are_checked_on_ingest_and_stored_as_they_came() {
    let gw = Gateway::start(support::config(None)).await;
    for (event, fields) in [
        (
            json!({"type": "TOOL_CALL_START", "toolCallId": "t1"}),
            vec!["toolCallName"],
        ),
        (
            json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": 7}),
            vec!["messageId", "delta"],
        ),
        (
            json!({"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "tool"}),
            vec!["role"],
        ),
        (json!({"type": "CUSTOM", "name": "x"}), vec!["value"]),
        (json!({"type": "STATE_DELTA", "delta": {}}), vec!["delta"]),
        (
            json!({"type": "RUN_STARTED", "threadId": "t"}),
            vec!["runId"],
        ),
    ] {
        let mut bad = event.clone();
        bad["sessionId"] = "agui-in".into();
        let batch = json!({"events": [{"sessionId": "agui-in", "type": "fine"}, bad]});
        let (status, body) = gw.post("/api/events/batch", batch).await;
        assert_eq!(status, 400, "{event}: {body}");
        assert_eq!(body["error"], "validation_failed");
        let named: Vec<&str> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        let want: Vec<String> = fields.iter().map(|f| format!("events[1].{f}")).collect();
        assert_eq!(named, want, "{event}");
    }
    let (s, _) = gw.get("/api/sessions/agui-in").await;
    assert_eq!(s, 404, "nothing of a refused batch was stored");

    let posted = json!({"sessionId": "agui-in", "type": "TOOL_CALL_RESULT", "messageId": "r1", "toolCallId": "t1", "content": "ok", "timestamp": 1767225600000u64, "extra": [1]});
    let (status, body) = gw.post("/api/events", posted.clone()).await;
    assert!(status < 300, "{body}");
    let (_, read) = gw.get("/api/events/agui-in").await;
    let stored = &read["events"][0];
    for key in [
        "type",
        "messageId",
        "toolCallId",
        "content",
        "timestamp",
        "extra",
    ] {
        assert_eq!(stored[key], posted[key], "{key} is kept as it came");
    }
    gw.stop().await;
}

/// The `data:` of every message up to (and with) the one with id `until`, and the ids seen.
async fn read_until(client: &mut SseClient, until: &str) -> (Vec<Value>, Vec<String>) {
    let (mut events, mut ids) = (Vec::new(), Vec::new());
    loop {
        let m = client.next().await.expect("the stream goes on");
        if !m.data.is_null() {
            events.push(m.data);
        }
        if let Some(id) = m.id {
            ids.push(id.clone());
            if id.ends_with(until) {
                return (events, ids);
            }
        }
    }
}

fn brief(e: &Value) -> String {
    let t = e["type"].as_str().unwrap();
    match ["stepName", "name", "toolCallId"]
        .iter()
        .find_map(|k| e[*k].as_str())
    {
        Some(name) => format!("{t} {name}"),
        None => t.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_maps_our_events_with_ids_on_the_last_of_each() {
    let gw = Gateway::start(support::config(None)).await;
    let sid = "agui-map";
    for e in [
        json!({"type": "step:started", "stepNumber": 1}),
        json!({"type": "tool:used", "toolCallId": "t1", "tool": "Read", "input": {"path": "a"}, "result": {"lines": 3}}),
        json!({"type": "build:done", "ok": true}),
        json!({"type": "session:ended"}),
    ] {
        let mut e = e;
        e["sessionId"] = sid.into();
        gw.post_event(e).await;
    }
    let path = format!("/api/sessions/{sid}/stream?format=ag-ui&since=0");
    let mut client = SseClient::open(&gw, &path, None).await;
    let (events, ids) = read_until(&mut client, ":4").await;
    let got: Vec<String> = events.iter().map(brief).collect();
    assert_eq!(
        got,
        [
            "RUN_STARTED",
            "STATE_SNAPSHOT",
            "STEP_STARTED step 1",
            "TOOL_CALL_START t1",
            "TOOL_CALL_ARGS t1",
            "TOOL_CALL_END t1",
            "TOOL_CALL_RESULT t1",
            "CUSTOM build:done",
            "STEP_FINISHED step 1",
            "RUN_FINISHED",
        ]
    );
    let epoch = ids[0].rsplit_once(':').unwrap().0.to_string();
    let want: Vec<String> = (0..=4).map(|n| format!("{epoch}:{n}")).collect();
    assert_eq!(
        ids, want,
        "one id per stored event, the prelude's the start"
    );
    assert_eq!(events[4]["delta"], r#"{"path":"a"}"#);
    assert_eq!(events[6]["content"], r#"{"lines":3}"#);
    assert_eq!(events[7]["value"]["ok"], true, "CUSTOM carries the event");
    assert_eq!(events[9]["rawEvent"]["type"], "session:ended");

    // Live: a posted AG-UI event passes without what the gateway added; a new run opens first.
    gw.post_event(
        json!({"sessionId": sid, "type": "STEP_STARTED", "stepName": "plan", "timestamp": 5}),
    )
    .await;
    let (live, _) = read_until(&mut client, ":5").await;
    assert_eq!(live[0]["type"], "RUN_STARTED");
    assert_eq!(
        live[1],
        json!({"type": "STEP_STARTED", "stepName": "plan", "timestamp": 5})
    );
    gw.stop().await;
}
