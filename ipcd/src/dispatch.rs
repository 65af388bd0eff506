//! The one dispatch `match` on a request. Kind-generic requests go to the
//! registry, kind operations to the registry's `operate`, which routes them to
//! the object's kind. Protocol-version filtering happens here, and only here.

use std::os::fd::OwnedFd;

use protocol::{Address, EventOp, Kind, KindOp, ObjectInfo, Reply, Request, SignalOp};

use crate::error::RequestError;
use crate::peer::{Peer, SessionId};
use crate::registry::{OpResult, Waiter};
use crate::shared::{AtomicCounters, Shared};

/// Objects per `ListPage` when the client leaves the size to the daemon.
const DEFAULT_PAGE: u32 = 1000;
/// Bytes kept free in a page's frame for everything but the objects.
const PAGE_OVERHEAD: usize = 1024;

/// Who is asking: the connection's credentials and id.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// Credentials from `SO_PEERCRED`.
    pub peer: Peer,
    /// The connection's id (owner of `session` lifetime objects).
    pub session: SessionId,
    /// The protocol version agreed in the handshake.
    pub version: u16,
}

/// How a request is answered.
pub enum Answer {
    /// Now, with descriptors to pass beside the reply.
    Now(Reply, Vec<OwnedFd>),
    /// Later: the session drives the waiter and answers when it finishes.
    Later(Waiter),
}

impl Caller {
    /// The caller as a kind operation sees it.
    fn asker(&self, max_frame: u32) -> crate::kinds::Asker {
        crate::kinds::Asker {
            peer: self.peer,
            session: self.session,
            max_frame,
        }
    }

    /// Whether this connection's protocol version knows `kind`.
    fn knows(&self, kind: Kind) -> bool {
        kind.since_version() <= self.version
    }

    /// Parses an address, refusing kinds newer than the connection's protocol
    /// version: such a client could not decode their details.
    fn parse(&self, address: &str) -> Result<Address, RequestError> {
        let address = Address::parse(address)?;
        if !self.knows(address.kind) {
            return Err(RequestError::KindTooNew(format!(
                "kind '{}' needs protocol version {}; this connection speaks version {}",
                address.kind,
                address.kind.since_version(),
                self.version
            )));
        }
        Ok(address)
    }
}

/// Whether answering `request` may wait on the disk (a create or delete
/// syncs the intent journal and the registry): the session then runs it off
/// the async workers.
pub fn may_block(request: &Request) -> bool {
    match request {
        Request::Create { .. } | Request::Delete { .. } => true,
        Request::Kind { op, .. } => saves_state(op),
        _ => false,
    }
}

/// Whether an operation changes state saved with its object's record, so it
/// is made durable before it is answered: an event's `set` flag, the
/// processes a signal channel signals.
fn saves_state(op: &KindOp) -> bool {
    matches!(
        op,
        KindOp::Event(EventOp::Set | EventOp::Clear)
            | KindOp::Signal(SignalOp::Deliver { .. } | SignalOp::Undeliver { .. })
    )
}

/// Handles one request.
pub fn handle(shared: &Shared, caller: &Caller, request: Request) -> Result<Answer, RequestError> {
    let peer = &caller.peer;
    if request.since_version() > caller.version {
        return Err(RequestError::RequestTooNew(format!(
            "this request needs protocol version {}; this connection speaks version {}",
            request.since_version(),
            caller.version
        )));
    }
    let reply = match request {
        Request::Ping => Reply::Pong,
        Request::Status => Reply::Status(shared.status()),
        Request::Usage => Reply::Usage(shared.usage(peer)),
        Request::List { kind } => Reply::List(list_all(shared, caller, kind)),
        Request::ListPage { kind, after, limit } => list_page(shared, caller, kind, after, limit)?,
        Request::Stat { address } => {
            Reply::Stat(shared.registry().stat(&caller.parse(&address)?, peer)?)
        }
        Request::Create { address, spec } => {
            let address = caller.parse(&address)?;
            if let Some(signal) = crate::kinds::signal::binds(&spec.params) {
                // Caught before the channel exists, so the signal never
                // meets its default action (most end the process) once bound.
                crate::kinds::signal::check_bindable(signal)?;
                shared.catch(signal)?;
            }
            let module = crate::kinds::module(address.kind);
            if let Some(why) = module.reserved(&address.name) {
                return Err(RequestError::InvalidArgument(why));
            }
            let tunables = shared.tunables();
            let quota = shared.quota(peer);
            let companion = module.companion(&spec.params);
            let info = shared.store().create(
                address.clone(),
                &spec,
                peer,
                caller.session,
                &tunables,
                &quota,
            )?;
            AtomicCounters::bump(&shared.counters.created, 1);
            if let Some((suffix, params)) = companion {
                create_companion(shared, caller, &address, suffix, params, &spec)?;
            }
            Reply::Created(info)
        }
        Request::Open { address, access } => {
            let (info, fds) = shared
                .registry()
                .open(&caller.parse(&address)?, access, peer)?;
            AtomicCounters::bump(&shared.counters.capabilities, fds.len() as u64);
            return Ok(Answer::Now(Reply::Opened { info, access }, fds));
        }
        Request::Close { address } => {
            let address = caller.parse(&address)?;
            if address.kind != Kind::Pipe {
                return Err(RequestError::WrongKind(
                    "only a pipe can be closed; use delete to remove other objects".into(),
                ));
            }
            let op = protocol::KindOp::Pipe(protocol::PipeOp::Close);
            let quota = shared.quota(peer);
            shared.registry().operate(
                &address,
                op,
                &caller.asker(shared.limits().max_frame),
                &quota,
            )?;
            Reply::Closed
        }
        Request::Kind { address, op } => {
            let saves = saves_state(&op);
            let address = caller.parse(&address)?;
            let quota = shared.quota(peer);
            let done = shared.registry().operate(
                &address,
                op,
                &caller.asker(shared.limits().max_frame),
                &quota,
            )?;
            if saves && let Err(e) = shared.store().save_state() {
                // The change is made (waiters were woken); it is only not on
                // disk yet: the next save takes it.
                tracing::warn!(%address, "saving the change: {e}");
            }
            return Ok(match done {
                OpResult::Now(reply) => Answer::Now(Reply::Kind(reply), Vec::new()),
                OpResult::Later(waiter) => Answer::Later(waiter),
            });
        }
        Request::Kill { pid, signal } => {
            crate::kinds::signal::process::kill(peer, pid, signal)?;
            Reply::Killed
        }
        Request::Delete { address } => {
            let address = caller.parse(&address)?;
            let companion = shared.registry().companion_of(&address);
            shared.store().delete(&address, peer)?;
            AtomicCounters::bump(&shared.counters.deleted, 1);
            if let Some(companion) = companion {
                match shared.store().delete(&companion, peer) {
                    Ok(()) => AtomicCounters::bump(&shared.counters.deleted, 1),
                    Err(RequestError::NotFound(_)) => {}
                    Err(e) => tracing::warn!(%companion, "deleting the companion: {e}"),
                }
            }
            Reply::Deleted
        }
    };
    Ok(Answer::Now(reply, Vec::new()))
}

