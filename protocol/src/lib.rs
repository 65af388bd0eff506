//! The ipcd wire protocol: the one format spoken between `ipcd` and its clients.
//!
//! A connection is a Unix stream socket carrying *frames*. Each frame is a
//! 4-byte little-endian length followed by that many bytes of payload; the
//! payload is one [`ClientFrame`] (client → daemon) or one [`ServerFrame`]
//! (daemon → client), encoded by the [`codec`] module. File descriptors that
//! grant access to kernel objects travel beside a [`ServerFrame::Response`] as
//! `SCM_RIGHTS` ancillary data; the response says how many to expect.
//!
//! The first frame on a connection is always [`ClientFrame::Hello`], answered by
//! [`ServerFrame::Welcome`] (or [`ServerFrame::Fatal`] on a version mismatch).
//! After that the client sends [`ClientFrame::Request`]s, each with its own id,
//! and may pipeline them; the daemon answers each with a
//! [`ServerFrame::Response`] echoing the id.
//!
//! This crate does no I/O on sockets; it only turns messages into bytes and back.
//! `PROTOCOL.md` at the repository root describes the bytes for other languages.

#![forbid(unsafe_code)]

pub mod address;
pub mod codec;
pub mod error;
pub mod frame;
pub mod frame_buffer;
pub mod kinds;
pub mod message;

#[cfg(test)]
mod proptests;

pub use address::{Address, Kind, Name};
pub use codec::{CodecError, decode_client, decode_server, encode_client, encode_server};
pub use error::{ErrorCode, WireError};
pub use frame::{FrameError, FrameHeader, HARD_MAX_FRAME, HEADER_LEN, MIN_MAX_FRAME};
pub use frame_buffer::FrameBuffer;
pub use kinds::*;
pub use message::*;

/// The protocol version this crate speaks. Bumped when a message is added.
pub const PROTOCOL_VERSION: u16 = 7;

/// The oldest protocol version this crate can still speak.
pub const MIN_PROTOCOL_VERSION: u16 = 1;
