//! Who parks a long poll: a client is its credential (the `Authorization` header) when it
//! sends one, else the address it came from ([`Arrival`]), hashed with a per-process key so no
//! credential is kept. The count per client is [`WaitSlots`]'s; past it, 429
//! `too_many_waits`.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, LazyLock};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use super::error::ApiError;
use super::serve::Arrival;
use crate::service::wait_slots::{WaitSlot, WaitSlots};

static KEY: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// The client of a request, for parking its long polls.
pub struct Waiter {
    slots: Arc<WaitSlots>,
    client: u64,
}

impl Waiter {
    /// A slot for a request that will wait (`waits`), or none for one that will not; 429
    /// `too_many_waits` when the client already holds `MAX_WAITS_PER_CLIENT`.
    pub fn park(&self, waits: bool) -> Result<Option<WaitSlot>, ApiError> {
        if !waits {
            return Ok(None);
        }
        match self.slots.take(self.client) {
            Some(slot) => Ok(Some(slot)),
            None => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_waits",
                format!(
                    "this client already has {} long polls waiting (MAX_WAITS_PER_CLIENT); \
                     let one answer first",
                    self.slots.max()
                ),
            )
            .retry_after(1)),
        }
    }
}

impl<S> FromRequestParts<S> for Waiter
where
    S: Send + Sync,
    Arc<WaitSlots>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let slots = Arc::<WaitSlots>::from_ref(state);
        let client = match parts.headers.get(header::AUTHORIZATION) {
            Some(c) => KEY.hash_one(("credential", c.as_bytes())),
            None => KEY.hash_one(("address", parts.extensions.get::<Arrival>().map(|a| a.peer))),
        };
        Ok(Waiter { slots, client })
    }
}
