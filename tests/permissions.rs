//! Permission prompts across instances, as they are used: 50 Claude Code `PermissionRequest`
//! hooks held on three gateway instances on one Redis, and three browsers, each watching every
//! session over a WebSocket on its own instance, each answering every request the moment its
//! `permission:requested` event arrives, all at once. Each request gets exactly one decision
//! (the others a 409 naming it), each hook is answered with that decision wherever it was held,
//! and the decider is the winning browser's credential. The time from sending the winning
//! decision to the hook's answer is printed (p50 and p99), never asserted. The cases on one
//! instance (expiry, abandonment, rules, bad input) are conformance cases
//! (tests/conformance/permissions.rs).

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Endpoint, Gateway, RedisServer, WsClient};

const REQUESTS: usize = 50;
const BROWSERS: usize = 3;
const AGENT_KEY: &str = "agent-key-0123456789";

fn browser_key(b: usize) -> String {
    format!("browser-{b}-key-0123456789")
}

fn hook(n: usize) -> Value {
    json!({
        "session_id": format!("perm-{n}"), "transcript_path": "/t.jsonl", "cwd": "/w",
        "hook_event_name": "PermissionRequest", "permission_mode": "default",
        "tool_name": "Bash", "tool_input": {"command": format!("make deploy-{n}")},
    })
}

/// What one browser did about one request: when it sent its decision, and the answer.
struct Tried {
    browser: usize,
    sent: Instant,
    status: u16,
    answer: Value,
}

/// A browser on `at`: watches every session, and decides each request as its event arrives
/// (browser 0 allows, with the input edited; the others deny, saying who they are).
async fn browser(b: usize, at: Endpoint) -> Vec<Tried> {
    let mut ws = WsClient::connect(&at.ws_url()).await;
    for n in 0..REQUESTS {
        ws.subscribe(&format!("perm-{n}"), None, None).await;
    }
    let mut decisions = Vec::new();
    let mut tried = Vec::new();
    let mut seen = 0;
    while seen < REQUESTS {
        let frame = ws.next_event().await;
        let event = &frame["payload"];
        if event["type"] != "permission:requested" {
            continue;
        }
        seen += 1;
        let path = format!(
            "/api/permissions/{}/decision",
            event["permissionId"].as_str().unwrap()
        );
        let body = if b == 0 {
            json!({"behavior": "allow", "updatedInput": {"command": "make deploy --dry-run"}})
        } else {
            json!({"behavior": "deny", "message": format!("browser {b} says no")})
        };
        let at = at.clone();
        decisions.push(tokio::spawn(async move {
            let sent = Instant::now();
            let (status, answer) = at.post(&path, body).await;
            (sent, status, answer)
        }));
    }
    for d in decisions {
        let (sent, status, answer) = d.await.unwrap();
        tried.push(Tried {
            browser: b,
            sent,
            status,
            answer,
        });
    }
    ws.close().await;
    tried
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_requests_on_three_instances_answered_by_three_browsers_at_once() {
    let redis = RedisServer::start().await;
    let mut config = support::config(Some(&redis));
    config.auth.api_keys = std::iter::once(format!("default:{AGENT_KEY}:agent"))
        .chain((0..BROWSERS).map(|b| format!("default:{}:agent", browser_key(b))))
        .collect();
    let gateways = [
        Gateway::start(config.clone()).await,
        Gateway::start(config.clone()).await,
        Gateway::start(config).await,
    ];
    let browsers: Vec<_> = (0..BROWSERS)
        .map(|b| tokio::spawn(browser(b, gateways[b].endpoint().with_key(&browser_key(b)))))
        .collect();
    // Let every browser's subscriptions be in place before the first request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hooks: Vec<_> = (0..REQUESTS)
        .map(|n| {
            let at = gateways[n % 3].endpoint().with_key(AGENT_KEY);
            tokio::spawn(async move {
                let (status, answer) = at.post("/api/hooks/claude-code", hook(n)).await;
                (status, answer, Instant::now())
            })
        })
        .collect();
    let mut by_request: HashMap<String, Vec<Tried>> = HashMap::new();
    for b in browsers {
        for t in b.await.unwrap() {
            let id = t.answer["id"]
                .as_str()
                .or(t.answer["permission"]["id"].as_str())
                .unwrap_or_else(|| panic!("{}", t.answer))
                .to_string();
            by_request.entry(id).or_default().push(t);
        }
    }
    assert_eq!(by_request.len(), REQUESTS);
    let mut winners: HashMap<String, (usize, Instant, Value)> = HashMap::new();
    for (id, tries) in &by_request {
        assert_eq!(tries.len(), BROWSERS, "every browser answered {id}");
        let won: Vec<&Tried> = tries.iter().filter(|t| t.status == 200).collect();
        assert_eq!(won.len(), 1, "exactly one decision for {id}");
        let w = won[0];
        for t in tries.iter().filter(|t| t.status != 200) {
            assert_eq!(t.status, 409, "{}", t.answer);
            assert_eq!(t.answer["permission"]["decision"], w.answer["decision"]);
        }
        assert_eq!(
            w.answer["decision"]["decidedBy"],
            format!("key#{}", w.browser + 2)
        );
        let session = w.answer["sessionId"].as_str().unwrap().to_string();
        winners.insert(session, (w.browser, w.sent, w.answer["decision"].clone()));
    }
    let mut latencies = Vec::new();
    let mut per_browser = [0; BROWSERS];
    for (n, h) in hooks.into_iter().enumerate() {
        let (status, answer, answered) = h.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        let (b, sent, decision) = &winners[&format!("perm-{n}")];
        per_browser[*b] += 1;
        let d = &answer["hookSpecificOutput"]["decision"];
        assert_eq!(
            d["behavior"], decision["behavior"],
            "hook {n} got the winner's decision"
        );
        if *b == 0 {
            assert_eq!(
                d["updatedInput"],
                json!({"command": "make deploy --dry-run"})
            );
        } else {
            assert_eq!(d["message"], format!("browser {b} says no"));
        }
        latencies.push(answered.saturating_duration_since(*sent));
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "decision to hook answer across instances, {REQUESTS} requests: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; wins per browser {per_browser:?}",
        ms(latencies[REQUESTS / 2]),
        ms(latencies[REQUESTS * 99 / 100]),
        ms(latencies[REQUESTS - 1]),
    );
    // The audit trail: one request and one decision event per session, on any instance.
    let at = gateways[2].endpoint().with_key(AGENT_KEY);
    for n in [0, REQUESTS - 1] {
        let (_, page) = at.get(&format!("/api/events/perm-{n}")).await;
        let types: Vec<&str> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "claude:PermissionRequest",
                "permission:requested",
                "permission:decided"
            ]
        );
    }
    let (_, pending) = at.get("/api/permissions?status=pending").await;
    assert_eq!(pending["permissions"], json!([]));
    for g in gateways {
        g.stop().await;
    }
}

