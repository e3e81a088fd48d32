//! The ActionFlows dashboard's socket (`packages/app`'s `useWebSocket.ts` and the handlers
//! behind it) with `AFW_COMPAT=actionflows`, and our own contract without it.

use std::time::Duration;

use serde_json::{json, Value};

use super::support::WsClient;
use crate::Env;

/// The dashboard's socket: bare events (its `useWebSocket.ts` wants top-level `type`,
/// `sessionId` and `timestamp`), a heartbeat it passes over silently, and CORS for its origin.
async fn compat_mode_speaks_to_the_dashboard(env: Env) {
    let gw = &env.gw;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    c.subscribe("af-w", None, None).await;
    gw.post(
        "/api/events",
        json!({"sessionId": "af-w", "type": "step:spawned", "stepNumber": 1}),
    )
    .await;
    let data = c.recv().await;
    assert!(
        data["type"].is_string() && data["sessionId"].is_string() && data["timestamp"].is_string(),
        "the dashboard's check: {data}"
    );
    assert_eq!(
        (&data["type"], &data["seq"]),
        (&json!("step:spawned"), &json!(1))
    );
    // WS_HEARTBEAT_SECS is 0.3 here: a pong the dashboard ignores, yet a message it sees.
    let beat = c.recv().await;
    assert_eq!(
        (&beat["type"], &beat["heartbeat"]),
        (&json!("pong"), &json!(true))
    );
    let preflight = gw
        .http
        .request(
            reqwest::Method::OPTIONS,
            gw.url("/api/sessions/af-w/commands"),
        )
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
}

/// The next message that is not a heartbeat.
async fn next_message(c: &mut WsClient) -> Value {
    loop {
        let m = c.recv().await;
        if m["heartbeat"] != true {
            return m;
        }
    }
}

/// What that dashboard's handlers read: a `session:*` event's session in `data` (the hook
/// posts `session:ended` without one, and the page went blank), a running chain as the
/// session's `currentChain` (its Pause, Resume and Cancel buttons), and no message it would
/// log as invalid (a command).
async fn compat_frames_carry_what_the_dashboard_reads(env: Env) {
    let gw = &env.gw;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    c.subscribe("af-c", None, None).await;
    let ended =
        json!({"sessionId": "af-c", "type": "session:ended", "user": "ana", "reason": "done"});
    gw.post("/api/events", ended).await;
    let m = next_message(&mut c).await;
    assert_eq!(m["type"], "session:ended", "{m}");
    assert_eq!(
        (
            &m["data"]["id"],
            &m["data"]["user"],
            &m["data"]["endReason"]
        ),
        (&json!("af-c"), &json!("ana"), &json!("done"))
    );
    let (_, page) = gw.get("/api/events/af-c").await;
    assert!(
        page["events"][0].get("data").is_none(),
        "the stored event is as posted"
    );
    let (s, v) = gw
        .post(
            "/api/sessions/af-c/chains",
            json!({"id": "af-chain", "title": "deploy", "steps": [{"stepNumber": 1, "action": "build"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let m = next_message(&mut c).await;
    assert!(
        m["type"].is_string() && m["sessionId"].is_string() && m["timestamp"].is_string(),
        "{m}"
    );
    assert_eq!(m["type"], "session:updated", "{m}");
    let current = &m["data"]["currentChain"];
    assert_eq!(
        (&current["id"], &current["title"]),
        (&json!("af-chain"), &json!("deploy")),
        "{m}"
    );
    assert_eq!(current["steps"][0]["waitsFor"], json!([]));
    // And as the listing the dashboard loads its sessions from has it.
    gw.post("/api/sessions", json!({"id": "af-none"})).await;
    let (_, list) = gw.get("/api/sessions").await;
    let row = |id: &str| {
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("af-c")["currentChain"]["id"], "af-chain", "{list}");
    assert!(row("af-none").get("currentChain").is_none(), "{list}");
    let (s, _) = gw
        .post("/api/sessions/af-c/commands", json!({"type": "pause"}))
        .await;
    assert_eq!(s, 201);
    gw.post("/api/events", json!({"sessionId": "af-c", "type": "after"}))
        .await;
    let m = next_message(&mut c).await;
    assert_eq!(m["type"], "after", "no command message before it: {m}");
}

/// Without the setting: our envelope, our heartbeat, no CORS.
async fn the_default_keeps_the_contract(env: Env) {
    let gw = &env.gw;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    c.subscribe("af-d", None, None).await;
    gw.post("/api/events", json!({"sessionId": "af-d", "type": "t"}))
        .await;
    let data = c.recv().await;
    assert_eq!(
        (&data["type"], &data["payload"]["type"]),
        (&json!("event"), &json!("t"))
    );
    let beat = c
        .try_recv(Duration::from_secs(3))
        .await
        .expect("a heartbeat");
    assert_eq!(beat, json!({"type": "heartbeat"}));
    let r = gw
        .http
        .get(gw.url("/api/sessions"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

conformance! {
    compat_mode_speaks_to_the_dashboard => |c| {
        c.compat = Some(afw_gateway::config::Compat::Actionflows);
        c.realtime.ws_heartbeat_every = std::time::Duration::from_millis(300);
    },
    compat_frames_carry_what_the_dashboard_reads => |c| c.compat = Some(afw_gateway::config::Compat::Actionflows),
    the_default_keeps_the_contract => |c| c.realtime.ws_heartbeat_every = std::time::Duration::from_millis(300),
}
