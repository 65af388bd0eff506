//! The registry of named objects: who owns what, under which kernel name, with
//! which permissions and lifetime. Kind-blind: everything kind-specific goes
//! through `kinds::module(kind)` and the object's `KindObject`.
//!
//! Invariant: every change to the set of objects is saved to the state file
//! before the request that made it is answered. The registry itself never
//! touches the disk during a change: `changes::Store` runs creates and deletes
//! in phases around it (`registry::change` holds the phases' steps), so the
//! registry's lock is never held across a sync.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::{Access, Address, KindOp, Lifetime, ObjectInfo};
use tokio::sync::watch;
use tracing::warn;

use crate::access::{Need, Permissions};
use crate::budget::Quota;
use crate::error::RequestError;
use crate::kinds::{self, Asker, Held, KindObject, Namespace, OpAnswer};
use crate::peer::{Peer, SessionId};
use crate::persist::StoredObject;
use crate::systemd::fdstore::FdStore;

mod change;
mod companion;
mod load;

use change::Flight;
pub use change::{Planned, Snapshot};

/// One registered object.
#[derive(Debug)]
pub struct Object {
    /// Its address.
    pub address: Address,
    /// Kernel name or path, if the kind has one.
    pub kernel_name: Option<String>,
    /// Owner and permission bits.
    pub perms: Permissions,
    /// Creator's pid.
    pub creator_pid: i32,
    /// Creation time, ms since the epoch.
    pub created_at_ms: u64,
    /// The creating connection, for `session` lifetime objects.
    pub session: Option<SessionId>,
    /// Capabilities handed out since the daemon started.
    pub opens: u64,
    /// The kind's live object.
    handle: Box<dyn KindObject>,
    /// Dropped with the object: waiters on it see the channel close.
    gone: watch::Sender<()>,
}

/// A wait registered by an operation, to be driven by the session.
pub struct Waiter {
    /// The operation's own wait.
    pub wait: kinds::Pending,
    /// Its time limit.
    pub timeout: Option<std::time::Duration>,
    /// Closes when the object is removed.
    pub gone: watch::Receiver<()>,
    /// The object's address, for messages.
    pub address: Address,
    /// The operation is made; the wait only reports when it is durable
    /// (see `OpAnswer::Later`): not counted against the wait budgets.
    pub made: bool,
}

/// How a kind operation answers, as the registry hands it to dispatch.
pub enum OpResult {
    /// At once.
    Now(protocol::KindReply),
    /// Later, through a waiter.
    Later(Waiter),
}

impl Object {
    fn info(&self) -> Result<ObjectInfo, RequestError> {
        Ok(ObjectInfo {
            address: self.address.to_string(),
            kind: self.address.kind,
            kernel_name: match &self.kernel_name {
                Some(k) if self.handle.kernel_name_shown() => k.clone(),
                _ => String::new(),
            },
            owner_uid: self.perms.owner_uid,
            owner_gid: self.perms.owner_gid,
            mode: self.perms.mode,
            creator_pid: self.creator_pid,
            created_at_ms: self.created_at_ms,
            lifetime: if self.session.is_some() {
                Lifetime::Session
            } else {
                Lifetime::Persistent
            },
            opens: self.opens,
            details: self.handle.details()?,
        })
    }

    fn stored(&self) -> StoredObject {
        StoredObject {
            address: self.address.to_string(),
            kernel_name: self.kernel_name.clone(),
            owner_uid: self.perms.owner_uid,
            owner_gid: self.perms.owner_gid,
            mode: self.perms.mode,
            creator_pid: self.creator_pid,
            created_at_ms: self.created_at_ms,
            session: self.session.is_some(),
            state: self.handle.state(),
        }
    }

    /// Removes the kernel object (the registry has forgotten it).
    pub fn remove(self) -> Result<(), RequestError> {
        self.handle.remove()
    }
}

/// What one uid's objects make the daemon hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UidHolds {
    /// Objects owned.
    pub objects: u64,
    /// Descriptors held for them.
    pub fds: u64,
    /// Queue bytes charged for them.
    pub mq_bytes: u64,
    /// Shared-memory bytes their segments and rings take.
    pub shm_bytes: u64,
    /// Signal-channel subscriptions it holds, on anyone's channels.
    pub subscriptions: u64,
    /// Memory its `queue:` objects reserve.
    pub queue_bytes: u64,
}

