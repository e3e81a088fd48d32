//! Loading a session for a request that needs it, and extending one.

use std::sync::Arc;

use super::ServiceError;
use crate::domain::session::{check_session_id, Session};
use crate::store::SessionStore;

#[derive(Clone)]
pub struct Sessions {
    pub store: Arc<dyn SessionStore>,
    /// The tenant's quotas (a new session must fit `TENANT_MAX_SESSIONS`).
    pub quotas: Option<Arc<super::quotas::Quotas>>,
}

impl Sessions {
    /// The session, after checking its id: [`ServiceError::Invalid`] for a malformed id,
    /// [`ServiceError::NotFound`] when there is no such session.
    pub async fn require(&self, id: &str) -> Result<Session, ServiceError> {
        check_session_id(id).map_err(ServiceError::invalid)?;
        self.store
            .get_session(id)
            .await?
            .ok_or(ServiceError::NotFound("session"))
    }

    /// Gives the session (its events and chains) a TTL of its own: `ttl_secs` from now and
    /// from every renewal after (the `extendSession` of the Node.js and Python backends).
    pub async fn extend(&self, id: &str, ttl_secs: Option<u64>) -> Result<Session, ServiceError> {
        check_session_id(id).map_err(ServiceError::invalid)?;
        let mut p = crate::domain::problems::Problems::default();
        let ttl = p.range("ttlSecs", ttl_secs, None, 1, MAX_SESSION_TTL_SECS);
        p.done().map_err(ServiceError::Invalid)?;
        if let Some(q) = &self.quotas {
            q.sessions(&[id], std::time::Duration::from_secs(ttl))
                .await?;
        }
        self.store
            .extend_session(id, std::time::Duration::from_secs(ttl))
            .await?
            .ok_or(ServiceError::NotFound("session"))
    }

    /// Counts a session about to be created against the tenant's quota.
    pub async fn admit(&self, id: &str) -> Result<(), ServiceError> {
        match &self.quotas {
            Some(q) => q.sessions(&[id], q.session_ttl).await,
            None => Ok(()),
        }
    }

    /// A deleted session leaves the tenant's quota.
    pub async fn deleted(&self, id: &str) -> Result<(), ServiceError> {
        match &self.quotas {
            Some(q) => q.session_deleted(id).await,
            None => Ok(()),
        }
    }
}

/// Longest TTL a session may be given: a year (as `SESSION_TTL_SECS`).
pub const MAX_SESSION_TTL_SECS: u64 = 365 * 24 * 3600;
