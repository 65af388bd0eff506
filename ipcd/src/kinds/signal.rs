//! `signal:NAME` — a channel of events hosted by the daemon. `Raise` gives
//! every socket subscriber the event (each connection subscribed reads its
//! own bounded buffer with `Next`, a long poll answered later while it is
//! empty) and sends a real signal to every process a `Deliver` added (through
//! a pidfd, until the process exits: a task per process waits for its pidfd
//! to become readable). A channel may be bound to a real signal: when ipcd
//! receives it, the binary's catcher calls `Registry::signal_arrived`, which
//! raises the channel. Saved with the record: the bound signal and the
//! deliveries (pid, uid, start time, boot id), so a restart signals the same
//! processes again and never one that reused a pid; subscribers go with
//! their connections.

mod channel;
pub mod process;

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use protocol::kinds::signal::{MAX_SIGNAL_PAYLOAD, bindable, signal_name};
use protocol::{
    Access, Kind, KindDetails, KindOp, KindParams, KindReply, Name, SignalDetails, SignalOp,
    SignalParams, SignalReply,
};
use tracing::{info, warn};

use self::channel::{Delivery, Next, Origin, State};
use self::process::{Target, check_signal};
use super::waitlist::{Granted, lock};
use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;
use crate::peer::{Peer, SessionId};
use crate::sys::pidfd;

/// The `signal` kind.
pub struct Module;

/// A daemon-hosted signal channel.
#[derive(Debug)]
pub struct SignalObject {
    state: Arc<Mutex<State>>,
}

/// `invalid-argument` with [`bindable`]'s reason if `signal` may not be bound.
pub fn check_bindable(signal: i32) -> Result<(), RequestError> {
    match bindable(signal) {
        None => Ok(()),
        Some(why) => Err(RequestError::InvalidArgument(why)),
    }
}

/// The signal a create binds, if it binds one.
pub fn binds(params: &KindParams) -> Option<i32> {
    match params {
        KindParams::Signal(SignalParams { bind }) => *bind,
        KindParams::Mq(_)
        | KindParams::Pipe(_)
        | KindParams::Fifo(_)
        | KindParams::Shm(_)
        | KindParams::Ring(_)
        | KindParams::Sem(_)
        | KindParams::Lock(_)
        | KindParams::Event(_)
        | KindParams::Barrier(_)
        | KindParams::Queue(_) => None,
    }
}

/// The boot id, so recorded start times are compared within one boot only.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// When `pid` started (`/proc/PID/stat` field 22, clock ticks since boot).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

impl SignalObject {
    fn new(bind: Option<i32>) -> Self {
        SignalObject {
            state: Arc::new(Mutex::new(State::bound_to(bind))),
        }
    }

    /// Adds a delivery and starts its exit watcher.
    fn add(&self, d: Delivery) {
        let (pid, fd) = (d.pid, d.fd.clone());
        let added = lock(&self.state).deliver(d);
        if let Some(id) = added {
            let abort = spawn_watch(Arc::downgrade(&self.state), id, pid, fd);
            let mut s = lock(&self.state);
            match s.deliveries.iter_mut().find(|d| d.id == id) {
                Some(d) => d.watcher = abort,
                None => {
                    if let Some(a) = abort {
                        a.abort();
                    }
                }
            }
        }
    }

    fn deliver(&self, who: &Asker, pid: i32, signal: i32) -> Result<SignalReply, RequestError> {
        check_signal(signal)?;
        let target = Target::open(pid, &who.peer)?;
        info!(
            uid = who.peer.uid,
            by_pid = who.peer.pid,
            pid,
            signal = %signal_name(signal),
            "a process will be signalled on every event"
        );
        self.add(Delivery {
            id: 0,
            pid,
            uid: target.uid,
            by_uid: who.peer.uid,
            signal,
            sent: 0,
            fd: Arc::new(target.fd),
            started: start_time(pid).zip(boot_id()),
            watcher: None,
        });
        Ok(SignalReply::Delivering { pid, signal })
    }

    fn undeliver(&self, who: &Asker, pid: i32) -> Result<SignalReply, RequestError> {
        let mut s = lock(&self.state);
        let Some(d) = s.delivery(pid) else {
            return Err(RequestError::KernelObjectMissing(format!(
                "pid {pid} is not signalled by this channel"
            )));
        };
        let mine = who.peer.is_root() || who.peer.uid == d.uid || who.peer.uid == d.by_uid;
        if !mine {
            return Err(RequestError::PermissionDenied(format!(
                "uid {} may not stop signals to pid {pid}, a process of uid {}",
                who.peer.uid, d.uid
            )));
        }
        let id = d.id;
        s.remove_delivery(id);
        Ok(SignalReply::Undelivered)
    }
}

