//! The registry's side of a change: the steps `changes::Store` takes under the
//! registry lock, each short and free of disk syncs — checking and reserving
//! an address, registering the object made, taking one out or putting it
//! back, and snapshotting the whole for a save. Every step that changes the
//! set of objects bumps the generation, so a save knows which changes it
//! covers.

use std::path::PathBuf;

use protocol::{Address, CreateSpec, Lifetime, ObjectInfo};
use tokio::sync::watch;

use super::{Object, Registry, UidHolds, now_ms};
use crate::access::{Need, Permissions};
use crate::budget::Quota;
use crate::config::Tunables;
use crate::error::RequestError;
use crate::kinds::{self, CreateArgs, Held, KindObject};
use crate::peer::{Peer, SessionId};
use crate::persist::{self, StoredObject};

/// A change in progress on one address. While it is in flight no other
/// change may start on the address (`changes::Store` waits for it to land).
#[derive(Debug, Clone, Copy)]
pub(super) enum Flight {
    /// A create before its object is registered, reserving for `uid` what
    /// the object will hold (the checks count it).
    Reserving {
        /// The future owner.
        uid: u32,
        /// What the object will make the daemon hold.
        cost: Held,
    },
    /// A create whose object is registered, or a delete: the object, listed
    /// or taken out, counts for itself.
    Settling {
        /// The connection the object ends with, for `session` lifetime objects.
        session: Option<SessionId>,
    },
}

/// A create that passed its checks; its address is reserved until it lands.
#[derive(Debug)]
pub struct Planned {
    /// The address reserved.
    pub address: Address,
    /// Its kernel name, from the namespace.
    pub kernel_name: Option<String>,
    /// The permission bits asked for (checked).
    pub mode: u32,
}

impl Planned {
    /// What the kind module is asked to create.
    pub fn args<'a>(
        &'a self,
        spec: &'a CreateSpec,
        peer: &'a Peer,
        tunables: &'a Tunables,
    ) -> CreateArgs<'a> {
        CreateArgs {
            kernel_name: self.kernel_name.as_deref(),
            params: &spec.params,
            mode: self.mode,
            adopt: spec.adopt,
            peer,
            tunables,
        }
    }
}

/// The registry's records at one generation, to be saved outside its lock.
#[derive(Debug)]
pub struct Snapshot {
    /// The generation the records are at.
    pub generation: u64,
    dir: PathBuf,
    prefix: String,
    objects: Vec<StoredObject>,
}

impl Snapshot {
    /// Writes the records to the state file, atomically (`persist::save`).
    pub fn save(self) -> std::io::Result<()> {
        persist::save(&self.dir, &self.prefix, self.objects)
    }
}

impl Registry {
    /// Whether a change to `address` is in progress.
    pub fn busy(&self, address: &Address) -> bool {
        self.in_flight.contains_key(address)
    }

    /// What the creates in flight for owners `whose` reserve.
    pub(super) fn reserved(&self, whose: impl Fn(u32) -> bool) -> UidHolds {
        let mut h = UidHolds::default();
        for flight in self.in_flight.values() {
            if let Flight::Reserving { uid, cost } = flight
                && whose(*uid)
            {
                h.objects += 1;
                h.fds += cost.fds;
                h.mq_bytes += cost.mq_bytes;
                h.shm_bytes += cost.shm_bytes;
                h.queue_bytes += cost.queue_bytes;
            }
        }
        h
    }

    /// Checks a create — the address free, the mode, the caller's object count
    /// and shares, each counting the creates in flight — and reserves the
    /// address. The caller has waited until no change to it is in flight.
    pub fn plan_create(
        &mut self,
        address: Address,
        spec: &CreateSpec,
        peer: &Peer,
        tunables: &Tunables,
        quota: &Quota,
    ) -> Result<Planned, RequestError> {
        debug_assert!(!self.busy(&address));
        if spec.params.kind() != address.kind {
            return Err(kinds::wrong_params(&spec.params, address.kind));
        }
        if self.objects.contains_key(&address) {
            return Err(RequestError::AlreadyExists(address.to_string()));
        }
        let mode = spec.mode.unwrap_or(0o600);
        if mode > 0o777 {
            return Err(RequestError::InvalidArgument(format!(
                "mode {mode:04o} has bits outside 0777"
            )));
        }
        let owned = self
            .objects
            .values()
            .filter(|o| o.perms.owner_uid == peer.uid)
            .count() as u64
            + self.reserved(|uid| uid == peer.uid).objects;
        if owned >= u64::from(tunables.limits.max_objects_per_uid) {
            return Err(RequestError::LimitExceeded(format!(
                "uid {} owns {owned} objects, the maximum (max_objects_per_uid)",
                peer.uid
            )));
        }
        let module = kinds::module(address.kind);
        let planned = Planned {
            kernel_name: module.kernel_name(&self.ns, &address.name),
            address,
            mode,
        };
        let cost = module.cost(&planned.args(spec, peer, tunables))?;
        self.check_shares(peer.uid, &planned.address, cost, quota)?;
        let flight = Flight::Reserving {
            uid: peer.uid,
            cost,
        };
        self.in_flight.insert(planned.address.clone(), flight);
        Ok(planned)
    }

