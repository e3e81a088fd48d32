//! The ActionFlows clients (bekalpaslan/action-flows: `packages/hooks`, `packages/app`,
//! `packages/mcp-server`), their exact requests, and their answers read the way their code
//! reads them. `AFW_COMPAT=actionflows` only where the issue says it is needed.

use serde_json::{json, Value};

use crate::Env;

/// `afw-session-start.ts` posts `session:started` with the session's facts; the session its
/// first event makes takes them, and a later one fills only what is still missing.
async fn session_started_fills_the_session(env: Env) {
    let gw = &env.gw;
    let (s, v) = gw
        .post(
            "/api/events",
            json!({"type": "session:started", "sessionId": "af-1", "timestamp": "2026-01-01T00:00:00.000Z",
                   "user": "ada", "cwd": "/home/ada/proj", "hostname": "box", "platform": "linux"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, session) = gw.get("/api/sessions/af-1").await;
    assert_eq!(session["userId"], "ada");
    assert_eq!(session["cwd"], "/home/ada/proj");
    assert_eq!(session["hostname"], "box");
    assert_eq!(session["platform"], "linux");
    // Explicitly made sessions keep what they were made with.
    gw.post("/api/sessions", json!({"id": "af-2", "cwd": "/kept"}))
        .await;
    gw.post(
        "/api/events",
        json!({"type": "session:started", "sessionId": "af-2", "user": "grace", "cwd": "/other"}),
    )
    .await;
    let (_, session) = gw.get("/api/sessions/af-2").await;
    assert_eq!(session["cwd"], "/kept");
    assert_eq!(session["userId"], "grace");
}

/// `afw-control-check.ts` blocks a tool call on a pending pause or cancel read flat; the MCP
/// server maps `{id, type, target: payload}` and acknowledges `/api/commands/:id/ack`.
async fn hooks_and_mcp_read_commands(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "af-c"})).await;
    // useSessionControls.ts: `{type, payload}`, stepNumber inside the payload.
    let (s, v) = gw
        .post(
            "/api/sessions/af-c/commands",
            json!({"type": "skip", "payload": {"stepNumber": 3}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    gw.post("/api/sessions/af-c/commands", json!({"type": "pause"}))
        .await;
    let (_, data) = gw.get("/api/sessions/af-c/commands").await;
    let commands = data["commands"].as_array().unwrap();
    let blocking: Vec<&Value> = commands
        .iter()
        .filter(|c| c["status"] == "pending" && (c["type"] == "pause" || c["type"] == "cancel"))
        .collect();
    assert_eq!(blocking.len(), 1, "the hook blocks on the pause: {data}");
    let mcp: Vec<Value> = commands
        .iter()
        .map(|c| json!({"id": c["id"], "type": c["type"], "target": c["payload"]}))
        .collect();
    assert_eq!(mcp[0]["type"], "skip");
    assert_eq!(mcp[0]["target"]["stepNumber"], 3);
    let id = mcp[1]["id"].as_str().expect("an id");
    let (s, v) = gw
        .post(
            &format!("/api/commands/{id}/ack"),
            json!({"result": "paused", "error": null}),
        )
        .await;
    assert_eq!((s, &v["acknowledged"]), (200, &json!(true)), "{v}");
    // A resume settles a pause nobody acknowledged: the hook stops blocking at once.
    gw.post("/api/sessions/af-c/commands", json!({"type": "pause"}))
        .await;
    gw.post("/api/sessions/af-c/commands", json!({"type": "resume"}))
        .await;
    let (_, data) = gw.get("/api/sessions/af-c/commands").await;
    assert!(
        !data["commands"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "pause"),
        "{data}"
    );
}

/// `afw-input-inject.ts` marks the session awaiting; the dashboard reads `lastPrompt` by the
/// shared type's names; once the agent takes the input the session is idle again.
async fn prompts_read_by_shared_names_and_clear_when_answered(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "af-p"})).await;
    for ack in [false, true] {
        let (s, v) = gw
            .post(
                "/api/sessions/af-p/awaiting",
                json!({"promptType": "binary", "promptText": "Continue?", "quickResponses": ["Yes", "No"]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let p = &v["lastPrompt"];
        assert_eq!(
            (&p["text"], &p["type"]),
            (&json!("Continue?"), &json!("binary"))
        );
        assert_eq!(p["quickResponses"], json!(["Yes", "No"]));
        assert_eq!(v["conversationState"], "awaiting_input");
        gw.post("/api/sessions/af-p/input", json!({"input": "Yes"}))
            .await;
        if ack {
            let (_, got) = gw.get("/api/sessions/af-p/input?consume=false").await;
            let id = got["input"]["inputId"].as_str().unwrap();
            let (_, session) = gw.get("/api/sessions/af-p").await;
            assert_eq!(
                session["conversationState"], "awaiting_input",
                "not taken yet"
            );
            gw.post(&format!("/api/sessions/af-p/input/{id}/ack"), json!({}))
                .await;
        } else {
            let (_, got) = gw.get("/api/sessions/af-p/input?timeout=1000").await;
            assert_eq!(got["input"]["input"], "Yes");
        }
        let (_, session) = gw.get("/api/sessions/af-p").await;
        assert_eq!(session["conversationState"], "idle", "{session}");
        assert!(session.get("lastPrompt").is_none(), "{session}");
    }
    // The event keeps the contract's names and its own type.
    let (_, page) = gw.get("/api/events/af-p").await;
    let asked = &page["events"][0];
    assert_eq!(asked["type"], "interaction:awaiting-input");
    assert_eq!(asked["promptText"], "Continue?");
}

/// `afw-output-capture.ts` posts captured shell output; `useTerminalEvents.ts` renders the
/// `terminal:output` events it becomes.
async fn terminal_output_becomes_events(env: Env) {
    let gw = &env.gw;
    let (s, v) = gw
        .post(
            "/api/terminal/af-t/output",
            json!({"output": "ok 12 tests\n", "stream": "stdout", "stepNumber": 2, "action": "test/"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["seq"], 1);
    let (_, page) = gw.get("/api/events/af-t").await;
    let e = &page["events"][0];
    assert_eq!(e["type"], "terminal:output");
    assert_eq!(e["output"], "ok 12 tests\n");
    assert_eq!(
        (&e["stream"], &e["stepNumber"], &e["action"]),
        (&json!("stdout"), &json!(2), &json!("test/"))
    );
    let (s, v) = gw
        .post(
            "/api/terminal/af-t/output",
            json!({"output": "x", "stream": "tty"}),
        )
        .await;
    assert_eq!((s, &v["error"]), (400, &json!("validation_failed")), "{v}");
    let (s, _) = gw
        .post("/api/terminal/af-t/output", json!({"stream": "stdout"}))
        .await;
    assert_eq!(s, 400);
    // What was not sent is not stored (the dashboard prints `[#null]` for a stored null).
    gw.post("/api/terminal/af-t/output", json!({"output": "plain\n"}))
        .await;
    let (_, page) = gw.get("/api/events/af-t?after=1").await;
    let plain = page["events"][0].as_object().unwrap();
    assert!(
        !plain.contains_key("stepNumber") && !plain.contains_key("action"),
        "{plain:?}"
    );
}

/// `useUsers.ts` and `useUserSessions.ts`: the user sidebar.
async fn users_are_views_of_sessions(env: Env) {
    let gw = &env.gw;
    for (id, user) in [("u-1", "ada"), ("u-2", "ada"), ("u-3", "grace")] {
        gw.post(
            "/api/sessions",
            json!({"id": id, "userId": user, "cwd": "/w", "hostname": "h"}),
        )
        .await;
    }
    gw.patch("/api/sessions/u-3", json!({"status": "completed"}))
        .await;
    let (s, data) = gw.get("/api/users").await;
    assert_eq!(s, 200, "{data}");
    assert_eq!(data["complete"], true, "three sessions are all read");
    let users = data["users"].as_array().unwrap();
    let ada = users.iter().find(|u| u["id"] == "ada").expect("ada");
    assert_eq!(
        (&ada["sessionCount"], &ada["isOnline"]),
        (&json!(2), &json!(true))
    );
    let grace = users.iter().find(|u| u["id"] == "grace").expect("grace");
    assert_eq!(
        (&grace["sessionCount"], &grace["isOnline"]),
        (&json!(1), &json!(false))
    );
    let (s, data) = gw.get("/api/users/ada/sessions").await;
    assert_eq!(s, 200, "{data}");
    let sessions = data["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions
        .iter()
        .all(|s| s["user"] == "ada" && s["hostname"] == "h"));
    let (_, data) = gw.get("/api/users/nobody/sessions").await;
    assert_eq!(data["sessions"], json!([]));
}

/// The file explorer and history: a JSON answer that says why and what to do instead.
async fn files_and_history_say_why(env: Env) {
    let gw = &env.gw;
    for path in [
        "/api/files/s1/tree",
        "/api/files/s1/read?path=a.rs",
        "/api/history/sessions",
        "/api/history",
    ] {
        let (s, v) = gw.get(path).await;
        assert_eq!(
            (s, &v["error"]),
            (501, &json!("not_on_gateway")),
            "{path}: {v}"
        );
        assert!(v["message"].as_str().unwrap().contains("as events"), "{v}");
    }
    let (s, _) = gw
        .post("/api/files/s1/write", json!({"path": "a", "content": "b"}))
        .await;
    assert_eq!(s, 501);
}

/// Large events (terminal output, diffs) are taken by default, as the original took 1 MB; a
/// session's events are bounded by bytes as well as by count, oldest trimmed first.
async fn large_events_are_taken_and_bounded_by_bytes(env: Env) {
    let gw = &env.gw;
    let big = "x".repeat(900 * 1024);
    let (s, v) = gw
        .post("/api/terminal/af-big/output", json!({"output": big}))
        .await;
    assert_eq!(s, 201, "a 900 KiB event with the defaults: {v}");
    let (_, page) = gw.get("/api/events/af-big?after=0&limit=1").await;
    assert_eq!(
        page["events"][0]["output"].as_str().unwrap().len(),
        big.len()
    );
    // 30 events of 20 KiB into a session that keeps 100 KiB: about the newest five stay.
    let chunk = "y".repeat(20 * 1024);
    for i in 0..30 {
        let (s, _) = gw
            .post(
                "/api/events",
                json!({"sessionId": "af-bytes", "type": "t", "i": i, "chunk": chunk}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (_, page) = gw.get("/api/events/af-bytes?after=0").await;
    let kept: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let bytes: usize = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.to_string().len())
        .sum();
    assert!(bytes <= 100 * 1024, "{bytes} bytes kept");
    assert!((3..=5).contains(&kept.len()), "{kept:?}");
    assert_eq!(*kept.last().unwrap(), 30, "the newest stays");
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
    // An event larger than the whole allowance still keeps itself.
    let (s, _) = gw
        .post(
            "/api/events",
            json!({"sessionId": "af-bytes", "type": "t", "chunk": "z".repeat(120 * 1024)}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, page) = gw.get("/api/events/af-bytes?after=0").await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["events"][0]["seq"], 31);
}

/// A small per-session allowance; the event size limit stays the default, so the 900 KiB
/// event of [`large_events_are_taken_and_bounded_by_bytes`] tests it.
fn session_bytes(c: &mut afw_gateway::Config) {
    c.events.max_session_event_bytes = 100 * 1024;
}

conformance! {
    large_events_are_taken_and_bounded_by_bytes => super::session_bytes,
    session_started_fills_the_session => crate::defaults,
    hooks_and_mcp_read_commands => crate::defaults,
    prompts_read_by_shared_names_and_clear_when_answered => crate::defaults,
    terminal_output_becomes_events => crate::defaults,
    users_are_views_of_sessions => crate::defaults,
    files_and_history_say_why => crate::defaults,
}
