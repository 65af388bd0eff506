//! `fifo:` — a named pipe: parameters and details. FIFOs have no operations of
//! their own yet; data flows through the descriptors `Open` hands out.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// Named pipe parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct FifoParams {
    /// The daemon holds the FIFO open, so writers need not wait for a reader and
    /// their bytes wait in the kernel buffer until one comes.
    pub buffered: bool,
}

/// A named pipe's state.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct FifoDetails {
    /// The FIFO's path, usable from a shell.
    pub path: String,
    /// Whether the daemon holds it open (see [`FifoParams::buffered`]).
    pub buffered: bool,
    /// Bytes waiting to be read (`FIONREAD`), when the daemon holds it open; else 0.
    pub buffered_bytes: u64,
    /// Read ends handed out since the daemon started.
    pub readers_opened: u64,
    /// Write ends handed out since the daemon started.
    pub writers_opened: u64,
}
