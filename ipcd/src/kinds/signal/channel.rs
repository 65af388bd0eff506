//! A signal channel's state: its sequence, its socket subscribers (one per
//! connection, each with a bounded buffer of its own and a count of events
//! dropped from it) and the processes it signals. Events are shared
//! (`Arc`) by every buffer they are in, so raising copies no payload.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use protocol::kinds::signal::{DEFAULT_SIGNAL_BUFFER, MAX_SIGNAL_BUFFER};
use protocol::{KindReply, SignalEvent, SignalReply};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::super::waitlist::{Abandon, Answer, now_ms};
use super::super::{Asker, Held};
use super::process;
use crate::error::RequestError;
use crate::peer::SessionId;

/// Payload bytes one subscriber's buffer keeps at most; older events are
/// dropped (and counted as missed) past it, as past its event count.
pub const SUBSCRIBER_BYTES: usize = 256 * 1024;
/// What one `Next` answer carries at most (at least one event): payload
/// bytes plus [`EVENT_COST`] per event. So a batch fits in a frame of 64 KiB,
/// and a decoder that bounds what it allocates (the codec claims an event's
/// size in memory, about 56 bytes, for each) takes it whole.
pub const BATCH_BYTES: usize = 60 * 1024;
/// What an event counts against [`BATCH_BYTES`] besides its payload: at
/// least its size in memory, which is more than its 33 encoded bytes.
pub const EVENT_COST: usize = 64;

/// Who raised an event.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// Its pid (0: unknown).
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
    /// The real signal that raised it, if a bound one did.
    pub signal: Option<i32>,
}

/// A `Next` waiting for an event.
#[derive(Debug)]
struct Waiting {
    id: u64,
    max: u32,
    tx: oneshot::Sender<Answer>,
}

/// One connection's subscription.
#[derive(Debug)]
struct Subscriber {
    uid: u32,
    capacity: usize,
    buf: VecDeque<Arc<SignalEvent>>,
    bytes: usize,
    missed: u64,
    waiting: Option<Waiting>,
}

impl Subscriber {
    /// Buffers `event`, dropping the oldest past the bounds.
    fn push(&mut self, event: Arc<SignalEvent>) {
        self.bytes += event.payload.len();
        self.buf.push_back(event);
        while self.buf.len() > self.capacity || self.bytes > SUBSCRIBER_BYTES {
            let Some(old) = self.buf.pop_front() else {
                break;
            };
            self.bytes -= old.payload.len();
            self.missed += 1;
        }
    }

    /// Takes up to `max` events (0: no limit) and the missed count.
    fn take(&mut self, max: u32) -> (Vec<SignalEvent>, u64) {
        let max = if max == 0 { usize::MAX } else { max as usize };
        let mut events = Vec::new();
        let mut bytes = 0;
        while let Some(e) = self.buf.front() {
            let cost = EVENT_COST + e.payload.len();
            if events.len() >= max || (!events.is_empty() && bytes + cost > BATCH_BYTES) {
                break;
            }
            bytes += cost;
            self.bytes -= e.payload.len();
            let e = self.buf.pop_front().expect("a front event");
            events.push(Arc::unwrap_or_clone(e));
        }
        (events, std::mem::take(&mut self.missed))
    }

    /// Puts back what an answer never taken carried.
    fn put_back(&mut self, events: Vec<SignalEvent>, missed: u64) {
        for e in events.into_iter().rev() {
            self.bytes += e.payload.len();
            self.buf.push_front(Arc::new(e));
        }
        self.missed += missed;
    }

    /// Answers its waiting `Next`, if any, with `invalid-argument` saying `why`.
    fn cancel(&mut self, why: &str) {
        if let Some(w) = self.waiting.take() {
            let _ = w.tx.send(Err(RequestError::InvalidArgument(format!(
                "Next ended: {why}"
            ))));
        }
    }