impl UidHolds {
    /// Both holdings together.
    fn plus(self, other: UidHolds) -> UidHolds {
        UidHolds {
            objects: self.objects + other.objects,
            fds: self.fds + other.fds,
            mq_bytes: self.mq_bytes + other.mq_bytes,
            shm_bytes: self.shm_bytes + other.shm_bytes,
            subscriptions: self.subscriptions + other.subscriptions,
            queue_bytes: self.queue_bytes + other.queue_bytes,
        }
    }
}

/// All registered objects, keyed by address.
#[derive(Debug)]
pub struct Registry {
    objects: BTreeMap<Address, Object>,
    state_dir: PathBuf,
    ns: Namespace,
    /// Changes in progress, by address: creates reserve what they will hold.
    in_flight: BTreeMap<Address, Flight>,
    /// Bumped by every change to `objects`; a snapshot carries it.
    generation: u64,
    /// The daemon's effective uid: kernel objects it made belong to it.
    daemon_uid: u32,
    /// What the service manager's fd store holds for the objects (pipes).
    fdstore: FdStore,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A failed write to the state directory, naming it (and the disk, when full).
pub fn disk_error(what: &str, e: &std::io::Error) -> RequestError {
    let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let hint = if errno == nix::errno::Errno::ENOSPC {
        " (the disk is full; nothing was changed)"
    } else {
        " (nothing was changed)"
    };
    RequestError::os(format!("{what}{hint}"), errno)
}

fn denied(peer: &Peer, address: &Address, need: Need, perms: &Permissions) -> RequestError {
    RequestError::PermissionDenied(format!(
        "uid {} may not use '{address}' for {} (mode {:04o}, owner uid {})",
        peer.uid,
        need.describe(),
        perms.mode,
        perms.owner_uid
    ))
}

impl Registry {
    /// An empty registry saving to `state_dir` (nothing is loaded).
    pub fn empty(state_dir: PathBuf, ns: Namespace) -> Self {
        Registry {
            objects: BTreeMap::new(),
            state_dir,
            ns,
            in_flight: BTreeMap::new(),
            generation: 0,
            daemon_uid: nix::unistd::geteuid().as_raw(),
            fdstore: FdStore::default(),
        }
    }

    /// Writes the registry to the state file (persistent objects and session ones,
    /// so a crash lets the next start clean the latter up).
    pub fn save(&self) -> std::io::Result<()> {
        self.snapshot().save()
    }

    /// The state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    /// Number of registered objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether no object is registered.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// What the objects `uid` owns make the daemon hold, and what any
    /// object holds on behalf of `uid` (its subscriptions).
    pub fn held_by(&self, uid: u32) -> UidHolds {
        let mut h = UidHolds::default();
        for o in self.objects.values() {
            let mut held = o.handle.held_for(uid);
            if o.perms.owner_uid == uid {
                let owned = o.handle.held();
                h.objects += 1;
                held.fds += owned.fds;
                held.mq_bytes += owned.mq_bytes;
                held.shm_bytes += owned.shm_bytes;
                held.subscriptions += owned.subscriptions;
                held.queue_bytes += owned.queue_bytes;
            }
            h.fds += held.fds;
            h.mq_bytes += held.mq_bytes;
            h.shm_bytes += held.shm_bytes;
            h.subscriptions += held.subscriptions;
            h.queue_bytes += held.queue_bytes;
        }
        h
    }

    /// Whether `uid` is subject to the shared budgets (neither root nor the daemon).
    fn unprivileged(&self, uid: u32) -> bool {
        uid != 0 && uid != self.daemon_uid
    }

    /// Shared-memory bytes all unprivileged owners' objects, and the creates
    /// in flight for them, take.
    fn shm_bytes_unprivileged(&self) -> u64 {
        let held: u64 = self
            .objects
            .values()
            .filter(|o| self.unprivileged(o.perms.owner_uid))
            .map(|o| o.handle.held().shm_bytes)
            .sum();
        held + self.reserved(|uid| self.unprivileged(uid)).shm_bytes
    }

