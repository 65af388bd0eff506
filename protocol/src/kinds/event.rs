//! `event:` — a flag processes wait on (Python's `Event`): set, clear, wait.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// Event parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct EventParams {
    /// Whether it starts set.
    pub set: bool,
}

/// An event's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct EventDetails {
    /// Whether it is set.
    pub set: bool,
    /// Connections waiting for it.
    pub waiters: u32,
}

/// Operations on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum EventOp {
    /// Set it and wake every waiter; needs the write bit. Since version 5.
    Set,
    /// Clear it; needs the write bit. Since version 5.
    Clear,
    /// Wait until it is set (at once if it is), up to `timeout_ms` (`None`: no
    /// limit; `Some(0)`: `timed-out` at once if clear); needs the read bit.
    /// Since version 5.
    Wait {
        /// Give up after this many milliseconds.
        timeout_ms: Option<u64>,
    },
}

/// Answers to [`EventOp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum EventReply {
    /// It is set now (after `Set`, or a `Wait` that saw it set). Since version 5.
    IsSet,
    /// It is clear now (after `Clear`). Since version 5.
    IsClear,
}
