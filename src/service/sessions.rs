//! Loading a session for a request that needs it.

use std::sync::Arc;

use super::ServiceError;
use crate::domain::session::{check_session_id, Session};
use crate::store::SessionStore;

#[derive(Clone)]
pub struct Sessions {
    pub store: Arc<dyn SessionStore>,
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
}
