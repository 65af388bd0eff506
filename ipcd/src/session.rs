//! One task per client connection: handshake, then read a request, handle it,
//! queue the answer; a writer task sends answers (with descriptors) in order.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use protocol::{
    ClientFrame, ErrorCode, Event, FrameError, FrameHeader, HEADER_LEN, Hello,
    MIN_PROTOCOL_VERSION, Outcome, PROTOCOL_VERSION, ServerFrame, Welcome, WireError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::handler::{self, Caller};
use crate::shared::{AtomicCounters, Shared, server_name};

/// How long a new connection may take to send its hello.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection's id, unique for the daemon's life.
pub type SessionId = u64;

/// A client's credentials as the kernel reports them for its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Process id at connect time.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// A frame on its way out, with the descriptors that must travel with it.
struct Outgoing {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// Why reading a frame stopped.
enum ReadError {
    /// The peer closed the connection between frames.
    Closed,
    /// The peer closed the connection in the middle of a frame.
    Truncated,
    /// The header is unacceptable.
    Frame(FrameError),
    /// The socket failed.
    Io(std::io::Error),
    /// No hello arrived within [`HANDSHAKE_TIMEOUT`].
    NoHello,
}

async fn read_frame(reader: &mut BufReader<OwnedReadHalf>, max: u32) -> Result<Vec<u8>, ReadError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match reader.read(&mut header[got..]).await {
            Ok(0) if got == 0 => return Err(ReadError::Closed),
            Ok(0) => return Err(ReadError::Truncated),
            Ok(n) => got += n,
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    let header = FrameHeader::parse(header, max).map_err(ReadError::Frame)?;
    let mut payload = vec![0u8; header.len as usize];
    match reader.read_exact(&mut payload).await {
        Ok(_) => Ok(payload),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ReadError::Truncated),
        Err(e) => Err(ReadError::Io(e)),
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
            result: Outcome::Err(WireError::new(
                ErrorCode::TooLarge,
                format!("answer too large to send: {e}"),
            )),
        };
        let payload = protocol::encode_server(&err).unwrap_or_default();
        protocol::frame::frame(&payload, protocol::HARD_MAX_FRAME).unwrap_or_default()
    })
}

/// Sends queued frames in order; batches frames without descriptors into one write.
async fn write_loop(mut writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            if !out.fds.is_empty() {
                if !batch.is_empty() && writer.write_all(&batch).await.is_err() {
                    return;
                }
                batch.clear();
                if send_with_fds(&mut writer, &out).await.is_err() {
                    return;
                }
            } else {
                batch.extend_from_slice(&out.bytes);
            }
            if batch.len() < 64 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() && writer.write_all(&batch).await.is_err() {
            return;
        }
        batch.clear();
    }
    let _ = writer.shutdown().await;
}

/// Sends one frame whose first byte carries the descriptors, then the rest.
async fn send_with_fds(writer: &mut OwnedWriteHalf, out: &Outgoing) -> std::io::Result<()> {
    let stream: &UnixStream = writer.as_ref();
    let sent = loop {
        stream.writable().await?;
        match stream.try_io(tokio::io::Interest::WRITABLE, || {
            crate::sys::socket::send_with_fds(stream.as_fd(), &out.bytes, &out.fds)
                .map_err(std::io::Error::from)
        }) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    writer.write_all(&out.bytes[sent..]).await
}

/// Serves one connection until it closes or the daemon shuts down.
pub async fn run(shared: Arc<Shared>, stream: UnixStream, mut shutdown: watch::Receiver<bool>) {
    let id = shared.next_session_id();
    let peer = match stream.peer_cred() {
        Ok(c) => Peer {
            pid: c.pid().unwrap_or(0),
            uid: c.uid(),
            gid: c.gid(),
        },
        Err(e) => {
            warn!(session = id, "cannot read peer credentials, closing: {e}");
            return;
        }
    };
    debug!(session = id, pid = peer.pid, uid = peer.uid, "connected");
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Outgoing>(256);
    let writer = tokio::spawn(write_loop(write_half, rx));
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let caller = Caller {
        peer,
        session: id,
        version: PROTOCOL_VERSION,
    };

    let mut session = Session {
        shared: &shared,
        tx,
        caller,
        greeted: false,
    };
    loop {
        let max = if session.greeted {
            shared.limits().max_frame
        } else {
            protocol::HARD_MAX_FRAME.min(64 * 1024)
        };
        let greeted = session.greeted;
        let frame = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => None,
            frame = read_frame(&mut reader, max) => Some(frame),
            // A connection that never says hello must not hold a slot for long.
            _ = tokio::time::sleep(HANDSHAKE_TIMEOUT), if !greeted => Some(Err(ReadError::NoHello)),
        };
        let Some(frame) = frame else {
            session
                .send(ServerFrame::Event(Event::ShuttingDown), Vec::new())
                .await;
            break;
        };
        let keep_going = match frame {
            Ok(payload) => session.on_frame(&payload).await,
            Err(ReadError::Closed) => false,
            Err(ReadError::Truncated) => {
                debug!(session = id, "connection closed in the middle of a frame");
                false
            }
            Err(ReadError::Frame(e)) => {
                let code = match e {
                    FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
                    FrameError::Empty => ErrorCode::MalformedFrame,
                };
                session.fatal(code, e.to_string()).await;
                false
            }
            Err(ReadError::NoHello) => {
                let msg = format!(
                    "no hello within {}s of connecting",
                    HANDSHAKE_TIMEOUT.as_secs()
                );
                session.fatal(ErrorCode::HandshakeRequired, msg).await;
                false
            }
            Err(ReadError::Io(e)) => {
                debug!(session = id, "read failed: {e}");
                false
            }
        };
        if !keep_going {
            break;
        }
    }
    drop(session);
    let _ = writer.await;
    let removed = shared.registry().end_session(id);
    AtomicCounters::bump(&shared.counters.deleted, removed as u64);
    shared.sessions.fetch_sub(1, Ordering::Relaxed);
    debug!(session = id, removed, "disconnected");
}

