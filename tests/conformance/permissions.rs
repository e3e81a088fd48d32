//! Permission prompts: a held hook answered by the first of several decisions (409 with the
//! winner for the rest), expiry and abandonment, rules that answer without a person, the
//! pending cap, and bad input that changes nothing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::support::Endpoint;
use crate::Env;

pub const HOOKS: &str = "/api/hooks/claude-code";

/// A Claude Code `PermissionRequest` hook of session `sid` for a Bash `command`.
pub fn permission_request(sid: &str, command: &str) -> Value {
    json!({
        "session_id": sid, "transcript_path": "/t.jsonl", "cwd": "/w",
        "hook_event_name": "PermissionRequest", "permission_mode": "default",
        "tool_name": "Bash", "tool_input": {"command": command},
    })
}

/// Posts a hook in the background (it may be held); its answer when it comes.
pub fn hold(at: &Endpoint, hook: Value) -> JoinHandle<(u16, Value)> {
    let at = at.clone();
    tokio::spawn(async move { at.post(HOOKS, hook).await })
}

/// The request of session `sid` once it is pending.
pub async fn pending_of(at: &Endpoint, sid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = at.get("/api/permissions?status=pending").await;
        assert_eq!(s, 200, "{v}");
        if let Some(p) = v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["sessionId"] == sid)
        {
            return p.clone();
        }
        assert!(Instant::now() < deadline, "no pending request of {sid}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The session's events of type `kind`.
async fn events_of(at: &Endpoint, sid: &str, kind: &str) -> Vec<Value> {
    let (_, page) = at.get(&format!("/api/events/{sid}?limit=1000")).await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

async fn the_first_decision_wins_and_the_held_hook_gets_it(env: Env) {
    let at = env.gw.endpoint();
    let held = hold(&at, permission_request("pw", "npm publish"));
    let request = pending_of(&at, "pw").await;
    let id = request["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("pr-"), "{request}");
    assert_eq!(
        (&request["tool"], &request["input"], &request["hook"]),
        (
            &json!("Bash"),
            &json!({"command": "npm publish"}),
            &json!("PermissionRequest")
        )
    );
    let decide = |body: Value| {
        let at = at.clone();
        let path = format!("/api/permissions/{id}/decision");
        tokio::spawn(async move { at.post(&path, body).await })
    };
    let racing: Vec<_> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                decide(json!({"behavior": "allow", "updatedInput": {"command": format!("npm publish --tag t{i}")}}))
            } else {
                decide(json!({"behavior": "deny", "message": format!("no {i}")}))
            }
        })
        .collect();
    let mut answers = Vec::new();
    for r in racing {
        answers.push(r.await.unwrap());
    }
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one decision: {answers:?}");
    let winner = winners[0]["decision"].clone();
    for (s, v) in &answers {
        if *s != 200 {
            assert_eq!(
                (*s, v["error"].as_str()),
                (409, Some("already_settled")),
                "{v}"
            );
            assert_eq!(v["permission"]["decision"], winner, "409 names the winner");
        }
    }
    let (s, answer) = held.await.unwrap();
    assert_eq!(s, 200, "{answer}");
    let out = &answer["hookSpecificOutput"];
    assert_eq!(out["hookEventName"], "PermissionRequest");
    assert_eq!(out["decision"]["behavior"], winner["behavior"], "{answer}");
    if winner["behavior"] == "allow" {
        assert_eq!(out["decision"]["updatedInput"], winner["updatedInput"]);
    } else {
        assert_eq!(out["decision"]["message"], winner["message"]);
    }
    assert_eq!(winner["decidedBy"], "anonymous");
    assert!(winner["latencyMs"].as_i64().unwrap() >= 0);
    // The same hook delivered again is the same request: answered at once, nothing added.
    let (s, again) = at
        .post(HOOKS, permission_request("pw", "npm publish"))
        .await;
    assert_eq!((s, &again), (200, &answer));
    let (_, one) = at.get(&format!("/api/permissions/{id}")).await;
    let status = if winner["behavior"] == "allow" {
        "allowed"
    } else {
        "denied"
    };
    assert_eq!(
        (&one["status"], &one["decision"]),
        (&json!(status), &winner)
    );
    assert_eq!(events_of(&at, "pw", "permission:requested").await.len(), 1);
    let decided = events_of(&at, "pw", "permission:decided").await;
    assert_eq!(decided.len(), 1);
    assert_eq!(
        (&decided[0]["permissionId"], &decided[0]["decision"]),
        (&json!(id), &winner)
    );
    assert_eq!(
        events_of(&at, "pw", "claude:PermissionRequest").await.len(),
        1
    );
}

