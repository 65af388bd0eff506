//! `queue:NAME` — a work queue hosted in ipcd, the one kind whose messages
//! pass through the daemon: put, get, acknowledge, join, one request each on
//! a [`Client`]; and two handles for throughput that keep many requests in
//! flight on a connection of their own, [`QueueSender`] and [`QueueReceiver`].
//!
//! # Delivery: at least once
//!
//! A message got from a queue is *delivered*, not removed: it stays held by
//! the connection that got it until that connection acknowledges it
//! ([`Client::queue_ack`], [`QueueReceiver::ack`]). If the connection closes
//! first (the consumer exits, crashes, is killed), its unacknowledged
//! deliveries go back to the head of the queue for another consumer, with
//! [`QueueDelivery::deliveries`] one higher. So every message put is handled
//! *at least once*, and a message may be handled twice when a consumer dies
//! after doing the work but before its acknowledgement reached ipcd: make the
//! work idempotent, or check `deliveries > 1` (counts start again at 1 after
//! ipcd restarts: they are not journaled). A queue created with
//! `max_deliveries` N moves a message delivered N times without an
//! acknowledgement to its dead-letter companion `queue:NAME.dead`
//! ([`dead_letter_address`]), which ipcd creates with it, so that a message
//! that crashes every consumer stops coming back.
//!
//! Deliveries belong to the connection that got them: an acknowledgement from
//! another connection is refused. A queue's capacity counts the messages
//! queued *and* delivered but not yet acknowledged.
//!
//! ```no_run
//! use std::time::Duration;
//! use ipc_client::{Client, QueueOptions};
//!
//! let mut client = Client::connect()?;
//! client.create_queue("jobs", &QueueOptions::new().capacity(1000).max_deliveries(5))?;
//! client.queue_put("jobs", b"build #42", None)?;
//! for job in client.queue_get("jobs", 10, Some(Duration::from_secs(1)))? {
//!     println!("{}", String::from_utf8_lossy(&job.body));
//!     client.queue_ack("jobs", &[job.id])?;
//! }
//! client.queue_join("jobs", None)?; // every message put has been acknowledged
//! # Ok::<(), ipc_client::Error>(())
//! ```

mod receiver;
mod sender;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::time::Duration;

use protocol::{
    CreateSpec, DEAD_SUFFIX, Fsync, KindOp, KindParams, KindReply, Lifetime, ObjectInfo,
    QueueDelivery, QueueItem, QueueOp, QueueOrder, QueueParams, QueueReply,
};

use crate::client::{Client, unexpected_kind};
use crate::error::{Error, Result};
use crate::lock::millis;

pub use receiver::QueueReceiver;
pub use sender::QueueSender;

/// `queue:NAME` for `NAME` (an address is returned as it is).
pub fn queue_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Queue, name)
}

/// The dead-letter companion of a queue: `queue:NAME.dead` for `NAME` or
/// `queue:NAME`. ipcd creates it with a queue whose `max_deliveries` is above 0.
pub fn dead_letter_address(name: &str) -> String {
    format!("{}{DEAD_SUFFIX}", queue_address(name))
}

/// How to create a queue with [`Client::create_queue`].
///
/// ```
/// use ipc_client::{Fsync, QueueOptions, QueueOrder};
/// let opts = QueueOptions::new()
///     .capacity(10_000)
///     .order(QueueOrder::Priority)
///     .max_deliveries(3)
///     .durable(Fsync::Batch)
///     .mode(0o660);
/// assert_eq!(opts.params.capacity, 10_000);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueOptions {
    /// The queue's parameters (capacity, byte limit, order, deliveries, journal).
    pub params: QueueParams,
    /// Permission bits (read allows get and ack, write put and join); `None`: `0o600`.
    pub mode: Option<u32>,
    /// Removed when the creating connection closes, instead of persistent.
    pub session: bool,
}

impl QueueOptions {
    /// The defaults: no count limit, the daemon's byte limit, fifo, redelivered
    /// forever, in memory only, mode `0o600`, persistent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Most messages held, queued and delivered but not yet acknowledged (0: no limit).
    pub fn capacity(mut self, messages: u64) -> Self {
        self.params.capacity = messages;
        self
    }

    /// Most bytes held, each message counting its length plus
    /// [`QUEUE_MESSAGE_OVERHEAD`](protocol::QUEUE_MESSAGE_OVERHEAD) (0: the daemon's default).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.params.max_bytes = bytes;
        self
    }

    /// Delivery order: fifo (the default), lifo, or priority.
    pub fn order(mut self, order: QueueOrder) -> Self {
        self.params.order = order;
        self
    }

    /// Move a message delivered this many times without an acknowledgement to
    /// `queue:NAME.dead` (0: redeliver forever, no companion).
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.params.max_deliveries = n;
        self
    }

    /// Journal the queue so that its messages survive ipcd stopping or
    /// crashing, flushed to the disk as `fsync` says.
    pub fn durable(mut self, fsync: Fsync) -> Self {
        self.params.durable = Some(fsync);
        self
    }

    /// Sets the permission bits, e.g. `0o660`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Makes the queue go away when the creating connection closes.
    pub fn session(mut self) -> Self {
        self.session = true;
        self
    }

    /// The creation request these options describe.
    pub fn to_spec(&self) -> CreateSpec {
        CreateSpec {
            mode: self.mode,
            lifetime: if self.session {
                Lifetime::Session
            } else {
                Lifetime::Persistent
            },
            adopt: false,
            params: KindParams::Queue(self.params),
        }
    }
}

