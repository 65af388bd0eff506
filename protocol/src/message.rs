//! Every message that crosses the wire.
//!
//! Enums are encoded by variant position, so variants are **append-only**; each
//! says which protocol version introduced it. `ClientFrame::Hello` and
//! `ServerFrame::Welcome` stay variant 0 forever, and `ServerFrame::Fatal` keeps
//! its position, so any two versions can at least tell each other why they
//! cannot talk.

use crate::address::Kind;
use crate::error::WireError;
use crate::kinds::{KindDetails, KindOp, KindParams, KindReply};

#[cfg(test)]
use proptest_derive::Arbitrary;

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum ClientFrame {
    /// The handshake; must be the first frame and only the first. Variant 0 forever.
    Hello(Hello),
    /// A request, answered by a [`ServerFrame::Response`] with the same id. Since version 1.
    Request {
        /// Chosen by the client; echoed in the response. Ids may be reused once answered.
        id: u64,
        /// What to do.
        body: Request,
    },
}

/// The client's half of the handshake.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct Hello {
    /// The protocol version the client speaks.
    pub version: u16,
    /// A free-form client name for logs (`ipcctl`, `my-app`).
    pub client_name: String,
}

/// A frame sent by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum ServerFrame {
    /// The daemon's half of the handshake. Variant 0 forever.
    Welcome(Welcome),
    /// The answer to one request. Since version 1.
    Response {
        /// The id of the request this answers.
        id: u64,
        /// How many file descriptors arrive with this frame as `SCM_RIGHTS`.
        fds: u8,
        /// The result.
        result: Outcome,
    },
    /// Something the daemon pushes without being asked. Since version 1.
    Event(Event),
    /// A connection-level error; the daemon closes the connection after sending it.
    /// Keeps variant 3 forever.
    Fatal(WireError),
}

/// The daemon's half of the handshake.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct Welcome {
    /// The version this connection will speak (the client's).
    pub version: u16,
    /// The oldest version the daemon speaks.
    pub min_version: u16,
    /// The newest version the daemon speaks.
    pub max_version: u16,
    /// The daemon's name and build, e.g. `ipcd 0.1.0`.
    pub server: String,
    /// The limits in force for this connection.
    pub limits: Limits,
    /// The caller's credentials as the daemon sees them (`SO_PEERCRED`).
    pub peer: Credentials,
}

/// Limits the daemon enforces. Exceeding one is answered with an error code; a
/// frame over `max_frame` also ends the connection, since the stream cannot be
/// resynchronised without reading the oversized payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct Limits {
    /// Largest frame payload, in bytes, either side may send.
    pub max_frame: u32,
    /// Largest message size an object may be created with, in bytes.
    pub max_message_size: u64,
    /// Most objects one uid may own.
    pub max_objects_per_uid: u32,
    /// Most client connections at once.
    pub max_connections: u32,
}

