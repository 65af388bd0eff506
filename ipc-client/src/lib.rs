//! Client library for ipcd: connect to the daemon, manage named IPC objects, and
//! use the capabilities (file descriptors) it hands out.
//!
//! The daemon only brokers: it creates objects, checks permissions and passes
//! descriptors. Data then flows through the kernel object directly, so a
//! [`MessageQueue`] is exactly as fast as raw `mq_send`/`mq_receive`.
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
//! Errors are [`Error`]; those the daemon reports keep their stable
//! [`ErrorCode`] ([`Error::code`]).

mod client;
mod connection;
mod error;
mod fifo;
mod mq;
mod path;
mod pipe;
mod stream;
mod sys;

pub use client::{Client, ClientBuilder, DEFAULT_CLIENT_NAME, Response};
pub use error::{Error, Result};
pub use fifo::{FifoOptions, FifoReader, FifoWriter, fifo_address};
pub use mq::{MQ_PRIO_MAX, Message, MessageQueue, MqAttributes, MqOptions, mq_address};
pub use path::{SOCKET_ENV, SYSTEM_SOCKET, default_socket_path, resolve_socket_path};
pub use pipe::{PipeOptions, PipeReader, PipeWriter, pipe_address};
pub use stream::{MAX_MSG_LEN, MSG_HEADER_LEN, PIPE_BUF};

/// The wire protocol crate, for the types requests and answers are made of.
pub use protocol;
pub use protocol::{
    Access, CreateSpec, ErrorCode, Event, FifoDetails, FifoParams, Kind, KindDetails, KindParams,
    Lifetime, MqDetails, MqParams, ObjectInfo, PipeDetails, PipeParams, Reply, Request, StatusInfo,
    Welcome, WireError,
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
        shareable::<crate::Error>();
    }
}
