//! Sessions: created explicitly or by their first event, updated field by field, listed
//! newest first through an index (never by scanning keys), deleted with everything they own.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::session::{Fields, Session, SessionPage, SessionQuery};
use crate::time::Now;

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Creates a session from `fields` (which carry `id`, `status` and the timestamps);
    /// [`StoreError::Exists`] when the id is taken. Starts the session's stream (a new epoch).
    async fn create_session(
        &self,
        id: &str,
        fields: Fields,
        now: &Now,
    ) -> Result<Session, StoreError>;

    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError>;

    /// Writes exactly `fields` (nothing else is read or rewritten) and renews the TTLs.
    /// `None` when the session does not exist.
    async fn update_session(&self, id: &str, fields: Fields)
        -> Result<Option<Session>, StoreError>;

    /// Gives the session a TTL of its own from now on (its events and chains too): applied
    /// now and by every renewal after. `None` when the session does not exist.
    async fn extend_session(
        &self,
        id: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Session>, StoreError>;

    /// Removes the session, its events, chains and queues, and tells every instance's
    /// subscribers. `false` when there was nothing to delete.
    async fn delete_session(&self, id: &str) -> Result<bool, StoreError>;

    /// Sessions newest first, filtered, one page at a time.
    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError>;
}

/// Walks a newest-first index from `cursor`, keeping sessions that match, until a page is
/// full. Shared by both stores so paging means the same thing on each. `fetch` returns the
/// next index members after the given one (exclusive) with their sessions, `None` for
/// members whose session is gone.
pub(crate) async fn page_sessions<F, Fut>(
    query: &SessionQuery,
    mut fetch: F,
) -> Result<SessionPage, StoreError>
where
    F: FnMut(Option<String>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(String, Option<Session>)>, StoreError>>,
{
    let limit = query.limit.max(1);
    let batch = (limit + 1).max(100);
    let mut cursor = query.cursor.clone();
    let mut page = SessionPage::default();
    loop {
        let rows = fetch(cursor.clone(), batch).await?;
        let exhausted = rows.len() < batch;
        for (member, session) in rows {
            cursor = Some(member.clone());
            let Some(session) = session else { continue };
            if !query.matches(&session) {
                continue;
            }
            if page.sessions.len() == limit {
                // One more match exists beyond the page: the page ends at the previous one.
                return Ok(page);
            }
            page.sessions.push((&session).into());
            page.next_cursor = Some(member);
        }
        if exhausted {
            page.next_cursor = None;
            return Ok(page);
        }
    }
}

/// The session id of a listing index member (`"{ms}:{id}"`).
pub(crate) fn member_id(member: &str) -> &str {
    member.split_once(':').map(|(_, id)| id).unwrap_or_default()
}

/// Reads a stored session's fields, or says they are corrupt.
pub(crate) fn decode(
    fields: &std::collections::HashMap<String, String>,
) -> Result<Session, StoreError> {
    Session::from_fields(fields).map_err(StoreError::Corrupt)
}
