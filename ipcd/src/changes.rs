//! Changes to the set of objects — create, delete, the end of a session — run
//! in phases so that the registry lock is never held across a disk sync or the
//! making of a kernel object, and one save covers every change made meanwhile
//! (group commit). Reads (stat, open, list, operations) wait only for the
//! short registry steps, never for the disk. Changes block their thread, so
//! sessions run them on blocking threads, at most [`MAX_CHANGES_AT_ONCE`] at
//! a time ([`Store::permit`]).
//!
//! A create:
//! 1. under the lock: every check (the address free and no change to it in
//!    flight, the owner's object count and shares counting the creates in
//!    flight), then the address is reserved;
//! 2. the intent is made durable in a slot of its own (`intent::Journal`);
//! 3. the kind makes the kernel object, without the lock (the name is reserved);
//! 4. under the lock: the object is registered, at a new generation;
//! 5. that generation is made durable ([`Store::commit`]): whoever holds the
//!    commit lock while its generation is not yet on disk saves a fresh
//!    snapshot, which covers every change up to it, so those queued behind
//!    find theirs already durable;
//! 6. the intent is blanked and the address freed. If the save fails, the
//!    create alone is undone (object and kernel object removed) and the
//!    answer names the disk.
//!
//! A delete marks the address in flight, makes its intent durable, takes the
//! object out, commits, then removes the kernel object; a failed save puts the
//! object back. The end of a session removes its session objects under the
//! lock (kernel objects too, so no snapshot lacks an object whose kernel object
//! is still there) and commits after; those records are discarded at start anyway.
//!
//! Crash consistency: an object is registered only once its kernel object
//! exists, so no snapshot lists an object that is not there; and a kernel
//! object absent from a snapshot (made but not registered, or taken out but
//! not yet removed) always has a durable intent, which the next start finishes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use protocol::{Address, CreateSpec, ObjectInfo};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{error, info, warn};

use crate::budget::Quota;
use crate::config::Tunables;
use crate::error::RequestError;
use crate::intent::{Intent, Journal, Slot};
use crate::kinds::{self, Namespace};
use crate::peer::{Peer, SessionId};
use crate::registry::{Registry, disk_error};
use crate::systemd::Setup;

/// Most changes run at once (each on a blocking thread, with a journal slot);
/// more wait, in order of arrival, for a permit without holding a thread.
/// Fewer than `intent::SLOTS`, so a change with a permit never waits for a
/// slot. Enough to fill the group commits: on the benchmark machine (2 vCPUs,
/// `loadgen`) 16, 32 and 128 gave the same throughput, bounded by the disk's
/// flushes; more only adds threads.
pub const MAX_CHANGES_AT_ONCE: usize = 32;

/// Most changes one uid may have running or queued for a permit at once; its
/// others wait in a line of their own. So a user creating in a loop from many
/// connections queues at most this many ahead of another user's change.
pub const MAX_CHANGES_PER_UID: usize = 4;

/// The registry behind its lock, with the journal and the group commit.
pub struct Store {
    registry: Mutex<Registry>,
    /// Signalled when a change in flight lands (its address is free again).
    landed: Condvar,
    /// The intent journal; `None` when it cannot be written (a full or
    /// read-only disk): changes are then refused, reads still served.
    journal: Option<Journal>,
    /// The commit lock, holding the generation last saved.
    saved: Mutex<u64>,
    state_dir: PathBuf,
    /// Permits to run a change ([`MAX_CHANGES_AT_ONCE`]).
    permits: Arc<Semaphore>,
    /// Per uid, permits to queue for one ([`MAX_CHANGES_PER_UID`]).
    per_uid: Mutex<HashMap<u32, Arc<Semaphore>>>,
    #[cfg(test)]
    hook: Mutex<Option<Hook>>,
}

/// Where a test may stop a change (`Store::set_hook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A create's kernel object is made, not yet registered.
    Made,
    /// A commit holds the commit lock, about to snapshot and save.
    Save,
}

#[cfg(test)]
type Hook = std::sync::Arc<dyn Fn(Stage) + Send + Sync>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("registry", &self.registry)
            .field("journal", &self.journal)
            .field("saved", &self.saved)
            .finish_non_exhaustive()
    }
}

/// A change in flight on one address; lands (freeing the address and waking
/// the changes waiting for it) when dropped.
struct InFlight<'a> {
    store: &'a Store,
    address: Address,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.store.registry().land(&self.address);
        self.store.landed.notify_all();
    }
}

