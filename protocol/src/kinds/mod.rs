//! Kind-specific wire types, one module per kind: creation parameters, details,
//! operations and their replies. This file gathers them into the enums the
//! generic messages carry; each enum is append-only, like every wire enum.

pub mod fifo;
pub mod mq;
pub mod pipe;
pub mod ring;
pub mod shm;

#[cfg(test)]
use proptest_derive::Arbitrary;

use crate::address::Kind;

pub use fifo::{FifoDetails, FifoParams};
pub use mq::{MqDetails, MqOp, MqParams, MqReply, Readiness};
pub use pipe::{PipeDetails, PipeOp, PipeParams, PipeReply};
pub use ring::{RingDetails, RingParams};
pub use shm::{SHM_MAX_SIZE, ShmDetails, ShmOp, ShmParams, ShmReply};

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
        }
    }
}
