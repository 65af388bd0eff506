//! Kind-specific wire types, one module per kind: creation parameters, details,
//! operations and their replies. This file gathers them into the enums the
//! generic messages carry; each enum is append-only, like every wire enum.

pub mod barrier;
pub mod event;
pub mod fifo;
pub mod holder;
pub mod lock;
pub mod mq;
pub mod pipe;
pub mod queue;
pub mod ring;
pub mod sem;
pub mod shm;
pub mod signal;

#[cfg(test)]
use proptest_derive::Arbitrary;

use crate::address::Kind;

pub use barrier::{BarrierDetails, BarrierOp, BarrierParams, BarrierReply};
pub use event::{EventDetails, EventOp, EventParams, EventReply};
pub use fifo::{FifoDetails, FifoParams};
pub use holder::Holder;
pub use lock::{LockDetails, LockOp, LockParams, LockReply};
pub use mq::{MqDetails, MqOp, MqParams, MqReply, Readiness};
pub use pipe::{PipeDetails, PipeOp, PipeParams, PipeReply};
pub use queue::{
    DEAD_SUFFIX, Fsync, QUEUE_MESSAGE_OVERHEAD, QueueConsumer, QueueDelivery, QueueDetails,
    QueueItem, QueueJournal, QueueOp, QueueOrder, QueueParams, QueueReply,
};
pub use ring::{RingDetails, RingParams};
pub use sem::{SemDetails, SemOp, SemParams, SemReply};
pub use shm::{SHM_MAX_SIZE, ShmDetails, ShmOp, ShmParams, ShmReply};
pub use signal::{Delivery, SignalDetails, SignalEvent, SignalOp, SignalParams, SignalReply};

/// Kind-specific creation parameters.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum KindParams {
    /// POSIX message queue parameters. Since version 1.
    Mq(MqParams),
    /// Anonymous pipe parameters. Since version 2.
    Pipe(PipeParams),
    /// Named pipe parameters. Since version 2.
    Fifo(FifoParams),
    /// Shared-memory segment parameters. Since version 4.
    Shm(ShmParams),
    /// Shared-memory ring parameters. Since version 4.
    Ring(RingParams),
    /// Semaphore parameters. Since version 5.
    Sem(SemParams),
    /// Lock parameters. Since version 5.
    Lock(LockParams),
    /// Event parameters. Since version 5.
    Event(EventParams),
    /// Barrier parameters. Since version 5.
    Barrier(BarrierParams),
    /// Signal channel parameters. Since version 6.
    Signal(SignalParams),
    /// Work queue parameters. Since version 7.
    Queue(QueueParams),
}

/// Kind-specific details of an object.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum KindDetails {
    /// A POSIX message queue. Since version 1.
    Mq(MqDetails),
    /// An anonymous pipe. Since version 2.
    Pipe(PipeDetails),
    /// A named pipe. Since version 2.
    Fifo(FifoDetails),
    /// A shared-memory segment. Since version 4.
    Shm(ShmDetails),
    /// A shared-memory ring. Since version 4.
    Ring(RingDetails),
    /// A semaphore. Since version 5.
    Sem(SemDetails),
    /// A lock. Since version 5.
    Lock(LockDetails),
    /// An event. Since version 5.
    Event(EventDetails),
    /// A barrier. Since version 5.
    Barrier(BarrierDetails),
    /// A signal channel. Since version 6.
    Signal(SignalDetails),
    /// A work queue (boxed: the largest details). Since version 7.
    Queue(Box<QueueDetails>),
}

/// A kind-specific operation, carried by [`Request::Kind`](crate::Request::Kind).
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum KindOp {
    /// An operation on a message queue. Since version 3.
    Mq(MqOp),
    /// An operation on an anonymous pipe. Since version 3.
    Pipe(PipeOp),
    /// An operation on a shared-memory segment. Since version 4.
    Shm(ShmOp),
    /// An operation on a semaphore. Since version 5.
    Sem(SemOp),
    /// An operation on a lock. Since version 5.
    Lock(LockOp),
    /// An operation on an event. Since version 5.
    Event(EventOp),
    /// An operation on a barrier. Since version 5.
    Barrier(BarrierOp),
    /// An operation on a signal channel. Since version 6.
    Signal(SignalOp),
    /// An operation on a work queue. Since version 7.
    Queue(QueueOp),
}

/// The answer to a [`KindOp`], carried by [`Reply::Kind`](crate::Reply::Kind).
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum KindReply {
    /// A message queue's answer. Since version 3.
    Mq(MqReply),
    /// A pipe's answer. Since version 3.
    Pipe(PipeReply),
    /// A shared-memory segment's answer. Since version 4.
    Shm(ShmReply),
    /// A semaphore's answer. Since version 5.
    Sem(SemReply),
    /// A lock's answer. Since version 5.
    Lock(LockReply),
    /// An event's answer. Since version 5.
    Event(EventReply),
    /// A barrier's answer. Since version 5.
    Barrier(BarrierReply),
    /// A signal channel's answer. Since version 6.
    Signal(SignalReply),
    /// A work queue's answer. Since version 7.
    Queue(QueueReply),
}

impl KindParams {
    /// The kind these parameters are for.
    pub fn kind(&self) -> Kind {
        match self {
            KindParams::Mq(_) => Kind::Mq,
            KindParams::Pipe(_) => Kind::Pipe,
            KindParams::Fifo(_) => Kind::Fifo,
            KindParams::Shm(_) => Kind::Shm,
            KindParams::Ring(_) => Kind::Ring,
            KindParams::Sem(_) => Kind::Sem,
            KindParams::Lock(_) => Kind::Lock,
            KindParams::Event(_) => Kind::Event,
            KindParams::Barrier(_) => Kind::Barrier,
            KindParams::Signal(_) => Kind::Signal,
            KindParams::Queue(_) => Kind::Queue,
        }
    }
}

impl KindOp {
    /// The kind this operation applies to.
    pub fn kind(&self) -> Kind {
        match self {
            KindOp::Mq(_) => Kind::Mq,
            KindOp::Pipe(_) => Kind::Pipe,
            KindOp::Shm(_) => Kind::Shm,
            KindOp::Sem(_) => Kind::Sem,
            KindOp::Lock(_) => Kind::Lock,
            KindOp::Event(_) => Kind::Event,
            KindOp::Barrier(_) => Kind::Barrier,
            KindOp::Signal(_) => Kind::Signal,
            KindOp::Queue(_) => Kind::Queue,
        }
    }
}
