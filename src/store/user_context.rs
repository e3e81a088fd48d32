//! User context, one implementation for both stores: one atomic step per read or change of
//! one user's context (one Redis Cluster slot), each write renewing its TTL
//! (`CONTEXT_TTL_HOURS`).

use async_trait::async_trait;

use super::StoreError;
use crate::domain::user_context::{ContextChange, UserContext};

#[async_trait]
pub trait UserContextStore: Send + Sync + 'static {
    /// The context, or its defaults (timestamps `now_iso`) if there is none; a read stores
    /// nothing.
    async fn context(
        &self,
        tenant: &str,
        user: &str,
        now_iso: &str,
    ) -> Result<UserContext, StoreError>;

    /// Applies `change` atomically (creating the context if needed); `None`, changing
    /// nothing, when the preferences would pass `CONTEXT_MAX_PREFERENCES`.
    async fn update_context(
        &self,
        tenant: &str,
        user: &str,
        change: &ContextChange,
        now_iso: &str,
    ) -> Result<Option<UserContext>, StoreError>;

    /// Removes the context; `false` when there was none.
    async fn delete_context(&self, tenant: &str, user: &str) -> Result<bool, StoreError>;
}
