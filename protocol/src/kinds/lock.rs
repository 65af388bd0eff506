//! `lock:` — a mutex hosted by the daemon, with an owner, optionally
//! re-entrant, released when its holder's connection closes.

#[cfg(test)]
use proptest_derive::Arbitrary;

use super::holder::Holder;

/// Lock parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct LockParams {
    /// The holder may acquire it again (Python's `RLock`); it is free once
    /// released as many times.
    pub reentrant: bool,
}

/// A lock's state.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct LockDetails {
    /// Whether it is re-entrant.
    pub reentrant: bool,
    /// The holder, if held (`count` is the re-entry depth).
    pub owner: Option<Holder>,
    /// Acquisitions waiting.
    pub waiters: u32,
}

/// Operations on a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum LockOp {
    /// Take the lock for this connection, waiting up to `timeout_ms` (`None`:
    /// no limit; `Some(0)`: `would-block` at once if held). Acquiring a
    /// non-re-entrant lock this connection holds is `invalid-argument` (it
    /// would wait forever). Needs the write bit. Since version 5.
    Acquire {
        /// Give up after this many milliseconds.
        timeout_ms: Option<u64>,
    },
    /// Release it; only its holder may (`permission-denied` otherwise, and
    /// `invalid-argument` if it is free). Since version 5.
    Release,
}

/// Answers to [`LockOp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum LockReply {
    /// Held by this connection, `depth` times. Since version 5.
    Acquired {
        /// Re-entry depth (1 for a first acquisition).
        depth: u32,
    },
    /// Released once; `depth` left (0: free). Since version 5.
    Released {
        /// Re-entry depth left.
        depth: u32,
    },
}
