//! User context on Redis: per user a HASH of its fields and preferences and two LISTs, in
//! the user's slot and the tenant's key scope, changed only by `user_context.lua`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use redis::Value;

use super::{corrupt, script, RedisStore};
use crate::domain::user_context::{ContextChange, UserContext};
use crate::store::{StoreError, UserContextStore};

type Reply = (HashMap<String, String>, Vec<String>, Vec<String>);

fn decode(r: Reply) -> Result<UserContext, StoreError> {
    let (mut fields, recent_searches, session_history) = r;
    let mut take = |k: &str| fields.remove(k).ok_or_else(|| corrupt("context"));
    let (user_id, tenant_id, created_at, updated_at) = (
        take("userId")?,
        take("tenantId")?,
        take("createdAt")?,
        take("updatedAt")?,
    );
    let preferences: BTreeMap<String, String> = fields
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("p:")?.to_string(), v)))
        .collect();
    Ok(UserContext {
        user_id,
        tenant_id,
        preferences,
        recent_searches,
        session_history,
        created_at,
        updated_at,
    })
}

impl RedisStore {
    fn context_op(
        &self,
        op: &str,
        tenant: &str,
        user: &str,
        now_iso: &str,
    ) -> redis::ScriptInvocation<'static> {
        let keys = self.tenant_keys(tenant);
        let ttl_ms = self.settings.services.context_ttl_secs * 1000;
        let mut inv = script!("user_context.lua").prepare_invoke();
        inv.key(keys.context(user, ""))
            .key(keys.context(user, "searches"))
            .key(keys.context(user, "history"))
            .arg(op)
            .arg(ttl_ms)
            .arg(user)
            .arg(tenant)
            .arg(now_iso);
        inv
    }
}

#[async_trait]
impl UserContextStore for RedisStore {
    async fn context(
        &self,
        tenant: &str,
        user: &str,
        now_iso: &str,
    ) -> Result<UserContext, StoreError> {
        // A read writes nothing (`user_context.lua`): on the read connection.
        let r: Reply = self
            .context_op("get", tenant, user, now_iso)
            .invoke_async(&mut self.read_conn())
            .await?;
        decode(r)
    }

    async fn update_context(
        &self,
        tenant: &str,
        user: &str,
        change: &ContextChange,
        now_iso: &str,
    ) -> Result<Option<UserContext>, StoreError> {
        let s = &self.settings.services;
        let mut inv = self.context_op("update", tenant, user, now_iso);
        inv.arg(s.context_max_preferences)
            .arg(change.search.as_deref().unwrap_or(""))
            .arg(s.recent_searches_limit)
            .arg(change.history.as_deref().unwrap_or(""))
            .arg(s.session_history_limit)
            .arg(change.preferences.len());
        for (k, v) in &change.preferences {
            inv.arg(k).arg(v.as_deref().unwrap_or(""));
        }
        let r: Value = inv.invoke_async(&mut self.conn()).await?;
        if matches!(r, Value::Int(-1)) {
            return Ok(None);
        }
        let r: Reply = redis::from_redis_value(r).map_err(|_| corrupt("context"))?;
        decode(r).map(Some)
    }

    async fn delete_context(&self, tenant: &str, user: &str) -> Result<bool, StoreError> {
        let n: i64 = self
            .context_op("delete", tenant, user, "")
            .invoke_async(&mut self.conn())
            .await?;
        Ok(n > 0)
    }
}