/// `PERMISSION_RULES_FILE`: the rules in force from the start (in place of the stored ones),
/// and a file that is not rules refused by name before anything starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_file_is_in_force_from_the_start_and_a_bad_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("afw-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("rules.json");
    std::fs::write(
        &good,
        r#"{"rules": [{"id": "read", "match": "Read", "behavior": "allow"}]}"#,
    )
    .unwrap();
    let mut config = support::config(None);
    config.permissions.permission_rules_file = Some(good.clone());
    let gw = Gateway::start(config.clone()).await;
    let (_, rules) = gw.get("/api/permission-rules").await;
    assert_eq!(rules["rules"][0]["id"], "read", "{rules}");
    let hook = json!({"session_id": "rf", "transcript_path": "/t", "cwd": "/w",
        "hook_event_name": "PreToolUse", "tool_name": "Read",
        "tool_input": {"file_path": "/w/a"}, "tool_use_id": "t1"});
    let (_, v) = gw.post("/api/hooks/claude-code", hook).await;
    assert_eq!(
        v["hookSpecificOutput"]["permissionDecision"], "allow",
        "{v}"
    );
    gw.stop().await;
    for bad in [
        "not json",
        r#"{"rules": [{"match": "Read", "behavior": "perhaps"}]}"#,
    ] {
        std::fs::write(&good, bad).unwrap();
        let e = config.permissions.rules_file().unwrap_err();
        assert_eq!(e.var, "PERMISSION_RULES_FILE", "{bad}");
    }
    config.permissions.permission_rules_file = Some(dir.join("missing.json"));
    assert!(config.permissions.rules_file().is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
