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

/// Parses an address, refusing kinds newer than the connection's protocol
/// version: such a client could not decode their details.
fn parse(address: &str, caller: &Caller) -> Result<Address, RequestError> {
    let address = Address::parse(address)?;
    let needs = address.kind.since_version();
    if needs > caller.version {
        return Err(RequestError::BadAddress(protocol::WireError::new(
            protocol::ErrorCode::UnknownKind,
            format!(
                "kind '{}' needs protocol version {needs}; this connection speaks version {}",
                address.kind, caller.version
            ),
        )));
    }
    Ok(address)
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
            Reply::Stat(shared.registry().stat(&parse(&address, caller)?, peer)?)
        }
        Request::Create { address, spec } => {
            let address = parse(&address, caller)?;
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
                .open(&parse(&address, caller)?, access, peer)?;
            AtomicCounters::bump(&shared.counters.capabilities, fds.len() as u64);
            return Ok((Reply::Opened { info, access }, fds));
        }
        Request::Close { address } => {
            shared.registry().close(&parse(&address, caller)?, peer)?;
            Reply::Closed
        }
        Request::Delete { address } => {
            shared.registry().delete(&parse(&address, caller)?, peer)?;
            AtomicCounters::bump(&shared.counters.deleted, 1);
            Reply::Deleted
        }
    };
    Ok((reply, Vec::new()))
}
