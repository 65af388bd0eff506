//! `mq:` — a POSIX message queue: creation parameters, details, operations and replies.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// POSIX message queue parameters; `None` takes the kernel default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct MqParams {
    /// Maximum messages in the queue (`mq_maxmsg`).
    pub capacity: Option<u32>,
    /// Maximum bytes per message (`mq_msgsize`).
    pub msg_size: Option<u32>,
}

/// A POSIX message queue's attributes as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct MqDetails {
    /// Maximum messages (`mq_maxmsg`).
    pub capacity: u64,
    /// Maximum bytes per message (`mq_msgsize`).
    pub msg_size: u64,
    /// Messages waiting now (`mq_curmsgs`).
    pub depth: u64,
}

/// What a waiter on a queue waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum Readiness {
    /// At least one message is waiting. Since version 3.
    Readable,
    /// There is room for at least one message. Since version 3.
    Writable,
}

/// Operations on a queue beyond create/open/stat/delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum MqOp {
    /// Wait until the queue is readable or writable; answered by [`MqReply::Ready`]
    /// when it is, by `timed-out` when `timeout_ms` passes first (`None`: no
    /// limit; `Some(0)`: answer at once), and by `not-found` if the queue is
    /// deleted meanwhile. Needs the read bit for `Readable`, the write bit for
    /// `Writable`. The wait is held by the daemon; other requests on the same
    /// connection are served meanwhile. Since version 3.
    WaitFor {
        /// What to wait for.
        ready: Readiness,
        /// Give up after this many milliseconds.
        timeout_ms: Option<u64>,
    },
}

/// Answers to [`MqOp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum MqReply {
    /// The queue became ready; `depth` is the message count the daemon saw then
    /// (another client may have changed it since). Since version 3.
    Ready {
        /// Messages waiting when the daemon answered.
        depth: u64,
    },
}
