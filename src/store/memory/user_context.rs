//! User context in memory: per tenant and user, what `user_context.lua` keeps on Redis, with the
//! same limits and TTL.

use std::collections::{BTreeMap, HashMap, VecDeque};

use std::time::Instant;

use async_trait::async_trait;

use super::{MemoryStore, Part, OVERHEAD};
use crate::domain::user_context::{ContextChange, UserContext};
use crate::store::{StoreError, UserContextStore};
use crate::time::now_ms;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct UserContextTable {
    #[serde(with = "super::persisted::pairs")]
    by_user: HashMap<(String, String), Slot>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Slot {
    preferences: BTreeMap<String, String>,
    searches: VecDeque<String>,
    history: VecDeque<String>,
    created_at: String,
    updated_at: String,
    expires_ms: i64,
}

impl Slot {
    fn bytes(&self) -> usize {
        self.preferences
            .iter()
            .map(|(k, v)| k.len() + v.len() + OVERHEAD)
            .sum::<usize>()
            + self
                .searches
                .iter()
                .map(|s| s.len() + OVERHEAD)
                .sum::<usize>()
            + self
                .history
                .iter()
                .map(|h| h.len() + OVERHEAD)
                .sum::<usize>()
            + 4 * OVERHEAD
    }

    fn view(&self, tenant: &str, user: &str) -> UserContext {
        UserContext {
            user_id: user.to_string(),
            tenant_id: tenant.to_string(),
            preferences: self.preferences.clone(),
            recent_searches: self.searches.iter().cloned().collect(),
            session_history: self.history.iter().cloned().collect(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }
}

impl Part for UserContextTable {
    fn sweep(&mut self, _: Instant) {
        let now = now_ms();
        self.by_user.retain(|_, s| s.expires_ms > now);
    }

    fn bytes(&self) -> usize {
        self.by_user
            .iter()
            .map(|((t, u), s)| t.len() + u.len() + s.bytes())
            .sum()
    }
}

impl MemoryStore {
    fn context_ttl_ms(&self) -> i64 {
        (self.settings.services.context_ttl_secs * 1000) as i64
    }
}

/// The live context of `key`, created with its defaults when there is none.
fn live<'a>(
    by_user: &'a mut HashMap<(String, String), Slot>,
    key: (String, String),
    now_iso: &str,
    ttl: i64,
) -> &'a mut Slot {
    let now = now_ms();
    let slot = by_user.entry(key).or_insert_with(|| Slot::fresh("", 0));
    if slot.expires_ms <= now {
        *slot = Slot::fresh(now_iso, now + ttl);
    }
    slot
}

impl Slot {
    /// A context with its defaults, made at `now_iso`.
    fn fresh(now_iso: &str, expires_ms: i64) -> Slot {
        Slot {
            preferences: BTreeMap::new(),
            searches: VecDeque::new(),
            history: VecDeque::new(),
            created_at: now_iso.to_string(),
            updated_at: now_iso.to_string(),
            expires_ms,
        }
    }
}

#[async_trait]
impl UserContextStore for MemoryStore {
    async fn context(
        &self,
        tenant: &str,
        user: &str,
        now_iso: &str,
    ) -> Result<UserContext, StoreError> {
        // A read stores nothing: a context that is not there (or expired) is the default.
        let state = self.state.lock();
        let key = (tenant.to_string(), user.to_string());
        match state.user_contexts.by_user.get(&key) {
            Some(slot) if slot.expires_ms > now_ms() => Ok(slot.view(tenant, user)),
            _ => Ok(Slot::fresh(now_iso, 0).view(tenant, user)),
        }
    }

    async fn update_context(
        &self,
        tenant: &str,
        user: &str,
        change: &ContextChange,
        now_iso: &str,
    ) -> Result<Option<UserContext>, StoreError> {
        let s = &self.settings.services;
        let ttl = self.context_ttl_ms();
        let mut state = self.state.lock();
        let adds: usize = change
            .preferences
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, String::len) + OVERHEAD)
            .sum::<usize>()
            + change.search.as_ref().map_or(0, |x| x.len() + OVERHEAD)
            + change.history.as_ref().map_or(0, |x| x.len() + OVERHEAD);
        self.admit(&mut state, adds + 4 * OVERHEAD)?;
        let slot = live(
            &mut state.user_contexts.by_user,
            (tenant.to_string(), user.to_string()),
            now_iso,
            ttl,
        );
        let mut count = slot.preferences.len() as i64;
        for (k, v) in &change.preferences {
            match (v.is_some(), slot.preferences.contains_key(k)) {
                (true, false) => count += 1,
                (false, true) => count -= 1,
                _ => {}
            }
        }
        if count > s.context_max_preferences as i64 {
            return Ok(None);
        }
        for (k, v) in &change.preferences {
            match v {
                Some(v) => slot.preferences.insert(k.clone(), v.clone()),
                None => slot.preferences.remove(k),
            };
        }
        if let Some(search) = &change.search {
            slot.searches.retain(|x| x != search);
            slot.searches.push_front(search.clone());
            slot.searches.truncate(s.recent_searches_limit);
        }
        if let Some(h) = &change.history {
            slot.history.push_front(h.clone());
            slot.history.truncate(s.session_history_limit);
        }
        slot.updated_at = now_iso.to_string();
        slot.expires_ms = now_ms() + ttl;
        Ok(Some(slot.view(tenant, user)))
    }

    async fn delete_context(&self, tenant: &str, user: &str) -> Result<bool, StoreError> {
        let mut state = self.state.lock();
        let now = now_ms();
        Ok(state
            .user_contexts
            .by_user
            .remove(&(tenant.to_string(), user.to_string()))
            .is_some_and(|s| s.expires_ms > now))
    }
}
