//! A queue's waiting requests — gets waiting for a message, puts waiting for
//! room, joins waiting for the last acknowledgement — each answered through
//! a `oneshot`, with no thread per wait. A wait dropped unanswered (its
//! connection closed, its timeout passed) tells the queue under its lock
//! (`waitlist::Granted`, with [`Granted`] as its answer), handing back what
//! it was granted meanwhile, so no delivery is lost in a channel nobody reads.

use std::collections::VecDeque;

use protocol::{QueueDelivery, QueueItem};
use tokio::sync::oneshot;

use super::super::Asker;
use crate::error::RequestError;
use crate::peer::SessionId;

/// Resolves once a durable put's journal records are as safe as its flush
/// policy says.
pub type Durable = oneshot::Receiver<std::io::Result<()>>;

/// What a wait is granted.
#[derive(Debug)]
pub enum Grant {
    /// Messages delivered to it.
    Got(Vec<QueueDelivery>),
    /// Its items are in the queue (durable once `durable` resolves).
    Put {
        /// How many.
        count: u32,
        /// The journal's answer, for a durable queue.
        durable: Option<Durable>,
    },
    /// Every message put has been acknowledged.
    Joined,
}

/// A wait's answer.
pub type Granted = Result<Grant, RequestError>;

/// A get waiting for messages.
#[derive(Debug)]
pub struct GetWait {
    /// The wait's id.
    pub id: u64,
    /// Who waits.
    pub who: Asker,
    /// Most messages it takes.
    pub max: u32,
    /// Where its answer goes.
    pub tx: oneshot::Sender<Granted>,
}

/// A put waiting for room.
#[derive(Debug)]
pub struct PutWait {
    /// The wait's id.
    pub id: u64,
    /// Who waits.
    pub who: Asker,
    /// Its messages.
    pub items: Vec<QueueItem>,
    /// Where its answer goes.
    pub tx: oneshot::Sender<Granted>,
}

/// A join waiting for every message to be acknowledged.
#[derive(Debug)]
pub struct JoinWait {
    /// The wait's id.
    pub id: u64,
    /// Who waits.
    pub who: Asker,
    /// Where its answer goes.
    pub tx: oneshot::Sender<Granted>,
}

/// Every wait on one queue, each line first come, first served.
#[derive(Debug, Default)]
pub struct Waits {
    next: u64,
    /// Gets waiting.
    pub gets: VecDeque<GetWait>,
    /// Puts waiting.
    pub puts: VecDeque<PutWait>,
    /// Joins waiting.
    pub joins: Vec<JoinWait>,
}

impl Waits {
    /// A fresh wait id.
    pub fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Takes wait `id` out of whichever line holds it.
    pub fn remove(&mut self, id: u64) {
        self.gets.retain(|w| w.id != id);
        self.puts.retain(|w| w.id != id);
        self.joins.retain(|w| w.id != id);
    }

    /// Forgets every wait of `session` (its connection closed).
    pub fn forget_session(&mut self, session: SessionId) {
        self.gets.retain(|w| w.who.session != session);
        self.puts.retain(|w| w.who.session != session);
        self.joins.retain(|w| w.who.session != session);
    }

    /// Answers every wait `not-found` (the queue is deleted).
    pub fn clear(&mut self) {
        *self = Waits::default();
    }
}