    /// Refuses a creation that would take `uid` past its shares, counting
    /// what its creates in flight reserve.
    fn check_shares(
        &self,
        uid: u32,
        address: &Address,
        cost: Held,
        quota: &Quota,
    ) -> Result<(), RequestError> {
        if quota.privileged {
            return Ok(());
        }
        let held = self.held_by(uid).plus(self.reserved(|u| u == uid));
        let fds = held.fds + quota.wait_fds;
        if fds + cost.fds > quota.shares.fds {
            return Err(RequestError::LimitExceeded(format!(
                "uid {uid} has the daemon holding {fds} descriptors for its objects and waits; \
                 '{address}' needs {} more, over its share of {} (max_fds_per_uid)",
                cost.fds, quota.shares.fds
            )));
        }
        if held.mq_bytes + cost.mq_bytes > quota.shares.mq_bytes {
            return Err(RequestError::LimitExceeded(format!(
                "uid {uid}'s queues take {} bytes and '{address}' needs {} more, over its share of \
                 {} bytes (mq_bytes_per_uid) of the daemon's {}-byte queue budget; use smaller \
                 queues (--capacity, --msg-size) or delete unused ones",
                held.mq_bytes, cost.mq_bytes, quota.shares.mq_bytes, quota.mq_budget
            )));
        }
        if cost.subscriptions > 0
            && held.subscriptions + cost.subscriptions > quota.shares.subscriptions
        {
            return Err(RequestError::LimitExceeded(format!(
                "uid {uid} holds {} signal-channel subscriptions, its share \
                 (max_subscriptions_per_uid); unsubscribe or stop deliveries it no longer needs",
                held.subscriptions
            )));
        }
        if cost.queue_bytes > 0 {
            self.check_queue_bytes(uid, address, held.queue_bytes, cost.queue_bytes, quota)?;
        }
        if cost.shm_bytes == 0 {
            return Ok(());
        }
        if held.shm_bytes + cost.shm_bytes > quota.shares.shm_bytes {
            return Err(RequestError::LimitExceeded(format!(
                "uid {uid}'s shared memory takes {} bytes and '{address}' needs {} more, over its \
                 share of {} bytes (shm_bytes_per_uid); use smaller segments or rings, or delete \
                 unused ones",
                held.shm_bytes, cost.shm_bytes, quota.shares.shm_bytes
            )));
        }
        let all = self.shm_bytes_unprivileged();
        if all + cost.shm_bytes > quota.shm_budget {
            return Err(RequestError::LimitExceeded(format!(
                "ipcd's users' shared memory takes {all} bytes and '{address}' needs {} more, over \
                 the daemon's budget of {} bytes (shm_budget_bytes)",
                cost.shm_bytes, quota.shm_budget
            )));
        }
        Ok(())
    }

    /// Refuses a queue that would take `uid` past its queue-memory share or
    /// all unprivileged users past the daemon's queue budget.
    fn check_queue_bytes(
        &self,
        uid: u32,
        address: &Address,
        held: u64,
        cost: u64,
        quota: &Quota,
    ) -> Result<(), RequestError> {
        if held + cost > quota.shares.queue_bytes {
            return Err(RequestError::LimitExceeded(format!(
                "uid {uid}'s queues reserve {held} bytes and '{address}' needs {cost} more, over \
                 its share of {} bytes (queue_bytes_per_uid); use a smaller --max-bytes or \
                 delete unused queues",
                quota.shares.queue_bytes
            )));
        }
        let all: u64 = self
            .objects
            .values()
            .filter(|o| self.unprivileged(o.perms.owner_uid))
            .map(|o| o.handle.held().queue_bytes)
            .sum::<u64>()
            + self.reserved(|u| self.unprivileged(u)).queue_bytes;
        if all + cost > quota.queue_budget {
            return Err(RequestError::LimitExceeded(format!(
                "ipcd's users' queues reserve {all} bytes and '{address}' needs {cost} more, over \
                 the daemon's budget of {} bytes (queue_budget_bytes)",
                quota.queue_budget
            )));
        }
        Ok(())
    }

    /// The object at `address`, if `peer` may use it as `need` says.
    fn get_mut(
        &mut self,
        address: &Address,
        peer: &Peer,
        need: Need,
    ) -> Result<&mut Object, RequestError> {
        let obj = self
            .objects
            .get_mut(address)
            .ok_or_else(|| RequestError::NotFound(address.to_string()))?;
        if !obj.perms.allows(peer, need) {
            return Err(denied(peer, address, need, &obj.perms));
        }
        Ok(obj)
    }

    /// Hands out descriptors for `access` to an object the caller may use that way.
    pub fn open(
        &mut self,
        address: &Address,
        access: Access,
        peer: &Peer,
    ) -> Result<(ObjectInfo, Vec<OwnedFd>), RequestError> {
        let need = match access {
            Access::Read => Need::Read,
            Access::Write => Need::Write,
            Access::ReadWrite => Need::ReadWrite,
        };
        let obj = self.get_mut(address, peer, need)?;
        let fds = obj.handle.open(access)?;
        obj.opens += 1;
        Ok((obj.info()?, fds))
    }

