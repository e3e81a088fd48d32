//! Claude Code's hooks, `POST /api/hooks/claude-code`: a recorded session of every hook event
//! Claude Code has (`tests/fixtures/claude-code/session.json`, each hook checked against the
//! Agent SDK's `HookInput` by `tests/web/claude-code.test.mjs`) replayed twice through two
//! instances on Redis, as retries would deliver it: one stored event per hook, in order, each
//! delivered once to a subscriber, with the hook kept whole and the session filled from it.
//! (A rule allows every tool, so the hooks that ask are answered at once, each recorded once as
//! `permission:decided`; tests/permissions.rs is the rest of the permission prompts.) Bodies that
//! are not hooks get a JSON 400 and store nothing.

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use support::{Endpoint, Gateway, RedisServer, WsClient};

fn recorded() -> Vec<Value> {
    serde_json::from_str(include_str!("fixtures/claude-code/session.json")).expect("fixture")
}

/// Posts a hook as Claude Code's `"type": "http"` hook does, naming its machine.
async fn send(at: &Endpoint, hook: &Value) -> (u16, Value) {
    let r = at
        .http
        .post(at.url("/api/hooks/claude-code"))
        .header("x-hostname", "devbox")
        .json(hook)
        .send()
        .await
        .expect("HTTP request");
    support::status_json(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_of_every_hook_replayed_twice_through_two_instances_is_one_event_each() {
    let hooks = recorded();
    let sid = hooks[0]["session_id"].as_str().unwrap().to_string();
    let redis = RedisServer::start().await;
    let a = Gateway::start(support::config(Some(&redis))).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    let rules = json!({"rules": [{"id": "all", "match": "*", "behavior": "allow"}]});
    let (s, v) = a
        .request(reqwest::Method::PUT, "/api/permission-rules", Some(rules))
        .await;
    assert_eq!(s, 200, "{v}");
    let mut ws = WsClient::connect(&a.ws_url()).await;
    ws.subscribe(&sid, None, None).await;
    let asks = |hook: &Value| {
        hook.get("tool_name").is_some()
            && matches!(
                hook["hook_event_name"].as_str(),
                Some("PermissionRequest" | "PreToolUse")
            )
    };
    // Once through both instances, then every hook again the other way round (a retry).
    for round in 0..2 {
        for (i, hook) in hooks.iter().enumerate() {
            let at = if (i + round) % 2 == 0 { &a } else { &b };
            let (s, v) = send(&at.endpoint(), hook).await;
            assert_eq!(s, 200, "{hook}: {v}");
            let answer = &v["hookSpecificOutput"];
            match hook["hook_event_name"].as_str() {
                _ if !asks(hook) => assert_eq!(v, json!({}), "{hook}"),
                Some("PermissionRequest") => {
                    assert_eq!(answer["decision"]["behavior"], "allow", "{v}")
                }
                _ => assert_eq!(answer["permissionDecision"], "allow", "{v}"),
            }
        }
    }
    let asking = hooks.iter().filter(|h| asks(h)).count();
    assert!(asking >= 2, "the recording asks for tools");
    let stored = support::stored_events(&a.endpoint(), &sid).await;
    assert_eq!(
        stored.len(),
        hooks.len() + asking,
        "one event per hook, one decision per hook that asks: {stored:?}"
    );
    let (_, page) = b.get(&format!("/api/events/{sid}?limit=1000")).await;
    let all = page["events"].as_array().unwrap();
    let decided: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] == "permission:decided")
        .collect();
    assert_eq!(decided.len(), asking);
    assert!(decided
        .iter()
        .all(|e| e["decision"]["decidedBy"] == "rule:all"));
    let events: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] != "permission:decided")
        .collect();
    for (e, hook) in events.iter().zip(&hooks) {
        let name = hook["hook_event_name"].as_str().unwrap();
        assert_eq!(e["claude"], *hook, "the hook is kept whole");
        assert_eq!(e["hook"], name);
        let want = match name {
            "SessionStart" => "session:started".to_string(),
            "SessionEnd" => "session:ended".to_string(),
            "PostToolUse" => "tool:used".to_string(),
            other => format!("claude:{other}"),
        };
        assert_eq!(e["type"], want.as_str(), "{e}");
        assert!(e["eventId"].as_str().unwrap().starts_with("cc-"));
        if let Some(tool) = hook.get("tool_name") {
            assert_eq!(&e["tool"], tool);
        }
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    let tool_used = events.iter().find(|e| e["type"] == "tool:used").unwrap();
    assert_eq!(tool_used["target"], "npm test");
    for n in 1..=all.len() as u64 {
        assert_eq!(ws.next_event().await["seq"], n);
    }
    ws.assert_quiet("each hook delivered once").await;
    let (_, session) = a.get(&format!("/api/sessions/{sid}")).await;
    assert_eq!(session["cwd"], "/home/dev/app", "{session}");
    assert_eq!(session["hostname"], "devbox", "{session}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_a_hook_is_a_json_400_and_stores_nothing() {
    let gw = Gateway::start(support::config(None)).await;
    let at = gw.endpoint();
    let raw = |body: &'static str| {
        let at = at.clone();
        async move {
            let r = at
                .http
                .post(at.url("/api/hooks/claude-code"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            support::status_json(r).await
        }
    };
    let (s, v) = raw("{\"session_id\": ").await;
    assert_eq!((s, &v["error"]), (400, &json!("invalid_json")), "{v}");
    for (body, field) in [
        (json!([1, 2]), "body"),
        (json!("Stop"), "body"),
        (json!({"hook_event_name": "Stop"}), "session_id"),
        (
            json!({"session_id": 7, "hook_event_name": "Stop"}),
            "session_id",
        ),
        (json!({"session_id": "s"}), "hook_event_name"),
        (
            json!({"session_id": "s", "hook_event_name": "Stop now"}),
            "hook_event_name",
        ),
        (
            json!({"session_id": "s", "hook_event_name": ""}),
            "hook_event_name",
        ),
        (
            json!({"session_id": "", "hook_event_name": "Stop"}),
            "sessionId",
        ),
        (
            json!({"session_id": "a\u{1}b", "hook_event_name": "Stop"}),
            "sessionId",
        ),
    ] {
        let (s, v) = send(&at, &body).await;
        assert_eq!(s, 400, "{body}: {v}");
        let fields = v["details"].to_string();
        assert!(fields.contains(field), "{body}: {v}");
    }
    let (_, sessions) = at.get("/api/sessions").await;
    assert_eq!(sessions["sessions"], json!([]), "{sessions}");
    gw.stop().await;
}

/// The session's user is the credential's subject, never a field of the hook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_is_the_credentials_subject() {
    let mut config = support::config(None);
    config.auth.api_keys = vec!["default:hook-agent-key-0123456789:agent".into()];
    let gw = Gateway::start(config).await;
    let at = gw.endpoint().with_key("hook-agent-key-0123456789");
    let mut hook = recorded()[1].clone();
    hook["user"] = "someone-else".into();
    let (s, v) = send(&at, &hook).await;
    assert_eq!(s, 200, "{v}");
    let sid = hook["session_id"].as_str().unwrap();
    let (_, session) = at.get(&format!("/api/sessions/{sid}")).await;
    assert_eq!(session["userId"], "key#1", "{session}");
    let (s, _) = send(&gw.endpoint().with_key("wrong-key-0123456789"), &hook).await;
    assert_eq!(s, 401);
    gw.stop().await;
}