    /// Answers its waiting `Next` if there is something to answer with.
    fn wake(&mut self) {
        if self.buf.is_empty() && self.missed == 0 {
            return;
        }
        let Some(w) = self.waiting.take() else {
            return;
        };
        let (events, missed) = self.take(w.max);
        if let Err(Ok(KindReply::Signal(SignalReply::Events { events, missed }))) =
            w.tx.send(Ok(events_reply(events, missed)))
        {
            self.put_back(events, missed);
        }
    }
}

fn events_reply(events: Vec<SignalEvent>, missed: u64) -> KindReply {
    KindReply::Signal(SignalReply::Events { events, missed })
}

/// A process signalled on every event.
#[derive(Debug)]
pub struct Delivery {
    /// Its id on this channel.
    pub id: u64,
    /// The process's pid.
    pub pid: i32,
    /// Its real uid.
    pub uid: u32,
    /// The uid that asked for it (charged for it).
    pub by_uid: u32,
    /// The signal.
    pub signal: i32,
    /// Signals sent so far.
    pub sent: u64,
    /// The pidfd (shared with the task that waits for the process to exit).
    pub fd: Arc<OwnedFd>,
    /// Where it was started: `/proc/PID/stat`'s start time and the boot id,
    /// so a restart never takes another process with the same pid for it.
    pub started: Option<(u64, String)>,
    /// That task.
    pub watcher: Option<AbortHandle>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

/// What `Next` found.
pub enum Next {
    /// An answer now.
    Now(KindReply),
    /// Nothing, and the caller will not wait.
    Empty,
    /// Nothing yet: wait `id` gets its answer on the receiver.
    Wait(u64, oneshot::Receiver<Answer>),
}

/// A channel's live state.
#[derive(Debug, Default)]
pub struct State {
    /// The real signal bound to it.
    pub bind: Option<i32>,
    /// The last event's sequence number.
    pub seq: u64,
    subs: HashMap<SessionId, Subscriber>,
    /// The processes it signals.
    pub deliveries: Vec<Delivery>,
    next_id: u64,
}

impl State {
    /// A channel bound to `bind`, with no event yet.
    pub fn bound_to(bind: Option<i32>) -> Self {
        State {
            bind,
            ..State::default()
        }
    }

    /// A fresh id for a wait or a delivery.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Socket subscribers now.
    pub fn subscribers(&self) -> usize {
        self.subs.len()
    }

    /// Whether `session` is subscribed.
    pub fn is_subscribed(&self, session: SessionId) -> bool {
        self.subs.contains_key(&session)
    }

    /// Subscribes `who`'s connection with a buffer of `buffer` events (0:
    /// the default); again, changes the buffer. Returns the last sequence number.
    pub fn subscribe(&mut self, who: &Asker, buffer: u32) -> u64 {
        let capacity = match buffer {
            0 => DEFAULT_SIGNAL_BUFFER,
            n => n.min(MAX_SIGNAL_BUFFER),
        } as usize;
        let sub = self.subs.entry(who.session).or_insert_with(|| Subscriber {
            uid: who.peer.uid,
            capacity,
            buf: VecDeque::new(),
            bytes: 0,
            missed: 0,
            waiting: None,
        });
        sub.capacity = capacity;
        while sub.buf.len() > capacity {
            if let Some(old) = sub.buf.pop_front() {
                sub.bytes -= old.payload.len();
                sub.missed += 1;
            }
        }
        self.seq
    }

    /// Ends `session`'s subscription (a `Next` still waiting is told so);
    /// whether it had one.
    pub fn unsubscribe(&mut self, session: SessionId) -> bool {
        let Some(mut sub) = self.subs.remove(&session) else {
            return false;
        };
        sub.cancel("the subscription ended");
        true
    }

