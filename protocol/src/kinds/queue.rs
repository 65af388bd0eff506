//! `queue:` — a work queue hosted in the daemon (the one kind whose messages
//! pass through ipcd): bounded by count and bytes, in fifo, lifo or priority
//! order, with acknowledged deliveries (at-least-once), redelivery when a
//! consumer's connection closes, a dead-letter companion `queue:NAME.dead`,
//! `join`, and an optional journal that survives a crash of the daemon.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// Bookkeeping bytes every held message counts against `max_bytes` besides
/// its body, so that `max_bytes` bounds the daemon's memory, not only payload.
pub const QUEUE_MESSAGE_OVERHEAD: u64 = 64;

/// The suffix of a queue's dead-letter companion (`queue:jobs.dead`).
pub const DEAD_SUFFIX: &str = ".dead";

/// In which order a queue hands out its messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum QueueOrder {
    /// First in, first out (Python's `Queue`). Since version 7.
    #[default]
    Fifo,
    /// Last in, first out (Python's `LifoQueue`). Since version 7.
    Lifo,
    /// Highest priority first, first in first out within a priority
    /// (as POSIX queues; Python's `PriorityQueue` takes the lowest). Since version 7.
    Priority,
}

/// When a durable queue's journal is flushed to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum Fsync {
    /// Every put is flushed (`fdatasync`) on its own before it is answered. Since version 7.
    Always,
    /// Group commit: one flush covers every put waiting for it; each is
    /// answered after the flush that covers it. Since version 7.
    Batch,
    /// Written to the kernel before it is answered, flushed whenever the
    /// kernel chooses: survives a crash of ipcd, not of the machine. Since version 7.
    Never,
}

/// Queue parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct QueueParams {
    /// Most messages held (queued and delivered but not yet acknowledged);
    /// 0: no count limit.
    pub capacity: u64,
    /// Most bytes held, each message counting its length plus
    /// [`QUEUE_MESSAGE_OVERHEAD`]; 0: the daemon's default. Reserved against
    /// the owner's queue-byte share when the queue is created.
    pub max_bytes: u64,
    /// Delivery order.
    pub order: QueueOrder,
    /// A message delivered this many times without an acknowledgement moves
    /// to `queue:NAME.dead`, created with the queue; 0: redelivered forever,
    /// no companion.
    pub max_deliveries: u32,
    /// Journal the queue in the daemon's state directory with this flush
    /// policy (`None`: held in memory only, lost when ipcd stops).
    pub durable: Option<Fsync>,
}

/// One consumer's unacknowledged deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct QueueConsumer {
    /// The consumer's pid.
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
    /// Deliveries it holds, not yet acknowledged.
    pub in_flight: u64,
}

/// A durable queue's journal.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct QueueJournal {
    /// Its flush policy.
    pub fsync: Fsync,
    /// The journal file's size now, in bytes.
    pub bytes: u64,
    /// Times it was compacted since ipcd started.
    pub compactions: u64,
    /// What the last start found wrong at its end and cut (`None`: nothing).
    pub recovery: Option<String>,
}

/// A queue's state.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct QueueDetails {
    /// Delivery order.
    pub order: QueueOrder,
    /// Most messages held (0: no limit).
    pub capacity: u64,
    /// Most bytes held.
    pub max_bytes: u64,
    /// Deliveries before a message is dead-lettered (0: never).
    pub max_deliveries: u32,
    /// Messages waiting to be delivered.
    pub depth: u64,
    /// Bytes held (queued and in flight, with the per-message overhead).
    pub bytes: u64,
    /// Consumers holding unacknowledged deliveries.
    pub consumers: Vec<QueueConsumer>,
    /// Messages put since ipcd started.
    pub put: u64,
    /// Deliveries acknowledged since ipcd started.
    pub acked: u64,
    /// Deliveries given back (their consumer's connection closed) since ipcd started.
    pub redelivered: u64,
    /// Messages moved to the dead-letter companion (or, if it was deleted,
    /// dropped) since ipcd started.
    pub dead: u64,
    /// Puts per second, over the last few seconds.
    pub put_rate: u64,
    /// Acknowledgements per second, over the last few seconds.
    pub ack_rate: u64,
    /// Gets waiting for a message.
    pub getters: u32,
    /// Puts waiting for room.
    pub putters: u32,
    /// Joins waiting for every message to be acknowledged.
    pub joiners: u32,
    /// The journal, for a durable queue.
    pub journal: Option<QueueJournal>,
}

