//! One module per channel kind, behind two traits: [`KindModule`] (what the
//! registry asks of a kind: create, adopt, reopen after a restart, unlink) and
//! [`KindObject`] (one live object: details, open, operations, persisted state,
//! removal). The registry, persistence and dispatch never name a kind; the
//! table in [`module`] is the one place that lists them, and it has no
//! catch-all arm, so a new `protocol::Kind` does not compile until it is here.

pub mod barrier;
pub mod event;
pub mod fifo;
pub mod lock;
pub mod mq;
pub mod pipe;
pub mod queue;
pub mod ring;
mod segment;
pub mod sem;
pub mod shm;
pub mod signal;
mod uid_share;
mod waitlist;

use std::future::Future;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use protocol::{Access, Kind, KindDetails, KindOp, KindParams, KindReply, Name};

use crate::access::Need;
use crate::config::Tunables;
use crate::error::RequestError;
use crate::peer::{Peer, SessionId};

/// Who performs an operation: the peer and its connection, which holds what
/// a synchronization object grants it until released or the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker {
    /// The peer's credentials.
    pub peer: Peer,
    /// Its connection.
    pub session: SessionId,
    /// The largest frame its connection may be sent (an answer carrying
    /// messages stays below it).
    pub max_frame: u32,
}

/// A test asker on connection `session`: pid 100 + `session`, uid and gid 1000.
#[cfg(test)]
pub fn test_asker(session: SessionId) -> Asker {
    Asker {
        peer: Peer {
            pid: 100 + session as i32,
            uid: 1000,
            gid: 1000,
        },
        session,
        max_frame: protocol::HARD_MAX_FRAME,
    }
}

/// The kind module for `kind`.
pub fn module(kind: Kind) -> &'static dyn KindModule {
    match kind {
        Kind::Mq => &mq::Module,
        Kind::Pipe => &pipe::Module,
        Kind::Fifo => &fifo::Module,
        Kind::Shm => &shm::Module,
        Kind::Ring => &ring::Module,
        Kind::Sem => &sem::Module,
        Kind::Lock => &lock::Module,
        Kind::Event => &event::Module,
        Kind::Barrier => &barrier::Module,
        Kind::Signal => &signal::Module,
        Kind::Queue => &queue::Module,
    }
}

/// Where the daemon's kernel objects live: the name prefix and the runtime directory.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Prefix of every kernel name (`ipcd.`).
    pub prefix: String,
    /// Directory for file-system objects (FIFOs live in `<runtime_dir>/fifo`).
    pub runtime_dir: PathBuf,
    /// The daemon's state directory (durable queues' journals live in
    /// `<state_dir>/queue`).
    pub state_dir: PathBuf,
}

/// What a create request asks of a kind module.
pub struct CreateArgs<'a> {
    /// The kernel name or path ([`KindModule::kernel_name`]), if the kind has one.
    pub kernel_name: Option<&'a str>,
    /// Kind-specific parameters (already checked to be this kind's).
    pub params: &'a KindParams,
    /// Permission bits requested.
    pub mode: u32,
    /// Register an existing kernel object instead of creating one.
    pub adopt: bool,
    /// Who asks.
    pub peer: &'a Peer,
    /// The settings in force (limits, kind defaults).
    pub tunables: &'a Tunables,
}

/// What an object makes the daemon hold, charged to its owner's budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Descriptors the daemon keeps open for it.
    pub fds: u64,
    /// Bytes the kernel charges against the daemon's queue budget (`RLIMIT_MSGQUEUE`).
    pub mq_bytes: u64,
    /// Bytes of shared memory (`/dev/shm`) its segments take.
    pub shm_bytes: u64,
    /// Signal-channel subscriptions (socket subscribers, processes signalled).
    pub subscriptions: u64,
    /// Bytes of memory a daemon-hosted queue reserves (its `max_bytes`).
    pub queue_bytes: u64,
}

/// What reopening a recorded object after a restart found.
pub enum Reopened {
    /// The kernel object is there and the daemon holds it again.
    Alive(Box<dyn KindObject>),
    /// It is gone; the reason is logged and the record dropped.
    Gone(String),
}

/// A kind: creates its kernel objects and finds them again after a restart.
pub trait KindModule: Sync {
    /// The kernel name or path of the object for `name`, derived from the
    /// namespace only (never taken from a stored record); `None` if the kind's
    /// objects have no name outside the daemon.
    fn kernel_name(&self, ns: &Namespace, name: &Name) -> Option<String>;

