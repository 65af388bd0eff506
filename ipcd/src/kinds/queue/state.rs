//! A queue's state behind its lock, and the operations on it. Every change
//! ends in [`State::settle`], which answers whichever waits it made ready:
//! puts first (they add messages), then gets, then joins.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{
    Fsync, KindReply, QueueDelivery, QueueDetails, QueueItem, QueueJournal, QueueOp, QueueOrder,
    QueueParams, QueueReply,
};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::held::{Held, Message};
use super::journal::{Journal, Record};
use super::rates::Meter;
use super::waits::{Durable, Grant, Granted, JoinWait, PutWait, Waits};
use super::writers::Charge;
use crate::error::RequestError;
use crate::kinds::waitlist::{self, Abandon, lock};
use crate::kinds::{Asker, OpAnswer, Pending};
use crate::peer::SessionId;
use crate::registry::disk_error;

/// Bytes of an answer's frame kept for everything but the messages' bodies.
const ANSWER_SLACK: u64 = 1024;
/// What one delivery adds to an answer besides its body (id, priority,
/// count, length), generously.
const DELIVERY_OVERHEAD: u64 = 32;

/// Bytes held by a deleted queue from which its memory is handed back to
/// the system at once (a million small messages would otherwise stay
/// resident until the next trim).
const GIVE_BACK_FROM: u64 = 8 << 20;

/// Running totals since ipcd started.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    put: u64,
    acked: u64,
    redelivered: u64,
    dead: u64,
}

/// One queue.
#[derive(Debug)]
pub struct State {
    /// Its settings (`max_bytes` resolved).
    pub params: QueueParams,
    held: Held,
    waits: Waits,
    next_seq: u64,
    totals: Totals,
    put_meter: Meter,
    ack_meter: Meter,
    /// Messages that reached `max_deliveries`, for the companion.
    dead_letters: Vec<Message>,
    journal: Option<Journal>,
    /// The journal writer's charge to its creator's budget.
    charge: Option<Charge>,
    /// What the last start cut from the journal's end, if anything.
    recovery: Option<String>,
}

/// The settings as saved with the registry record.
pub fn params_to_json(p: &QueueParams) -> serde_json::Value {
    serde_json::json!({
        "capacity": p.capacity,
        "max_bytes": p.max_bytes,
        "order": p.order.to_string(),
        "max_deliveries": p.max_deliveries,
        "durable": p.durable.map(|f| f.to_string()),
    })
}

/// The settings [`params_to_json`] saved, `None` if unreadable.
pub fn params_from_json(v: &serde_json::Value) -> Option<QueueParams> {
    let order = match v.get("order")?.as_str()? {
        "fifo" => QueueOrder::Fifo,
        "lifo" => QueueOrder::Lifo,
        "priority" => QueueOrder::Priority,
        _ => return None,
    };
    let durable = match v.get("durable")? {
        serde_json::Value::Null => None,
        f => Some(match f.as_str()? {
            "always" => Fsync::Always,
            "batch" => Fsync::Batch,
            "never" => Fsync::Never,
            _ => return None,
        }),
    };
    Some(QueueParams {
        capacity: v.get("capacity")?.as_u64()?,
        max_bytes: v.get("max_bytes")?.as_u64()?,
        order,
        max_deliveries: u32::try_from(v.get("max_deliveries")?.as_u64()?).ok()?,
        durable,
    })
}

fn journal_error(what: &str, e: &std::io::Error) -> RequestError {
    disk_error(what, e)
}

impl State {
    fn new(params: QueueParams, journal: Option<Journal>, charge: Option<Charge>) -> Self {
        State {
            params,
            held: Held::new(params.order),
            waits: Waits::default(),
            next_seq: 1,
            totals: Totals::default(),
            put_meter: Meter::new(0),
            ack_meter: Meter::new(0),
            dead_letters: Vec::new(),
            journal,
            charge,
            recovery: None,
        }
    }

