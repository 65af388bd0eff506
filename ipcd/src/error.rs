//! Daemon errors and their one mapping to wire error codes.

use std::path::PathBuf;

use protocol::{ErrorCode, WireError};
use thiserror::Error;

/// A request failed; the session answers with the matching wire error and goes on.
#[derive(Debug, Error)]
pub enum RequestError {
    /// The address or name is malformed, or names an unknown kind.
    #[error("{0}")]
    BadAddress(WireError),
    /// No object has this address.
    #[error("no object '{0}'")]
    NotFound(String),
    /// A kernel object the request needs does not exist (the message says which).
    #[error("{0}")]
    KernelObjectMissing(String),
    /// An object with this address is registered already.
    #[error("object '{0}' already exists")]
    AlreadyExists(String),
    /// The kernel name is taken by an object ipcd did not register (the
    /// message names it and its owner).
    #[error("{0}")]
    KernelNameTaken(String),
    /// The request's parameters are for another kind.
    #[error("{0}")]
    WrongKind(String),
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A configured limit is reached.
    #[error("limit reached: {0}")]
    LimitExceeded(String),
    /// A size is above the limit in force.
    #[error("{0}")]
    TooLarge(String),
    /// A kernel limit stops the request.
    #[error("{0}")]
    KernelLimit(String),
    /// An argument is out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// A system call failed.
    #[error("{context}: {errno}")]
    Os {
        /// What was being done, e.g. `mq_open /ipcd.jobs`.
        context: String,
        /// The error number.
        errno: nix::errno::Errno,
    },
    /// The daemon is shutting down.
    #[error("ipcd is shutting down")]
    ShuttingDown,
    /// The operation cannot proceed now and the caller may retry (e.g. no FIFO reader yet).
    #[error("{0}")]
    WouldBlock(String),
    /// A wait ran out of time.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// A synchronization object is broken (a barrier whose party left or timed out).
    #[error("broken: {0}")]
    Broken(String),
    /// The address names a kind newer than the connection's protocol version.
    #[error("{0}")]
    KindTooNew(String),
    /// The request is newer than the connection's protocol version.
    #[error("{0}")]
    RequestTooNew(String),
    /// A string in the request is not valid UTF-8.
    #[error("a string in the request (an address?) is not valid UTF-8")]
    InvalidUtf8,
    /// The answer does not fit in a frame.
    #[error("answer too large to send: {0} (protocol version 3 lists by pages)")]
    AnswerTooLarge(String),
}

impl RequestError {
    /// Wraps a failed system call with what was being done.
    pub fn os(context: impl Into<String>, errno: nix::errno::Errno) -> Self {
        RequestError::Os {
            context: context.into(),
            errno,
        }
    }

    /// The stable wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::BadAddress(e) => e.code,
            RequestError::NotFound(_) | RequestError::KernelObjectMissing(_) => ErrorCode::NotFound,
            RequestError::AlreadyExists(_) | RequestError::KernelNameTaken(_) => {
                ErrorCode::AlreadyExists
            }
            RequestError::WrongKind(_) => ErrorCode::WrongKind,
            RequestError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            RequestError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            RequestError::TooLarge(_) => ErrorCode::TooLarge,
            RequestError::KernelLimit(_) => ErrorCode::KernelLimit,
            RequestError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            RequestError::Os { .. } => ErrorCode::Os,
            RequestError::ShuttingDown => ErrorCode::ShuttingDown,
            RequestError::WouldBlock(_) => ErrorCode::WouldBlock,
            RequestError::TimedOut(_) => ErrorCode::TimedOut,
            RequestError::Broken(_) => ErrorCode::Broken,
            RequestError::KindTooNew(_) => ErrorCode::UnknownKind,
            RequestError::RequestTooNew(_) => ErrorCode::UnsupportedVersion,
            RequestError::InvalidUtf8 => ErrorCode::InvalidAddress,
            RequestError::AnswerTooLarge(_) => ErrorCode::TooLarge,
        }
    }

    /// The error as it goes on the wire.
    pub fn to_wire(&self) -> WireError {
        match self {
            RequestError::BadAddress(e) => e.clone(),
            other => WireError::new(other.code(), other.to_string()),
        }
    }
}

impl From<WireError> for RequestError {
    fn from(e: WireError) -> Self {
        RequestError::BadAddress(e)
    }
}

/// A connection-level failure: answered with `ServerFrame::Fatal`, then the
/// connection is closed. The same single mapping to wire codes as requests.
#[derive(Debug, Error)]
pub enum FatalError {
    /// A frame's payload is not a valid message.
    #[error("{0}")]
    Malformed(String),
    /// A frame header announces more than the limit in force.
    #[error("{0}")]
    FrameTooLarge(String),
    /// A frame header announces an empty payload.
    #[error("empty frame")]
    EmptyFrame,
    /// The client's protocol version is not spoken here.
    #[error(
        "protocol version {got} is not supported; this ipcd speaks versions {min} to {max} (supported={min}-{max})"
    )]
    UnsupportedVersion {
        /// The client's version.
        got: u16,
        /// Oldest spoken.
        min: u16,
        /// Newest spoken.
        max: u16,
    },
    /// A request before the hello, or a second hello.
    #[error("{0}")]
    Handshake(&'static str),
    /// No hello in time.
    #[error("no hello within {0}s of connecting")]
    NoHello(u64),
    /// Too many connections.
    #[error("{0}")]
    TooManyConnections(String),
}

impl FatalError {
    /// The stable wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            FatalError::Malformed(_) | FatalError::EmptyFrame => ErrorCode::MalformedFrame,
            FatalError::FrameTooLarge(_) => ErrorCode::FrameTooLarge,
            FatalError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            FatalError::Handshake(_) | FatalError::NoHello(_) => ErrorCode::HandshakeRequired,
            FatalError::TooManyConnections(_) => ErrorCode::LimitExceeded,
        }
    }

    /// The error as it goes on the wire.
    pub fn to_wire(&self) -> WireError {
        WireError::new(self.code(), self.to_string())
    }
}

impl From<protocol::FrameError> for FatalError {
    fn from(e: protocol::FrameError) -> Self {
        match e {
            protocol::FrameError::TooLarge { .. } => FatalError::FrameTooLarge(e.to_string()),
            protocol::FrameError::Empty => FatalError::EmptyFrame,
        }
    }
}

/// Configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The daemon could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// Another ipcd answers on the socket.
    #[error("another ipcd is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// The socket could not be set up.
    #[error("cannot listen on {path}: {error}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The registry could not be loaded or saved.
    #[error("state file {path}: {message}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Other I/O failure.
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        error: std::io::Error,
    },
    /// Another ipcd uses the state directory.
    #[error("another ipcd is using the state directory {0} (it holds the lock on its registry)")]
    StateInUse(PathBuf),
}