/// A message to put.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct QueueItem {
    /// Its priority (a `priority` queue only; must be 0 otherwise).
    pub priority: u32,
    /// Its bytes.
    pub body: Vec<u8>,
}

/// One delivered message; acknowledge it by `id`.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct QueueDelivery {
    /// The delivery's id, for `Ack`; held by the connection that got it.
    pub id: u64,
    /// The message's priority.
    pub priority: u32,
    /// Times it has been delivered, this one included (2 or more: redelivered;
    /// counts start again at 1 after ipcd restarts, they are not journaled).
    pub deliveries: u32,
    /// Its bytes.
    pub body: Vec<u8>,
}

/// Operations on a queue.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum QueueOp {
    /// Put `items`, all or none, in order: waits while they do not fit, up
    /// to `timeout_ms` (`None`: no limit; `Some(0)`: `would-block` at once).
    /// A batch that could never fit is `too-large`. A durable queue answers
    /// once the journal holds them as its flush policy says. Needs the
    /// write bit. Since version 7.
    Put {
        /// The messages (at least one).
        items: Vec<QueueItem>,
        /// Give up after this many milliseconds.
        timeout_ms: Option<u64>,
    },
    /// Get up to `max` messages (0 counts as 1), waiting for the first up to
    /// `timeout_ms` (`None`: no limit; `Some(0)`: `would-block` at once if
    /// empty). Each delivery is held by this connection until acknowledged;
    /// if the connection closes first it goes back to the queue's head.
    /// Needs the read bit. Since version 7.
    Get {
        /// Most messages to take.
        max: u32,
        /// Give up after this many milliseconds.
        timeout_ms: Option<u64>,
    },
    /// Acknowledge deliveries this connection holds, all or none (an id it
    /// does not hold is `invalid-argument` and nothing is acknowledged).
    /// Needs the read bit. Since version 7.
    Ack {
        /// Delivery ids.
        ids: Vec<u64>,
    },
    /// Wait until every message put has been acknowledged (Python's
    /// `JoinableQueue.join`), up to `timeout_ms`. Needs the write bit. Since version 7.
    Join {
        /// Give up after this many milliseconds.
        timeout_ms: Option<u64>,
    },
    /// `Ack` of `ack`, then `Get` — one request for a consumer that takes
    /// the next messages as it acknowledges the last ones. The ack is all or
    /// none and comes first: if it is refused, nothing is got; once made it
    /// stays made, whatever the get then answers. Needs the read bit.
    /// Since version 7.
    AckGet {
        /// Delivery ids to acknowledge (may be empty).
        ack: Vec<u64>,
        /// Most messages to take.
        max: u32,
        /// Give up waiting for the first after this many milliseconds.
        timeout_ms: Option<u64>,
    },
}

/// Answers to [`QueueOp`]s.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum QueueReply {
    /// The items are in the queue. Since version 7.
    Put {
        /// How many.
        count: u32,
    },
    /// Messages, in delivery order. Since version 7.
    Got(Vec<QueueDelivery>),
    /// Deliveries acknowledged. Since version 7.
    Acked {
        /// How many.
        count: u32,
    },
    /// Every message put so far has been acknowledged. Since version 7.
    Joined,
}

impl QueueItem {
    /// What the message counts against `max_bytes`.
    pub fn cost(&self) -> u64 {
        self.body.len() as u64 + QUEUE_MESSAGE_OVERHEAD
    }
}

impl std::fmt::Display for QueueOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueueOrder::Fifo => "fifo",
            QueueOrder::Lifo => "lifo",
            QueueOrder::Priority => "priority",
        })
    }
}

impl std::fmt::Display for Fsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fsync::Always => "always",
            Fsync::Batch => "batch",
            Fsync::Never => "never",
        })
    }
}
