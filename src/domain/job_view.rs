//! A job's state, and a job as the API shows it, written as JSON text straight from its
//! stored parts.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::time::iso_ms;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JobState {
    Waiting,
    Delayed,
    Active,
    Completed,
    Failed,
    Dead,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Delayed => "delayed",
            JobState::Active => "active",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        [
            JobState::Waiting,
            JobState::Delayed,
            JobState::Active,
            JobState::Completed,
            JobState::Failed,
            JobState::Dead,
        ]
        .into_iter()
        .find(|st| st.name() == s)
    }
}

/// A job as a store reads it back. `at_ms` is its time in its state: due (delayed, failed),
/// lease expiry (active), finished (completed, dead); 0 while waiting.
#[derive(Debug, Clone)]
pub struct JobView {
    pub id: String,
    pub fixed: Arc<str>,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_ms: i64,
    pub at_ms: i64,
    pub worker: Option<String>,
    pub token: Option<String>,
    pub errors: Arc<str>,
    pub result: Option<Arc<str>>,
}

impl JobView {
    /// The job as the API shows it; the lease token only to the claim that got it.
    pub fn render(&self, queue: &str, with_token: bool) -> Value {
        serde_json::from_str(self.raw(queue, with_token).get()).unwrap_or(Value::Null)
    }

    /// [`render`](Self::render) as JSON text, written straight from the stored JSON parts
    /// (type, data, priority and backoff; errors; result) without parsing them into values:
    /// the claim and completion answers are made of these.
    pub fn raw(&self, queue: &str, with_token: bool) -> Box<RawValue> {
        RawValue::from_string(self.text(queue, with_token, true)).unwrap_or_else(|_| {
            // A stored part that is not JSON (a key written by something else): shown without.
            RawValue::from_string(self.text(queue, with_token, false))
                .unwrap_or_else(|_| serde_json::value::to_raw_value(&()).expect("null"))
        })
    }

    fn text(&self, queue: &str, with_token: bool, stored: bool) -> String {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "null".into());
        let fixed = match self.fixed.trim().strip_suffix('}') {
            Some(head) if stored && head.starts_with('{') && head.len() > 1 => head,
            _ => "{",
        };
        let mut out = String::with_capacity(fixed.len() + 320);
        out.push_str(fixed);
        if fixed.len() > 1 {
            out.push(',');
        }
        let at = iso_ms(self.at_ms);
        let _ = write!(
            out,
            r#""id":{},"queue":{},"state":"{}","attempts":{},"maxAttempts":{},"createdAt":{}"#,
            quoted(&self.id),
            quoted(queue),
            self.state.name(),
            self.attempts,
            self.max_attempts,
            iso_ms(self.created_ms),
        );
        match self.state {
            JobState::Delayed | JobState::Failed => {
                let _ = write!(out, r#","runAt":{at}"#);
            }
            JobState::Active => {
                let worker = self.worker.as_deref().map_or("null".into(), quoted);
                let _ = write!(
                    out,
                    r#","lease":{{"workerId":{worker},"expiresAt":{at},"expiresAtMs":{}"#,
                    self.at_ms
                );
                if with_token {
                    let token = self.token.as_deref().map_or("null".into(), quoted);
                    let _ = write!(out, r#","token":{token}"#);
                }
                out.push('}');
            }
            JobState::Completed | JobState::Dead => {
                let _ = write!(out, r#","finishedAt":{at}"#);
            }
            JobState::Waiting => {}
        }
        let errors = if stored { self.errors.trim() } else { "[]" };
        let _ = write!(out, r#","errors":{errors}"#);
        match &self.result {
            Some(r) if stored => {
                let _ = write!(out, r#","result":{r}"#);
            }
            _ => {}
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(state: JobState) -> JobView {
        JobView {
            id: "j\"1".into(),
            fixed: r#"{"backoff":{"type":"fixed","delayMs":5},"data":{"to":"ada"},"priority":2,"type":"send"}"#.into(),
            state,
            attempts: 1,
            max_attempts: 3,
            created_ms: 1_764_547_200_000,
            at_ms: 1_764_547_201_500,
            worker: Some("w1".into()),
            token: Some("t1".into()),
            errors: r#"[{"attempt":1,"error":"boom","at":1}]"#.into(),
            result: Some(r#"{"sent":true}"#.into()),
        }
    }

    #[test]
    fn a_job_renders_as_json_text_with_the_fields_of_its_state() {
        let common = json!({
            "backoff": {"type": "fixed", "delayMs": 5}, "data": {"to": "ada"}, "priority": 2,
            "type": "send", "id": "j\"1", "queue": "q", "attempts": 1, "maxAttempts": 3,
            "createdAt": "2025-12-01T00:00:00.000Z",
            "errors": [{"attempt": 1, "error": "boom", "at": 1}], "result": {"sent": true},
        });
        let with = |state: &str, extra: Value| {
            let mut v = common.clone();
            v["state"] = state.into();
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        let at = "2025-12-01T00:00:01.500Z";
        let lease = json!({"workerId": "w1", "expiresAt": at, "expiresAtMs": 1_764_547_201_500i64});
        let mut leased = lease.clone();
        leased["token"] = "t1".into();
        for (state, with_token, expected) in [
            (JobState::Waiting, false, with("waiting", json!({}))),
            (
                JobState::Delayed,
                false,
                with("delayed", json!({"runAt": at})),
            ),
            (
                JobState::Failed,
                false,
                with("failed", json!({"runAt": at})),
            ),
            (
                JobState::Active,
                false,
                with("active", json!({ "lease": lease })),
            ),
            (
                JobState::Active,
                true,
                with("active", json!({ "lease": leased })),
            ),
            (
                JobState::Completed,
                false,
                with("completed", json!({"finishedAt": at})),
            ),
            (
                JobState::Dead,
                false,
                with("dead", json!({"finishedAt": at})),
            ),
        ] {
            let text = view(state).raw("q", with_token);
            let got: Value = serde_json::from_str(text.get()).unwrap();
            assert_eq!(got, expected, "{}", text.get());
            assert_eq!(view(state).render("q", with_token), expected);
        }
    }

    #[test]
    fn stored_parts_that_are_not_json_are_left_out_not_passed_on() {
        let mut v = view(JobState::Active);
        v.errors = "[{".into();
        let got: Value = serde_json::from_str(v.raw("q", true).get()).unwrap();
        assert_eq!(got["errors"], json!([]));
        assert_eq!(got["lease"]["token"], "t1");
        assert!(got.get("data").is_none() && got.get("result").is_none());
        v.fixed = "not json".into();
        v.errors = "[]".into();
        v.result = None;
        let got: Value = serde_json::from_str(v.raw("q", false).get()).unwrap();
        assert_eq!((got["id"].as_str(), got.get("type")), (Some("j\"1"), None));
    }
}
