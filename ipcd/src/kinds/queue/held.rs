//! The messages a queue holds: those ready for delivery, in the queue's
//! order, and those delivered but not yet acknowledged, by consumer.
//! A message keeps its sequence number for life; it is also its delivery id.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};

use protocol::{QUEUE_MESSAGE_OVERHEAD, QueueConsumer, QueueDelivery, QueueOrder};

use crate::peer::{Peer, SessionId};

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its sequence number, assigned when it was put (its delivery id).
    pub seq: u64,
    /// Its priority (0 unless the queue orders by priority).
    pub priority: u32,
    /// Times it has been delivered.
    pub deliveries: u32,
    /// Its bytes.
    pub body: Vec<u8>,
}

impl Message {
    /// What it counts against the queue's `max_bytes`.
    pub fn cost(&self) -> u64 {
        self.body.len() as u64 + QUEUE_MESSAGE_OVERHEAD
    }
}

/// Messages ready for delivery, in the queue's order.
#[derive(Debug)]
enum Ready {
    /// Oldest first; redeliveries go back to the front.
    Fifo(VecDeque<Message>),
    /// Newest first (the top is the back); redeliveries go back on top.
    Lifo(Vec<Message>),
    /// Highest priority first, then oldest (a redelivery keeps its place).
    Priority(BTreeMap<(Reverse<u32>, u64), Message>),
}

impl Ready {
    fn new(order: QueueOrder) -> Self {
        match order {
            QueueOrder::Fifo => Ready::Fifo(VecDeque::new()),
            QueueOrder::Lifo => Ready::Lifo(Vec::new()),
            QueueOrder::Priority => Ready::Priority(BTreeMap::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Ready::Fifo(q) => q.len(),
            Ready::Lifo(s) => s.len(),
            Ready::Priority(m) => m.len(),
        }
    }

    fn push(&mut self, m: Message) {
        match self {
            Ready::Fifo(q) => q.push_back(m),
            Ready::Lifo(s) => s.push(m),
            Ready::Priority(t) => {
                t.insert((Reverse(m.priority), m.seq), m);
            }
        }
    }

    fn pop(&mut self) -> Option<Message> {
        match self {
            Ready::Fifo(q) => q.pop_front(),
            Ready::Lifo(s) => s.pop(),
            Ready::Priority(t) => t.pop_first().map(|(_, m)| m),
        }
    }

    /// Puts messages back at the head, `ms` sorted by sequence number, so
    /// that they come out again in the order they first did.
    fn push_head(&mut self, ms: Vec<Message>) {
        match self {
            Ready::Fifo(q) => {
                for m in ms.into_iter().rev() {
                    q.push_front(m);
                }
            }
            Ready::Lifo(s) => s.extend(ms),
            Ready::Priority(t) => {
                for m in ms {
                    t.insert((Reverse(m.priority), m.seq), m);
                }
            }
        }
    }
}

/// A consumer's holdings.
#[derive(Debug, Clone, Copy)]
struct Consumer {
    peer: Peer,
    in_flight: u64,
}

/// Every message a queue holds.
#[derive(Debug)]
pub struct Held {
    ready: Ready,
    /// Delivered, not acknowledged: by sequence number, with the holder.
    in_flight: HashMap<u64, (SessionId, Message)>,
    consumers: HashMap<SessionId, Consumer>,
    /// Bytes of every message held (ready and in flight), with overhead.
    bytes: u64,
}

impl Held {
    /// Nothing held, ordered by `order`.
    pub fn new(order: QueueOrder) -> Self {
        Held {
            ready: Ready::new(order),
            in_flight: HashMap::new(),
            consumers: HashMap::new(),
            bytes: 0,
        }
    }

    /// Messages ready for delivery.
    pub fn depth(&self) -> u64 {
        self.ready.len() as u64
    }

    /// Messages held, ready and in flight.
    pub fn count(&self) -> u64 {
        (self.ready.len() + self.in_flight.len()) as u64
    }

    /// Bytes held, with the per-message overhead.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds a message at the tail (in the queue's order).
    pub fn push(&mut self, m: Message) {
        self.bytes += m.cost();
        self.ready.push(m);
    }

    /// Delivers up to `max` messages (at least one, if any is ready) to
    /// `session`, which holds them until it acknowledges them or closes;
    /// stops before the bodies, each with `overhead`, pass `room` bytes.
    pub fn deliver(
        &mut self,
        max: u32,
        session: SessionId,
        peer: Peer,
        room: u64,
        overhead: u64,
    ) -> Vec<QueueDelivery> {
        let mut out = Vec::new();
        let mut used = 0;
        while out.len() < max.max(1) as usize {
            let Some(mut m) = self.ready.pop() else { break };
            let size = m.body.len() as u64 + overhead;
            if !out.is_empty() && used + size > room {
                self.ready.push_head(vec![m]);
                break;
            }
            used += size;
            m.deliveries += 1;
            out.push(QueueDelivery {
                id: m.seq,
                priority: m.priority,
                deliveries: m.deliveries,
                body: m.body.clone(),
            });
            self.in_flight.insert(m.seq, (session, m));
        }
        if !out.is_empty() {
            let c = self
                .consumers
                .entry(session)
                .or_insert(Consumer { peer, in_flight: 0 });
            c.in_flight += out.len() as u64;
        }
        out
    }