/// A process's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct Credentials {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// What a client asks the daemon to do. Addresses are `KIND:NAME` strings,
/// validated by the daemon (see `Address::parse`).
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum Request {
    /// Answered by [`Reply::Pong`]. Since version 1.
    Ping,
    /// Daemon status and counters, answered by [`Reply::Status`]. Since version 1.
    Status,
    /// Objects (of one kind, or all), answered by [`Reply::List`]. Since version 1.
    List {
        /// Only this kind, or every kind.
        kind: Option<Kind>,
    },
    /// One object's details, answered by [`Reply::Stat`]. Since version 1.
    Stat {
        /// `KIND:NAME`.
        address: String,
    },
    /// Create (or adopt) an object, answered by [`Reply::Created`]. Since version 1.
    Create {
        /// `KIND:NAME`.
        address: String,
        /// How.
        spec: CreateSpec,
    },
    /// Get a capability for an object, answered by [`Reply::Opened`] with file
    /// descriptors attached. Since version 1.
    Open {
        /// `KIND:NAME`.
        address: String,
        /// Which way data will flow.
        access: Access,
    },
    /// Remove an object and its kernel object, answered by [`Reply::Deleted`]. Since version 1.
    Delete {
        /// `KIND:NAME`.
        address: String,
    },
    /// Close the daemon's write end of a pipe, so readers see end-of-file once it
    /// is drained and the other writers are gone; answered by [`Reply::Closed`].
    /// Since version 2.
    Close {
        /// `KIND:NAME` (a `pipe:`).
        address: String,
    },
    /// A kind-specific operation on one object, answered by [`Reply::Kind`] —
    /// now, or later for operations that wait (see each operation). Since version 3.
    Kind {
        /// `KIND:NAME`; its kind must be the operation's.
        address: String,
        /// What to do.
        op: KindOp,
    },
    /// One page of the objects the caller may see, sorted by address, answered
    /// by [`Reply::ListPage`]. Works for any number of objects: ask again with
    /// `after` set to the page's `next` until `next` is `None`. Since version 3.
    ListPage {
        /// Only this kind, or every kind.
        kind: Option<Kind>,
        /// Start after this address (`None`: from the first).
        after: Option<String>,
        /// At most this many objects (the daemon may return fewer, never 0 while
        /// objects remain; 0 asks for the daemon's default page size).
        limit: u32,
    },
    /// What the caller's uid holds in the daemon and the shares it may hold,
    /// answered by [`Reply::Usage`]. Since version 3.
    Usage,
    /// Send the real signal `signal` to process `pid` on the caller's behalf,
    /// answered by [`Reply::Killed`]: only a process of the caller's own uid
    /// (as `kill(2)` checks; root: any), through a pidfd; ipcd logs who
    /// asked. Since version 6.
    Kill {
        /// The process.
        pid: i32,
        /// The signal (1 to 31, or 34 to 64).
        signal: i32,
    },
}

impl Request {
    /// The protocol version that introduced this request; a connection that
    /// agreed on an older version may not send it (it could not decode the reply).
    pub fn since_version(&self) -> u16 {
        match self {
            Request::Ping
            | Request::Status
            | Request::List { .. }
            | Request::Stat { .. }
            | Request::Create { .. }
            | Request::Open { .. }
            | Request::Delete { .. } => 1,
            Request::Close { .. } => 2,
            Request::Kind { .. } | Request::ListPage { .. } | Request::Usage => 3,
            Request::Kill { .. } => 6,
        }
    }
}

/// How to create an object.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct CreateSpec {
    /// Permission bits, `0o7 7 7` for owner/group/other, of which read (4)
    /// allows receive/map and write (2) allows send. `None`: `0o600`.
    pub mode: Option<u32>,
    /// When the object goes away.
    pub lifetime: Lifetime,
    /// Register a kernel object that already exists instead of creating one.
    pub adopt: bool,
    /// Kind-specific parameters; must match the address's kind.
    pub params: KindParams,
}

/// When an object goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum Lifetime {
    /// Until deleted; survives client disconnects and daemon restarts. Since version 1.
    Persistent,
    /// Removed when the connection that created it closes. Since version 1.
    Session,
}

/// Which way data will flow through an opened capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum Access {
    /// Receive / read / map read-only; needs the read bit. Since version 1.
    Read,
    /// Send / write; needs the write bit. Since version 1.
    Write,
    /// Both; needs both bits. Since version 1.
    ReadWrite,
}

impl Access {
    /// Whether this access includes reading.
    pub fn reads(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }

