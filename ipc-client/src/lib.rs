//! Client library for ipcd: connect to the daemon, manage named IPC objects, and
//! use the capabilities (file descriptors) it hands out.
//!
//! For most kinds the daemon only brokers: it creates objects, checks
//! permissions and passes descriptors. Data then flows through the kernel
//! object directly, so a [`MessageQueue`] is exactly as fast as raw
//! `mq_send`/`mq_receive`. Work queues (`queue:`, [`QueueSender`],
//! [`QueueReceiver`]) and signal channels are the exceptions by design: their
//! messages pass through ipcd, which keeps them, acknowledges them and fans
//! them out.
//!
//! ```no_run
//! use ipc_client::{Access, Client, MqOptions};
//!
//! let mut client = Client::connect()?; // $IPCD_SOCKET, $XDG_RUNTIME_DIR/ipcd/ipcd.sock, /run/ipcd/ipcd.sock
//! client.create_mq("jobs", &MqOptions::new().capacity(10).msg_size(1024).mode(0o660))?;
//!
//! let tx = client.open_mq("mq:jobs", Access::Write)?;
//! tx.send(b"build #42", 1)?;
//!
//! let rx = client.open_mq("mq:jobs", Access::Read)?;
//! let msg = rx.recv()?;
//! assert_eq!(msg.data, b"build #42");
//!
//! client.delete("mq:jobs")?;
//! # Ok::<(), ipc_client::Error>(())
//! ```
//!
//! Pipes and FIFOs work the same way: the daemon hands out one end, and lines,
//! length-prefixed messages or raw bytes flow through the kernel
//! ([`PipeReader`], [`PipeWriter`], [`FifoReader`], [`FifoWriter`]):
//!
//! ```no_run
//! use ipc_client::{Client, PipeOptions};
//!
//! let mut client = Client::connect()?;
//! client.create_pipe("logs", &PipeOptions::new().session())?;
//! let tx = client.open_pipe_writer("logs")?;
//! tx.send_line(b"hello")?; // one atomic write: at most PIPE_BUF (4096) bytes
//! let mut rx = client.open_pipe_reader("logs")?;
//! assert_eq!(rx.read_line()?.as_deref(), Some(&b"hello"[..]));
//! # Ok::<(), ipc_client::Error>(())
//! ```
//!
//! # Pipes and FIFOs
//!
//! A `pipe:` is an anonymous pipe the daemon holds (both ends) and hands out end
//! by end ([`Client::open_pipe_reader`], [`Client::open_pipe_writer`]); readers
//! see end-of-file after [`Client::close_pipe`] once it is drained and the
//! handed-out writers are closed. A `fifo:` is a named pipe in the daemon's
//! runtime directory ([`Client::fifo_path`]) with standard FIFO semantics: a
//! writer waits for a reader ([`Client::open_fifo_writer`] retries until its
//! timeout), unless the FIFO is buffered ([`FifoOptions::buffered`]).
//!
//! - **Messages are atomic, so they are at most [`PIPE_BUF`] bytes.** A line
//!   ([`PipeWriter::send_line`]) or a length-prefixed binary message
//!   ([`PipeWriter::send_msg`]: a `u32` little-endian length, then the bytes) is
//!   one `write(2)` of at most 4096 bytes, which POSIX keeps whole, so
//!   concurrent writers never interleave one. Larger ones are *refused* with
//!   [`Error::ExceedsPipeBuf`] rather than written in pieces another writer
//!   could tear apart; send big payloads as raw bytes ([`std::io::Write`]) or
//!   through a message queue.
//! - **A reader takes exactly one message.** Several processes may read a pipe
//!   in turn, so [`PipeReader::recv_msg`] reads exactly the length and the
//!   payload, and [`PipeReader::read_line`] reads byte by byte up to the
//!   newline; nothing after it is taken. ([`std::io::Read`] takes whatever is
//!   there.) Readers running *at the same time* can still split a message
//!   between them — give a pipe one reader at a time.
//! - **Every wait can have a timeout.** Untimed calls are plain blocking system
//!   calls; `*_timeout` and `try_*` calls switch the handle's own open file
//!   description to non-blocking and wait in `poll(2)`, so their timeouts hold
//!   even when other processes race for the same bytes. A call that times out part-way through a message
//!   keeps the bytes it took for the next call. Converting a handle into an
//!   [`OwnedFd`](std::os::fd::OwnedFd) or [`Stdio`](std::process::Stdio) for a
//!   child restores blocking mode (a FIFO reader first waits for a writer).
//! - **Writing with no reader left** (the object was deleted, a FIFO's reader
//!   went away) is [`Error::ReaderGone`], not a `SIGPIPE`.
//!
//! # Shared memory
//!
//! A `shm:` segment is a POSIX shared-memory object the daemon creates and
//! sizes ([`Client::create_shm`]); [`Client::open_shm`] maps all of it, and
//! processes then share its bytes directly — nothing passes through the
//! daemon. A [`SharedMemory`] copies bytes in and out with bounds checks and
//! hands out atomics for shared words, never a slice over memory another
//! process may be writing. Segments only grow ([`Client::resize_shm`]); a
//! mapping sees the new bytes after [`SharedMemory::refresh`].
//!
//! ```no_run
//! use std::sync::atomic::Ordering;
//! use ipc_client::{Access, Client, ShmOptions};
//!
//! let mut client = Client::connect()?;
//! client.create_shm("state", &ShmOptions::new().size(4096))?;
//! let shm = client.open_shm("state", Access::ReadWrite)?;
//! shm.write_at(8, b"ready")?;
//! shm.atomic_u64(0)?.store(1, Ordering::Release); // other processes load it with Acquire
//! # Ok::<(), ipc_client::Error>(())
//! ```
//!
//! Errors are [`Error`]; those the daemon reports keep their stable
//! [`ErrorCode`] ([`Error::code`]).

