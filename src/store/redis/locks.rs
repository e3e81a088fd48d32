//! Locks on Redis: one HASH per lock name, changed only by the `lock_*` scripts, which read
//! Redis's own clock; a release publishes a wake-up on the control channel.

use async_trait::async_trait;
use redis::Value;

use super::{corrupt, int, script, text, RedisStore};
use crate::bus::Signal;
use crate::domain::locks::{Acquire, LockHolder};
use crate::store::{LockStore, StoreError};

/// `{owner, token, fence, exp}` from the scripts' replies, starting at `from`.
fn holder(parts: &[Value], from: usize) -> Option<LockHolder> {
    Some(LockHolder {
        owner: text(parts.get(from)?)?,
        token: text(parts.get(from + 1)?)?,
        fencing_token: int(parts.get(from + 2)?)?,
        expires_at_ms: i64::try_from(int(parts.get(from + 3)?)?).ok()?,
    })
}

impl RedisStore {
    fn fence_keep_ms(&self) -> u64 {
        self.settings.services.lock_fence_keep_secs * 1000
    }

    /// A lock script with the lock's key, and on one server the index of held locks.
    fn lock_script(
        &self,
        script: &'static redis::Script,
        name: &str,
    ) -> redis::ScriptInvocation<'static> {
        let mut inv = script.prepare_invoke();
        inv.key(self.keys.lock(name));
        if !self.keys.clustered_layout() {
            inv.key(self.keys.plain("index:locks"));
        }
        inv
    }
}

#[async_trait]
impl LockStore for RedisStore {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Acquire, StoreError> {
        let reply: Vec<Value> = self
            .lock_script(script!("lock_acquire.lua"), name)
            .arg(owner)
            .arg(token)
            .arg(ttl_ms)
            .arg(self.fence_keep_ms())
            .arg(name)
            .invoke_async(&mut self.conn())
            .await?;
        let h = holder(&reply, 1).ok_or_else(|| corrupt("lock_acquire"))?;
        match reply.first().and_then(int) {
            Some(1) => Ok(Acquire::Granted(h)),
            Some(0) => Ok(Acquire::Held(h)),
            _ => Err(corrupt("lock_acquire")),
        }
    }

    async fn extend(
        &self,
        name: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Option<LockHolder>, StoreError> {
        let reply: Option<Vec<Value>> = self
            .lock_script(script!("lock_extend.lua"), name)
            .arg(token)
            .arg(ttl_ms)
            .arg(self.fence_keep_ms())
            .arg(name)
            .invoke_async(&mut self.conn())
            .await?;
        match reply {
            None => Ok(None),
            Some(r) => holder(&r, 0)
                .map(Some)
                .ok_or_else(|| corrupt("lock_extend")),
        }
    }

    async fn release(&self, name: &str, token: &str) -> Result<bool, StoreError> {
        let released: i64 = self
            .lock_script(script!("lock_release.lua"), name)
            .arg(token)
            .arg(self.keys.control_channel())
            .arg(Signal::Lock.announcement(name))
            .arg(name)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(released == 1)
    }

    async fn lock(&self, name: &str) -> Result<(Option<LockHolder>, u64), StoreError> {
        let key = self.keys.lock(name);
        let reply: Vec<Value> = self
            .read(|mut c| {
                let key = key.clone();
                async move { script!("lock_get.lua").key(key).invoke_async(&mut c).await }
            })
            .await?;
        let h = holder(&reply, 1).ok_or_else(|| corrupt("lock_get"))?;
        let fence = h.fencing_token;
        Ok((
            reply.first().and_then(int).filter(|&v| v == 1).map(|_| h),
            fence,
        ))
    }

    async fn held_locks(&self) -> Result<Option<u64>, StoreError> {
        if self.keys.clustered_layout() {
            return Ok(None);
        }
        let key = self.keys.plain("index:locks");
        let after = format!("({}", crate::time::now_ms());
        let n: u64 = self
            .read(|mut c| {
                let (key, after) = (key.clone(), after.clone());
                async move { redis::AsyncCommands::zcount(&mut c, key, after, "+inf").await }
            })
            .await?;
        Ok(Some(n))
    }
}
