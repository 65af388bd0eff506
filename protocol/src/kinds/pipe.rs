//! `pipe:` — an anonymous pipe hosted by the daemon: parameters, details, operations, replies.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// Anonymous pipe parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct PipeParams {
    /// Buffer size in bytes (`F_SETPIPE_SZ`); `None` keeps the kernel default (64 KiB).
    pub capacity: Option<u32>,
}

/// An anonymous pipe's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct PipeDetails {
    /// Buffer size in bytes (`F_GETPIPE_SZ`).
    pub capacity: u64,
    /// Bytes waiting to be read (`FIONREAD`).
    pub buffered_bytes: u64,
    /// Read ends handed out since the daemon started.
    pub readers_opened: u64,
    /// Write ends handed out since the daemon started.
    pub writers_opened: u64,
    /// Whether the daemon closed its write end (`close`): no new writers, and
    /// readers see end-of-file once the other writers are gone and it is drained.
    pub closed: bool,
}

/// Operations on a pipe beyond create/open/stat/delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum PipeOp {
    /// Drop the daemon's write end (as [`Request::Close`](crate::Request::Close)
    /// does for version 2 clients); needs the write bit. Answered by
    /// [`PipeReply::Closed`]. Since version 3.
    Close,
}

/// Answers to [`PipeOp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum PipeReply {
    /// The write end is closed (or already was). Since version 3.
    Closed,
}
