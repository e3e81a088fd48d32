//! Events: the rules that turn a posted body into something storable ([`draft_event`]), what
//! the store answers for an append, the shape of a read, and when a client can resume.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;

use super::json::{push_key, ObjectProblem, RawObject};
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
    /// The client gave the `eventId` (a retry can repeat it), so the store marks it for the
    /// dedup window; one the gateway made up needs no marker.
    pub event_id_given: bool,
    pub json_head: String,
    /// The whole body, parsed, when it is a chain or step event (the chain state machine
    /// reads it); taken by the service before the draft is stored.
    pub chain: Option<Value>,
    /// What a `session:started` event says about its session (`user`, `cwd`, `hostname`,
    /// `platform`, as strings): it fills the session's fields that are still missing.
    pub session_info: Vec<(&'static str, String)>,
    /// The usage the event reports, counted in the step that stores it.
    pub usage: Option<super::usage::UsageDraft>,
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

/// Checks a string member: an id field (`…Id`) by the one id rule, any other by its length.
fn check_string<'a>(
    obj: &RawObject<'a>,
    key: &str,
    max: usize,
    required: bool,
    problems: &mut Vec<FieldProblem>,
    prefix: &str,
) -> Option<Cow<'a, str>> {
    let field = || format!("{prefix}{key}");
    match obj.str(key) {
        Ok(None) if required => problems.push(FieldProblem::new(field(), "is required")),
        Ok(None) => {}
        Ok(Some(s)) if key.ends_with("Id") => match super::check_id(&field(), &s, max) {
            Ok(()) => return Some(s),
            Err(p) => problems.push(p),
        },
        Ok(Some(s)) => {
            let n = s.chars().count();
            if n > 0 && n <= max {
                return Some(s);
            }
            problems.push(FieldProblem::new(
                field(),
                format!("must be 1-{max} characters"),
            ));
        }
        Err(_) => problems.push(FieldProblem::new(field(), "must be a string")),
    }
    None
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

/// Writes a JSON object member by member.
struct ObjectWriter {
    out: String,
    empty: bool,
}

impl ObjectWriter {
    fn raw(&mut self, key: &str, value: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        push_key(&mut self.out, key);
        self.out.push_str(value);
    }

    fn string(&mut self, key: &str, value: &str) {
        let v = serde_json::to_string(value).expect("a string serializes");
        self.raw(key, &v);
    }
}