async fn unanswered_requests_expire_and_abandoned_ones_say_so(env: Env) {
    let at = env.gw.endpoint();
    // Nobody answers within PERMISSION_TIMEOUT_SECS (1 s here): Claude Code asks in its
    // terminal, and a late decision is a 409.
    let (s, v) = at.post(HOOKS, permission_request("late", "ls")).await;
    assert_eq!(
        (s, &v),
        (200, &json!({})),
        "a PermissionRequest that decides nothing"
    );
    let (_, list) = at.get("/api/permissions?status=expired").await;
    let expired = &list["permissions"][0];
    assert_eq!(
        (&expired["sessionId"], &expired["decision"]["decidedBy"]),
        (&json!("late"), &json!("timeout"))
    );
    let path = format!(
        "/api/permissions/{}/decision",
        expired["id"].as_str().unwrap()
    );
    let (s, v) = at.post(&path, json!({"behavior": "allow"})).await;
    assert_eq!(
        (s, &v["permission"]["status"]),
        (409, &json!("expired")),
        "{v}"
    );
    let mut pre = permission_request("late", "ls");
    pre["hook_event_name"] = "PreToolUse".into();
    pre["tool_use_id"] = "toolu_9".into();
    let (_, rules) = at
        .request(
            reqwest::Method::PUT,
            "/api/permission-rules",
            Some(json!({"rules": [{"match": "Bash", "behavior": "ask"}]})),
        )
        .await;
    assert_eq!(rules["rules"][0]["id"], "r1");
    let (s, v) = at.post(HOOKS, pre).await;
    assert_eq!(s, 200);
    assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "ask", "{v}");

    // The agent gives up: its connection closes while the request waits.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let hook = permission_request("gone", "make deploy");
    assert!(impatient
        .post(at.url(HOOKS))
        .json(&hook)
        .send()
        .await
        .is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        let (_, list) = at.get("/api/permissions?status=abandoned").await;
        if let Some(p) = list["permissions"].as_array().unwrap().first() {
            break p.clone();
        }
        assert!(Instant::now() < deadline, "never abandoned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (&gone["sessionId"], &gone["decision"]["decidedBy"]),
        (&json!("gone"), &json!("agent"))
    );
    let path = format!("/api/permissions/{}/decision", gone["id"].as_str().unwrap());
    let (s, v) = at.post(&path, json!({"behavior": "deny"})).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (409, Some("already_settled")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("abandoned"), "{v}");
    let decided = events_of(&at, "gone", "permission:decided").await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["status"], "abandoned");
}

