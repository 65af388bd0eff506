//! The one dispatch `match` on a request. Kind-generic requests go to the
//! registry, which routes kind specifics to `kinds::*`.

use std::os::fd::OwnedFd;

use protocol::{Address, Reply, Request};

use crate::error::RequestError;
use crate::kinds;
use crate::session::Peer;
use crate::shared::{AtomicCounters, Shared};

/// Who is asking: the connection's credentials and id.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// Credentials from `SO_PEERCRED`.
    pub peer: Peer,
    /// The connection's id (owner of `session` lifetime objects).
    pub session: u64,
    /// The protocol version agreed in the handshake.
    pub version: u16,
}

/// Handles one request; returns the reply and any descriptors to pass with it.
pub fn handle(
    shared: &Shared,
    caller: &Caller,
    request: Request,
) -> Result<(Reply, Vec<OwnedFd>), RequestError> {
    let peer = &caller.peer;
    let reply = match request {
        Request::Ping => Reply::Pong,
        Request::Status => Reply::Status(shared.status()),
        Request::List { kind } => Reply::List(shared.registry().list(kind, peer, caller.version)),
        Request::Stat { address } => {
            Reply::Stat(shared.registry().stat(&Address::parse(&address)?, peer)?)
        }
        Request::Create { address, spec } => {
            let address = Address::parse(&address)?;
            let given = kinds::params_kind(&spec.params);
            if given != address.kind {
                return Err(RequestError::WrongKind(format!(
                    "parameters for kind '{given}' given to create '{address}'"
                )));
            }
            let limits = shared.limits();
            let info = shared
                .registry()
                .create(address, &spec, peer, caller.session, &limits)?;
            AtomicCounters::bump(&shared.counters.created, 1);
            Reply::Created(info)
        }
        Request::Open { address, access } => {
            let (info, fds) = shared
                .registry()
                .open(&Address::parse(&address)?, access, peer)?;
            AtomicCounters::bump(&shared.counters.capabilities, fds.len() as u64);
            return Ok((Reply::Opened { info, access }, fds));
        }
        Request::Close { address } => {
            shared.registry().close(&Address::parse(&address)?, peer)?;
            Reply::Closed
        }
        Request::Delete { address } => {
            shared.registry().delete(&Address::parse(&address)?, peer)?;
            AtomicCounters::bump(&shared.counters.deleted, 1);
            Reply::Deleted
        }
    };
    Ok((reply, Vec::new()))
}