    /// A new queue; a durable one gets a new journal at `path`.
    pub fn create(
        params: QueueParams,
        path: Option<&Path>,
        charge: Option<Charge>,
    ) -> Result<Self, RequestError> {
        let journal = match (params.durable, path) {
            (Some(fsync), Some(path)) => {
                if let Some(dir) = path.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|e| journal_error("creating the journal directory", &e))?;
                }
                // A file left by a create that never registered is not a queue.
                let _ = std::fs::remove_file(path);
                Some(
                    Journal::create(path, fsync)
                        .map_err(|e| journal_error("creating the queue's journal", &e))?,
                )
            }
            _ => None,
        };
        Ok(State::new(params, journal, charge))
    }

    /// A queue after a restart: empty, or, if durable, what its journal holds.
    pub fn reopen(
        params: QueueParams,
        path: Option<&Path>,
        charge: Option<Charge>,
    ) -> Result<Self, RequestError> {
        let (Some(fsync), Some(path)) = (params.durable, path) else {
            return Ok(State::new(params, None, None));
        };
        let (journal, recovery) = Journal::open(path, fsync)
            .map_err(|e| journal_error(&format!("reading the journal {}", path.display()), &e))?;
        let mut s = State::new(params, Some(journal), charge);
        s.next_seq = recovery.next_seq.max(1);
        let n = recovery.messages.len();
        for r in recovery.messages {
            s.held.push(Message {
                seq: r.seq,
                priority: r.priority,
                deliveries: 0,
                body: r.body,
            });
        }
        if let Some(cut) = &recovery.cut {
            error!(journal = %path.display(), "the journal's end was damaged and cut: {cut}");
        }
        info!(journal = %path.display(), messages = n, "durable queue read back");
        s.recovery = recovery.cut;
        Ok(s)
    }

    /// Whether `n` messages of `bytes` fit now.
    fn fits(&self, n: u64, bytes: u64) -> bool {
        (self.params.capacity == 0 || self.held.count() + n <= self.params.capacity)
            && self.held.bytes() + bytes <= self.params.max_bytes
    }

    /// Refuses a put that is malformed or could never fit.
    fn check_put(&self, items: &[QueueItem]) -> Result<(u64, u64), RequestError> {
        if items.is_empty() {
            return Err(RequestError::InvalidArgument(
                "a put needs at least one message".into(),
            ));
        }
        if self.params.order != QueueOrder::Priority && items.iter().any(|i| i.priority != 0) {
            return Err(RequestError::InvalidArgument(format!(
                "a priority was given but the queue's order is {}; create it with --order priority",
                self.params.order
            )));
        }
        let (n, bytes) = (items.len() as u64, items.iter().map(QueueItem::cost).sum());
        let cap = self.params.capacity;
        if (cap > 0 && n > cap) || bytes > self.params.max_bytes {
            return Err(RequestError::TooLarge(format!(
                "{n} message(s) of {bytes} bytes (with {} bytes each for bookkeeping) can never \
                 fit in a queue of capacity {} and max-bytes {}",
                protocol::QUEUE_MESSAGE_OVERHEAD,
                if cap == 0 {
                    "unlimited".into()
                } else {
                    cap.to_string()
                },
                self.params.max_bytes
            )));
        }
        Ok((n, bytes))
    }

    /// Adds `items` at the tail; returns the journal's answer for a durable queue.
    fn insert(&mut self, items: Vec<QueueItem>) -> Option<Durable> {
        let mut records = Vec::new();
        for item in items {
            let seq = self.next_seq;
            self.next_seq += 1;
            if self.journal.is_some() {
                records.push(Record {
                    seq,
                    priority: item.priority,
                    body: item.body.clone(),
                });
            }
            self.held.push(Message {
                seq,
                priority: item.priority,
                deliveries: 0,
                body: item.body,
            });
            self.totals.put += 1;
        }
        self.put_meter.note(self.totals.put);
        self.journal.as_ref().map(|j| j.put(records))
    }

    /// Delivers up to `max` messages to `who`, within its frame limit.
    fn deliver(&mut self, max: u32, who: &Asker) -> Vec<QueueDelivery> {
        let room = u64::from(who.max_frame).saturating_sub(ANSWER_SLACK);
        self.held
            .deliver(max, who.session, who.peer, room, DELIVERY_OVERHEAD)
    }

    /// Takes back deliveries nobody received: not counted as delivered.
    fn give_back(&mut self, d: Vec<QueueDelivery>) {
        let ids: Vec<u64> = d.iter().map(|d| d.id).collect();
        let mut ms = self.held.take(&ids);
        for m in &mut ms {
            m.deliveries = m.deliveries.saturating_sub(1);
        }
        self.held.requeue(ms);
    }

    /// Acknowledges deliveries `who`'s connection holds, all or none.
    fn ack(&mut self, ids: &[u64], who: &Asker) -> Result<u32, RequestError> {
        if let Some(id) = self.held.not_held(ids, who.session) {
            return Err(RequestError::InvalidArgument(format!(
                "delivery {id} is not held by this connection (a delivery is acknowledged \
                 once, by the connection that received it); nothing was acknowledged"
            )));
        }
        let taken = self.held.take(ids);
        if taken.is_empty() {
            return Ok(0);
        }
        self.totals.acked += taken.len() as u64;
        self.ack_meter.note(self.totals.acked);
        if let Some(j) = &self.journal {
            j.remove(taken.iter().map(|m| m.seq).collect());
        }
        self.settle();
        Ok(taken.len() as u32)
    }

    /// Answers every wait this state makes ready.
    fn settle(&mut self) {
        while let Some(w) = self.waits.puts.front() {
            let bytes = w.items.iter().map(QueueItem::cost).sum();
            if !self.fits(w.items.len() as u64, bytes) {
                break;
            }
            let Some(PutWait { items, tx, .. }) = self.waits.puts.pop_front() else {
                break;
            };
            let count = items.len() as u32;
            let durable = self.insert(items);
            // A put whose receiver is gone is still made: at least once.
            let _ = tx.send(Ok(Grant::Put { count, durable }));
        }
        while self.held.depth() > 0 {
            let Some(w) = self.waits.gets.pop_front() else {
                break;
            };
            let d = self.deliver(w.max, &w.who);
            if let Err(Ok(Grant::Got(d))) = w.tx.send(Ok(Grant::Got(d))) {
                self.give_back(d);
            }
        }
        if self.held.count() == 0 {
            for JoinWait { tx, .. } in self.waits.joins.drain(..) {
                let _ = tx.send(Ok(Grant::Joined));
            }
        }
    }

    /// The connection `session` closed: its deliveries go back to the head,
    /// or, delivered `max_deliveries` times, to the dead letters.
    pub fn session_ended(&mut self, session: SessionId) {
        self.waits.forget_session(session);
        let ms = self.held.take_session(session);
        if ms.is_empty() {
            return;
        }
        let max = self.params.max_deliveries;
        let (dead, back): (Vec<Message>, Vec<Message>) =
            ms.into_iter().partition(|m| max > 0 && m.deliveries >= max);
        if !back.is_empty() {
            info!(
                messages = back.len(),
                "a consumer's connection closed; its unacknowledged deliveries go back to the queue"
            );
        }
        self.totals.redelivered += back.len() as u64;
        self.held.requeue(back);
        if !dead.is_empty() {
            warn!(
                messages = dead.len(),
                max_deliveries = max,
                "messages delivered too many times without an acknowledgement go to the dead letters"
            );
            self.totals.dead += dead.len() as u64;
            if let Some(j) = &self.journal {
                j.remove(dead.iter().map(|m| m.seq).collect());
            }
            self.dead_letters.extend(dead);
        }
        self.settle();
    }

    /// The dead letters gathered since last asked, for the companion.
    pub fn take_dead_letters(&mut self) -> Vec<QueueItem> {
        self.dead_letters
            .drain(..)
            .map(|m| QueueItem {
                priority: m.priority,
                body: m.body,
            })
            .collect()
    }

    /// Takes another queue's dead letters; returns how many did not fit.
    pub fn take_spill(&mut self, items: Vec<QueueItem>) -> usize {
        let mut kept = Vec::new();
        let mut dropped = 0;
        for item in items {
            if self.fits(
                kept.len() as u64 + 1,
                kept.iter().map(QueueItem::cost).sum::<u64>() + item.cost(),
            ) {
                kept.push(item);
            } else {
                dropped += 1;
            }
        }
        if !kept.is_empty() {
            // The dead letters' journal answer is not waited for.
            drop(self.insert(kept));
            self.settle();
        }
        dropped
    }

    /// What is saved with the registry record: the settings, and whom the
    /// journal writer is charged to.
    pub fn saved(&self) -> serde_json::Value {
        let mut v = params_to_json(&self.params);
        if let Some(c) = &self.charge {
            v["journal_uid"] = c.uid().into();
        }
        v
    }

    /// What `stat` shows.
    pub fn details(&self) -> QueueDetails {
        QueueDetails {
            order: self.params.order,
            capacity: self.params.capacity,
            max_bytes: self.params.max_bytes,
            max_deliveries: self.params.max_deliveries,
            depth: self.held.depth(),
            bytes: self.held.bytes(),
            consumers: self.held.consumers(),
            put: self.totals.put,
            acked: self.totals.acked,
            redelivered: self.totals.redelivered,
            dead: self.totals.dead,
            put_rate: self.put_meter.rate(self.totals.put),
            ack_rate: self.ack_meter.rate(self.totals.acked),
            getters: self.waits.gets.len() as u32,
            putters: self.waits.puts.len() as u32,
            joiners: self.waits.joins.len() as u32,
            journal: self.journal.as_ref().map(|j| {
                let stats = j.stats();
                QueueJournal {
                    fsync: self.params.durable.unwrap_or(Fsync::Batch),
                    bytes: stats.bytes,
                    compactions: stats.compactions,
                    recovery: self.recovery.clone(),
                }
            }),
        }
    }

    /// The queue is deleted: every wait is answered `not-found`, the
    /// messages dropped and the journal removed.
    pub fn remove(&mut self) -> Result<(), RequestError> {
        self.waits.clear();
        let big = self.held.bytes() >= GIVE_BACK_FROM;
        self.held.clear();
        self.dead_letters.clear();
        if big {
            // Freed messages stay in malloc's arenas until asked for back.
            crate::sys::mem::give_back_free_memory();
        }
        self.charge = None;
        match self.journal.take() {
            Some(j) => j
                .delete()
                .map_err(|e| journal_error("removing the queue's journal", &e)),
            None => Ok(()),
        }
    }
}

