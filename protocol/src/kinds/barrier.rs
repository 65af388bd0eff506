//! `barrier:` — N parties wait until all have arrived (Python's `Barrier`); a
//! party that leaves or times out breaks it for the others until `reset`.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// Barrier parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct BarrierParams {
    /// Parties that must arrive (at least 1).
    pub parties: u32,
}

/// A barrier's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct BarrierDetails {
    /// Parties that must arrive.
    pub parties: u32,
    /// Parties waiting now.
    pub waiting: u32,
    /// Broken (a party left or timed out) until `reset`.
    pub broken: bool,
    /// Times it has let its parties through.
    pub passed: u64,
}

/// Operations on a barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum BarrierOp {
    /// Arrive and wait for the others, up to `timeout_ms`; a timeout (or the
    /// connection closing) breaks the barrier: every waiter is answered
    /// `broken`, and so is every `Wait` until `Reset`. Needs the write bit.
    /// Since version 5.
    Wait {
        /// Give up (and break it) after this many milliseconds.
        timeout_ms: Option<u64>,
    },
    /// Repair a broken barrier (waiters now are answered `broken`); needs the
    /// write bit. Since version 5.
    Reset,
}

/// Answers to [`BarrierOp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum BarrierReply {
    /// All arrived; `index` is this party's arrival order, 0 to parties − 1
    /// (Python's `wait()` result). Since version 5.
    Passed {
        /// Arrival index.
        index: u32,
    },
    /// The barrier is whole again. Since version 5.
    Reset,
}
