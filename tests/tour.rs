//! The README's two-minute tour, run as written against a real gateway process: every `curl`
//! line of its shell block (with `localhost:3001` pointed at the test's gateway), each answer
//! checked against the `# {…}` comment under it, and the WebSocket side it describes (the
//! greeting, the events as they are stored, an exact resume with `since` and `epoch`, and the
//! `unsubscribed` a delete sends).

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::{GatewayProcess, WsClient};

/// The tour's shell block: the first ```sh block under "## A two-minute tour" that runs curl.
fn tour_commands() -> Vec<(String, Option<String>)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let tour = &readme[readme.find("## A two-minute tour").expect("the tour")..];
    let block = tour
        .split("```sh\n")
        .skip(1)
        .map(|b| &b[..b.find("```").unwrap()])
        .find(|b| b.contains("curl "))
        .expect("the tour's curl block");
    // Commands joined across `\` line ends, each with the `# {…}` answer under it, if any.
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let t = line.trim();
        if let Some(answer) = t.strip_prefix("# ") {
            if let Some(last) = out.last_mut() {
                last.1 = Some(answer.to_string());
            }
            continue;
        }
        // A trailing `# …` is a remark, not the command's.
        let t = t.split("  #").next().unwrap_or(t).trim();
        pending.push_str(t.trim_end_matches('\\'));
        pending.push(' ');
        if !t.ends_with('\\') {
            out.push((pending.trim().to_string(), None));
            pending.clear();
        }
    }
    out
}

/// The `"key":value` pairs of an answer comment whose value is a plain scalar, and the keys
/// whose value is elided (`…`, `[…]`, `{…}`).
fn expected(comment: &str) -> (Vec<(String, Value)>, Vec<String>) {
    let mut pairs = Vec::new();
    let mut keys = Vec::new();
    let mut rest = comment;
    while let Some(i) = rest.find('"') {
        let after = &rest[i + 1..];
        let Some(end) = after.find('"') else { break };
        let key = &after[..end];
        let tail = &after[end + 1..];
        rest = tail;
        let Some(value) = tail.strip_prefix(':') else {
            continue;
        };
        let raw: String = if let Some(v) = value.strip_prefix('"') {
            format!("\"{}\"", &v[..v.find('"').unwrap_or(0)])
        } else {
            value
                .chars()
                .take_while(|c| !matches!(c, ',' | '}' | ']'))
                .collect()
        };
        match serde_json::from_str::<Value>(&raw) {
            Ok(v) if !raw.contains('…') => pairs.push((key.to_string(), v)),
            _ => keys.push(key.to_string()),
        }
    }
    (pairs, keys)
}

/// Whether `key` is anywhere in `v` (with `value`, when given).
fn has(v: &Value, key: &str, value: Option<&Value>) -> bool {
    match v {
        Value::Object(m) => {
            m.get(key)
                .is_some_and(|found| value.is_none_or(|want| found == want))
                || m.values().any(|x| has(x, key, value))
        }
        Value::Array(a) => a.iter().any(|x| has(x, key, value)),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_runs_as_written() {
    let gw = GatewayProcess::start(&[]).await;
    let addr = gw.addr.to_string();
    let mut watcher = WsClient::connect(&gw.ws_url()).await;
    watcher.subscribe("demo", None, None).await;

    let commands = tour_commands();
    assert!(commands.len() >= 6, "{commands:?}");
    for (command, answer) in &commands {
        let command = command.replace("localhost:3001", &addr);
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{command} -w '\\n%{{http_code}}'"))
            .output()
            .expect("sh and curl (scripts/test.sh installs curl)");
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        assert!(
            out.status.success() && status.starts_with('2'),
            "`{command}` answered {status}: {body}"
        );
        let Some(answer) = answer else { continue };
        let got: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
        let (pairs, keys) = expected(answer);
        for (k, v) in &pairs {
            assert!(has(&got, k, Some(v)), "`{command}`: no {k}={v} in {got}");
        }
        for k in &keys {
            assert!(has(&got, k, None), "`{command}`: no {k} in {got}");
        }
    }

    // What the watcher saw: the three events, each as `{type:"event", sessionId, seq, epoch,
    // payload}`.
    let mut epoch = Value::Null;
    for seq in 1..=3 {
        let m = watcher.next_event().await;
        assert_eq!(
            (&m["sessionId"], &m["seq"]),
            (&json!("demo"), &json!(seq)),
            "{m}"
        );
        assert_eq!(m["payload"]["seq"], seq);
        epoch = m["epoch"].clone();
    }
    // The resume: exactly the events after seq 1, then live.
    let mut back = WsClient::connect(&gw.ws_url()).await;
    let confirmed = back.subscribe("demo", Some(1), epoch.as_str()).await;
    assert_eq!(confirmed["payload"]["recovered"], true, "{confirmed}");
    for seq in 2..=3 {
        assert_eq!(back.next_event().await["seq"], seq);
    }
    // The delete ends the watch.
    let out = Command::new("curl")
        .args(["-s", "-X", "DELETE", &format!("{addr}/api/sessions/demo")])
        .output()
        .expect("curl");
    assert!(out.status.success());
    loop {
        let m = watcher.recv().await;
        if m["type"] == "unsubscribed" {
            assert_eq!(
                (&m["sessionId"], &m["reason"]),
                (&json!("demo"), &json!("deleted"))
            );
            break;
        }
    }
}