#![deny(unsafe_code)]

mod barrier;
mod client;
mod connection;
mod error;
mod event;
mod fifo;
mod lock;
mod mq;
mod path;
mod pipe;
mod queue;
mod ring;
mod sem;
mod shm;
mod signal;
mod stream;
#[allow(unsafe_code)]
mod sys;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

pub use barrier::barrier_address;
pub use client::{Client, ClientBuilder, DEFAULT_CLIENT_NAME, Response};
pub use error::{Error, Result};
pub use event::event_address;
pub use fifo::{FifoOptions, FifoReader, FifoWriter, fifo_address};
pub use lock::lock_address;
pub use mq::{MQ_PRIO_MAX, Message, MessageQueue, MqAttributes, MqOptions, mq_address};
pub use path::{SOCKET_ENV, SYSTEM_SOCKET, default_socket_path, resolve_socket_path};
pub use pipe::{PipeOptions, PipeReader, PipeWriter, pipe_address};
pub use queue::{QueueOptions, QueueReceiver, QueueSender, dead_letter_address, queue_address};
pub use ring::{Ring, RingMessage, RingOptions, SlotLoan, ring_address};
pub use sem::{DirectSem, sem_address};
pub use shm::{SharedMemory, ShmOptions, shm_address};
pub use signal::{Raised, Received, Subscription, signal_address};
pub use stream::{MAX_MSG_LEN, MSG_HEADER_LEN, PIPE_BUF};

/// The wire protocol crate, for the types requests and answers are made of.
pub use protocol;
pub use protocol::{
    Access, CreateSpec, DEAD_SUFFIX, ErrorCode, Event, FifoDetails, FifoParams, Fsync, Kind,
    KindDetails, KindOp, KindParams, KindReply, Lifetime, MqDetails, MqParams, ObjectInfo,
    PipeDetails, PipeParams, QUEUE_MESSAGE_OVERHEAD, QueueConsumer, QueueDelivery, QueueDetails,
    QueueItem, QueueJournal, QueueOrder, QueueParams, Readiness, Reply, Request, SHM_MAX_SIZE,
    ShmDetails, ShmOp, ShmParams, ShmReply, SignalDetails, SignalEvent, SignalParams, StatusInfo,
    UsageInfo, Welcome, WireError,
};

#[cfg(test)]
mod tests {
    fn shareable<T: Send + Sync>() {}

    #[test]
    fn handles_can_move_between_threads() {
        shareable::<crate::Client>();
        shareable::<crate::MessageQueue>();
        shareable::<crate::PipeReader>();
        shareable::<crate::PipeWriter>();
        shareable::<crate::FifoReader>();
        shareable::<crate::FifoWriter>();
        shareable::<crate::SharedMemory>();
        shareable::<crate::Ring>();
        shareable::<crate::QueueSender>();
        shareable::<crate::QueueReceiver>();
        shareable::<crate::Error>();
    }
}
