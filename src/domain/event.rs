//! Events: the rules that turn a posted body into something storable ([`draft_event`]), what
//! the store answers for an append, the shape of a read, and when a client can resume.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::session::MAX_SESSION_ID_CHARS;
use super::FieldProblem;

pub const MAX_EVENT_TYPE_CHARS: usize = 100;
pub const MAX_EVENT_ID_CHARS: usize = 200;
pub const MAX_BATCH_EVENTS: usize = 1000;
pub const MAX_READ_LIMIT: usize = 1000;

/// An event ready for the store: everything but `seq`, which only the store can assign.
///
/// `json_head` is the stored JSON object without its closing brace, ending in `"seq":`, so the
/// store finishes it with the number and `}` inside its atomic step and never re-parses it.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub session_id: String,
    pub event_id: String,
    pub json_head: String,
}

impl EventDraft {
    pub fn complete(&self, seq: u64) -> String {
        let mut s = String::with_capacity(self.json_head.len() + 21);
        s.push_str(&self.json_head);
        s.push_str(&seq.to_string());
        s.push('}');
        s
    }
}

/// What the store did with one draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub session_id: String,
    pub event_id: String,
    pub seq: u64,
    pub epoch: String,
    /// The `eventId` was already stored within the dedup window; nothing new was stored.
    pub duplicate: bool,
}

/// Where a read of a session's events starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// Events with seq greater than this, oldest first.
    After(u64),
    /// The newest n events, oldest first.
    Tail(usize),
}

/// A slice of a session's stream plus where the stream stands.
#[derive(Debug, Clone, Default)]
pub struct EventRange {
    /// Highest seq ever assigned in this epoch (0: none yet).
    pub head_seq: u64,
    /// Seq of the oldest event still stored (head_seq + 1 when none is stored).
    pub first_seq: u64,
    /// None when the session has no stream at all.
    pub epoch: Option<String>,
    /// Stored events as JSON, in seq order.
    pub events: Vec<Arc<str>>,
}

impl EventRange {
    /// The seq of the first event in `events` when they were read with `ReadFrom::After(after)`.
    pub fn start_after(&self, after: u64) -> u64 {
        after.saturating_add(1).max(self.first_seq)
    }

    /// Whether a client that has seen everything up to `since` in `epoch` can be brought up
    /// to date from what is stored.
    pub fn can_resume(&self, since: u64, epoch: Option<&str>) -> bool {
        match (&self.epoch, epoch) {
            (None, _) => since == 0,
            (Some(cur), Some(theirs)) if cur != theirs => false,
            (Some(_), _) => since <= self.head_seq && since + 1 >= self.first_seq,
        }
    }
}

/// Checks a string field: an id field (`…Id`) by the one id rule, any other by its length.
fn check_string(
    obj: &Map<String, Value>,
    key: &str,
    max: usize,
    required: bool,
    problems: &mut Vec<FieldProblem>,
    prefix: &str,
) {
    match obj.get(key) {
        None | Some(Value::Null) if !required => {}
        None | Some(Value::Null) => {
            problems.push(FieldProblem::new(format!("{prefix}{key}"), "is required"))
        }
        Some(Value::String(s)) if key.ends_with("Id") => {
            problems.extend(super::check_id(&format!("{prefix}{key}"), s, max).err());
        }
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n == 0 || n > max {
                problems.push(FieldProblem::new(
                    format!("{prefix}{key}"),
                    format!("must be 1-{max} characters"),
                ));
            }
        }
        Some(_) => problems.push(FieldProblem::new(
            format!("{prefix}{key}"),
            "must be a string",
        )),
    }
}

/// Validates the page size of a read or listing.
pub fn check_limit(limit: usize) -> Result<(), FieldProblem> {
    if limit == 0 || limit > MAX_READ_LIMIT {
        return Err(FieldProblem::new(
            "limit",
            format!("must be 1-{MAX_READ_LIMIT}"),
        ));
    }
    Ok(())
}

/// Context a request adds to each event it stores.
#[derive(Debug, Clone, Default)]
pub struct EventContext {
    pub received_at: String,
    pub correlation_id: Option<String>,
}

