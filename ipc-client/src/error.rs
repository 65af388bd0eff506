//! The client's error type: daemon errors (with their stable code) and local failures.

use std::io;
use std::path::PathBuf;

use protocol::{ErrorCode, WireError};

/// A shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to ipcd or using an object it handed out.
///
/// Daemon answers keep their stable [`ErrorCode`]; use [`Error::code`] to branch
/// on them rather than on message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The daemon refused a request; the connection stays usable.
    #[error("{} ({})", .0.message, .0.code.slug())]
    Server(WireError),

    /// The daemon ended the connection with a connection-level error (for
    /// example an unsupported protocol version or too many connections).
    #[error("ipcd closed the connection: {} ({})", .0.message, .0.code.slug())]
    Fatal(WireError),

    /// The daemon's socket could not be reached; the cause is the error's `source()`.
    #[error("cannot connect to ipcd at {}", path.display())]
    Connect {
        /// The socket path that was tried.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },

    /// Reading from or writing to the daemon's socket failed; the cause is the
    /// error's `source()`.
    #[error("i/o error on the ipcd connection")]
    Io(#[source] io::Error),

    /// The daemon sent something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The connection is closed (by the daemon, or after an earlier error on it).
    #[error("the ipcd connection is closed")]
    Closed,

    /// The operation's time ran out (a timed send or receive, or a request timeout).
    #[error("timed out")]
    TimedOut,

    /// The operation would have to wait and waiting was not asked for: the queue
    /// is full (send) or empty (receive).
    #[error("the operation would block (queue full or empty)")]
    WouldBlock,

    /// A message is longer than the queue's maximum message size.
    #[error("message of {len} bytes exceeds the queue's message size of {msg_size} bytes")]
    MessageTooLarge {
        /// The message length.
        len: usize,
        /// The queue's maximum message size (`mq_msgsize`).
        msg_size: usize,
    },

    /// A receive buffer is shorter than the queue's maximum message size.
    #[error(
        "receive buffer of {len} bytes is smaller than the queue's message size of {msg_size} bytes"
    )]
    BufferTooSmall {
        /// The buffer length.
        len: usize,
        /// The queue's maximum message size (`mq_msgsize`).
        msg_size: usize,
    },

    /// The handle was opened without the access this operation needs.
    #[error("{address} was not opened for {needed}")]
    AccessDenied {
        /// The object's address.
        address: String,
        /// `"sending"`, `"receiving"` or `"writing"`.
        needed: &'static str,
    },

    /// A range of a shared-memory segment runs past its end (as mapped).
    #[error("{len} bytes at offset {offset} run past the end of {address} ({size} bytes mapped)")]
    OutOfBounds {
        /// The segment's address.
        address: String,
        /// Where the range starts.
        offset: u64,
        /// How many bytes it covers.
        len: u64,
        /// The bytes mapped (the segment's size when it was last mapped).
        size: u64,
    },

    /// An atomic word of a shared-memory segment asked for at an offset that
    /// is not a multiple of its size.
    #[error(
        "offset {offset} in {address} is not a multiple of {align}, as a {align}-byte atomic word needs"
    )]
    Misaligned {
        /// The segment's address.
        address: String,
        /// The offset asked for.
        offset: u64,
        /// The word's size and alignment in bytes.
        align: u64,
    },

    /// An argument was rejected locally (for example a priority out of range).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A line or binary message for a pipe or FIFO does not fit in one atomic
    /// write of `PIPE_BUF` (4096) bytes, so it is refused: written in pieces it
    /// could interleave with other writers' bytes.
    #[error(
        "{what} of {len} bytes is too large for {address}: one atomic write carries at most \
         {max} bytes (PIPE_BUF is 4096), and a longer one could interleave with other writers'"
    )]
    ExceedsPipeBuf {
        /// The object's address.
        address: String,
        /// `"message"` or `"line (with its newline)"`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },

    /// Writing to a pipe or FIFO failed because no process has it open for
    /// reading any more (`EPIPE`): the object was deleted, or a FIFO's reader left.
    #[error("no reader left on {address} ({})", reader_gone_hint(address))]
    ReaderGone {
        /// The object's address.
        address: String,
    },

    /// What came out of a pipe or FIFO is not a valid length-prefixed message:
    /// the stream ended inside one, or a length is impossible.
    #[error("bad message on {address}: {detail}")]
    BadMessage {
        /// The object's address.
        address: String,
        /// What is wrong.
        detail: String,
    },

    /// A message is longer than a ring's slot size (ring messages are at most
    /// one slot).
    #[error("message of {len} bytes exceeds the slot size of {address}, {slot_size} bytes")]
    ExceedsSlotSize {
        /// The ring's address.
        address: String,
        /// The message length.
        len: usize,
        /// The ring's slot size: the largest message it carries.
        slot_size: usize,
    },

    /// The next message of a ring is longer than the receive buffer; it stays
    /// in the ring (a buffer of the slot size always fits).
    #[error("the next message on {address} is {needed} bytes; the receive buffer holds {len}")]
    RingBufferTooSmall {
        /// The ring's address.
        address: String,
        /// The buffer length.
        len: usize,
        /// The message length.
        needed: usize,
    },

    /// A ring's participant table is full: that many handles are attached.
    #[error("cannot attach to {address}: all {max} participant entries are taken by live handles")]
    RingAttachLimit {
        /// The ring's address.
        address: String,
        /// Entries in the table.
        max: u32,
    },

    /// A descriptor's segment is not a usable ring (bad header or size).
    #[error("{address} is not a usable ring: {detail}")]
    BadRing {
        /// The ring's address.
        address: String,
        /// What is wrong.
        detail: String,
    },

    /// A ring's shared state is impossible under the protocol (a peer that
    /// does not follow it, or memory scribbled over).
    #[error("ring corrupted: {address}: {detail}")]
    RingCorrupted {
        /// The ring's address.
        address: String,
        /// The impossible state.
        detail: String,
    },

    /// Another process judged this participant dead and reclaimed the slot it
    /// was writing or reading: that message is lost.
    #[error("message lost on {address}: {detail}")]
    RingMessageLost {
        /// The ring's address.
        address: String,
        /// What happened.
        detail: &'static str,
    },

    /// The object was deleted (its kernel object unlinked) while this handle
    /// waited on it; processes that still have it mapped may go on using it,
    /// but nobody new can join.
    #[error("{address} was deleted while waiting")]
    Deleted {
        /// The object's address.
        address: String,
    },

    /// A system call on an object's descriptor failed.
    #[error("{op} on {address} failed: {errno}")]
    Os {
        /// The system call, e.g. `mq_send`.
        op: &'static str,
        /// The object's address.
        address: String,
        /// The error number.
        errno: nix::errno::Errno,
    },
}

