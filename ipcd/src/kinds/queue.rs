//! `queue:NAME` — a work queue hosted in ipcd, the one kind whose messages
//! pass through the daemon. Messages are held in memory, in fifo, lifo or
//! priority order, bounded by a count and by bytes (reserved against the
//! owner's queue-memory share when the queue is created). A delivery belongs
//! to the connection that got it until acknowledged; when that connection
//! closes, its deliveries go back to the head (at-least-once delivery), and
//! after `max_deliveries` to the companion `queue:NAME.dead`. Waiting gets,
//! puts and joins are `oneshot`s answered by whichever operation makes them
//! ready — no thread and no polling per waiter.
//!
//! A durable queue also writes every put and removal to its journal
//! (`<state_dir>/queue/NAME.journal`, [`journal`]); a put is answered once
//! the journal holds it as the flush policy says, and a restart reads the
//! journal back. The journal path is the queue's "kernel name", so the
//! registry's crash-consistent create and delete cover the file too.

mod held;
pub mod journal;
mod rates;
mod state;
#[cfg(test)]
mod tests;
mod waits;
mod writers;

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use protocol::{
    Access, DEAD_SUFFIX, Kind, KindDetails, KindOp, KindParams, Name, QueueOp, QueueParams,
};

use super::waitlist::lock;
use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, Spill,
    wrong_op, wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;
use crate::peer::SessionId;
use state::State;

/// Bytes a queue may hold when created with `max_bytes` 0.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;

/// The `queue` kind.
pub struct Module;

/// A daemon-hosted queue.
#[derive(Debug)]
pub struct QueueObject {
    state: Arc<Mutex<State>>,
}

/// `params` with the defaults filled in, checked.
fn resolve(params: &KindParams) -> Result<QueueParams, RequestError> {
    let KindParams::Queue(p) = params else {
        return Err(wrong_params(params, Kind::Queue));
    };
    let mut p = *p;
    if p.max_bytes == 0 {
        p.max_bytes = DEFAULT_MAX_BYTES;
    }
    if p.max_bytes <= protocol::QUEUE_MESSAGE_OVERHEAD {
        return Err(RequestError::InvalidArgument(format!(
            "max-bytes must be more than {} (each message counts its length plus {} bytes)",
            protocol::QUEUE_MESSAGE_OVERHEAD,
            protocol::QUEUE_MESSAGE_OVERHEAD
        )));
    }
    Ok(p)
}

impl KindModule for Module {
    fn kernel_name(&self, ns: &Namespace, name: &Name) -> Option<String> {
        let path = ns.state_dir.join("queue").join(format!("{name}.journal"));
        Some(path.to_string_lossy().into_owned())
    }

    fn cost(&self, args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        Ok(Held {
            queue_bytes: resolve(args.params)?.max_bytes,
            ..Held::default()
        })
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let params = resolve(args.params)?;
        if args.adopt {
            return Err(RequestError::InvalidArgument(
                "a queue lives in ipcd only, so there is nothing to adopt".into(),
            ));
        }
        let charge = match params.durable {
            Some(_) => Some(writers::Charge::take(args.peer.uid)?),
            None => None,
        };
        let state = State::create(params, args.kernel_name.map(Path::new), charge)?;
        Ok(Box::new(QueueObject::new(state)))
    }

    fn reopen(
        &self,
        kernel_name: Option<&str>,
        saved: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let params: QueueParams = state::params_from_json(saved).ok_or_else(|| {
            RequestError::InvalidArgument(format!("unreadable queue settings {saved}"))
        })?;
        let charge = params.durable.map(|_| {
            let uid = saved
                .get("journal_uid")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            writers::Charge::again(u32::try_from(uid).unwrap_or(0))
        });
        let state = State::reopen(params, kernel_name.map(Path::new), charge)?;
        Ok(Reopened::Alive(Box::new(QueueObject::new(state))))
    }

    fn unlink(&self, kernel_name: &str) -> Result<(), RequestError> {
        for path in [kernel_name.to_string(), format!("{kernel_name}.compact")] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(crate::registry::disk_error(&format!("removing {path}"), &e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn owner(&self, kernel_name: &str) -> Option<u32> {
        std::fs::metadata(kernel_name).ok().map(|m| m.uid())
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        match op {
            KindOp::Queue(QueueOp::Put { .. } | QueueOp::Join { .. }) => Need::Write,
            KindOp::Queue(QueueOp::Get { .. } | QueueOp::Ack { .. } | QueueOp::AckGet { .. }) => {
                Need::Read
            }
            // Never called with another kind's operation; the strictest answer is safe.
            KindOp::Mq(_)
            | KindOp::Pipe(_)
            | KindOp::Shm(_)
            | KindOp::Sem(_)
            | KindOp::Lock(_)
            | KindOp::Event(_)
            | KindOp::Barrier(_)
            | KindOp::Signal(_) => Need::Owner,
        }
    }

    fn reserved(&self, name: &Name) -> Option<String> {
        name.as_str().ends_with(DEAD_SUFFIX).then(|| {
            format!(
                "names ending in '{DEAD_SUFFIX}' are dead-letter queues: 'queue:{name}' is made \
                 with its queue (create 'queue:{}' with --max-deliveries)",
                name.as_str().trim_end_matches(DEAD_SUFFIX)
            )
        })
    }

    fn companion(&self, params: &KindParams) -> Option<(&'static str, KindParams)> {
        let KindParams::Queue(p) = params else {
            return None;
        };
        (p.max_deliveries > 0).then(|| {
            let max_bytes = resolve(params).map_or(DEFAULT_MAX_BYTES, |r| r.max_bytes);
            let dead = QueueParams {
                capacity: 0,
                // Dead letters are few: a quarter of the queue's room.
                max_bytes: (max_bytes / 4).max(1 << 20).min(max_bytes),
                order: protocol::QueueOrder::Fifo,
                max_deliveries: 0,
                durable: p.durable,
            };
            (DEAD_SUFFIX, KindParams::Queue(dead))
        })
    }
}

impl QueueObject {
    fn new(state: State) -> Self {
        QueueObject {
            state: Arc::new(Mutex::new(state)),
        }
    }
}

impl KindObject for QueueObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        Ok(KindDetails::Queue(Box::new(lock(&self.state).details())))
    }

    fn open(&mut self, _access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        // Messages pass through ipcd: nothing to hand out (as for a lock).
        Ok(Vec::new())
    }

    fn operate(&mut self, op: KindOp, who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Queue(op) = op else {
            return Err(wrong_op(&op, Kind::Queue));
        };
        state::operate(&self.state, op, who)
    }

    fn session_ended(&mut self, session: SessionId) {
        lock(&self.state).session_ended(session);
    }

    fn held(&self) -> Held {
        Held {
            queue_bytes: lock(&self.state).params.max_bytes,
            ..Held::default()
        }
    }

    fn kernel_name_shown(&self) -> bool {
        lock(&self.state).params.durable.is_some()
    }

    fn companion(&self) -> Option<&'static str> {
        (lock(&self.state).params.max_deliveries > 0).then_some(DEAD_SUFFIX)
    }

    fn spill(&mut self) -> Option<Spill> {
        let items = lock(&self.state).take_dead_letters();
        (!items.is_empty()).then_some(Spill {
            suffix: DEAD_SUFFIX,
            items,
        })
    }

    fn take_spill(&mut self, items: Vec<protocol::QueueItem>) -> usize {
        lock(&self.state).take_spill(items)
    }

    fn state(&self) -> serde_json::Value {
        lock(&self.state).saved()
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        lock(&self.state).remove()
    }
}