impl Client {
    /// Creates a queue (and, with `max_deliveries` above 0, its dead-letter
    /// companion `queue:NAME.dead`).
    pub fn create_queue(&mut self, name: &str, opts: &QueueOptions) -> Result<ObjectInfo> {
        self.create(&queue_address(name), opts.to_spec())
    }

    fn queue_op(&mut self, name: &str, op: QueueOp) -> Result<QueueReply> {
        match self.operate(&queue_address(name), KindOp::Queue(op))? {
            KindReply::Queue(reply) => Ok(reply),
            other => Err(unexpected_kind("queue", &other)),
        }
    }

    /// Puts one message of priority 0, waiting up to `timeout` while the
    /// queue is full (`None`: as long as it takes; zero: `would-block` at once).
    pub fn queue_put(&mut self, name: &str, body: &[u8], timeout: Option<Duration>) -> Result<()> {
        let item = QueueItem {
            priority: 0,
            body: body.to_vec(),
        };
        self.queue_put_batch(name, vec![item], timeout).map(drop)
    }

    /// Puts `items` in order, all or none, waiting up to `timeout` while they
    /// do not fit (a batch that never could is `too-large`); returns how many.
    /// A priority above 0 needs a queue in priority order.
    pub fn queue_put_batch(
        &mut self,
        name: &str,
        items: Vec<QueueItem>,
        timeout: Option<Duration>,
    ) -> Result<u32> {
        let op = QueueOp::Put {
            items,
            timeout_ms: millis(timeout),
        };
        match self.queue_op(name, op)? {
            QueueReply::Put { count } => Ok(count),
            other => Err(unexpected_queue("Put", &other)),
        }
    }

    /// Gets up to `max` messages (0 counts as 1), waiting up to `timeout` for
    /// the first (`None`: as long as it takes; zero: `would-block` at once if
    /// empty). Each is held by this connection until acknowledged with
    /// [`queue_ack`](Self::queue_ack), and goes back to the queue if the
    /// connection closes first.
    pub fn queue_get(
        &mut self,
        name: &str,
        max: u32,
        timeout: Option<Duration>,
    ) -> Result<Vec<QueueDelivery>> {
        let op = QueueOp::Get {
            max,
            timeout_ms: millis(timeout),
        };
        match self.queue_op(name, op)? {
            QueueReply::Got(deliveries) => Ok(deliveries),
            other => Err(unexpected_queue("Got", &other)),
        }
    }

    /// Acknowledges deliveries this connection holds, all or none (an id it
    /// does not hold is `invalid-argument`); returns how many.
    pub fn queue_ack(&mut self, name: &str, ids: &[u64]) -> Result<u32> {
        match self.queue_op(name, QueueOp::Ack { ids: ids.to_vec() })? {
            QueueReply::Acked { count } => Ok(count),
            other => Err(unexpected_queue("Acked", &other)),
        }
    }

    /// Acknowledges `ack` (all or none, as [`queue_ack`](Self::queue_ack))
    /// and gets up to `max` messages (as [`queue_get`](Self::queue_get)) in
    /// one request: a consumer that takes one message at a time pays one
    /// round trip per message, not two. If the acknowledgement is refused,
    /// nothing is got; once made it stays made, whatever the get answers
    /// (a timeout, say).
    pub fn queue_ack_get(
        &mut self,
        name: &str,
        ack: &[u64],
        max: u32,
        timeout: Option<Duration>,
    ) -> Result<Vec<QueueDelivery>> {
        let op = QueueOp::AckGet {
            ack: ack.to_vec(),
            max,
            timeout_ms: millis(timeout),
        };
        match self.queue_op(name, op)? {
            QueueReply::Got(deliveries) => Ok(deliveries),
            other => Err(unexpected_queue("Got", &other)),
        }
    }

    /// Waits up to `timeout` until every message put so far has been
    /// acknowledged.
    pub fn queue_join(&mut self, name: &str, timeout: Option<Duration>) -> Result<()> {
        let op = QueueOp::Join {
            timeout_ms: millis(timeout),
        };
        match self.queue_op(name, op)? {
            QueueReply::Joined => Ok(()),
            other => Err(unexpected_queue("Joined", &other)),
        }
    }
}

/// The error for a queue operation answered with another queue reply.
fn unexpected_queue(expected: &str, got: &QueueReply) -> Error {
    Error::Protocol(format!("expected a queue's {expected} reply, got {got:?}"))
}
