//! The instances' figures on Redis: one HASH (`{prefix}instances`), a field per instance
//! holding `{until ms}|{figures}`; the HASH expires with its latest entry, and a summary drops
//! the fields past their time.

use std::time::Duration;

use async_trait::async_trait;

use super::RedisStore;
use crate::store::instances::InstanceStore;
use crate::store::StoreError;

#[async_trait]
impl InstanceStore for RedisStore {
    async fn report_instance(
        &self,
        id: &str,
        figures: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.keys.plain("instances");
        let until = crate::time::now_ms() + ttl.as_millis() as i64;
        let _: () = redis::pipe()
            .hset(&key, id, format!("{until}|{figures}"))
            .ignore()
            .pexpire(&key, ttl.as_millis() as i64)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn instances(&self) -> Result<Vec<String>, StoreError> {
        let key = self.keys.plain("instances");
        let all: Vec<(String, String)> = self
            .read(|mut c| {
                let key = key.clone();
                async move { redis::AsyncCommands::hgetall(&mut c, key).await }
            })
            .await?;
        let now = crate::time::now_ms();
        let (mut live, mut gone) = (Vec::new(), Vec::new());
        for (id, v) in all {
            match v.split_once('|') {
                Some((until, figures)) if until.parse::<i64>().is_ok_and(|u| u > now) => {
                    live.push((id, figures.to_string()))
                }
                _ => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: i64 = redis::AsyncCommands::hdel(&mut self.conn(), &key, gone).await?;
        }
        live.sort();
        Ok(live.into_iter().map(|(_, f)| f).collect())
    }
}
