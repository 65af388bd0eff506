//! One task per client connection: the handshake, then each request is
//! dispatched and answered in order of arrival. A request that waits (a kind
//! operation answered later) becomes a task in the session's `JoinSet`, so the
//! session goes on serving; when the connection closes the set is dropped and
//! every wait with it.

mod io;

use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use protocol::{
    ClientFrame, CodecError, ErrorCode, Event, Hello, KindReply, MIN_PROTOCOL_VERSION, Outcome,
    PROTOCOL_VERSION, Reply, ServerFrame, Welcome, WireError,
};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info};

use crate::budget::ConnTicket;
use crate::dispatch::{self, Answer, Caller};
use crate::error::{FatalError, RequestError};
use crate::peer::Peer;
use crate::registry::Waiter;
use crate::shared::{AtomicCounters, Shared, server_name};
use io::{FrameReader, Outgoing, ReadError};

/// How long a new connection may take to send its hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame accepted before the handshake.
const HELLO_MAX_FRAME: u32 = 64 * 1024;
/// Most requests one connection may have waiting at once.
pub const MAX_WAITS_PER_SESSION: usize = 64;

/// A finished wait: the request id and its answer.
type Done = (u64, Result<KindReply, RequestError>);

/// Serves one connection until it closes or the daemon shuts down.
pub async fn run(
    shared: Arc<Shared>,
    stream: UnixStream,
    peer: Peer,
    ticket: ConnTicket,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = shared.next_session_id();
    debug!(session = id, pid = peer.pid, uid = peer.uid, "connected");
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Outgoing>(256);
    let writer = tokio::spawn(io::write_loop(write_half, rx));
    let mut reader = FrameReader::new(read_half);
    let mut session = Session {
        shared: &shared,
        tx,
        caller: Caller {
            peer,
            session: id,
            version: PROTOCOL_VERSION,
        },
        greeted: false,
        ticket,
        waits: JoinSet::new(),
        waiting: HashSet::new(),
        made: HashSet::new(),
    };
    let hello_deadline = tokio::time::sleep(HANDSHAKE_TIMEOUT);
    tokio::pin!(hello_deadline);
    loop {
        let max = if session.greeted {
            shared.limits().max_frame
        } else {
            HELLO_MAX_FRAME
        };
        let stopping = async {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        let keep_going = tokio::select! {
            biased;
            _ = stopping => false,
            Some(done) = session.waits.join_next(), if !session.waits.is_empty() => {
                if let Ok(done) = done {
                    session.answer_wait(done).await;
                }
                true
            }
            frame = reader.next(max) => session.on_read(frame).await,
            _ = &mut hello_deadline, if !session.greeted => {
                session.fatal(FatalError::NoHello(HANDSHAKE_TIMEOUT.as_secs())).await;
                false
            }
        };
        if !keep_going {
            break;
        }
    }
    let stopping = *shutdown.borrow();
    if stopping {
        session.end_waits().await;
        session
            .send(ServerFrame::Event(Event::ShuttingDown), Vec::new())
            .await;
    }
    // Dropping the session drops its waits first, so a synchronization object
    // never hands what this connection held to one of its own waits.
    drop(session);
    let _ = writer.await;
    shared.store().registry().session_ended(id);
    let removed = if shared.store().session_has_objects(id) {
        off_worker(&shared, peer.uid, move |shared| {
            shared.store().end_session(id)
        })
        .await
        .unwrap_or(0)
    } else {
        0
    };
    AtomicCounters::bump(&shared.counters.deleted, removed as u64);
    shared.sessions.fetch_sub(1, Ordering::Relaxed);
    debug!(session = id, removed, "disconnected");
}

/// Runs `f`, a change that waits on the disk, on a blocking thread once the
/// store lets one more change in (`changes::Store::permit`); the session's task
/// awaits it, so its worker thread serves other sessions meanwhile, and the
/// session still answers its requests in order. `None` if the runtime shut
/// down before `f` ran; a panic in `f` is resumed here.
async fn off_worker<T: Send + 'static>(
    shared: &Arc<Shared>,
    uid: u32,
    f: impl FnOnce(&Shared) -> T + Send + 'static,
) -> Option<T> {
    let permit = shared.store().permit(uid).await;
    let shared = shared.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f(&shared)
    })
    .await;
    match done {
        Ok(value) => Some(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

fn encode(frame: &ServerFrame, max: u32) -> Vec<u8> {
    let payload = protocol::encode_server(frame).unwrap_or_default();
    protocol::frame::frame(&payload, max).unwrap_or_else(|e| {
        // Only a listing larger than the frame limit gets here: answer with an error instead.
        let id = match frame {
            ServerFrame::Response { id, .. } => *id,
            _ => 0,
        };
        let err = ServerFrame::Response {
            id,
            fds: 0,
            result: Outcome::Err(RequestError::AnswerTooLarge(e.to_string()).to_wire()),
        };
        let payload = protocol::encode_server(&err).unwrap_or_default();
        protocol::frame::frame(&payload, protocol::HARD_MAX_FRAME).unwrap_or_default()
    })
}

/// Waits for `waiter`, its timeout, or its object's removal, whichever comes first.
async fn drive(id: u64, waiter: Waiter) -> Done {
    let Waiter {
        wait,
        timeout,
        mut gone,
        address,
        made: _,
    } = waiter;
    let limit = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    // Biased: an answer that is ready wins over a timeout passing at the
    // same moment (a queue's delivery is then not handed back).
    let result = tokio::select! {
        biased;
        answer = wait => answer,
        _ = gone.changed() => Err(RequestError::KernelObjectMissing(format!(
            "'{address}' was deleted while waiting"
        ))),
        _ = limit => Err(RequestError::TimedOut(format!(
            "'{address}' did not become ready within {}",
            timeout.map(|t| format!("{} ms", t.as_millis())).unwrap_or_default()
        ))),
    };
    (id, result)
}

struct Session<'a> {
    shared: &'a Arc<Shared>,
    tx: mpsc::Sender<Outgoing>,
    caller: Caller,
    greeted: bool,
    /// This connection's place in the per-uid ledger.
    ticket: ConnTicket,
    /// Requests answered later, each a task of its own (no thread per wait).
    waits: JoinSet<Done>,
    /// Ids of the requests in `waits`.
    waiting: HashSet<u64>,
    /// Those of them already made, only waiting to be durable (not counted
    /// against [`MAX_WAITS_PER_SESSION`]).
    made: HashSet<u64>,
}

impl Session<'_> {
    async fn send(&self, frame: ServerFrame, fds: Vec<OwnedFd>) {
        let bytes = encode(&frame, self.shared.limits().max_frame);
        let _ = self.tx.send(Outgoing { bytes, fds }).await;
    }

    async fn fatal(&self, error: FatalError) {
        info!(
            session = self.caller.session,
            pid = self.caller.peer.pid,
            "closing connection: {error}"
        );
        self.send(ServerFrame::Fatal(error.to_wire()), Vec::new())
            .await;
    }

    /// Handles what reading produced; returns whether to keep the connection.
    async fn on_read(&mut self, frame: Result<Vec<u8>, ReadError>) -> bool {
        let id = self.caller.session;
        match frame {
            Ok(payload) => self.on_frame(&payload).await,
            Err(ReadError::Closed) => false,
            Err(ReadError::Truncated) => {
                debug!(session = id, "connection closed in the middle of a frame");
                false
            }
            Err(ReadError::Frame(e)) => {
                self.fatal(e.into()).await;
                false
            }
            Err(ReadError::Io(e)) => {
                debug!(session = id, "read failed: {e}");
                false
            }
        }
    }

    /// Handles one frame; returns whether to keep the connection.
    async fn on_frame(&mut self, payload: &[u8]) -> bool {
        let frame = match protocol::decode_client(payload) {
            Ok(f) => f,
            Err(CodecError::InvalidUtf8)
                if self.greeted && protocol::codec::request_id(payload).is_some() =>
            {
                // A well-framed request with a bad string: answer it, keep the connection.
                let id = protocol::codec::request_id(payload).unwrap_or_default();
                self.answer(id, Err(RequestError::InvalidUtf8), Vec::new())
                    .await;
                return true;
            }
            Err(e) => {
                self.fatal(FatalError::Malformed(e.to_string())).await;
                return false;
            }
        };
        match (frame, self.greeted) {
            (ClientFrame::Hello(hello), false) => self.on_hello(hello).await,
            (ClientFrame::Hello(_), true) => {
                self.fatal(FatalError::Handshake("second handshake on one connection"))
                    .await;
                false
            }
            (ClientFrame::Request { .. }, false) => {
                self.fatal(FatalError::Handshake("the first frame must be a hello"))
                    .await;
                false
            }
            (ClientFrame::Request { id, body }, true) => {
                self.on_request(id, body).await;
                true
            }
        }
    }

    async fn on_request(&mut self, id: u64, body: protocol::Request) {
        AtomicCounters::bump(&self.shared.counters.requests, 1);
        if self.waiting.contains(&id) {
            let e = RequestError::InvalidArgument(format!(
                "request id {id} is still waiting for its answer; ids may be reused only once answered"
            ));
            return self.answer(id, Err(e), Vec::new()).await;
        }
        let answer = if dispatch::may_block(&body) {
            let caller = self.caller;
            off_worker(self.shared, caller.peer.uid, move |shared| {
                dispatch::handle(shared, &caller, body)
            })
            .await
            .unwrap_or(Err(RequestError::ShuttingDown))
        } else {
            dispatch::handle(self.shared, &self.caller, body)
        };
        match answer {
            Ok(Answer::Now(reply, fds)) => self.answer(id, Ok(reply), fds).await,
            Ok(Answer::Later(waiter)) if waiter.made => {
                // Made already, only not yet durable: it cannot be refused
                // now. Bounded by the writer: answers not read stop reading.
                self.waiting.insert(id);
                self.made.insert(id);
                self.waits.spawn(drive(id, waiter));
            }
            Ok(Answer::Later(waiter)) => {
                if self.waiting.len() - self.made.len() >= MAX_WAITS_PER_SESSION {
                    let e = RequestError::LimitExceeded(format!(
                        "this connection already has {MAX_WAITS_PER_SESSION} requests waiting"
                    ));
                    return self.answer(id, Err(e), Vec::new()).await;
                }
                let peer = self.caller.peer;
                let max = self.shared.tunables().budgets.max_waits_per_uid;
                let privileged = self.shared.privileged(&peer);
                let ticket = match self.shared.ledger.admit_wait(peer.uid, privileged, max) {
                    Ok(t) => t,
                    Err(why) => {
                        let e = RequestError::LimitExceeded(why);
                        return self.answer(id, Err(e), Vec::new()).await;
                    }
                };
                self.waiting.insert(id);
                self.waits.spawn(async move {
                    let done = drive(id, waiter).await;
                    drop(ticket);
                    done
                });
            }
            Err(e) => self.answer(id, Err(e), Vec::new()).await,
        }
    }

    /// Answers every waiting request with `shutting-down` (the daemon stops).
    async fn end_waits(&mut self) {
        self.waits.abort_all();
        self.made.clear();
        let mut ids: Vec<u64> = self.waiting.drain().collect();
        ids.sort_unstable();
        for id in ids {
            self.answer(id, Err(RequestError::ShuttingDown), Vec::new())
                .await;
        }
    }

    async fn answer_wait(&mut self, (id, result): Done) {
        self.waiting.remove(&id);
        self.made.remove(&id);
        self.answer(id, result.map(Reply::Kind), Vec::new()).await;
    }

    async fn answer(&self, id: u64, result: Result<Reply, RequestError>, fds: Vec<OwnedFd>) {
        let result = result.map_err(|e| {
            // "Try again later" (a FIFO without a reader yet) is not a failure.
            if !matches!(e.code(), ErrorCode::WouldBlock | ErrorCode::TimedOut) {
                AtomicCounters::bump(&self.shared.counters.errors, 1);
            }
            debug!(session = self.caller.session, "request {id} failed: {e}");
            e.to_wire()
        });
        self.respond(id, result, fds).await;
    }

    async fn respond(&self, id: u64, result: Result<Reply, WireError>, fds: Vec<OwnedFd>) {
        let result = match result {
            Ok(reply) => Outcome::Ok(reply),
            Err(e) => Outcome::Err(e),
        };
        let frame = ServerFrame::Response {
            id,
            fds: fds.len() as u8,
            result,
        };
        self.send(frame, fds).await;
    }

    async fn on_hello(&mut self, hello: Hello) -> bool {
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&hello.version) {
            self.fatal(FatalError::UnsupportedVersion {
                got: hello.version,
                min: MIN_PROTOCOL_VERSION,
                max: PROTOCOL_VERSION,
            })
            .await;
            return false;
        }
        let limits = self.shared.limits();
        self.ticket.greeted();
        let peer = self.caller.peer;
        debug!(session = self.caller.session, client = %hello.client_name, "handshake");
        let welcome = Welcome {
            version: hello.version,
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            server: server_name(),
            limits,
            peer: protocol::Credentials {
                pid: peer.pid,
                uid: peer.uid,
                gid: peer.gid,
            },
        };
        self.greeted = true;
        self.caller.version = hello.version;
        self.send(ServerFrame::Welcome(welcome), Vec::new()).await;
        true
    }
}
