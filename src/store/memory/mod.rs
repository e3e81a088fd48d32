//! The embedded store: everything in this process, for one instance and for development.
//! Same semantics as Redis, including TTLs (checked on access and swept periodically), the
//! per-session cap and the dedup window.
//!
//! One mutex guards one `State` made of each service's part (sessions with their streams,
//! queues, chains), so a step that spans parts (an append that creates its session, a delete
//! that takes the session's queues and chains with it) is as atomic as a Redis script. It is
//! never held across an `.await`, and bus publishes happen under it, so the bus order is the
//! seq order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Bus, Snapshot, StoreError, StoreHealth, StoreSettings, Stores, TenantStores};
use crate::bus::{BusMessage, BUS_CAPACITY};

mod cache;
mod chains;
mod control;
mod events;
mod instances;
mod job_queue;
mod jobs;
mod locks;
mod permissions;
mod persisted;
mod quota;
mod rate;
mod sessions;
mod snapshot;
mod usage;
mod user_context;

const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub struct MemoryStore {
    state: Mutex<State>,
    rates: rate::RateTable,
    instances: instances::InstanceTable,
    quotas: quota::QuotaTable,
    bus: broadcast::Sender<BusMessage>,
    settings: StoreSettings,
    /// The tenant whose state this is (`None`: the default tenant's); its bus messages name
    /// scoped ids.
    tenant: Option<Arc<str>>,
    /// Where another tenant's store starts its sweeper, and when it stops.
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// The other tenants' stores made from this one (for the snapshot), and the data of
    /// those the snapshot had that are not made yet.
    tenants: Mutex<Vec<Arc<MemoryStore>>>,
    unclaimed: Mutex<HashMap<String, (State, quota::Quotas)>>,
}

/// What the budget counts for each stored thing beyond its own bytes (map entries, headers).
pub(super) const OVERHEAD: usize = 128;
/// While the budget is spent, what is stored is counted again at most this often.
const RECOUNT_EVERY: Duration = Duration::from_secs(1);

/// One service's data in the store: what expires goes by [`Part::sweep`], and what is held is
/// counted by [`Part::bytes`] for `MEMORY_STORE_MAX_BYTES`. A new service adds a part here, a
/// field of [`State`] and one line of [`State::parts`].
pub(super) trait Part {
    /// Drops whatever has expired, so memory stays bounded without reads.
    fn sweep(&mut self, now: Instant);
    /// About the bytes held (maps' entries with [`OVERHEAD`] each).
    fn bytes(&self) -> usize;
}

/// Each service's data.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct State {
    sessions: sessions::SessionTable,
    control: control::ControlTable,
    chains: chains::ChainTable,
    locks: locks::LockTable,
    permissions: permissions::PermissionTable,
    jobs: jobs::JobTable,
    caches: cache::CacheTable,
    user_contexts: user_context::UserContextTable,
    usage: usage::UsageTable,
    /// Bytes counted against `MEMORY_STORE_MAX_BYTES`: every write adds what it stores, and
    /// a recount (each sweep, and when the budget looks spent) takes off what went. So it is
    /// never below what is held.
    #[serde(skip)]
    used: usize,
    #[serde(skip)]
    counted_at: Option<Instant>,
}

impl State {
    /// Every service's part, once.
    fn parts(&mut self) -> [&mut dyn Part; 9] {
        [
            &mut self.sessions,
            &mut self.control,
            &mut self.chains,
            &mut self.locks,
            &mut self.permissions,
            &mut self.jobs,
            &mut self.caches,
            &mut self.user_contexts,
            &mut self.usage,
        ]
    }

    /// Drops whatever has expired in every part, then counts what is held.
    fn sweep(&mut self, now: Instant) {
        for part in self.parts() {
            part.sweep(now);
        }
        self.recount(now);
    }

    fn recount(&mut self, now: Instant) {
        self.used = self.parts().iter().map(|p| p.bytes()).sum();
        self.counted_at = Some(now);
    }
}