impl Abandon<Granted> for State {
    fn abandon(&mut self, id: u64, _who: &Asker, granted: Option<Granted>) {
        self.waits.remove(id);
        if let Some(Ok(Grant::Got(d))) = granted {
            self.give_back(d);
            self.settle();
        }
    }
}

/// The answer to a wait, once granted (and, for a durable put, journaled).
fn later(
    state: &Arc<Mutex<State>>,
    id: u64,
    who: &Asker,
    rx: oneshot::Receiver<Granted>,
) -> Pending {
    let wait = waitlist::Granted::new(state.clone(), id, *who, rx);
    Box::pin(async move {
        match wait.await? {
            Grant::Got(d) => Ok(KindReply::Queue(QueueReply::Got(d))),
            Grant::Put { count, durable } => {
                if let Some(rx) = durable {
                    journaled(rx).await?;
                }
                Ok(KindReply::Queue(QueueReply::Put { count }))
            }
            Grant::Joined => Ok(KindReply::Queue(QueueReply::Joined)),
        }
    })
}

/// Waits for the journal to hold a put.
async fn journaled(rx: Durable) -> Result<(), RequestError> {
    match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(journal_error(
            "writing the queue's journal (the messages may still be delivered)",
            &e,
        )),
        Err(_) => Err(RequestError::ShuttingDown),
    }
}