/// Turns a posted event into a draft, or says every way it is wrong. `prefix` names the
/// event's place in a batch (`events[3].`) in the problems it reports.
///
/// The body is stored as it came: its members in their order, each value byte for byte. The
/// gateway only adds what it owns: `receivedAt` and `seq` (a client's are replaced), and an
/// `eventId`, `timestamp` or `correlationId` the body leaves out (or gives as null).
pub fn draft_event(
    raw: &RawValue,
    ctx: &EventContext,
    prefix: &str,
) -> Result<EventDraft, Vec<FieldProblem>> {
    let obj = match RawObject::parse(raw) {
        Ok(obj) => obj,
        Err(ObjectProblem::NotAnObject) => {
            return Err(vec![FieldProblem::new(
                if prefix.is_empty() {
                    "body"
                } else {
                    prefix.trim_end_matches('.')
                },
                "must be a JSON object",
            )])
        }
        Err(ObjectProblem::Duplicate(key)) => {
            return Err(vec![FieldProblem::new(
                format!("{prefix}{key}"),
                "appears more than once",
            )])
        }
    };
    let mut problems = Vec::new();
    let session_id = check_string(
        &obj,
        "sessionId",
        MAX_SESSION_ID_CHARS,
        true,
        &mut problems,
        prefix,
    );
    let kind = check_string(
        &obj,
        "type",
        MAX_EVENT_TYPE_CHARS,
        true,
        &mut problems,
        prefix,
    );
    let event_id = check_string(
        &obj,
        "eventId",
        MAX_EVENT_ID_CHARS,
        false,
        &mut problems,
        prefix,
    );
    if let Some(k) = &kind {
        super::ag_ui::check(&obj, k, prefix, &mut problems);
    }
    // An AG-UI event's `timestamp` is a number of milliseconds: kept as it came.
    let ag_ui_time = kind
        .as_deref()
        .is_some_and(|k| super::ag_ui::numeric_timestamp(&obj, k));
    let timestamp = match obj.str("timestamp") {
        _ if ag_ui_time => None,
        Ok(None) => None,
        Ok(Some(s)) if crate::time::parse(&s).is_some() => Some(s),
        _ => {
            problems.push(FieldProblem::new(
                format!("{prefix}timestamp"),
                "must be an ISO 8601 timestamp such as 2026-01-01T00:00:00.000Z",
            ));
            None
        }
    };
    let when = timestamp.as_deref().unwrap_or(&ctx.received_at);
    let usage = super::usage::usage_draft(&obj, when, prefix).unwrap_or_else(|p| {
        problems.extend(p);
        None
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    let (Some(session_id), Some(kind)) = (session_id, kind) else {
        unreachable!("required fields were checked above")
    };
    let event_id_given = event_id.is_some();
    let event_id = match event_id {
        Some(id) => id.into_owned(),
        None => uuid::Uuid::now_v7().to_string(),
    };
    let mut w = ObjectWriter {
        out: String::with_capacity(raw.get().len() + 160),
        empty: true,
    };
    w.out.push('{');
    let mut has_correlation = false;
    for (key, value) in &obj.members {
        match key.0.as_ref() {
            // The store owns `seq`; a client's value would make a second key in the object.
            "seq" => {}
            "receivedAt" => {}
            "eventId" => w.string("eventId", &event_id),
            "timestamp" if timestamp.is_none() && !ag_ui_time => {
                w.string("timestamp", &ctx.received_at)
            }
            k => {
                has_correlation |= k == "correlationId";
                w.raw(k, value.get());
            }
        }
    }
    if obj.get("eventId").is_none() {
        w.string("eventId", &event_id);
    }
    if obj.get("timestamp").is_none() {
        w.string("timestamp", &ctx.received_at);
    }
    if let (Some(cid), false) = (&ctx.correlation_id, has_correlation) {
        w.string("correlationId", cid);
    }
    w.string("receivedAt", &ctx.received_at);
    let mut json_head = w.out;
    json_head.push_str(",\"seq\":");
    let chain = if is_chain_type(&kind) {
        Some(serde_json::from_str(raw.get()).expect("the body was read as JSON"))
    } else {
        None
    };
    let session_info = if kind == "session:started" {
        let body: Value = serde_json::from_str(raw.get()).expect("the body was read as JSON");
        super::session::session_info(&body)
    } else {
        Vec::new()
    };
    Ok(EventDraft {
        session_id: session_id.into_owned(),
        event_id,
        event_id_given,
        json_head,
        chain,
        session_info,
        usage,
    })
}

/// Whether an event of this type may move a chain (`chain:*`, `step:*`).
pub fn is_chain_type(kind: &str) -> bool {
    kind.starts_with("chain:") || kind.starts_with("step:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    fn ctx() -> EventContext {
        EventContext {
            received_at: "2026-01-01T00:00:00.000Z".into(),
            correlation_id: Some("c-1".into()),
        }
    }

    #[test]
    fn draft_completes_to_the_stored_event() {
        let d = draft_event(
            &raw(json!({"sessionId":"s","type":"t","seq":99,"x":[1]})),
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
            &raw(json!({"type": 5, "eventId": "", "timestamp": "soon"})),
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
            draft_event(&raw(json!([1])), &ctx(), "").unwrap_err()[0].field,
            "body"
        );
        let long = "x".repeat(201);
        assert!(draft_event(&raw(json!({"sessionId": long, "type": "t"})), &ctx(), "").is_err());
    }

    #[test]
    fn the_body_is_stored_as_it_came() {
        let body = r#"{"zeta":123456789012345678901234567890,"sessionId":"s","type":"t","f":1.50,"seq":3,"receivedAt":"then","alpha":{"b":1,"a":2}}"#;
        let d = draft_event(serde_json::from_str(body).unwrap(), &ctx(), "").unwrap();
        let stored = d.complete(7);
        assert!(
            stored.starts_with(r#"{"zeta":123456789012345678901234567890,"sessionId":"s","type":"t","f":1.50,"alpha":{"b":1,"a":2},"eventId":""#),
            "{stored}"
        );
        assert!(
            stored.ends_with(r#","timestamp":"2026-01-01T00:00:00.000Z","correlationId":"c-1","receivedAt":"2026-01-01T00:00:00.000Z","seq":7}"#),
            "{stored}"
        );
        let twice = r#"{"sessionId":"s","type":"t","type":"u"}"#;
        let err = draft_event(serde_json::from_str(twice).unwrap(), &ctx(), "").unwrap_err();
        assert_eq!(err[0].field, "type");
        assert!(d.chain.is_none());
        let chain = r#"{"sessionId":"s","type":"step:started","step":1}"#;
        let d = draft_event(serde_json::from_str(chain).unwrap(), &ctx(), "").unwrap();
        assert_eq!(d.chain.unwrap()["step"], 1);
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