    /// Whether this access includes writing.
    pub fn writes(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

/// The result of a request.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum Outcome {
    /// It worked.
    Ok(Reply),
    /// It did not; the connection stays usable.
    Err(WireError),
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum Reply {
    /// Answers [`Request::Ping`]. Since version 1.
    Pong,
    /// Answers [`Request::Status`]. Since version 1.
    Status(StatusInfo),
    /// Answers [`Request::List`], sorted by address. Since version 1.
    List(Vec<ObjectInfo>),
    /// Answers [`Request::Stat`]. Since version 1.
    Stat(ObjectInfo),
    /// Answers [`Request::Create`]. Since version 1.
    Created(ObjectInfo),
    /// Answers [`Request::Open`]; the descriptors come with the frame: one, a
    /// fresh open file description with the granted access. `mq`: the queue.
    /// `pipe`: the requested end (`ReadWrite` is refused). `fifo`: the FIFO,
    /// opened `O_NONBLOCK` (a writer open fails with `WouldBlock` while no reader
    /// has it open, unless it is buffered). Since version 1.
    Opened {
        /// The object.
        info: ObjectInfo,
        /// The access granted.
        access: Access,
    },
    /// Answers [`Request::Delete`]. Since version 1.
    Deleted,
    /// Answers [`Request::Close`]. Since version 2.
    Closed,
    /// Answers [`Request::Kind`]. Since version 3.
    Kind(KindReply),
    /// Answers [`Request::ListPage`]. Since version 3.
    ListPage {
        /// The objects, sorted by address.
        objects: Vec<ObjectInfo>,
        /// The address to pass as `after` for the next page; `None` on the last page.
        next: Option<String>,
    },
    /// Answers [`Request::Usage`]. Since version 3.
    Usage(UsageInfo),
    /// Answers [`Request::Kill`]: the signal was sent. Since version 6.
    Killed,
}

/// What one uid holds in the daemon, against its shares. A `max_*` of
/// `u64::MAX` means no per-uid share applies (root and the daemon's own uid are
/// bounded only by the daemon-wide limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct UsageInfo {
    /// The uid this is about (the caller's).
    pub uid: u32,
    /// Whether the uid is exempt from per-uid shares.
    pub privileged: bool,
    /// Connections open.
    pub connections: u64,
    /// Most connections (`max_connections_per_uid`).
    pub max_connections: u64,
    /// Objects owned.
    pub objects: u64,
    /// Most objects (`max_objects_per_uid`).
    pub max_objects: u64,
    /// Descriptors the daemon holds for this uid's objects and waits.
    pub fds: u64,
    /// Most such descriptors (`max_fds_per_uid`).
    pub max_fds: u64,
    /// Requests waiting.
    pub waits: u64,
    /// Most requests waiting (`max_waits_per_uid`).
    pub max_waits: u64,
    /// Bytes this uid's queues are charged (kernel accounting, estimated).
    pub mq_bytes: u64,
    /// Most queue bytes (`mq_bytes_per_uid`).
    pub max_mq_bytes: u64,
    /// The daemon's whole queue byte budget (`RLIMIT_MSGQUEUE`), all users together.
    pub mq_budget_bytes: u64,
    /// The daemon's open-file limit.
    pub nofile: u64,
}

/// What the daemon knows of one object.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct ObjectInfo {
    /// `KIND:NAME`.
    pub address: String,
    /// The kind.
    pub kind: Kind,
    /// The kernel's name or path for it (`/ipcd.jobs` for a queue).
    pub kernel_name: String,
    /// Owner's uid (the creator, unless created by root for someone else).
    pub owner_uid: u32,
    /// Owner's gid.
    pub owner_gid: u32,
    /// Permission bits (see [`CreateSpec::mode`]).
    pub mode: u32,
    /// Pid of the process that created it.
    pub creator_pid: i32,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// When it goes away.
    pub lifetime: Lifetime,
    /// Capabilities handed out since the daemon started.
    pub opens: u64,
    /// Kind-specific details.
    pub details: KindDetails,
}

/// Daemon status.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct StatusInfo {
    /// Daemon name and version.
    pub server: String,
    /// Daemon pid.
    pub pid: i32,
    /// Milliseconds since the daemon started.
    pub uptime_ms: u64,
    /// The socket path it listens on.
    pub socket: String,
    /// The kernel-name prefix of its objects.
    pub prefix: String,
    /// Objects registered.
    pub objects: u32,
    /// Connections open now.
    pub sessions: u32,
    /// Counters since start.
    pub counters: Counters,
    /// Limits in force.
    pub limits: Limits,
}

/// Counters since the daemon started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct Counters {
    /// Connections accepted.
    pub connections: u64,
    /// Requests answered.
    pub requests: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Objects created or adopted.
    pub created: u64,
    /// Objects deleted (by request or at session end).
    pub deleted: u64,
    /// Capabilities (file descriptors) handed out.
    pub capabilities: u64,
}

/// Something the daemon pushes to a client without a request.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum Event {
    /// The daemon is shutting down; in-flight requests still get answers. Since version 1.
    ShuttingDown,
}