/// Why a pipe or FIFO may have no reader left.
fn reader_gone_hint(address: &str) -> &'static str {
    if address.starts_with("fifo:") {
        "its readers closed it, or it was deleted"
    } else {
        "deleted?"
    }
}

impl Error {
    /// The stable error code, when there is one: the daemon's code for
    /// [`Error::Server`] and [`Error::Fatal`], and [`ErrorCode::TimedOut`] /
    /// [`ErrorCode::WouldBlock`] for the local timeouts and would-block errors.
    ///
    /// ```
    /// use ipc_client::{Error, ErrorCode};
    /// assert_eq!(Error::WouldBlock.code(), Some(ErrorCode::WouldBlock));
    /// assert_eq!(Error::Closed.code(), None);
    /// ```
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(e) | Error::Fatal(e) => Some(e.code),
            Error::TimedOut => Some(ErrorCode::TimedOut),
            Error::WouldBlock => Some(ErrorCode::WouldBlock),
            Error::MessageTooLarge { .. }
            | Error::ExceedsPipeBuf { .. }
            | Error::ExceedsSlotSize { .. } => Some(ErrorCode::TooLarge),
            Error::BufferTooSmall { .. }
            | Error::RingBufferTooSmall { .. }
            | Error::BadRing { .. }
            | Error::InvalidArgument(_)
            | Error::OutOfBounds { .. }
            | Error::Misaligned { .. } => Some(ErrorCode::InvalidArgument),
            Error::RingAttachLimit { .. } => Some(ErrorCode::LimitExceeded),
            Error::Deleted { .. } => Some(ErrorCode::NotFound),
            Error::AccessDenied { .. } => Some(ErrorCode::PermissionDenied),
            Error::Os { .. } => Some(ErrorCode::Os),
            Error::Connect { .. }
            | Error::Io(_)
            | Error::Protocol(_)
            | Error::Closed
            | Error::ReaderGone { .. }
            | Error::BadMessage { .. }
            | Error::RingCorrupted { .. }
            | Error::RingMessageLost { .. } => None,
        }
    }

    /// Whether this error means "nothing happened in time": a timeout, or an
    /// operation that would have blocked. Command-line tools map it to a distinct
    /// exit status.
    pub fn is_timeout_or_would_block(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::TimedOut | ErrorCode::WouldBlock)
        )
    }
}

impl From<protocol::CodecError> for Error {
    fn from(e: protocol::CodecError) -> Self {
        Error::Protocol(e.to_string())
    }
}

impl From<protocol::FrameError> for Error {
    fn from(e: protocol::FrameError) -> Self {
        Error::Protocol(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_show_message_and_slug() {
        let e = Error::Server(WireError::new(
            ErrorCode::PermissionDenied,
            "uid 1000 may not write mq:jobs",
        ));
        assert_eq!(
            e.to_string(),
            "uid 1000 may not write mq:jobs (permission-denied)"
        );
        assert_eq!(e.code(), Some(ErrorCode::PermissionDenied));
    }

    #[test]
    fn connect_errors_name_the_path_and_keep_the_cause() {
        let e = Error::Connect {
            path: "/tmp/x.sock".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(e.to_string(), "cannot connect to ipcd at /tmp/x.sock");
        let cause = std::error::Error::source(&e)
            .unwrap()
            .downcast_ref::<io::Error>()
            .unwrap();
        assert_eq!(cause.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn timeouts_are_recognised() {
        assert!(Error::TimedOut.is_timeout_or_would_block());
        assert!(Error::WouldBlock.is_timeout_or_would_block());
        assert!(!Error::Closed.is_timeout_or_would_block());
    }
}
