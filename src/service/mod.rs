//! The service layer: what combines stores, called by both the HTTP handlers and the
//! WebSocket connections. Each service is a small cloneable value holding only the stores and
//! settings it needs; the HTTP edge extracts it from the app state (axum `FromRef`), so a
//! handler's signature says what it may touch.
//!
//! - [`sessions::Sessions`]: load a session or say it is not there.
//! - [`events::Events`]: append (and count, and move chains), read by time.
//! - [`control::Control`]: commands and input: queue, long-poll, acknowledge.
//! - [`chains::Chains`]: the compare-and-set loop around the chain state machine.
//! - [`cache::Cache`]: cache entries with versions and tags.
//! - [`jobs::Jobs`]: job queues with leases, retries and dead letters, and claims that wait.
//! - [`locks::Locks`]: distributed locks with fencing, and waiting for one.
//! - [`usage::Usage`]: reading usage totals.
//! - [`user_context::UserContexts`]: per-user context, changed atomically.
//! - [`waiters::Waiters`]: the long polls waiting on this instance, woken from the bus.

use crate::domain::FieldProblem;
use crate::store::StoreError;

pub mod cache;
pub mod chain_events;
pub mod chains;
pub mod control;
pub mod events;
pub mod jobs;
pub mod locks;
pub mod sessions;
pub mod usage;
pub mod user_context;
pub mod wait_slots;
pub mod waiters;

/// Why a service did not do what it was asked, by whose fault.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is invalid; nothing was changed (400, with every problem).
    #[error("invalid request: {0:?}")]
    Invalid(Vec<FieldProblem>),
    /// The named thing does not exist (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The thing to create already exists (409).
    #[error("{0} exists")]
    Exists(&'static str),
    /// The request names something that belongs to someone else (409, with every problem);
    /// nothing was changed.
    #[error("conflict: {0:?}")]
    Conflict(Vec<FieldProblem>),
    /// The change would make the named thing larger than its limit (413); nothing was changed.
    #[error("{what} would exceed {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
    /// The store failed, refused, or was contended (see [`StoreError`]).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    pub fn invalid(problem: FieldProblem) -> ServiceError {
        ServiceError::Invalid(vec![problem])
    }

    /// The stable code both edges answer with (`error` over HTTP, `code` over WebSocket).
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Invalid(_) => "validation_failed",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Exists(_)
            | ServiceError::Conflict(_)
            | ServiceError::Store(StoreError::Exists) => "conflict",
            ServiceError::TooLarge { .. } => "too_large",
            ServiceError::Store(StoreError::Unavailable(_)) => "store_unavailable",
            ServiceError::Store(StoreError::Contention(_)) => "contention",
            ServiceError::Store(StoreError::Corrupt(_)) => "internal",
            ServiceError::Store(StoreError::Full) => "store_full",
            ServiceError::Store(StoreError::QueueFull) => "queue_full",
        }
    }

    /// One public sentence: every problem of an invalid request, never a store's own text.
    pub fn message(&self) -> String {
        match self {
            ServiceError::Invalid(problems) | ServiceError::Conflict(problems) => problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.problem))
                .collect::<Vec<_>>()
                .join("; "),
            ServiceError::TooLarge { what, limit } => {
                format!("the {what} would be larger than {limit} bytes; nothing was changed")
            }
            ServiceError::NotFound(what) => format!("{what} was not found"),
            ServiceError::Exists(what) => format!("a {what} with this id exists"),
            ServiceError::Store(StoreError::Exists) => "the resource already exists".into(),
            ServiceError::Store(StoreError::Unavailable(_)) => {
                "the store did not take the request; nothing was written, retry shortly".into()
            }
            ServiceError::Store(StoreError::Contention(_)) => {
                "too many concurrent changes of the same resource; nothing was changed, retry shortly"
                    .into()
            }
            ServiceError::Store(StoreError::Corrupt(_)) => {
                "the store holds data this gateway cannot read".into()
            }
            ServiceError::Store(StoreError::Full) => {
                "the store's memory budget is spent; nothing was written, retry later".into()
            }
            ServiceError::Store(StoreError::QueueFull) => {
                "the queue holds as many items as it may; take or acknowledge some first".into()
            }
        }
    }

    /// Whether the same request may succeed shortly (the store failed or was contended).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ServiceError::Store(
                StoreError::Unavailable(_) | StoreError::Contention(_) | StoreError::Full
            )
        )
    }
}
