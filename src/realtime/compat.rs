//! Frames as the ActionFlows dashboard reads them (`AFW_COMPAT=actionflows`, see
//! [`super::protocol::EventFrames::Bare`]). That dashboard checks every message for `type`,
//! `sessionId` and `timestamp` (and logs any other as an invalid event), and its session
//! handlers (`useAllSessions.ts`, `useUserSessions.ts`) read a `session:*` event's session from
//! its `data`. So, computed for the frame and never stored:
//! - a `session:started`, `session:updated` or `session:ended` event without `data` gets one,
//!   the session as the shared package's `Session` has it, from the event's own fields;
//! - a chain change becomes `session:updated` with the session's `currentChain` (the chain in
//!   the shared `Chain` shape while it runs, `null` once it ended), which is what shows that
//!   dashboard's Pause, Resume and Cancel buttons;
//! - a new command, a message it has no use for, is not sent.

use serde_json::{json, Map, Value};

/// The stored event as the dashboard reads it.
pub fn event(stored: &str) -> String {
    if !stored.contains("\"session:") {
        return stored.to_string();
    }
    let Ok(Value::Object(mut e)) = serde_json::from_str::<Value>(stored) else {
        return stored.to_string();
    };
    let kind = e.get("type").and_then(Value::as_str).unwrap_or_default();
    if !matches!(
        kind,
        "session:started" | "session:updated" | "session:ended"
    ) || e.contains_key("data")
    {
        return stored.to_string();
    }
    let data = session_data(kind, &e);
    e.insert("data".into(), Value::Object(data));
    Value::Object(e).to_string()
}

/// The session a `session:*` event speaks of, from its fields (only those it has).
fn session_data(kind: &str, e: &Map<String, Value>) -> Map<String, Value> {
    let mut d = Map::new();
    let mut put = |k: &str, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            d.insert(k.into(), v.clone());
        }
    };
    put("id", e.get("sessionId"));
    let user = e.get("user").or_else(|| e.get("userId"));
    put("user", user);
    put("userId", user);
    for f in [
        "cwd", "hostname", "platform", "summary", "duration", "metadata", "status",
    ] {
        put(f, e.get(f));
    }
    match kind {
        "session:started" => put("startedAt", e.get("timestamp")),
        "session:ended" => {
            put("endedAt", e.get("timestamp"));
            put("endReason", e.get("reason").or_else(|| e.get("endReason")));
            if !d.contains_key("status") {
                d.insert("status".into(), "completed".into());
            }
        }
        _ => {}
    }
    d
}

/// A chain change as the dashboard reads it: `session:updated` with the session's
/// `currentChain`.
pub fn chain(session_id: &str, chain: &str) -> Option<String> {
    let c: Value = serde_json::from_str(chain).ok()?;
    let running = matches!(
        c["status"].as_str(),
        Some("pending" | "in_progress" | "paused")
    );
    let current = if running {
        shared_chain(&c)
    } else {
        Value::Null
    };
    let now = crate::time::Now::get().iso;
    Some(
        json!({
            "type": "session:updated", "sessionId": session_id, "timestamp": now,
            "data": {"id": session_id, "currentChain": current},
        })
        .to_string(),
    )
}

/// A chain in the shared package's `Chain` shape: its steps with `action`, `model`, `inputs`
/// and `waitsFor` (the dashboard's graph reads them all), `source` and `compiledAt`.
pub fn shared_chain(c: &Value) -> Value {
    let mut out = c.as_object().cloned().unwrap_or_default();
    let steps: Vec<Value> = c["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let mut step = s.as_object().cloned().unwrap_or_default();
            let action = s
                .get("action")
                .or_else(|| s.get("title"))
                .cloned()
                .unwrap_or_else(|| "step".into());
            step.insert("action".into(), action);
            step.entry("model").or_insert_with(|| "".into());
            step.entry("inputs").or_insert_with(|| json!({}));
            step.entry("waitsFor").or_insert_with(|| json!([]));
            Value::Object(step)
        })
        .collect();
    out.insert("steps".into(), Value::Array(steps));
    out.entry("source").or_insert_with(|| "composed".into());
    if let Some(created) = c.get("createdAt") {
        out.entry("compiledAt").or_insert_with(|| created.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_event_gets_the_session_its_handlers_read() {
        let ended = r#"{"sessionId":"s","type":"session:ended","timestamp":"T","user":"ana","reason":"done"}"#;
        let v: Value = serde_json::from_str(&event(ended)).unwrap();
        assert_eq!(
            v["data"],
            json!({"id": "s", "user": "ana", "userId": "ana", "endedAt": "T", "endReason": "done", "status": "completed"})
        );
        let other = r#"{"sessionId":"s","type":"step:spawned","stepNumber":1}"#;
        assert_eq!(event(other), other, "other events go as stored");
        let with_data = r#"{"sessionId":"s","type":"session:updated","data":{"id":"s"}}"#;
        assert_eq!(event(with_data), with_data);
    }

    #[test]
    fn a_running_chain_is_the_current_chain_and_an_ended_one_clears_it() {
        let running = r#"{"id":"c","status":"in_progress","createdAt":"T","steps":[{"stepNumber":1,"title":"build","status":"pending"}]}"#;
        let v: Value = serde_json::from_str(&chain("s", running).unwrap()).unwrap();
        assert_eq!(
            (&v["type"], &v["data"]["id"]),
            (&json!("session:updated"), &json!("s"))
        );
        let c = &v["data"]["currentChain"];
        assert_eq!(
            (&c["compiledAt"], &c["source"]),
            (&json!("T"), &json!("composed"))
        );
        assert_eq!(c["steps"][0]["action"], "build");
        assert_eq!(c["steps"][0]["waitsFor"], json!([]));
        let done = r#"{"id":"c","status":"completed","steps":[]}"#;
        let v: Value = serde_json::from_str(&chain("s", done).unwrap()).unwrap();
        assert_eq!(v["data"]["currentChain"], Value::Null);
    }
}