impl MemoryStore {
    /// The store, with what `MEMORY_SNAPSHOT_FILE` holds when it is set and exists (a file
    /// that cannot be read is an error: starting empty would overwrite it at shutdown).
    pub fn start(
        settings: StoreSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Stores, StoreError> {
        let path = settings.memory_snapshot_file.clone();
        let mut unclaimed = HashMap::new();
        let (mut state, mut quotas) = (State::default(), quota::Quotas::default());
        if let Some(path) = &path {
            let file = snapshot::read(path).map_err(StoreError::Corrupt)?;
            for t in file.into_iter().flat_map(|f| f.tenants) {
                match t.tenant {
                    None => (state, quotas) = (t.state, t.quotas),
                    Some(name) => {
                        unclaimed.insert(name, (t.state, t.quotas));
                    }
                }
            }
            state.recount(Instant::now());
        }
        let store = Arc::new(MemoryStore {
            state: Mutex::new(state),
            rates: rate::RateTable::default(),
            instances: Default::default(),
            quotas: quota::QuotaTable(Mutex::new(quotas)),
            bus: broadcast::channel(BUS_CAPACITY).0,
            settings,
            tenant: None,
            tasks: tasks.clone(),
            shutdown,
            tenants: Mutex::default(),
            unclaimed: Mutex::new(unclaimed),
        });
        store.sweep_periodically();
        let mut stores = Stores::of("memory", Arc::clone(&store));
        if path.is_some() {
            stores.snapshot = Some(store);
        }
        Ok(stores)
    }

    /// Drops what expired every [`SWEEP_EVERY`], until shutdown.
    fn sweep_periodically(self: &Arc<Self>) {
        let sweeper = Arc::clone(self);
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {
                        sweeper.state.lock().sweep(Instant::now());
                        sweeper.rates.sweep();
                        sweeper.quotas.sweep();
                    }
                }
            }
        });
    }

    /// Admits a write that stores about `bytes`, or refuses it with [`StoreError::Full`]
    /// when the budget would be passed (after counting again what is really held).
    fn admit(&self, state: &mut State, bytes: usize) -> Result<(), StoreError> {
        let budget = self.settings.memory_max_bytes;
        if state.used + bytes > budget {
            let now = Instant::now();
            if state.counted_at.is_none_or(|t| now - t >= RECOUNT_EVERY) {
                state.recount(now);
            }
            if state.used + bytes > budget {
                self.settings.metrics.store_full.inc();
                return Err(StoreError::Full);
            }
        }
        state.used += bytes;
        Ok(())
    }

    /// Publishes on this process's bus (call with the state locked, so bus order is store
    /// order).
    fn publish(&self, msg: BusMessage) {
        let _ = self.bus.send(msg.for_tenant(self.tenant.as_deref()));
    }
}

impl TenantStores for MemoryStore {
    /// A state of the tenant's own, with the same budget (`MEMORY_STORE_MAX_BYTES` holds for
    /// each tenant), on the same bus.
    fn tenant(&self, tenant: &Arc<str>) -> Stores {
        let (mut state, quotas) = self.unclaimed.lock().remove(&**tenant).unwrap_or_default();
        state.recount(Instant::now());
        let store = Arc::new(MemoryStore {
            state: Mutex::new(state),
            rates: rate::RateTable::default(),
            instances: Default::default(),
            quotas: quota::QuotaTable(Mutex::new(quotas)),
            bus: self.bus.clone(),
            settings: self.settings.clone(),
            tenant: Some(Arc::clone(tenant)),
            tasks: self.tasks.clone(),
            shutdown: self.shutdown.clone(),
            tenants: Mutex::default(),
            unclaimed: Mutex::default(),
        });
        store.sweep_periodically();
        self.tenants.lock().push(Arc::clone(&store));
        Stores::of("memory", store)
    }
}

impl Snapshot for MemoryStore {
    /// Every tenant's state, each under its lock while it is written (serving has stopped),
    /// and the data of tenants the snapshot had that nobody asked for since, as they were.
    fn save(&self) -> Result<String, String> {
        let Some(path) = &self.settings.memory_snapshot_file else {
            return Ok("nothing: no snapshot file".into());
        };
        let tenants = self.tenants.lock();
        let unclaimed = self.unclaimed.lock();
        let mine = (self.state.lock(), self.quotas.0.lock());
        let others: Vec<_> = tenants
            .iter()
            .map(|t| (t.tenant.as_deref(), t.state.lock(), t.quotas.0.lock()))
            .collect();
        let mut all = vec![snapshot::TenantRef {
            tenant: None,
            state: &mine.0,
            quotas: &mine.1,
        }];
        all.extend(others.iter().map(|(t, s, q)| snapshot::TenantRef {
            tenant: *t,
            state: s,
            quotas: q,
        }));
        all.extend(unclaimed.iter().map(|(t, (s, q))| snapshot::TenantRef {
            tenant: Some(t),
            state: s,
            quotas: q,
        }));
        let n = all.len();
        snapshot::write(path, all)?;
        Ok(format!("{} ({n} tenants)", path.display()))
    }
}

impl Bus for MemoryStore {
    fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.bus.subscribe()
    }
}

#[async_trait]
impl StoreHealth for MemoryStore {
    async fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}