    /// The first of `ids` that `session` does not hold, if any.
    pub fn not_held(&self, ids: &[u64], session: SessionId) -> Option<u64> {
        ids.iter()
            .copied()
            .find(|id| !matches!(self.in_flight.get(id), Some((s, _)) if *s == session))
    }

    /// Takes deliveries out of flight (acknowledged, or handed back);
    /// returns the messages taken, ids not in flight skipped.
    pub fn take(&mut self, ids: &[u64]) -> Vec<Message> {
        let mut taken = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((session, m)) = self.in_flight.remove(id) {
                self.release(session, 1);
                self.bytes -= m.cost();
                taken.push(m);
            }
        }
        taken
    }

    /// Takes every delivery `session` holds, by sequence number.
    pub fn take_session(&mut self, session: SessionId) -> Vec<Message> {
        let mut ids: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, (s, _))| *s == session)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        self.take(&ids)
    }

    /// Puts messages back at the head of the queue, sorted by sequence number.
    pub fn requeue(&mut self, mut ms: Vec<Message>) {
        ms.sort_unstable_by_key(|m| m.seq);
        self.bytes += ms.iter().map(Message::cost).sum::<u64>();
        self.ready.push_head(ms);
    }

    fn release(&mut self, session: SessionId, n: u64) {
        if let Some(c) = self.consumers.get_mut(&session) {
            c.in_flight -= n;
            if c.in_flight == 0 {
                self.consumers.remove(&session);
            }
        }
    }

    /// Consumers holding deliveries, by pid.
    pub fn consumers(&self) -> Vec<QueueConsumer> {
        let mut v: Vec<QueueConsumer> = self
            .consumers
            .values()
            .map(|c| QueueConsumer {
                pid: c.peer.pid,
                uid: c.peer.uid,
                in_flight: c.in_flight,
            })
            .collect();
        v.sort_unstable_by_key(|c| (c.pid, c.in_flight));
        v
    }

    /// Drops everything (the queue is deleted).
    pub fn clear(&mut self) {
        *self = Held::new(match self.ready {
            Ready::Fifo(_) => QueueOrder::Fifo,
            Ready::Lifo(_) => QueueOrder::Lifo,
            Ready::Priority(_) => QueueOrder::Priority,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, priority: u32) -> Message {
        Message {
            seq,
            priority,
            deliveries: 0,
            body: vec![seq as u8],
        }
    }

    const PEER: Peer = Peer {
        pid: 1,
        uid: 1000,
        gid: 1000,
    };

    fn order_of(h: &mut Held, n: u32) -> Vec<u64> {
        h.deliver(n, 9, PEER, u64::MAX, 0)
            .iter()
            .map(|d| d.id)
            .collect()
    }

    #[test]
    fn each_order_and_requeue_at_the_head() {
        let mut f = Held::new(QueueOrder::Fifo);
        (1..=4).for_each(|s| f.push(msg(s, 0)));
        assert_eq!(order_of(&mut f, 2), [1, 2]);
        let back = f.take_session(9);
        f.requeue(back);
        assert_eq!(order_of(&mut f, 9), [1, 2, 3, 4]);

        let mut l = Held::new(QueueOrder::Lifo);
        (1..=4).for_each(|s| l.push(msg(s, 0)));
        assert_eq!(order_of(&mut l, 2), [4, 3]);
        let back = l.take_session(9);
        l.requeue(back);
        assert_eq!(order_of(&mut l, 9), [4, 3, 2, 1]);

        let mut p = Held::new(QueueOrder::Priority);
        for (s, pr) in [(1, 1), (2, 5), (3, 1), (4, 5)] {
            p.push(msg(s, pr));
        }
        assert_eq!(order_of(&mut p, 1), [2]);
        let back = p.take_session(9);
        p.requeue(back);
        assert_eq!(order_of(&mut p, 9), [2, 4, 1, 3]);
    }

    #[test]
    fn bytes_and_consumers_follow_deliveries_and_acks() {
        let mut h = Held::new(QueueOrder::Fifo);
        (1..=3).for_each(|s| h.push(msg(s, 0)));
        assert_eq!(h.bytes(), 3 * (1 + QUEUE_MESSAGE_OVERHEAD));
        let d = h.deliver(2, 7, PEER, u64::MAX, 0);
        assert_eq!(d[0].deliveries, 1);
        assert_eq!((h.depth(), h.count()), (1, 3));
        assert_eq!(h.consumers()[0].in_flight, 2);
        assert_eq!(h.not_held(&[1, 2], 7), None);
        assert_eq!(h.not_held(&[1, 3], 7), Some(3));
        assert_eq!(h.not_held(&[1], 8), Some(1));
        assert_eq!(h.take(&[1]).len(), 1);
        assert_eq!(h.bytes(), 2 * (1 + QUEUE_MESSAGE_OVERHEAD));
        assert_eq!(h.take(&[2]).len(), 1);
        assert!(h.consumers().is_empty());
        assert_eq!(h.count(), 1);
    }
}
