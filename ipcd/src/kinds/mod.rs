//! One module per channel kind; this file routes kind-generic operations to them.
//!
//! Adding a kind means: a variant in `protocol::Kind`, `KindParams` and
//! `KindDetails`, a module here, and one arm in each `match` below.

pub mod fifo;
pub mod mq;
pub mod pipe;

use std::os::fd::OwnedFd;
use std::path::Path;

use protocol::{Access, Address, Kind, KindDetails, KindParams};

use crate::error::RequestError;
use crate::session::Peer;

/// The daemon's live handle on a kernel object of some kind.
#[derive(Debug)]
pub enum Handle {
    /// A POSIX message queue.
    Mq(mq::MqObject),
    /// An anonymous pipe.
    Pipe(pipe::PipeObject),
    /// A named pipe.
    Fifo(fifo::FifoObject),
}

/// What a create request asks of a kind module.
pub struct CreateArgs<'a> {
    /// The kernel name (`/ipcd.jobs`) or path.
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

/// The kernel name or path of an object: the kind decides the namespace.
pub fn kernel_name(address: &Address, prefix: &str, runtime_dir: &Path) -> String {
    match address.kind {
        Kind::Mq => format!("/{prefix}{}", address.name),
        Kind::Pipe => "(anonymous pipe)".to_owned(),
        Kind::Fifo => runtime_dir
            .join("fifo")
            .join(format!("{prefix}{}", address.name))
            .display()
            .to_string(),
    }
}

/// The kind a set of creation parameters is for.
pub fn params_kind(params: &KindParams) -> Kind {
    match params {
        KindParams::Mq(_) => Kind::Mq,
        KindParams::Pipe(_) => Kind::Pipe,
        KindParams::Fifo(_) => Kind::Fifo,
    }
}

/// Creates (or adopts) the kernel object for `kind`.
pub fn create(kind: Kind, args: &CreateArgs<'_>) -> Result<Handle, RequestError> {
    match (kind, args.params) {
        (Kind::Mq, KindParams::Mq(p)) => mq::create(args, p).map(Handle::Mq),
        (Kind::Pipe, KindParams::Pipe(p)) => {
            if args.adopt {
                return Err(RequestError::InvalidArgument(
                    "an anonymous pipe has no name outside ipcd, so it cannot be adopted".into(),
                ));
            }
            pipe::create(p).map(Handle::Pipe)
        }
        (Kind::Fifo, KindParams::Fifo(p)) => fifo::create(args, p).map(Handle::Fifo),
        (kind, params) => Err(RequestError::WrongKind(format!(
            "parameters for kind '{}' given to create a '{kind}'",
            params_kind(params)
        ))),
    }
}

/// Re-opens a recorded object after a daemon restart; `Ok(None)` if it is gone.
pub fn reopen(
    kind: Kind,
    kernel_name: &str,
    buffered: bool,
) -> Result<Option<Handle>, RequestError> {
    match kind {
        Kind::Mq => Ok(mq::reopen(kernel_name)?.map(Handle::Mq)),
        // An anonymous pipe lives only as long as the process holding it.
        Kind::Pipe => Ok(None),
        Kind::Fifo => Ok(fifo::reopen(kernel_name, buffered)?.map(Handle::Fifo)),
    }
}

/// Removes a kernel object that is no longer registered (stale session objects).
pub fn unlink(kind: Kind, kernel_name: &str) -> Result<(), RequestError> {
    match kind {
        Kind::Mq => mq::unlink(kernel_name),
        Kind::Pipe => Ok(()),
        Kind::Fifo => fifo::unlink(kernel_name),
    }
}

impl Handle {
    /// Kind-specific details as the kernel reports them now.
    pub fn details(&self, kernel_name: &str) -> Result<KindDetails, RequestError> {
        match self {
            Handle::Mq(q) => q.details().map(KindDetails::Mq),
            Handle::Pipe(p) => p.details().map(KindDetails::Pipe),
            Handle::Fifo(f) => f.details(kernel_name).map(KindDetails::Fifo),
        }
    }

    /// Descriptors granting `access`, to pass to a client.
    pub fn open(
        &mut self,
        kernel_name: &str,
        access: Access,
    ) -> Result<Vec<OwnedFd>, RequestError> {
        match self {
            Handle::Mq(_) => Ok(vec![mq::open(kernel_name, access)?]),
            Handle::Pipe(p) => Ok(vec![p.open(access)?]),
            Handle::Fifo(f) => Ok(vec![f.open(kernel_name, access)?]),
        }
    }

    /// Closes the daemon's write end (pipes only); returns whether it was open.
    pub fn close(&mut self) -> Result<bool, RequestError> {
        match self {
            Handle::Pipe(p) => Ok(p.close_write()),
            _ => Err(RequestError::WrongKind(
                "only a pipe can be closed; use delete to remove other objects".into(),
            )),
        }
    }

    /// Whether the daemon holds the object open to buffer data (saved across restarts).
    pub fn is_buffered(&self) -> bool {
        matches!(self, Handle::Fifo(f) if f.is_buffered())
    }

    /// Removes the kernel object (called once the registry forgets it).
    pub fn remove(self, kernel_name: &str) -> Result<(), RequestError> {
        match self {
            Handle::Mq(q) => {
                drop(q);
                mq::unlink(kernel_name)
            }
            Handle::Pipe(p) => {
                drop(p);
                Ok(())
            }
            Handle::Fifo(f) => {
                let waker = fifo::reader_waker(kernel_name);
                drop(f);
                let unlinked = fifo::unlink(kernel_name);
                drop(waker);
                unlinked
            }
        }
    }
}