struct Session<'a> {
    shared: &'a Shared,
    tx: mpsc::Sender<Outgoing>,
    caller: Caller,
    greeted: bool,
}

impl Session<'_> {
    async fn send(&self, frame: ServerFrame, fds: Vec<OwnedFd>) {
        let bytes = encode(&frame, self.shared.limits().max_frame);
        let _ = self.tx.send(Outgoing { bytes, fds }).await;
    }

    async fn fatal(&self, code: ErrorCode, message: String) {
        info!(
            session = self.caller.session,
            pid = self.caller.peer.pid,
            "closing connection: {message}"
        );
        self.send(
            ServerFrame::Fatal(WireError::new(code, message)),
            Vec::new(),
        )
        .await;
    }

    /// Handles one frame; returns whether to keep the connection.
    async fn on_frame(&mut self, payload: &[u8]) -> bool {
        let frame = match protocol::decode_client(payload) {
            Ok(f) => f,
            Err(e) => {
                self.fatal(ErrorCode::MalformedFrame, e.to_string()).await;
                return false;
            }
        };
        match (frame, self.greeted) {
            (ClientFrame::Hello(hello), false) => self.on_hello(hello).await,
            (ClientFrame::Hello(_), true) => {
                self.fatal(
                    ErrorCode::HandshakeRequired,
                    "second handshake on one connection".into(),
                )
                .await;
                false
            }
            (ClientFrame::Request { .. }, false) => {
                self.fatal(
                    ErrorCode::HandshakeRequired,
                    "the first frame must be a hello".into(),
                )
                .await;
                false
            }
            (ClientFrame::Request { id, body }, true) => {
                let result = handler::handle(self.shared, &self.caller, body);
                AtomicCounters::bump(&self.shared.counters.requests, 1);
                let (result, fds) = match result {
                    Ok((reply, fds)) => (Outcome::Ok(reply), fds),
                    Err(e) => {
                        // "Try again later" (a FIFO without a reader yet) is not a failure.
                        if e.code() != ErrorCode::WouldBlock {
                            AtomicCounters::bump(&self.shared.counters.errors, 1);
                        }
                        debug!(session = self.caller.session, "request {id} failed: {e}");
                        (Outcome::Err(e.to_wire()), Vec::new())
                    }
                };
                self.send(
                    ServerFrame::Response {
                        id,
                        fds: fds.len() as u8,
                        result,
                    },
                    fds,
                )
                .await;
                true
            }
        }
    }

    async fn on_hello(&mut self, hello: Hello) -> bool {
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&hello.version) {
            let msg = format!(
                "protocol version {} is not supported; this ipcd speaks versions {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}",
                hello.version
            );
            self.fatal(ErrorCode::UnsupportedVersion, msg).await;
            return false;
        }
        let limits = self.shared.limits();
        let open = self.shared.sessions.load(Ordering::Relaxed);
        if open > limits.max_connections {
            let msg = format!(
                "too many connections ({open} open, max_connections is {})",
                limits.max_connections
            );
            self.fatal(ErrorCode::LimitExceeded, msg).await;
            return false;
        }
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
