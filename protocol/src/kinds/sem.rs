//! `sem:` — a POSIX named semaphore: creation parameters, details, operations
//! and replies. Acquisitions made through the daemon are held by the
//! connection and given back when it closes.

#[cfg(test)]
use proptest_derive::Arbitrary;

use super::holder::Holder;

/// Semaphore parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct SemParams {
    /// The initial value (permits free at creation). Ignored when adopting.
    pub initial: u32,
    /// A bounded semaphore's largest value: a release above it is refused.
    /// `None`: bounded only by the kernel (`SEM_VALUE_MAX`).
    pub max: Option<u32>,
}

/// A semaphore's state.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct SemDetails {
    /// Permits free now (`sem_getvalue`).
    pub value: u32,
    /// The bound, if any.
    pub max: Option<u32>,
    /// Connections holding permits taken through the daemon.
    pub holders: Vec<Holder>,
    /// Acquisitions waiting in the daemon.
    pub waiters: u32,
}

/// Operations on a semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum SemOp {
    /// Take one permit, held by this connection until released or the
    /// connection closes. Waits (first come, first served among the daemon's
    /// waiters) up to `timeout_ms` (`None`: no limit; `Some(0)`: answer at
    /// once, `would-block` if none is free). Needs the write bit. Answered by
    /// [`SemReply::Acquired`]. Since version 5.
    Acquire {
        /// Give up after this many milliseconds.
        timeout_ms: Option<u64>,
    },
    /// Give one permit back: one this connection holds if it holds any, else a
    /// plain post (a semaphore used for signalling, a producer's item, a
    /// permit a direct user lost). Above a bounded semaphore's `max`:
    /// `invalid-argument`. Needs the write bit. Answered by
    /// [`SemReply::Released`]. Since version 5.
    Release,
    /// Take one permit for good: as [`Acquire`](SemOp::Acquire), but the
    /// permit is consumed, not held — it is not given back when the
    /// connection closes (a consumer taking an item a producer posted).
    /// Answered by [`SemReply::Acquired`]. Since version 5.
    Take {
        /// Give up after this many milliseconds.
        timeout_ms: Option<u64>,
    },
}

/// Answers to [`SemOp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum SemReply {
    /// A permit is now held by this connection (taken, for
    /// [`SemOp::Take`]); `value` is what was left free. Since version 5.
    Acquired {
        /// Permits free after the acquisition.
        value: u32,
    },
    /// A permit was given back; `value` is the count free after it. Since version 5.
    Released {
        /// Permits free after the release.
        value: u32,
    },
}