/// A failed save; the commit lock stays held until the change is undone.
struct Failed<'a> {
    _saving: MutexGuard<'a, u64>,
    error: RequestError,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves the state consistent (each step is
    // a single insert or remove), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Wraps a loaded registry, with the journal in its state directory.
    pub fn new(registry: Registry) -> Self {
        let state_dir = registry.state_dir().to_owned();
        let journal = Journal::open(&state_dir)
            .inspect_err(|e| {
                error!(
                    "cannot open the intent journal in {}: {e}; serving read-only \
                     (creates and deletes are refused until ipcd restarts with room on the disk)",
                    state_dir.display()
                )
            })
            .ok();
        Store {
            registry: Mutex::new(registry),
            landed: Condvar::new(),
            journal,
            saved: Mutex::new(0),
            state_dir,
            permits: Arc::new(Semaphore::new(MAX_CHANGES_AT_ONCE)),
            per_uid: Mutex::new(HashMap::new()),
            #[cfg(test)]
            hook: Mutex::new(None),
        }
    }

    /// Loads the registry, finishes every change the journal records as
    /// interrupted, saves, and blanks the journal (see `Registry::load`).
    pub fn load(state_dir: PathBuf, ns: Namespace) -> Result<Self, String> {
        Self::load_with(state_dir, ns, Setup::default())
    }

    /// [`Store::load`] with what a service manager passed (see
    /// `Registry::load_with`).
    pub fn load_with(state_dir: PathBuf, ns: Namespace, setup: Setup) -> Result<Self, String> {
        let pending = Journal::pending(&state_dir);
        let store = Store::new(Registry::load_with(state_dir, ns, &pending, setup)?);
        if let Some(Err(e)) = store.journal.as_ref().map(Journal::reset) {
            warn!("cannot blank the intent journal: {e}");
        }
        Ok(store)
    }

    /// Waits (asynchronously, in order of arrival) until one more change of
    /// `uid`'s may queue ([`MAX_CHANGES_PER_UID`]) and then run
    /// ([`MAX_CHANGES_AT_ONCE`]); the change holds both permits while it runs.
    pub async fn permit(&self, uid: u32) -> [OwnedSemaphorePermit; 2] {
        let line = {
            let mut lines = lock(&self.per_uid);
            if lines.len() > 1024 {
                // Forget the lines nobody stands in.
                lines.retain(|_, s| Arc::strong_count(s) > 1);
            }
            lines
                .entry(uid)
                .or_insert_with(|| Arc::new(Semaphore::new(MAX_CHANGES_PER_UID)))
                .clone()
        };
        let queued = line
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let running = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        [queued, running]
    }

    /// The registry, locked. Never hold the guard across an `.await` or a sync.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// The registry, locked once no change to `address` is in flight.
    fn settled(&self, address: &Address) -> MutexGuard<'_, Registry> {
        let mut reg = self.registry();
        while reg.busy(address) {
            reg = self.landed.wait(reg).unwrap_or_else(|e| e.into_inner());
        }
        reg
    }

    /// Records `op` on `address` durably before the kernel is touched;
    /// refuses the change if that cannot be done. `owner` is the uid the
    /// kernel object may belong to besides the daemon. An object without a
    /// kernel name (a pipe) needs no record: a crash takes it with the
    /// process, so nothing can be left behind.
    fn begin(
        &self,
        op: &str,
        address: &Address,
        owner: u32,
        named: bool,
    ) -> Result<Option<Slot<'_>>, RequestError> {
        let dir = self.state_dir.display();
        let journal = self.journal.as_ref().ok_or_else(|| {
            RequestError::os(
                format!(
                    "ipcd is read-only: its state directory {dir} could not be written at start"
                ),
                nix::errno::Errno::EROFS,
            )
        })?;
        if !named {
            return Ok(None);
        }
        let intent = Intent {
            op: op.to_owned(),
            address: address.to_string(),
            uid: owner,
        };
        journal
            .begin(&intent)
            .map(Some)
            .map_err(|e| disk_error(&format!("writing the intent journal in {dir}"), &e))
    }

    /// Makes generation `generation` durable: returns at once if a save
    /// already covered it, else saves a fresh snapshot (covering every change
    /// up to it). On failure the commit lock is kept in the `Failed` until the
    /// caller has undone its change, so no later save includes it.
    fn commit(&self, generation: u64) -> Result<(), Failed<'_>> {
        let mut saved = lock(&self.saved);
        if *saved >= generation {
            return Ok(());
        }
        self.stop_at(Stage::Save);
        let snapshot = self.registry().snapshot();
        let at = snapshot.generation;
        match snapshot.save() {
            Ok(()) => {
                *saved = at;
                Ok(())
            }
            Err(e) => {
                let what = format!("saving the registry in {}", self.state_dir.display());
                Err(Failed {
                    _saving: saved,
                    error: disk_error(&what, &e),
                })
            }
        }
    }

    /// Creates (or adopts) an object owned by the caller.
    pub fn create(
        &self,
        address: Address,
        spec: &CreateSpec,
        peer: &Peer,
        session: SessionId,
        tunables: &Tunables,
        quota: &Quota,
    ) -> Result<ObjectInfo, RequestError> {
        let planned = self
            .settled(&address)
            .plan_create(address, spec, peer, tunables, quota)?;
        let address = planned.address.clone();
        let flight = InFlight {
            store: self,
            address: address.clone(),
        };
        // An adopted object is the caller's: undoing or recovering an adopt
        // forgets it, never removes it.
        let op = if spec.adopt { "adopt" } else { "create" };
        let named = planned.kernel_name.is_some();
        let slot = self.begin(op, &address, peer.uid, named)?;
        let handle = kinds::module(address.kind).create(&planned.args(spec, peer, tunables))?;
        self.stop_at(Stage::Made);
        let (info, generation) = self
            .registry()
            .register(planned, handle, spec, peer, session);
        if let Err(failed) = self.commit(generation) {
            let (obj, _) = self.registry().take(&address);
            if let Some(obj) = obj
                && !spec.adopt
            {
                let _ = obj.remove();
            }
            return Err(failed.error);
        }
        drop((slot, flight));
        info!(%address, uid = peer.uid, pid = peer.pid, "created");
        info
    }

    /// Removes an object the caller owns, and its kernel object.
    ///
    /// Success means the registry without it is on disk; if that cannot be
    /// made durable the object stays, untouched, and the error names the disk.
    pub fn delete(&self, address: &Address, peer: &Peer) -> Result<(), RequestError> {
        let (owner, named) = self.settled(address).plan_delete(address, peer)?;
        let flight = InFlight {
            store: self,
            address: address.clone(),
        };
        let slot = self.begin("delete", address, owner, named)?;
        let (obj, generation) = self.registry().take(address);
        let obj = obj.expect("a change in flight keeps its object");
        if let Err(failed) = self.commit(generation) {
            self.registry().put(obj);
            return Err(failed.error);
        }
        info!(%address, uid = peer.uid, "deleted");
        let removed = obj.remove();
        drop((slot, flight));
        removed
    }

    /// Whether `session` has objects of `session` lifetime (or a change in
    /// flight on one): only then may [`Store::end_session`] wait on the disk.
    pub fn session_has_objects(&self, session: SessionId) -> bool {
        self.registry().session_has_objects(session)
    }

    /// Removes every object of `session` lifetime created by `session`; returns how many.
    pub fn end_session(&self, session: SessionId) -> usize {
        let mut reg = self.registry();
        while reg.session_busy(session) {
            reg = self.landed.wait(reg).unwrap_or_else(|e| e.into_inner());
        }
        let (removed, generation) = reg.end_session(session);
        drop(reg);
        if removed > 0
            && let Err(failed) = self.commit(generation)
        {
            warn!("{}", failed.error);
        }
        removed
    }

    /// Makes a change of a kind's saved state durable (an event set or
    /// cleared), with the group commit the changes of objects use.
    pub fn save_state(&self) -> Result<(), RequestError> {
        let generation = self.registry().state_changed();
        self.commit(generation).map_err(|failed| failed.error)
    }

    /// Saves the registry as it is now, whatever was saved before (at shutdown:
    /// kind state such as a segment's size changes without a change of generation).
    pub fn save_now(&self) -> std::io::Result<()> {
        let mut saved = lock(&self.saved);
        let snapshot = self.registry().snapshot();
        let at = snapshot.generation;
        snapshot.save()?;
        *saved = at;
        Ok(())
    }

    /// Calls the test hook, if any, at `stage`.
    fn stop_at(&self, _stage: Stage) {
        #[cfg(test)]
        {
            let hook = lock(&self.hook).clone();
            if let Some(hook) = hook {
                hook(_stage);
            }
        }
    }

    /// Makes every change call `hook` at each [`Stage`] (tests only).
    #[cfg(test)]
    pub fn set_hook(&self, hook: impl Fn(Stage) + Send + Sync + 'static) {
        *lock(&self.hook) = Some(std::sync::Arc::new(hook));
    }
}