    /// `Next` for `who`: events now, `None` if not subscribed, or (if it
    /// may) a wait.
    pub fn next(&mut self, who: &Asker, max: u32, wait: bool) -> Option<Next> {
        let id = self.next_id();
        let sub = self.subs.get_mut(&who.session)?;
        if !sub.buf.is_empty() || sub.missed > 0 {
            let (events, missed) = sub.take(max);
            return Some(Next::Now(events_reply(events, missed)));
        }
        if !wait {
            return Some(Next::Empty);
        }
        let (tx, rx) = oneshot::channel();
        // A second wait on one connection replaces the first.
        sub.cancel("a later Next on the same connection replaced it");
        sub.waiting = Some(Waiting { id, max, tx });
        Some(Next::Wait(id, rx))
    }

    /// Whether `session` has a `Next` waiting.
    #[cfg(test)]
    pub fn waiting(&self, session: SessionId) -> bool {
        self.subs.get(&session).is_some_and(|s| s.waiting.is_some())
    }

    /// Raises an event: buffered for every subscriber (waking waiting
    /// `Next`s), sent to every process. Returns its sequence number, the
    /// subscribers and the processes it reached.
    pub fn raise(&mut self, origin: Origin, payload: Vec<u8>) -> (u64, u32, u32) {
        self.seq += 1;
        let event = Arc::new(SignalEvent {
            seq: self.seq,
            time_ms: now_ms(),
            pid: origin.pid,
            uid: origin.uid,
            signal: origin.signal,
            payload,
        });
        for sub in self.subs.values_mut() {
            sub.push(event.clone());
            sub.wake();
        }
        let mut delivered = 0;
        self.deliveries.retain_mut(|d| {
            match process::send(&d.fd, d.pid, d.signal) {
                Ok(()) => {
                    d.sent += 1;
                    delivered += 1;
                    true
                }
                // Exited (its watcher has not run yet) or no longer ours to signal.
                Err(e) => {
                    tracing::info!(pid = d.pid, "no longer signalled: {e}");
                    false
                }
            }
        });
        (self.seq, self.subs.len() as u32, delivered)
    }

    /// Adds (or, for a pid already there, changes the signal of) a delivery;
    /// returns the id of the delivery that now needs a watcher, if one does.
    pub fn deliver(&mut self, mut d: Delivery) -> Option<u64> {
        if let Some(old) = self.deliveries.iter_mut().find(|o| o.pid == d.pid) {
            old.signal = d.signal;
            return None;
        }
        d.id = self.next_id();
        let id = d.id;
        self.deliveries.push(d);
        Some(id)
    }

    /// The delivery to `pid`, if any.
    pub fn delivery(&self, pid: i32) -> Option<&Delivery> {
        self.deliveries.iter().find(|d| d.pid == pid)
    }

    /// Removes the delivery with this id; whether it was there.
    pub fn remove_delivery(&mut self, id: u64) -> bool {
        let before = self.deliveries.len();
        self.deliveries.retain(|d| d.id != id);
        self.deliveries.len() != before
    }