/// Creates the companion `primary` has (a queue's `NAME.dead`), with the
/// same mode and lifetime; if that fails, `primary` is deleted again and the
/// answer says why.
fn create_companion(
    shared: &Shared,
    caller: &Caller,
    primary: &Address,
    suffix: &str,
    params: protocol::KindParams,
    spec: &protocol::CreateSpec,
) -> Result<(), RequestError> {
    let made = protocol::Name::new(&format!("{}{suffix}", primary.name))
        .map_err(RequestError::BadAddress)
        .and_then(|name| {
            let address = Address::new(primary.kind, name);
            if left_over_companion(shared, caller, &address) {
                // A companion its queue lost (a crash between the two
                // deletes): the caller's own, so the new queue takes it.
                tracing::info!(%address, "a new queue takes over its companion left from before");
                return Ok(None);
            }
            let spec = protocol::CreateSpec {
                params,
                adopt: false,
                ..spec.clone()
            };
            let tunables = shared.tunables();
            let quota = shared.quota(&caller.peer);
            shared
                .store()
                .create(
                    address,
                    &spec,
                    &caller.peer,
                    caller.session,
                    &tunables,
                    &quota,
                )
                .map(Some)
        });
    match made {
        Ok(made) => {
            if made.is_some() {
                AtomicCounters::bump(&shared.counters.created, 1);
            }
            Ok(())
        }
        Err(e) => {
            if let Err(undo) = shared.store().delete(primary, &caller.peer) {
                tracing::warn!(%primary, "undoing the create: {undo}");
            }
            Err(companion_error(primary, suffix, e))
        }
    }
}

/// Whether `address` is an object of the caller's own, of the same kind,
/// left without the queue it was the companion of.
fn left_over_companion(shared: &Shared, caller: &Caller, address: &Address) -> bool {
    shared
        .registry()
        .stat(address, &caller.peer)
        .is_ok_and(|info| info.owner_uid == caller.peer.uid && info.kind == address.kind)
}

/// `e`, saying it was the companion that could not be made.
fn companion_error(primary: &Address, suffix: &str, e: RequestError) -> RequestError {
    let why = format!(
        "'{primary}' was not created: its companion '{primary}{suffix}' could not be ({e})"
    );
    match e {
        RequestError::LimitExceeded(_) => RequestError::LimitExceeded(why),
        // Another user's object by that name: the name is taken.
        RequestError::AlreadyExists(_) => RequestError::KernelNameTaken(why),
        _ => RequestError::InvalidArgument(why),
    }
}

/// The whole listing in one reply (versions 1 and 2; a reply over the frame
/// limit is answered with `too-large`, which is why version 3 pages).
fn list_all(shared: &Shared, caller: &Caller, kind: Option<Kind>) -> Vec<ObjectInfo> {
    let keep = |a: &Address| caller.knows(a.kind) && kind.is_none_or(|k| a.kind == k);
    shared
        .registry()
        .list_page(None, &caller.peer, keep, |_| true)
        .0
}

/// One page, as many objects as fit in a frame and `limit` allows.
fn list_page(
    shared: &Shared,
    caller: &Caller,
    kind: Option<Kind>,
    after: Option<String>,
    limit: u32,
) -> Result<Reply, RequestError> {
    let after = after.map(|a| Address::parse(&a)).transpose()?;
    let limit = if limit == 0 { DEFAULT_PAGE } else { limit };
    let room = (shared.limits().max_frame as usize).saturating_sub(PAGE_OVERHEAD);
    let keep = |a: &Address| caller.knows(a.kind) && kind.is_none_or(|k| a.kind == k);
    let (mut used, mut count) = (0usize, 0u32);
    let fits = |info: &ObjectInfo| {
        used += protocol::codec::encoded_len(info);
        count += 1;
        count <= limit && (count == 1 || used <= room)
    };
    let (objects, more) = shared
        .registry()
        .list_page(after.as_ref(), &caller.peer, keep, fits);
    let next = if more {
        objects.last().map(|o| o.address.clone())
    } else {
        None
    };
    Ok(Reply::ListPage { objects, next })
}