async fn rules_answer_without_a_person(env: Env) {
    let at = env.gw.endpoint();
    let rules = json!({"rules": [
        {"id": "read", "match": "Read", "behavior": "allow"},
        {"id": "tests", "match": "Bash(npm test*)", "behavior": "allow"},
        {"id": "rm", "match": "Bash(rm -rf*)", "behavior": "deny", "message": "never"},
    ]});
    let (s, v) = at
        .request(
            reqwest::Method::PUT,
            "/api/permission-rules",
            Some(rules.clone()),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(at.get("/api/permission-rules").await.1, v);
    let pre = |tool: &str, input: Value, id: &str| {
        json!({"session_id": "ruled", "transcript_path": "/t", "cwd": "/w",
               "hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": input, "tool_use_id": id})
    };
    let (_, v) = at
        .post(HOOKS, pre("Bash", json!({"command": "rm -rf /"}), "t1"))
        .await;
    assert_eq!(
        v,
        json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": "never"}})
    );
    let (_, v) = at
        .post(HOOKS, pre("Read", json!({"file_path": "/w/a"}), "t2"))
        .await;
    assert_eq!(
        v["hookSpecificOutput"]["permissionDecision"], "allow",
        "{v}"
    );
    let (_, v) = at
        .post(HOOKS, pre("Write", json!({"file_path": "/w/a"}), "t3"))
        .await;
    assert_eq!(v, json!({}), "no rule: Claude Code goes on as it would");
    let (_, v) = at
        .post(HOOKS, permission_request("ruled", "npm test -- -w"))
        .await;
    assert_eq!(
        v,
        json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": {"behavior": "allow"}}})
    );
    let decided = events_of(&at, "ruled", "permission:decided").await;
    let by: Vec<&str> = decided
        .iter()
        .map(|e| e["decision"]["decidedBy"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["rule:rm", "rule:read", "rule:tests"]);
    assert_eq!(decided[0]["status"], "denied");
    let (_, pending) = at.get("/api/permissions?status=pending").await;
    assert_eq!(pending["permissions"], json!([]), "no person was asked");
}

async fn too_many_pending_are_refused(env: Env) {
    let at = env.gw.endpoint();
    let held: Vec<_> = (0..12)
        .map(|i| hold(&at, permission_request(&format!("cap{i}"), "ls")))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, list) = at.get("/api/permissions?status=pending").await;
    let waiting = list["permissions"].as_array().unwrap().len();
    // PERMISSION_MAX_PENDING is 2; a Cluster's six partitions take a share of one each.
    let most = if env.cluster.is_some() { 6 } else { 2 };
    assert!((1..=most).contains(&waiting), "{waiting} waiting");
    let mut refused = 0;
    for h in held.into_iter().filter(|h| h.is_finished()) {
        let (s, v) = h.await.unwrap();
        assert_eq!((s, v["error"].as_str()), (429, Some("queue_full")), "{v}");
        refused += 1;
    }
    assert_eq!(refused, 12 - waiting);
}

async fn bad_input_is_a_json_error_and_changes_nothing(env: Env) {
    let at = env.gw.endpoint();
    let held = hold(&at, permission_request("bad", "ls"));
    let id = pending_of(&at, "bad").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/permissions/{id}/decision");
    for (body, field) in [
        (json!({}), "behavior"),
        (json!({"behavior": "yes"}), "behavior"),
        (
            json!({"behavior": "deny", "updatedInput": {"a": 1}}),
            "updatedInput",
        ),
        (
            json!({"behavior": "allow", "updatedInput": "rm"}),
            "updatedInput",
        ),
        (
            json!({"behavior": "deny", "message": "x".repeat(2001)}),
            "message",
        ),
        (json!(["allow"]), "body"),
    ] {
        let (s, v) = at.post(&path, body.clone()).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("validation_failed")),
            "{body}: {v}"
        );
        assert!(v["details"].to_string().contains(field), "{v}");
    }
    let (s, v) = at
        .post(
            "/api/permissions/pr-none/decision",
            json!({"behavior": "allow"}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")), "{v}");
    assert_eq!(at.get("/api/permissions/pr-none").await.0, 404);
    for q in ["status=maybe", "limit=0", "limit=1001", "color=red"] {
        let (s, v) = at.get(&format!("/api/permissions?{q}")).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_query")),
            "{q}: {v}"
        );
    }
    let put = |body: Value| at.request(reqwest::Method::PUT, "/api/permission-rules", Some(body));
    let (s, _) = put(json!({"rules": [{"id": "ok", "match": "Read", "behavior": "allow"}]})).await;
    assert_eq!(s, 200);
    for body in [
        json!({"rules": "Read"}),
        json!({"rules": [{"match": "Bash(", "behavior": "allow"}]}),
        json!({"rules": [{"match": "Read", "behavior": "sometimes"}]}),
        json!({"rules": (0..300).map(|_| json!({"match": "Read", "behavior": "allow"})).collect::<Vec<_>>()}),
    ] {
        let (s, v) = put(body).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("validation_failed")),
            "{v}"
        );
    }
    assert_eq!(
        at.get("/api/permission-rules").await.1["rules"][0]["id"],
        "ok",
        "unchanged"
    );
    let (_, one) = at.get(&format!("/api/permissions/{id}")).await;
    assert_eq!(one["status"], "pending", "nothing decided it");
    let (s, _) = at.post(&path, json!({"behavior": "deny"})).await;
    assert_eq!(s, 200);
    let (s, v) = held.await.unwrap();
    assert_eq!(
        (s, &v["hookSpecificOutput"]["decision"]["behavior"]),
        (200, &json!("deny"))
    );
}

fn short_timeout(c: &mut afw_gateway::Config) {
    c.permissions.permission_timeout_secs = 1;
}

fn two_pending(c: &mut afw_gateway::Config) {
    c.permissions.permission_max_pending = 2;
}

conformance! {
    the_first_decision_wins_and_the_held_hook_gets_it => crate::defaults,
    unanswered_requests_expire_and_abandoned_ones_say_so => super::short_timeout,
    rules_answer_without_a_person => crate::defaults,
    too_many_pending_are_refused => super::two_pending,
    bad_input_is_a_json_error_and_changes_nothing => crate::defaults,
}