    /// Registers the object a planned create made; returns its details (as
    /// they are now) and the generation that holds it. The address stays
    /// reserved until [`Registry::land`].
    pub fn register(
        &mut self,
        planned: Planned,
        handle: Box<dyn KindObject>,
        spec: &CreateSpec,
        peer: &Peer,
        session: SessionId,
    ) -> (Result<ObjectInfo, RequestError>, u64) {
        let obj = Object {
            address: planned.address,
            kernel_name: planned.kernel_name,
            perms: Permissions {
                owner_uid: peer.uid,
                owner_gid: peer.gid,
                mode: planned.mode,
            },
            creator_pid: peer.pid,
            created_at_ms: now_ms(),
            session: (spec.lifetime == Lifetime::Session).then_some(session),
            opens: 0,
            handle,
            gone: watch::Sender::new(()),
        };
        let info = obj.info();
        // The object now counts for itself.
        let flight = Flight::Settling {
            session: obj.session,
        };
        self.in_flight.insert(obj.address.clone(), flight);
        (info, self.put(obj))
    }

    /// Checks that `peer` may delete `address` and marks it in flight; returns
    /// the owner's uid and whether the object has a kernel name. The caller
    /// has waited until no change to it is in flight.
    pub fn plan_delete(
        &mut self,
        address: &Address,
        peer: &Peer,
    ) -> Result<(u32, bool), RequestError> {
        debug_assert!(!self.busy(address));
        let obj = self.get_mut(address, peer, Need::Owner)?;
        let (owner, session) = (obj.perms.owner_uid, obj.session);
        let named = obj.kernel_name.is_some();
        self.in_flight
            .insert(address.clone(), Flight::Settling { session });
        Ok((owner, named))
    }

    /// Ends the change in flight on `address`.
    pub fn land(&mut self, address: &Address) {
        self.in_flight.remove(address);
    }

    /// Takes the object at `address` out; returns it and the generation without it.
    pub fn take(&mut self, address: &Address) -> (Option<Object>, u64) {
        let obj = self.objects.remove(address);
        if obj.is_some() {
            self.generation += 1;
            self.fdstore.forget(address);
        }
        (obj, self.generation)
    }

    /// A kind's saved state changed (an event's `set` flag): a new generation,
    /// so the next commit saves a fresh snapshot.
    pub fn state_changed(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Puts an object (back) in; returns the generation with it.
    pub fn put(&mut self, obj: Object) -> u64 {
        self.fdstore.offer(&obj.address, &obj.handle.stored_fds());
        self.objects.insert(obj.address.clone(), obj);
        self.generation += 1;
        self.generation
    }

    /// Whether one of `session`'s session objects has a change in flight
    /// (a delete from another connection, possibly undone if its save fails).
    pub fn session_busy(&self, session: SessionId) -> bool {
        self.in_flight
            .values()
            .any(|f| matches!(f, Flight::Settling { session: Some(s) } if *s == session))
    }

    /// Whether `session` has objects of `session` lifetime, or a change in
    /// flight on one.
    pub fn session_has_objects(&self, session: SessionId) -> bool {
        self.session_busy(session) || self.objects.values().any(|o| o.session == Some(session))
    }

    /// Removes every object of `session` lifetime created by `session`, kernel
    /// objects too, before any snapshot can lack them (so no save forgets an
    /// object whose kernel object is still there). Returns how many and the
    /// generation without them. The caller has waited out their changes in flight.
    pub fn end_session(&mut self, session: SessionId) -> (usize, u64) {
        let doomed: Vec<Address> = self
            .objects
            .values()
            .filter(|o| o.session == Some(session))
            .map(|o| o.address.clone())
            .collect();
        for address in &doomed {
            let (obj, _) = self.take(address);
            tracing::info!(%address, "session ended; removing");
            if let Some(Err(e)) = obj.map(Object::remove) {
                tracing::warn!(%address, "cannot remove: {e}");
            }
        }
        (doomed.len(), self.generation)
    }

    /// The records as they are now, for a save outside the lock.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            generation: self.generation,
            dir: self.state_dir.clone(),
            prefix: self.ns.prefix.clone(),
            objects: self.objects.values().map(Object::stored).collect(),
        }
    }
}
