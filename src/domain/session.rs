//! Sessions as the API shows them and as the stores keep them: a flat map of string fields
//! (a Redis HASH), so an update touches only the fields it names.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FieldProblem;

pub const MAX_SESSION_ID_CHARS: usize = 200;

/// Session status values of the contract.
pub const SESSION_STATUSES: [&str; 5] =
    ["pending", "in_progress", "completed", "failed", "skipped"];

/// Field names of the session HASH. `_idx` is internal: the session's member in the listing index.
pub mod field {
    pub const ID: &str = "id";
    pub const USER_ID: &str = "userId";
    pub const CWD: &str = "cwd";
    pub const HOSTNAME: &str = "hostname";
    pub const PLATFORM: &str = "platform";
    pub const STATUS: &str = "status";
    pub const STARTED_AT: &str = "startedAt";
    pub const UPDATED_AT: &str = "updatedAt";
    pub const ENDED_AT: &str = "endedAt";
    pub const END_REASON: &str = "endReason";
    pub const SUMMARY: &str = "summary";
    pub const CONVERSATION_STATE: &str = "conversationState";
    pub const LAST_PROMPT: &str = "lastPrompt";
    pub const METADATA: &str = "metadata";
    pub const INDEX: &str = "_idx";
    /// The session's own TTL in seconds, once extended (`POST /api/sessions/:id/extend`).
    pub const TTL: &str = "_ttl";
    /// How many chains the session has had (kept by the chain writes).
    pub const CHAINS: &str = "_chains";
}

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub status: String,
    pub started_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_prompt: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub chains_count: u64,
}

impl Session {
    /// Reads a session back from its stored fields; `Err` says what is wrong with them.
    pub fn from_fields(fields: &HashMap<String, String>) -> Result<Session, String> {
        let get = |k: &str| fields.get(k).cloned();
        let json = |k: &str| -> Result<Option<Value>, String> {
            match fields.get(k) {
                // A field cleared by writing JSON null reads as absent.
                None => Ok(None),
                Some(s) if s == "null" => Ok(None),
                Some(s) => serde_json::from_str(s)
                    .map(Some)
                    .map_err(|e| format!("session field {k}: {e}")),
            }
        };
        let required = |k: &str| get(k).ok_or_else(|| format!("session without field {k}"));
        Ok(Session {
            id: required(field::ID)?,
            user_id: get(field::USER_ID),
            cwd: get(field::CWD),
            hostname: get(field::HOSTNAME),
            platform: get(field::PLATFORM),
            status: required(field::STATUS)?,
            started_at: required(field::STARTED_AT)?,
            updated_at: required(field::UPDATED_AT)?,
            ended_at: get(field::ENDED_AT),
            end_reason: get(field::END_REASON),
            summary: get(field::SUMMARY),
            conversation_state: get(field::CONVERSATION_STATE),
            last_prompt: json(field::LAST_PROMPT)?,
            metadata: json(field::METADATA)?,
            chains_count: fields
                .get(field::CHAINS)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        })
    }
}

/// One row of `GET /api/sessions`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    pub id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `userId` again, under the name the ActionFlows dashboard reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub updated_at: String,
    pub chains_count: u64,
}

impl From<&Session> for SessionSummary {
    fn from(s: &Session) -> Self {
        SessionSummary {
            id: s.id.clone(),
            status: s.status.clone(),
            cwd: s.cwd.clone(),
            user_id: s.user_id.clone(),
            user: s.user_id.clone(),
            started_at: s.started_at.clone(),
            ended_at: s.ended_at.clone(),
            updated_at: s.updated_at.clone(),
            chains_count: s.chains_count,
        }
    }
}

/// Filter and page of a session listing. `cursor` is the last index member of the page before.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub status: Option<String>,
    pub user_id: Option<String>,
    pub limit: usize,
    pub cursor: Option<String>,
}

impl SessionQuery {
    pub fn matches(&self, s: &Session) -> bool {
        self.status.as_ref().is_none_or(|want| *want == s.status)
            && self
                .user_id
                .as_ref()
                .is_none_or(|want| s.user_id.as_ref() == Some(want))
    }
}

#[derive(Debug, Clone, Default)]
pub struct SessionPage {
    pub sessions: Vec<SessionSummary>,
    pub next_cursor: Option<String>,
}

/// The listing index orders sessions by start time, then id: `"{startedAt ms, 13 digits}:{id}"`.
pub fn index_member(started_ms: i64, id: &str) -> String {
    format!("{:013}:{id}", started_ms.max(0))
}

/// Fields written as one step by a session update (`PATCH`) or creation.
pub type Fields = Vec<(&'static str, String)>;

/// Validates a session id taken from a path or message.
pub fn check_session_id(id: &str) -> Result<(), FieldProblem> {
    super::check_id("sessionId", id, MAX_SESSION_ID_CHARS)
}

/// The session fields a `session:started` event carries: the ActionFlows hook sends `user`,
/// `cwd`, `hostname` and `platform` (`userId` is taken too). Strings of at most 1,000
/// characters; anything else is left out.
pub fn session_info(body: &Value) -> Vec<(&'static str, String)> {
    let text = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.chars().count() <= 1000)
            .map(str::to_string)
    };
    [
        (field::USER_ID, text("userId").or_else(|| text("user"))),
        (field::CWD, text("cwd")),
        (field::HOSTNAME, text("hostname")),
        (field::PLATFORM, text("platform")),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_missing_ones_are_corrupt() {
        let fields: HashMap<String, String> = [
            (field::ID, "s"),
            (field::STATUS, "in_progress"),
            (field::STARTED_AT, "t0"),
            (field::UPDATED_AT, "t1"),
            (field::METADATA, "{\"k\":1}"),
            (field::CHAINS, "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = Session::from_fields(&fields).unwrap();
        assert_eq!(s.metadata, Some(serde_json::json!({"k": 1})));
        assert_eq!(s.chains_count, 2);
        let mut broken = fields.clone();
        broken.remove(field::STATUS);
        assert!(Session::from_fields(&broken)
            .unwrap_err()
            .contains("status"));
        assert_eq!(index_member(5, "a:b"), "0000000000005:a:b");
        assert!(check_session_id("").is_err());
        assert!(check_session_id(&"x".repeat(201)).is_err());
        assert!(check_session_id("a\u{0}b").is_err());
        assert!(check_session_id("a\r\nb").is_err());
        assert!(check_session_id("a:{b} *ü").is_ok());
    }
}