    /// What creating the object `args` describe would make the daemon hold,
    /// checked against the owner's budget before anything is created.
    fn cost(&self, args: &CreateArgs<'_>) -> Result<Held, RequestError>;

    /// Creates (or, with `adopt`, registers an existing) kernel object.
    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError>;

    /// Takes over a recorded object after a restart, with the state its
    /// [`KindObject::state`] saved.
    fn reopen(
        &self,
        kernel_name: Option<&str>,
        state: &serde_json::Value,
    ) -> Result<Reopened, RequestError>;

    /// [`KindModule::reopen`] with the descriptors a service manager's fd
    /// store kept for the object across the restart (by role, see
    /// [`KindObject::stored_fds`]); kinds that store none ignore them.
    fn reopen_stored(
        &self,
        kernel_name: Option<&str>,
        state: &serde_json::Value,
        stored: Vec<(String, OwnedFd)>,
    ) -> Result<Reopened, RequestError> {
        drop(stored);
        self.reopen(kernel_name, state)
    }

    /// Removes a kernel object that is no longer registered (a previous run's
    /// session object); one already gone is not an error.
    fn unlink(&self, kernel_name: &str) -> Result<(), RequestError>;

    /// The uid that owns the kernel object now, `None` if there is none. The
    /// registry checks it before re-adopting or removing anything after a
    /// restart, so an object someone else put under the name is never taken.
    fn owner(&self, kernel_name: &str) -> Option<u32>;

    /// What `op` needs of the caller. Only called with this kind's operations.
    fn op_needs(&self, op: &KindOp) -> Need;

    /// A companion object created with (and deleted with) one made with
    /// `params`: the suffix of its name and its parameters (a queue's
    /// dead-letter queue, `queue:NAME.dead`). None for most kinds.
    fn companion(&self, _params: &KindParams) -> Option<(&'static str, KindParams)> {
        None
    }

    /// Why `name` cannot be created by a request of its own (it is kept for
    /// companions: `queue:NAME.dead`), `None` if it can.
    fn reserved(&self, _name: &Name) -> Option<String> {
        None
    }
}

/// Messages an object hands to its companion (see [`KindModule::companion`]).
#[derive(Debug)]
pub struct Spill {
    /// The suffix of the companion's name.
    pub suffix: &'static str,
    /// The messages, in order.
    pub items: Vec<protocol::QueueItem>,
}

/// A future answering an operation later; it holds no registry lock.
pub type Pending = Pin<Box<dyn Future<Output = Result<KindReply, RequestError>> + Send>>;

/// How an operation answers.
pub enum OpAnswer {
    /// At once.
    Now(KindReply),
    /// When `wait` finishes, or with `timed-out` once `timeout` passes, or with
    /// `not-found` if the object is deleted first, or never if the connection
    /// closes (the wait is dropped). The session serves other requests meanwhile.
    Later {
        /// Resolves to the answer.
        wait: Pending,
        /// Give up after this long (`None`: wait as long as it takes).
        timeout: Option<Duration>,
        /// The operation is already made and `wait` only reports when it
        /// is durable (a durable queue's put): it is never refused as one
        /// wait too many, since refusing would misreport it.
        made: bool,
    },
}

/// One live object of some kind, held by the registry.
pub trait KindObject: Send + std::fmt::Debug {
    /// Kind-specific details as the kernel reports them now.
    fn details(&self) -> Result<KindDetails, RequestError>;

    /// Descriptors granting `access`, to pass to a client.
    fn open(&mut self, access: Access) -> Result<Vec<OwnedFd>, RequestError>;

    /// Performs a kind-specific operation (permission already checked) for `who`.
    fn operate(&mut self, op: KindOp, who: &Asker) -> Result<OpAnswer, RequestError>;

    /// The connection `session` has closed: give back what it holds and
    /// hand it to the next waiter (its own waits were dropped already).
    fn session_ended(&mut self, _session: SessionId) {}

    /// What performing `op` would add to what the object holds, checked
    /// against the owner's budget first (nothing, for most operations).
    fn op_cost(&self, _op: &KindOp) -> Held {
        Held::default()
    }

    /// What performing `op` for `who` would add to what the object holds on
    /// behalf of `who`'s uid (not its owner's: a subscription is charged to
    /// the subscriber), checked against that uid's budget first.
    fn asker_cost(&self, _op: &KindOp, _who: &Asker) -> Held {
        Held::default()
    }

    /// What the object makes the daemon hold now, charged to its owner.
    fn held(&self) -> Held;

    /// What the object holds now on behalf of `uid` (see [`asker_cost`](Self::asker_cost)).
    fn held_for(&self, _uid: u32) -> Held {
        Held::default()
    }

    /// The real signal bound to this object, which ipcd must catch.
    fn binds(&self) -> Option<i32> {
        None
    }

    /// ipcd received the real signal this object binds, sent by `origin`
    /// (`None`: the kernel did not say).
    fn signalled(&mut self, _signal: i32, _origin: Option<Peer>) {}

    /// Descriptors only the daemon holds, which a service manager's fd store
    /// should keep across a restart (a hosted pipe's ends), each under a
    /// role the kind's [`KindModule::reopen_stored`] recognises; none for
    /// kinds whose kernel objects outlive the process anyway.
    fn stored_fds(&self) -> Vec<(&'static str, BorrowedFd<'_>)> {
        Vec::new()
    }

    /// Whether the kernel name is worth showing (a queue kept in memory
    /// only has none on disk).
    fn kernel_name_shown(&self) -> bool {
        true
    }

    /// The suffix of this object's companion, deleted with it, if it has one.
    fn companion(&self) -> Option<&'static str> {
        None
    }

    /// Messages to hand to the companion, taken out of this object.
    fn spill(&mut self) -> Option<Spill> {
        None
    }

    /// Takes messages another object spilled to this one; returns how many
    /// it could not take (they are dropped, and the caller logs it).
    fn take_spill(&mut self, items: Vec<protocol::QueueItem>) -> usize {
        items.len()
    }

    /// The kind's own fields to save with the record (`null` if none).
    fn state(&self) -> serde_json::Value;

    /// Removes the kernel object (called once the registry has forgotten it).
    fn remove(self: Box<Self>) -> Result<(), RequestError>;
}

/// The error for an operation given to the wrong kind of object.
pub fn wrong_op(op: &KindOp, kind: Kind) -> RequestError {
    RequestError::WrongKind(format!(
        "a '{}' operation cannot be applied to a '{kind}' object",
        op.kind()
    ))
}

/// The error for parameters of another kind.
pub fn wrong_params(params: &KindParams, kind: Kind) -> RequestError {
    RequestError::WrongKind(format!(
        "parameters for kind '{}' given to create a '{kind}'",
        params.kind()
    ))
}