/// Starts the task that ends delivery `id` when its process exits, and
/// returns its abort handle. Without a runtime (unit tests) there is none: a
/// send to an exited process fails, and that ends the delivery.
fn spawn_watch(
    state: Weak<Mutex<State>>,
    id: u64,
    pid: i32,
    fd: Arc<OwnedFd>,
) -> Option<tokio::task::AbortHandle> {
    let rt = tokio::runtime::Handle::try_current().ok()?;
    let _entered = rt.enter();
    let afd = match pidfd::watch_exit(fd) {
        Ok(afd) => afd,
        Err(e) => {
            warn!(pid, "cannot watch the process for its exit: {e}");
            return None;
        }
    };
    let task = rt.spawn(async move {
        let _ = afd.readable().await;
        if let Some(state) = state.upgrade()
            && lock(&state).remove_delivery(id)
        {
            info!(pid, "the process exited: no longer signalled");
        }
    });
    Some(task.abort_handle())
}

impl KindModule for Module {
    fn kernel_name(&self, _ns: &Namespace, _name: &Name) -> Option<String> {
        None
    }

    fn cost(&self, _args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        Ok(Held::default())
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let KindParams::Signal(SignalParams { bind }) = args.params else {
            return Err(wrong_params(args.params, Kind::Signal));
        };
        if args.adopt {
            return Err(RequestError::InvalidArgument(
                "a signal channel lives in ipcd only, so there is nothing to adopt".into(),
            ));
        }
        if let Some(signal) = bind {
            check_bindable(*signal)?;
        }
        Ok(Box::new(SignalObject::new(*bind)))
    }

    fn reopen(
        &self,
        _kernel_name: Option<&str>,
        state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let bind = state.get("bind").and_then(|v| v.as_i64());
        let bind = match bind.map(|b| i32::try_from(b).ok().filter(|b| bindable(*b).is_none())) {
            Some(None) => {
                return Ok(Reopened::Gone(format!(
                    "its record binds {bind:?}, which may not be bound"
                )));
            }
            Some(Some(b)) => Some(b),
            None => None,
        };
        let object = SignalObject::new(bind);
        let boot = boot_id();
        let records = state.get("deliveries").and_then(|v| v.as_array());
        for r in records.into_iter().flatten() {
            match readopt(r, boot.as_deref()) {
                Ok(d) => object.add(d),
                Err(why) => info!("a delivery is not taken back: {why}"),
            }
        }
        Ok(Reopened::Alive(Box::new(object)))
    }

    fn unlink(&self, _kernel_name: &str) -> Result<(), RequestError> {
        Ok(())
    }

    fn owner(&self, _kernel_name: &str) -> Option<u32> {
        None
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        match op {
            KindOp::Signal(SignalOp::Raise { .. }) => Need::Write,
            KindOp::Signal(
                SignalOp::Subscribe { .. }
                | SignalOp::Next { .. }
                | SignalOp::Unsubscribe
                | SignalOp::Deliver { .. }
                | SignalOp::Undeliver { .. },
            ) => Need::Read,
            // Never called with another kind's operation; the strictest answer is safe.
            KindOp::Mq(_)
            | KindOp::Pipe(_)
            | KindOp::Shm(_)
            | KindOp::Sem(_)
            | KindOp::Lock(_)
            | KindOp::Event(_)
            | KindOp::Barrier(_)
            | KindOp::Queue(_) => Need::Owner,
        }
    }
}

/// A saved delivery taken back after a restart, if its process is the one
/// that was recorded: same pid, same start time, same boot, same uid.
fn readopt(r: &serde_json::Value, boot: Option<&str>) -> Result<Delivery, String> {
    let num = |k: &str| r.get(k).and_then(|v| v.as_i64());
    let (Some(pid), Some(uid), Some(by), Some(signal), Some(start)) = (
        num("pid"),
        num("uid"),
        num("by_uid"),
        num("signal"),
        r.get("start").and_then(|v| v.as_u64()),
    ) else {
        return Err(format!("a record lacks fields: {r}"));
    };
    let (pid, signal) = (pid as i32, signal as i32);
    if check_signal(signal).is_err() || r.get("boot").and_then(|v| v.as_str()) != boot {
        return Err(format!(
            "pid {pid}: recorded in another boot, or a bad signal"
        ));
    }
    let fd = pidfd::pidfd_open(pid).map_err(|e| format!("pid {pid}: {e}"))?;
    let now = start_time(pid);
    let same_uid = process::uids(pid).is_some_and(|(real, _)| i64::from(real) == uid);
    if now != Some(start) || !same_uid || !process::alive(&fd) {
        return Err(format!("pid {pid} is no longer the process recorded"));
    }
    Ok(Delivery {
        id: 0,
        pid,
        uid: uid as u32,
        by_uid: by as u32,
        signal,
        sent: 0,
        fd: Arc::new(fd),
        started: Some((start, boot.unwrap_or_default().to_owned())),
        watcher: None,
    })
}