    /// Performs a kind operation for `who`; its kind must be the address's.
    /// What it would add to the object is charged to the object's owner first.
    pub fn operate(
        &mut self,
        address: &Address,
        op: KindOp,
        who: &Asker,
        quota: &Quota,
    ) -> Result<OpResult, RequestError> {
        let peer = &who.peer;
        if op.kind() != address.kind {
            return Err(kinds::wrong_op(&op, address.kind));
        }
        let need = kinds::module(address.kind).op_needs(&op);
        let obj = self.get_mut(address, peer, need)?;
        let (owner, cost) = (obj.perms.owner_uid, obj.handle.op_cost(&op));
        let asker_cost = obj.handle.asker_cost(&op, who);
        if cost != Held::default() {
            self.check_shares(owner, address, cost, quota)?;
        }
        if asker_cost != Held::default() {
            self.check_shares(peer.uid, address, asker_cost, quota)?;
        }
        let obj = self.get_mut(address, peer, need)?;
        let answer = obj.handle.operate(op, who);
        let gone = obj.gone.subscribe();
        // An operation may drop a descriptor (a pipe closed for writing).
        if let Some(obj) = self.objects.get(address) {
            self.fdstore.refresh(address, &obj.handle.stored_fds());
        }
        Ok(match answer? {
            OpAnswer::Now(reply) => OpResult::Now(reply),
            OpAnswer::Later {
                wait,
                timeout,
                made,
            } => OpResult::Later(Waiter {
                wait,
                timeout,
                gone,
                address: address.clone(),
                made,
            }),
        })
    }

    /// Tells every object that the connection `session` has closed, so the
    /// synchronization objects give back what it held. Its waits are dropped
    /// first (the session's task set goes before this is called).
    pub fn session_ended(&mut self, session: SessionId) {
        let mut spills = Vec::new();
        for obj in self.objects.values_mut() {
            obj.handle.session_ended(session);
            if let Some(spill) = obj.handle.spill() {
                spills.push((obj.address.clone(), spill));
            }
        }
        for (from, spill) in spills {
            self.hand_to_companion(&from, spill);
        }
    }

    /// The real signals objects are bound to (each once), which ipcd must catch.
    pub fn bound_signals(&self) -> Vec<i32> {
        let mut signals: Vec<i32> = self
            .objects
            .values()
            .filter_map(|o| o.handle.binds())
            .collect();
        signals.sort_unstable();
        signals.dedup();
        signals
    }

    /// ipcd received the real signal `signal` (sent by `origin`): every
    /// object bound to it is told. Returns the addresses told.
    pub fn signal_arrived(&mut self, signal: i32, origin: Option<Peer>) -> Vec<String> {
        let mut told = Vec::new();
        for obj in self.objects.values_mut() {
            if obj.handle.binds() == Some(signal) {
                obj.handle.signalled(signal, origin);
                told.push(obj.address.to_string());
            }
        }
        told
    }

    /// One object's details; any access at all lets the caller see them.
    pub fn stat(&self, address: &Address, peer: &Peer) -> Result<ObjectInfo, RequestError> {
        let obj = self
            .objects
            .get(address)
            .ok_or_else(|| RequestError::NotFound(address.to_string()))?;
        if !obj.perms.visible_to(peer) {
            return Err(RequestError::PermissionDenied(format!(
                "uid {} has no access to '{address}'",
                peer.uid
            )));
        }
        obj.info()
    }

    /// Up to `limit` objects the caller may see and `keep` accepts, after
    /// `after`, sorted by address; `budget` is called with each and stops the
    /// page early when it says no. Returns the page and whether more remain.
    pub fn list_page(
        &self,
        after: Option<&Address>,
        peer: &Peer,
        keep: impl Fn(&Address) -> bool,
        mut budget: impl FnMut(&ObjectInfo) -> bool,
    ) -> (Vec<ObjectInfo>, bool) {
        let start = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        let mut page = Vec::new();
        let visible = self
            .objects
            .range((start, Bound::Unbounded))
            .map(|(_, o)| o)
            .filter(|o| keep(&o.address) && o.perms.visible_to(peer));
        for obj in visible {
            let info = match obj.info() {
                Ok(i) => i,
                Err(e) => {
                    warn!(address = %obj.address, "cannot stat: {e}");
                    continue;
                }
            };
            if !budget(&info) {
                return (page, true);
            }
            page.push(info);
        }
        (page, false)
    }

    /// Addresses and kernel names, for the status dump.
    pub fn summary(&self) -> Vec<String> {
        self.objects
            .values()
            .map(|o| {
                format!(
                    "{} -> {} (owner {}, mode {:04o}, opens {})",
                    o.address,
                    o.kernel_name.as_deref().unwrap_or("-"),
                    o.perms.owner_uid,
                    o.perms.mode,
                    o.opens
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
