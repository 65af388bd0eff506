//! State shared by every session: configuration, the registry and counters.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard, OnceLock, RwLock};
use std::time::Instant;

use protocol::{Counters, Limits, StatusInfo, UsageInfo};

use crate::bound::Catcher;
use crate::budget::{Granted, Ledger, Quota};
use crate::changes::Store;
use crate::config::{Config, Tunables};
use crate::error::RequestError;
use crate::peer::Peer;
use crate::registry::Registry;

/// Counters since start, updated without locks.
#[derive(Debug, Default)]
pub struct AtomicCounters {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Requests answered with an error.
    pub errors: AtomicU64,
    /// Objects created or adopted.
    pub created: AtomicU64,
    /// Objects deleted.
    pub deleted: AtomicU64,
    /// Descriptors handed out.
    pub capabilities: AtomicU64,
}

impl AtomicCounters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Counters {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            connections: g(&self.connections),
            requests: g(&self.requests),
            errors: g(&self.errors),
            created: g(&self.created),
            deleted: g(&self.deleted),
            capabilities: g(&self.capabilities),
        }
    }
}

/// Everything sessions share. Locks are taken per unit of work and never held
/// across an `.await` or a disk sync.
#[derive(Debug)]
pub struct Shared {
    /// Paths and prefix, fixed for the daemon's life.
    pub config: Config,
    tunables: RwLock<Tunables>,
    store: Store,
    /// Counters since start.
    pub counters: AtomicCounters,
    /// Connections open now.
    pub sessions: AtomicU32,
    /// Per-uid counts of connections, handshakes and waits.
    pub ledger: Arc<Ledger>,
    /// What the system granted at start (open files, queue bytes).
    pub granted: Granted,
    next_session: AtomicU64,
    started: Instant,
    /// What catches real signals for the channels bound to them (set by the
    /// binary; none when the library runs embedded).
    catcher: OnceLock<Arc<dyn Catcher>>,
}

impl Shared {
    /// Builds the shared state around a loaded registry.
    pub fn new(config: Config, store: Store, granted: Granted) -> Self {
        let tunables = RwLock::new(config.tunables.clone());
        Shared {
            config,
            tunables,
            store,
            counters: AtomicCounters::default(),
            sessions: AtomicU32::new(0),
            ledger: Arc::new(Ledger::default()),
            granted,
            next_session: AtomicU64::new(1),
            started: Instant::now(),
            catcher: OnceLock::new(),
        }
    }

    /// The registry, locked. Never hold the guard across an `.await`.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.store.registry()
    }

    /// Where changes (create, delete, the end of a session) are made; they
    /// may wait on the disk, so call them off the async workers.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The limits in force now.
    pub fn limits(&self) -> Limits {
        // Read in place: every request asks, and the tunables hold strings.
        self.tunables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .limits
    }

    /// The tunables in force now.
    pub fn tunables(&self) -> Tunables {
        self.tunables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the tunables (on SIGHUP); returns the old ones.
    pub fn set_tunables(&self, new: Tunables) -> Tunables {
        let mut guard = self.tunables.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *guard, new)
    }

    /// Whether `peer` is exempt from per-uid shares: root or the daemon's own uid.
    pub fn privileged(&self, peer: &Peer) -> bool {
        peer.is_root() || peer.uid == self.granted.daemon_uid
    }

    /// What `peer`'s uid may still take, for the registry's checks.
    pub fn quota(&self, peer: &Peer) -> Quota {
        let t = self.tunables.read().unwrap_or_else(|e| e.into_inner());
        Quota {
            privileged: self.privileged(peer),
            shares: t.budgets.shares(&self.granted, t.limits.max_connections),
            wait_fds: u64::from(self.ledger.waits_of(peer.uid)),
            mq_budget: self.granted.mq_bytes,
            shm_budget: t.budgets.shm_budget_bytes,
            queue_budget: t.budgets.queue_budget_bytes,
        }
    }

    /// What `peer`'s uid holds, against its shares.
    pub fn usage(&self, peer: &Peer) -> UsageInfo {
        let t = self.tunables();
        let shares = t.budgets.shares(&self.granted, t.limits.max_connections);
        let privileged = self.privileged(peer);
        let cap = |share: u64| if privileged { u64::MAX } else { share };
        let held = self.registry().held_by(peer.uid);
        let waits = u64::from(self.ledger.waits_of(peer.uid));
        UsageInfo {
            uid: peer.uid,
            privileged,
            connections: u64::from(self.ledger.connections_of(peer.uid)),
            max_connections: cap(u64::from(t.budgets.max_connections_per_uid)),
            objects: held.objects,
            max_objects: u64::from(t.limits.max_objects_per_uid),
            fds: held.fds + waits,
            max_fds: cap(shares.fds),
            waits,
            max_waits: cap(u64::from(shares.waits)),
            mq_bytes: held.mq_bytes,
            max_mq_bytes: cap(shares.mq_bytes),
            mq_budget_bytes: self.granted.mq_bytes,
            nofile: self.granted.nofile,
        }
    }

    /// Sets what catches real signals; only the first call counts.
    pub fn set_catcher(&self, catcher: Arc<dyn Catcher>) {
        let _ = self.catcher.set(catcher);
    }

    /// Makes ipcd catch the real signal `signal` (for a channel bound to it).
    pub fn catch(&self, signal: i32) -> Result<(), RequestError> {
        let Some(catcher) = self.catcher.get() else {
            return Err(RequestError::InvalidArgument(
                "this ipcd does not catch signals (it runs embedded, without a signal \
                 catcher), so no channel can be bound to one"
                    .into(),
            ));
        };
        catcher.catch(signal).map_err(|e| {
            RequestError::InvalidArgument(format!(
                "cannot catch {}: {e}",
                protocol::kinds::signal::signal_name(signal)
            ))
        })
    }

    /// A fresh session id.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Daemon status for `Request::Status`.
    pub fn status(&self) -> StatusInfo {
        StatusInfo {
            server: server_name(),
            pid: std::process::id() as i32,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            socket: self.config.socket_path.display().to_string(),
            prefix: self.config.prefix.clone(),
            objects: self.registry().len() as u32,
            sessions: self.sessions.load(Ordering::Relaxed),
            counters: self.counters.snapshot(),
            limits: self.limits(),
        }
    }
}

/// `ipcd <version>`.
pub fn server_name() -> String {
    format!("ipcd {}", env!("CARGO_PKG_VERSION"))
}