/// Answers now, or once a durable put is journaled.
fn put_answer(count: u32, durable: Option<Durable>) -> OpAnswer {
    let reply = KindReply::Queue(QueueReply::Put { count });
    match durable {
        None => OpAnswer::Now(reply),
        Some(rx) => OpAnswer::Later {
            made: true,
            wait: Box::pin(async move {
                journaled(rx).await?;
                Ok(reply)
            }),
            timeout: None,
        },
    }
}

/// Performs `op` for `who`.
pub fn operate(
    state: &Arc<Mutex<State>>,
    op: QueueOp,
    who: &Asker,
) -> Result<OpAnswer, RequestError> {
    let mut s = lock(state);
    match op {
        QueueOp::Put { items, timeout_ms } => {
            let (n, bytes) = s.check_put(&items)?;
            if s.waits.puts.is_empty() && s.fits(n, bytes) {
                let durable = s.insert(items);
                s.settle();
                return Ok(put_answer(n as u32, durable));
            }
            if timeout_ms == Some(0) {
                return Err(RequestError::WouldBlock(format!(
                    "the queue is full ({} messages, {} of {} bytes held)",
                    s.held.count(),
                    s.held.bytes(),
                    s.params.max_bytes
                )));
            }
            let (tx, rx) = oneshot::channel();
            let id = s.waits.next_id();
            s.waits.puts.push_back(PutWait {
                id,
                who: *who,
                items,
                tx,
            });
            Ok(OpAnswer::Later {
                made: false,
                wait: later(state, id, who, rx),
                timeout: timeout_ms.map(Duration::from_millis),
            })
        }
        QueueOp::AckGet {
            ack,
            max,
            timeout_ms,
        } => {
            s.ack(&ack, who)?;
            drop(s);
            operate(state, QueueOp::Get { max, timeout_ms }, who)
        }
        QueueOp::Get { max, timeout_ms } => {
            if s.held.depth() > 0 {
                let d = s.deliver(max, who);
                return Ok(OpAnswer::Now(KindReply::Queue(QueueReply::Got(d))));
            }
            if timeout_ms == Some(0) {
                return Err(RequestError::WouldBlock("the queue is empty".into()));
            }
            let (tx, rx) = oneshot::channel();
            let id = s.waits.next_id();
            s.waits.gets.push_back(super::waits::GetWait {
                id,
                who: *who,
                max,
                tx,
            });
            drop(s);
            Ok(OpAnswer::Later {
                made: false,
                wait: later(state, id, who, rx),
                timeout: timeout_ms.map(Duration::from_millis),
            })
        }
        QueueOp::Ack { ids } => {
            let count = s.ack(&ids, who)?;
            Ok(OpAnswer::Now(KindReply::Queue(QueueReply::Acked { count })))
        }
        QueueOp::Join { timeout_ms } => {
            if s.held.count() == 0 {
                return Ok(OpAnswer::Now(KindReply::Queue(QueueReply::Joined)));
            }
            if timeout_ms == Some(0) {
                return Err(RequestError::WouldBlock(format!(
                    "{} messages are not acknowledged yet",
                    s.held.count()
                )));
            }
            let (tx, rx) = oneshot::channel();
            let id = s.waits.next_id();
            s.waits.joins.push(JoinWait { id, who: *who, tx });
            drop(s);
            Ok(OpAnswer::Later {
                made: false,
                wait: later(state, id, who, rx),
                timeout: timeout_ms.map(Duration::from_millis),
            })
        }
    }
}
