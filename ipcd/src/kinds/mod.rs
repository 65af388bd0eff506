//! One module per channel kind; this file routes kind-generic operations to them.
//!
//! Adding a kind means: a variant in `protocol::Kind`, `KindParams` and
//! `KindDetails`, a module here, and one arm in each `match` below.

pub mod mq;

use std::os::fd::OwnedFd;

use protocol::{Access, Address, Kind, KindDetails, KindParams};

use crate::error::RequestError;
use crate::session::Peer;

/// The daemon's live handle on a kernel object of some kind.
#[derive(Debug)]
pub enum Handle {
    /// A POSIX message queue.
    Mq(mq::MqObject),
}

/// What a create request asks of a kind module.
pub struct CreateArgs<'a> {
    /// The kernel name (`/ipcd.jobs`).
    pub kernel_name: &'a str,
    /// Kind-specific parameters.
    pub params: &'a KindParams,
    /// Permission bits requested.
    pub mode: u32,
    /// Register an existing kernel object instead of creating one.
    pub adopt: bool,
    /// Who asks.
    pub peer: &'a Peer,
    /// The largest message size allowed by configuration.
    pub max_message_size: u64,
}

/// The kernel name for an object: the kind decides the namespace.
pub fn kernel_name(address: &Address, prefix: &str) -> String {
    match address.kind {
        Kind::Mq => format!("/{prefix}{}", address.name),
    }
}

/// Creates (or adopts) the kernel object for `kind`.
pub fn create(kind: Kind, args: &CreateArgs<'_>) -> Result<Handle, RequestError> {
    match (kind, args.params) {
        (Kind::Mq, KindParams::Mq(p)) => mq::create(args, p).map(Handle::Mq),
    }
}

/// Re-opens a recorded object after a daemon restart; `Ok(None)` if it vanished.
pub fn reopen(kind: Kind, kernel_name: &str) -> Result<Option<Handle>, RequestError> {
    match kind {
        Kind::Mq => Ok(mq::reopen(kernel_name)?.map(Handle::Mq)),
    }
}

/// Removes a kernel object that is no longer registered (stale session objects).
pub fn unlink(kind: Kind, kernel_name: &str) -> Result<(), RequestError> {
    match kind {
        Kind::Mq => mq::unlink(kernel_name),
    }
}

impl Handle {
    /// Kind-specific details as the kernel reports them now.
    pub fn details(&self) -> Result<KindDetails, RequestError> {
        match self {
            Handle::Mq(q) => q.details().map(KindDetails::Mq),
        }
    }

    /// Descriptors granting `access`, to pass to a client.
    pub fn open(&self, kernel_name: &str, access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        match self {
            Handle::Mq(_) => Ok(vec![mq::open(kernel_name, access)?]),
        }
    }

    /// Removes the kernel object (called once the registry forgets it).
    pub fn remove(self, kernel_name: &str) -> Result<(), RequestError> {
        match self {
            Handle::Mq(q) => {
                drop(q);
                mq::unlink(kernel_name)
            }
        }
    }
}