/// Turns a posted event into a draft, or says every way it is wrong. `prefix` names the
/// event's place in a batch (`events[3].`) in the problems it reports.
pub fn draft_event(
    value: Value,
    ctx: &EventContext,
    prefix: &str,
) -> Result<EventDraft, Vec<FieldProblem>> {
    let Value::Object(mut obj) = value else {
        return Err(vec![FieldProblem::new(
            if prefix.is_empty() {
                "body"
            } else {
                prefix.trim_end_matches('.')
            },
            "must be a JSON object",
        )]);
    };
    let mut problems = Vec::new();
    check_string(
        &obj,
        "sessionId",
        MAX_SESSION_ID_CHARS,
        true,
        &mut problems,
        prefix,
    );
    check_string(
        &obj,
        "type",
        MAX_EVENT_TYPE_CHARS,
        true,
        &mut problems,
        prefix,
    );
    check_string(
        &obj,
        "eventId",
        MAX_EVENT_ID_CHARS,
        false,
        &mut problems,
        prefix,
    );
    match obj.get("timestamp") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if crate::time::parse(s).is_some() => {}
        Some(_) => problems.push(FieldProblem::new(
            format!("{prefix}timestamp"),
            "must be an ISO 8601 timestamp such as 2026-01-01T00:00:00.000Z",
        )),
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let session_id = match obj.get("sessionId") {
        Some(Value::String(s)) => s.clone(),
        _ => unreachable!("checked above"),
    };
    let event_id = match obj.get("eventId") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            let id = uuid::Uuid::now_v7().to_string();
            obj.insert("eventId".into(), Value::String(id.clone()));
            id
        }
    };
    // The store owns `seq`; a client's value would make a second key in the stored object.
    obj.remove("seq");
    obj.insert("receivedAt".into(), Value::String(ctx.received_at.clone()));
    if matches!(obj.get("timestamp"), None | Some(Value::Null)) {
        obj.insert("timestamp".into(), Value::String(ctx.received_at.clone()));
    }
    if let Some(cid) = &ctx.correlation_id {
        obj.entry("correlationId")
            .or_insert_with(|| Value::String(cid.clone()));
    }
    let mut json_head = serde_json::to_string(&Value::Object(obj)).expect("a Value serializes");
    json_head.pop(); // the closing brace
    json_head.push_str(",\"seq\":");
    Ok(EventDraft {
        session_id,
        event_id,
        json_head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> EventContext {
        EventContext {
            received_at: "2026-01-01T00:00:00.000Z".into(),
            correlation_id: Some("c-1".into()),
        }
    }

    #[test]
    fn draft_completes_to_the_stored_event() {
        let d = draft_event(
            json!({"sessionId":"s","type":"t","seq":99,"x":[1]}),
            &ctx(),
            "",
        )
        .unwrap();
        let stored: Value = serde_json::from_str(&d.complete(7)).unwrap();
        assert_eq!(stored["seq"], 7);
        assert_eq!(stored["x"], json!([1]));
        assert_eq!(stored["timestamp"], "2026-01-01T00:00:00.000Z");
        assert_eq!(stored["correlationId"], "c-1");
        assert_eq!(stored["eventId"], d.event_id.as_str());
    }

    #[test]
    fn draft_reports_every_problem() {
        let err = draft_event(
            json!({"type": 5, "eventId": "", "timestamp": "soon"}),
            &ctx(),
            "events[2].",
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "events[2].sessionId",
                "events[2].type",
                "events[2].eventId",
                "events[2].timestamp"
            ]
        );
        assert_eq!(
            draft_event(json!([1]), &ctx(), "").unwrap_err()[0].field,
            "body"
        );
        let long = "x".repeat(201);
        assert!(draft_event(json!({"sessionId": long, "type": "t"}), &ctx(), "").is_err());
    }

    #[test]
    fn resume_rules() {
        let r = EventRange {
            head_seq: 10,
            first_seq: 6,
            epoch: Some("e1".into()),
            events: vec![],
        };
        assert!(r.can_resume(5, Some("e1")));
        assert!(r.can_resume(10, None));
        assert!(!r.can_resume(4, Some("e1")), "seq 5 was trimmed");
        assert!(!r.can_resume(11, Some("e1")));
        assert!(!r.can_resume(7, Some("e0")));
        let none = EventRange::default();
        assert!(none.can_resume(0, None));
        assert!(!none.can_resume(3, None));
    }
}
