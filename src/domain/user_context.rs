//! User context (as the Redis context service kept it): per tenant and user, preferences merged field by field, recent
//! searches newest first without duplicates, and a bounded history of session events, all
//! changed in one atomic step so concurrent writers never overwrite each other.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::problems::Problems;
use super::FieldProblem;

/// The tenant of requests that name none.
pub const DEFAULT_TENANT: &str = "default";

/// A user's context as stored: preference values and history entries are JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserContext {
    pub user_id: String,
    pub tenant_id: String,
    pub preferences: BTreeMap<String, String>,
    pub recent_searches: Vec<String>,
    pub session_history: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl UserContext {
    pub fn render(&self) -> Value {
        let prefs: Map<String, Value> = self
            .preferences
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap_or(Value::Null)))
            .collect();
        let history: Vec<Value> = self
            .session_history
            .iter()
            .map(|h| serde_json::from_str(h).unwrap_or(Value::Null))
            .collect();
        json!({
            "userId": self.user_id,
            "tenantId": self.tenant_id,
            "preferences": prefs,
            "recentSearches": self.recent_searches,
            "sessionHistory": history,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        })
    }
}

/// One atomic change: preferences to set (`None` removes one), a search to put first, and a
/// session event to record (its JSON, with its timestamp).
#[derive(Debug, Clone, Default)]
pub struct ContextChange {
    pub preferences: Vec<(String, Option<String>)>,
    pub search: Option<String>,
    pub history: Option<String>,
}

/// `POST /api/context`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContextUpdate {
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    #[schema(value_type = Option<BTreeMap<String, serde_json::Value>>)]
    pub preferences: Option<BTreeMap<String, Box<RawValue>>>,
    pub add_recent_search: Option<String>,
    pub record_session_event: Option<SessionEventBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionEventBody {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[schema(value_type = Option<serde_json::Value>)]
    pub data: Option<Box<RawValue>>,
}

/// Longest recent search, in characters.
pub const MAX_SEARCH_CHARS: usize = 500;

/// Checks an update: (tenant, user, change); `value_max` bounds each preference value and
/// history entry in bytes of JSON.
pub fn check_update(
    u: ContextUpdate,
    value_max: usize,
    now_iso: &str,
) -> Result<(String, String, ContextChange), Vec<FieldProblem>> {
    let mut p = Problems::default();
    let user = p.name("userId", u.user_id.as_deref()).to_string();
    let tenant = p
        .name(
            "tenantId",
            Some(u.tenant_id.as_deref().unwrap_or(DEFAULT_TENANT)),
        )
        .to_string();
    let mut change = ContextChange::default();
    for (k, v) in u.preferences.unwrap_or_default() {
        p.name("preferences", Some(&k));
        if v.get().len() > value_max {
            p.add(
                &format!("preferences.{k}"),
                format!("must be at most {value_max} bytes of JSON"),
            );
        }
        let value = (v.get() != "null").then(|| v.get().to_string());
        change.preferences.push((k, value));
    }
    if let Some(s) = u.add_recent_search {
        let n = s.trim().chars().count();
        if n == 0 || n > MAX_SEARCH_CHARS || s.chars().any(char::is_control) {
            p.add(
                "addRecentSearch",
                format!("must be 1-{MAX_SEARCH_CHARS} characters without control characters"),
            );
        }
        change.search = Some(s.trim().to_string());
    }
    if let Some(e) = u.record_session_event {
        let kind = p
            .name("recordSessionEvent.type", e.kind.as_deref())
            .to_string();
        let data = e.data.as_ref().map_or("null", |d| d.get());
        let entry = format!(
            "{{\"type\":{},\"data\":{data},\"timestamp\":{}}}",
            serde_json::to_string(&kind).expect("a string"),
            serde_json::to_string(now_iso).expect("a string")
        );
        if entry.len() > value_max {
            p.add(
                "recordSessionEvent.data",
                format!("must be at most {value_max} bytes of JSON"),
            );
        }
        change.history = Some(entry);
    }
    p.done().map(|()| (tenant, user, change))
}