impl KindObject for SignalObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        let s = lock(&self.state);
        Ok(KindDetails::Signal(SignalDetails {
            bind: s.bind,
            seq: s.seq,
            subscribers: s.subscribers() as u32,
            deliveries: s
                .deliveries
                .iter()
                .map(|d| protocol::Delivery {
                    pid: d.pid,
                    uid: d.uid,
                    signal: d.signal,
                    sent: d.sent,
                })
                .collect(),
        }))
    }

    fn open(&mut self, _access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        Ok(Vec::new())
    }

    fn operate(&mut self, op: KindOp, who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Signal(op) = op else {
            return Err(wrong_op(&op, Kind::Signal));
        };
        let reply = match op {
            SignalOp::Raise { payload } => {
                if payload.len() > MAX_SIGNAL_PAYLOAD {
                    return Err(RequestError::TooLarge(format!(
                        "an event's payload is at most {MAX_SIGNAL_PAYLOAD} bytes, got {}",
                        payload.len()
                    )));
                }
                let origin = Origin {
                    pid: who.peer.pid,
                    uid: who.peer.uid,
                    signal: None,
                };
                let (seq, subscribers, delivered) = lock(&self.state).raise(origin, payload);
                SignalReply::Raised {
                    seq,
                    subscribers,
                    delivered,
                }
            }
            SignalOp::Subscribe { buffer } => SignalReply::Subscribed {
                seq: lock(&self.state).subscribe(who, buffer),
            },
            SignalOp::Unsubscribe => {
                if !lock(&self.state).unsubscribe(who.session) {
                    return Err(not_subscribed());
                }
                SignalReply::Unsubscribed
            }
            SignalOp::Next { max, timeout_ms } => {
                let next = lock(&self.state).next(who, max, timeout_ms != Some(0));
                match next {
                    None => return Err(not_subscribed()),
                    Some(Next::Now(reply)) => return Ok(OpAnswer::Now(reply)),
                    Some(Next::Empty) => {
                        return Err(RequestError::TimedOut("no event is waiting".into()));
                    }
                    Some(Next::Wait(id, rx)) => {
                        return Ok(OpAnswer::Later {
                            made: false,
                            wait: Box::pin(Granted::new(self.state.clone(), id, *who, rx)),
                            timeout: timeout_ms.map(Duration::from_millis),
                        });
                    }
                }
            }
            SignalOp::Deliver { pid, signal } => self.deliver(who, pid, signal)?,
            SignalOp::Undeliver { pid } => self.undeliver(who, pid)?,
        };
        Ok(OpAnswer::Now(KindReply::Signal(reply)))
    }

    fn session_ended(&mut self, session: SessionId) {
        lock(&self.state).unsubscribe(session);
    }

    fn asker_cost(&self, op: &KindOp, who: &Asker) -> Held {
        let s = lock(&self.state);
        let (new, fd) = if let KindOp::Signal(SignalOp::Subscribe { .. }) = op {
            (!s.is_subscribed(who.session), false)
        } else if let KindOp::Signal(SignalOp::Deliver { pid, .. }) = op {
            (s.delivery(*pid).is_none(), true)
        } else {
            (false, false)
        };
        Held {
            fds: u64::from(new && fd),
            subscriptions: u64::from(new),
            ..Held::default()
        }
    }

    fn held(&self) -> Held {
        Held::default()
    }

    fn held_for(&self, uid: u32) -> Held {
        lock(&self.state).held_for(uid)
    }

    fn binds(&self) -> Option<i32> {
        lock(&self.state).bind
    }

    fn signalled(&mut self, signal: i32, origin: Option<Peer>) {
        let origin = Origin {
            pid: origin.map_or(0, |p| p.pid),
            uid: origin.map_or(0, |p| p.uid),
            signal: Some(signal),
        };
        lock(&self.state).raise(origin, Vec::new());
    }

    fn state(&self) -> serde_json::Value {
        let s = lock(&self.state);
        let deliveries: Vec<serde_json::Value> = s
            .deliveries
            .iter()
            .filter_map(|d| {
                let (start, boot) = d.started.as_ref()?;
                Some(serde_json::json!({
                    "pid": d.pid, "uid": d.uid, "by_uid": d.by_uid, "signal": d.signal,
                    "start": start, "boot": boot,
                }))
            })
            .collect();
        serde_json::json!({ "bind": s.bind, "deliveries": deliveries })
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        let mut s = lock(&self.state);
        *s = State::default();
        Ok(())
    }
}

fn not_subscribed() -> RequestError {
    RequestError::InvalidArgument(
        "this connection is not subscribed to the channel: subscribe first".into(),
    )
}

#[cfg(test)]
mod tests;