    /// What the channel holds for `uid`: its subscriptions, and a pidfd for
    /// each process it asked to be signalled.
    pub fn held_for(&self, uid: u32) -> Held {
        let subs = self.subs.values().filter(|s| s.uid == uid).count() as u64;
        let pids = self.deliveries.iter().filter(|d| d.by_uid == uid).count() as u64;
        Held {
            fds: pids,
            subscriptions: subs + pids,
            ..Held::default()
        }
    }
}

impl Abandon for State {
    fn abandon(&mut self, id: u64, who: &Asker, granted: Option<Answer>) {
        let Some(sub) = self.subs.get_mut(&who.session) else {
            return;
        };
        if sub.waiting.as_ref().is_some_and(|w| w.id == id) {
            sub.waiting = None;
        }
        if let Some(Ok(KindReply::Signal(SignalReply::Events { events, missed }))) = granted {
            sub.put_back(events, missed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Peer;

    fn who(session: SessionId) -> Asker {
        Asker {
            peer: Peer {
                pid: 10,
                uid: 1000,
                gid: 1000,
            },
            session,
            max_frame: protocol::HARD_MAX_FRAME,
        }
    }

    const ME: Origin = Origin {
        pid: 10,
        uid: 1000,
        signal: None,
    };

    fn events(n: Option<Next>) -> (Vec<u64>, u64) {
        let Some(Next::Now(KindReply::Signal(SignalReply::Events { events, missed }))) = n else {
            panic!("expected events now")
        };
        (events.iter().map(|e| e.seq).collect(), missed)
    }

    #[test]
    fn an_overflow_drops_the_oldest_and_counts_them() {
        let mut s = State::default();
        s.subscribe(&who(1), 3);
        s.subscribe(&who(2), 0);
        for _ in 0..5 {
            s.raise(ME, b"x".to_vec());
        }
        assert_eq!(events(s.next(&who(1), 0, true)), (vec![3, 4, 5], 2));
        assert_eq!(events(s.next(&who(2), 2, true)), (vec![1, 2], 0));
        assert_eq!(events(s.next(&who(2), 0, true)), (vec![3, 4, 5], 0));
        assert!(matches!(s.next(&who(1), 0, true), Some(Next::Wait(..))));
        assert!(s.next(&who(3), 0, true).is_none(), "not subscribed");
        // The byte bound: 4 KiB payloads, 256 KiB kept.
        for _ in 0..70 {
            s.raise(ME, vec![0; 4096]);
        }
        let (got, missed) = events(s.next(&who(2), 0, true));
        assert_eq!(got.len(), 14, "a batch stops at {BATCH_BYTES} bytes");
        assert_eq!(missed, 70 - 64);
        // Many small events: a batch stays within what a decoder allocates.
        let mut s = State::default();
        s.subscribe(&who(1), 4096);
        for _ in 0..2000 {
            s.raise(ME, Vec::new());
        }
        let Some(Next::Now(reply)) = s.next(&who(1), 0, true) else {
            panic!("expected events now")
        };
        let frame = protocol::ServerFrame::Response {
            id: 1,
            fds: 0,
            result: protocol::Outcome::Ok(protocol::Reply::Kind(reply)),
        };
        let bytes = protocol::encode_server(&frame).unwrap();
        assert_eq!(protocol::decode_server(&bytes).unwrap(), frame);
        let per_batch = BATCH_BYTES / EVENT_COST;
        assert_eq!(events(s.next(&who(1), 0, true)).0.len(), per_batch);
        assert_eq!(
            events(s.next(&who(1), 0, true)).0.len(),
            2000 - 2 * per_batch
        );
    }

    #[tokio::test]
    async fn a_waiting_next_is_answered_by_the_next_raise_and_an_abandoned_answer_comes_back() {
        let mut s = State::default();
        s.subscribe(&who(1), 0);
        let Some(Next::Wait(id, rx)) = s.next(&who(1), 0, true) else {
            panic!("expected a wait")
        };
        assert_eq!(s.raise(ME, b"a".to_vec()), (1, 1, 0));
        let answer = rx.await.unwrap();
        assert!(!s.waiting(1));
        // The session dropped the wait before taking it: the events go back.
        s.abandon(id, &who(1), Some(answer));
        assert_eq!(events(s.next(&who(1), 0, true)), (vec![1], 0));
        // A second wait replaces the first, which is told; so is one waiting
        // when the subscription ends.
        let Some(Next::Wait(_, first)) = s.next(&who(1), 0, true) else {
            panic!("expected a wait")
        };
        let Some(Next::Wait(_, second)) = s.next(&who(1), 0, true) else {
            panic!("expected a wait")
        };
        assert!(matches!(
            first.await,
            Ok(Err(RequestError::InvalidArgument(_)))
        ));
        assert!(s.unsubscribe(1));
        assert!(matches!(
            second.await,
            Ok(Err(RequestError::InvalidArgument(_)))
        ));
        assert_eq!(s.raise(ME, Vec::new()), (2, 0, 0));
    }
}
