//! Tenants kept apart. Each tenant other than the default one gets stores of its own (on
//! Redis its own key space, `{prefix}t:{tenant}:…`, and its own pair of pub/sub channels; on
//! the embedded store its own state) and the services built on them, made on its first
//! request and kept for the life of the instance. A credential of tenant A so cannot name
//! anything of tenant B: the ids it sends are looked up in A's stores only, where B's do not
//! exist (404, never 403).
//!
//! Everything an instance keeps of all tenants at once (the hub's subscribers, the long polls'
//! waiters, the bus) is keyed by a scoped id ([`crate::scope`]).
//!
//! A tenant's quotas (`TENANT_MAX_*`) are its services' ([`crate::service::quotas`]).

use std::sync::Arc;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::scope::{local, scope_of, tenant_of};
use crate::service::quotas::Connected;
use crate::service::waiters::Waiters;
use crate::service::{ServiceError, Services};
use crate::store::Stores;

/// One tenant's stores and the services built on them.
pub struct Tenant {
    pub stores: Stores,
    pub services: Services,
}

/// Every tenant this instance has served: the default one, built with the instance, and the
/// others, each made on first use.
pub struct Tenants {
    default: Arc<Tenant>,
    others: DashMap<Arc<str>, Arc<Tenant>>,
    config: Config,
    waiters: Arc<Waiters>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Tenants {
    pub fn new(
        default: Tenant,
        config: Config,
        waiters: Arc<Waiters>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Tenants {
        Tenants {
            default: Arc::new(default),
            others: DashMap::new(),
            config,
            waiters,
            metrics,
            shutdown,
        }
    }

    pub fn default_tenant(&self) -> &Arc<Tenant> {
        &self.default
    }

    /// The tenant named `name` (a name the credentials checked), made on its first use.
    pub fn get(&self, name: &str) -> Arc<Tenant> {
        let Some(scope) = scope_of(name) else {
            return Arc::clone(&self.default);
        };
        if let Some(t) = self.others.get(scope) {
            return Arc::clone(t.value());
        }
        let name: Arc<str> = Arc::from(scope);
        let entry = self.others.entry(Arc::clone(&name)).or_insert_with(|| {
            let stores = self.default.stores.scope.tenant(&name);
            let waiters = Arc::new(self.waiters.scoped(&name));
            let mut services = Services::build(
                &self.config,
                &stores,
                &waiters,
                &self.metrics,
                &self.shutdown,
                Some(&name),
            );
            // A client's long polls count against one allowance, whatever their tenants.
            services.wait_slots = Arc::clone(&self.default.services.wait_slots);
            tracing::info!(tenant = %name, "serving a new tenant");
            Arc::new(Tenant { stores, services })
        });
        Arc::clone(entry.value())
    }

    /// A WebSocket connection of `tenant` counted against its `TENANT_MAX_CONNECTIONS` on this
    /// instance: `None` when the tenant has no such quota (the default tenant never has),
    /// else the place it holds until dropped, or the refusal.
    pub fn connect(&self, tenant: &str) -> Result<Option<Connected>, ServiceError> {
        if scope_of(tenant).is_none() {
            return Ok(None);
        }
        self.get(tenant)
            .services
            .quotas
            .as_ref()
            .map(|q| q.connect())
            .transpose()
    }

    /// The tenant of a scoped id, and the id as that tenant knows it.
    pub fn of_scoped<'a>(&self, scoped: &'a str) -> (Arc<Tenant>, &'a str) {
        match tenant_of(scoped) {
            None => (Arc::clone(&self.default), scoped),
            Some(t) => (self.get(t), local(scoped)),
        }
    }
}
