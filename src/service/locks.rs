//! Locks: checks a request, makes a token, and waits for a held lock without polling: a wait
//! registers for the lock's release signal (from any instance) before each attempt, and
//! otherwise sleeps until the holder's expiry, the one moment a lock frees itself unannounced.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::waiters::Waiters;
use super::ServiceError;
use crate::bus::Signal;
use crate::domain::locks::{
    check_extend, check_request, Acquire, ExtendRequest, LockHolder, LockLimits, LockRequest,
};
use crate::domain::problems::check_name;
use crate::store::LockStore;
use crate::time::now_ms;

#[derive(Clone)]
pub struct Locks {
    pub store: Arc<dyn LockStore>,
    pub waiters: Arc<Waiters>,
    pub limits: LockLimits,
    pub shutdown: CancellationToken,
}

/// Least a wait sleeps before trying again at a holder's expiry (clocks may differ a little).
const EXPIRY_SLACK: Duration = Duration::from_millis(5);

impl Locks {
    /// Takes the lock, waiting up to the request's `waitMs` while it is held.
    pub async fn acquire(&self, name: &str, r: LockRequest) -> Result<Acquire, ServiceError> {
        let (owner, ttl, wait) =
            check_request(name, &r, self.limits).map_err(ServiceError::Invalid)?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
        loop {
            let waiting = self.waiters.register_signal(Signal::Lock, name);
            let released = waiting.notify.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let held = match self.store.acquire(name, &owner, &token, ttl).await? {
                Acquire::Granted(h) => return Ok(Acquire::Granted(h)),
                Acquire::Held(h) => h,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline || self.shutdown.is_cancelled() {
                return Ok(Acquire::Held(held));
            }
            let to_expiry = u64::try_from(held.expires_at_ms - now_ms()).unwrap_or(0);
            let retry_at = (now + Duration::from_millis(to_expiry) + EXPIRY_SLACK).min(deadline);
            tokio::select! {
                _ = released => {}
                _ = tokio::time::sleep_until(retry_at) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    /// Extends a held lock; `None` when the token does not hold it.
    pub async fn extend(
        &self,
        name: &str,
        r: ExtendRequest,
    ) -> Result<Option<LockHolder>, ServiceError> {
        let (token, ttl) = check_extend(name, &r, self.limits).map_err(ServiceError::Invalid)?;
        Ok(self.store.extend(name, &token, ttl).await?)
    }

    /// Releases a held lock; `false` when the token does not hold it.
    pub async fn release(&self, name: &str, token: &str) -> Result<bool, ServiceError> {
        check_name("name", name).map_err(ServiceError::invalid)?;
        check_name("token", token).map_err(ServiceError::invalid)?;
        Ok(self.store.release(name, token).await?)
    }

    pub async fn get(&self, name: &str) -> Result<(Option<LockHolder>, u64), ServiceError> {
        check_name("name", name).map_err(ServiceError::invalid)?;
        Ok(self.store.lock(name).await?)
    }
}
