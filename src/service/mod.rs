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
//! - [`permissions::Permissions`]: Claude Code's permission prompts: rules, holds, decisions.
//! - [`usage::Usage`]: reading usage totals.
//! - [`user_context::UserContexts`]: per-user context, changed atomically.
//! - [`waiters::Waiters`]: the long polls waiting on this instance, woken from the bus.
//! - [`wait_slots::WaitSlots`]: how many long polls each client has waiting.
//!
//! [`Services::build`] makes them all from the stores and the settings, each given what it
//! needs and nothing else.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::FieldProblem;
use crate::metrics::Metrics;
use crate::store::{StoreError, Stores};

pub mod cache;
pub mod chain_events;
pub mod chains;
pub mod control;
pub mod events;
pub mod jobs;
pub mod locks;
pub mod permissions;
pub mod quotas;
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
    /// The tenant's quota of `what` (`TENANT_MAX_*`) is spent; nothing was changed (429).
    #[error("the tenant's {what} quota ({limit}) is spent")]
    Quota { what: &'static str, limit: u64 },
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
            ServiceError::Quota { .. } => "quota",
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
            ServiceError::Quota { what, limit } => format!(
                "the tenant's quota of {limit} {what} is spent; nothing was changed"
            ),
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

/// The tenant a request's `tenantId` names, as `bound` (the credentials' tenant, if they
/// decide it) allows: absent or the same is taken, another is as unknown as any name.
pub(crate) fn bound_tenant<'a>(
    bound: Option<&'a str>,
    named: Option<&'a str>,
    what: &'static str,
) -> Result<&'a str, ServiceError> {
    match (bound, named) {
        (Some(b), None) => Ok(b),
        (Some(b), Some(n)) if b == n => Ok(b),
        (Some(_), Some(_)) => Err(ServiceError::NotFound(what)),
        (None, n) => Ok(n.unwrap_or(crate::domain::usage::DEFAULT_TENANT)),
    }
}

/// Every service of the instance, each behind one `Arc` (the HTTP edge hands them out as
/// substates).
#[derive(Clone)]
pub struct Services {
    pub sessions: Arc<sessions::Sessions>,
    pub events: Arc<events::Events>,
    pub control: Arc<control::Control>,
    pub chains: Arc<chains::Chains>,
    pub locks: Arc<locks::Locks>,
    pub jobs: Arc<jobs::Jobs>,
    pub cache: Arc<cache::Cache>,
    pub user_contexts: Arc<user_context::UserContexts>,
    pub usage: Arc<usage::Usage>,
    pub permissions: Arc<permissions::Permissions>,
    pub wait_slots: Arc<wait_slots::WaitSlots>,
    /// The tenant's quotas; `None` for the default tenant, or when none is set.
    pub quotas: Option<Arc<quotas::Quotas>>,
}

impl Services {
    /// Builds each service from the stores it uses and its part of the settings. `tenant`:
    /// the tenant whose data these are when credentials decide it (so a `tenantId` in a
    /// request or an event names it or nothing); `None` on a gateway without credentials,
    /// where `tenantId` is a label the data chooses.
    pub fn build(
        config: &Config,
        stores: &Stores,
        waiters: &Arc<waiters::Waiters>,
        metrics: &Arc<Metrics>,
        shutdown: &CancellationToken,
        tenant: Option<&str>,
    ) -> Services {
        let quotas = tenant
            .filter(|t| crate::scope::scope_of(t).is_some() && config.quotas.any())
            .map(|_| {
                Arc::new(quotas::Quotas::new(
                    Arc::clone(&stores.quotas),
                    config.quotas.clone(),
                    Duration::from_secs(config.events.session_ttl_secs),
                    Arc::clone(metrics),
                ))
            });
        let tenant: Option<Arc<str>> = tenant.map(Arc::from);
        let s = &config.services;
        let sessions = sessions::Sessions {
            store: Arc::clone(&stores.sessions),
            quotas: quotas.clone(),
        };
        let chains = chains::Chains {
            store: Arc::clone(&stores.chains),
            ttl: Duration::from_secs(config.events.session_ttl_secs),
            stale_after: Duration::from_secs(config.chains.chain_stale_secs),
            limits: config.chain_limits(),
            metrics: Arc::clone(metrics),
        };
        let events = events::Events {
            store: Arc::clone(&stores.events),
            sessions: Arc::clone(&stores.sessions),
            chains: chains.clone(),
            metrics: Arc::clone(metrics),
            max_event_bytes: config.events.max_event_bytes,
            tenant: tenant.clone(),
            quotas: quotas.clone(),
        };
        let control = control::Control {
            store: Arc::clone(&stores.control),
            sessions: sessions.clone(),
            events: events.clone(),
            waiters: Arc::clone(waiters),
            ttl: Duration::from_secs(config.control.queue_ttl_secs),
            shutdown: shutdown.clone(),
            metrics: Arc::clone(metrics),
        };
        let permissions = permissions::Permissions {
            store: Arc::clone(&stores.permissions),
            events: events.clone(),
            waiters: Arc::clone(waiters),
            timeout: Duration::from_secs(config.permissions.permission_timeout_secs),
            limits: config.permissions.limits(),
            shutdown: shutdown.clone(),
        };
        let locks = locks::Locks {
            store: Arc::clone(&stores.locks),
            waiters: Arc::clone(waiters),
            limits: s.lock_limits(),
            shutdown: shutdown.clone(),
        };
        let jobs = jobs::Jobs {
            store: Arc::clone(&stores.jobs),
            waiters: Arc::clone(waiters),
            limits: s.job_limits(),
            shutdown: shutdown.clone(),
        };
        let cache = cache::Cache {
            store: Arc::clone(&stores.cache),
            limits: s.cache_limits(),
            quotas: quotas.clone(),
        };
        let user_contexts = user_context::UserContexts {
            store: Arc::clone(&stores.user_contexts),
            value_max: s.context_value_max_bytes,
            tenant: tenant.clone(),
        };
        let usage = usage::Usage {
            store: Arc::clone(&stores.usage),
            tenant,
        };
        Services {
            sessions: Arc::new(sessions),
            events: Arc::new(events),
            control: Arc::new(control),
            chains: Arc::new(chains),
            locks: Arc::new(locks),
            jobs: Arc::new(jobs),
            cache: Arc::new(cache),
            user_contexts: Arc::new(user_contexts),
            usage: Arc::new(usage),
            permissions: Arc::new(permissions),
            wait_slots: Arc::new(wait_slots::WaitSlots::new(config.http.max_waits_per_client)),
            quotas,
        }
    }
}
