//! `lock:NAME` — a mutex hosted by the daemon: an owner (a connection), an
//! optional re-entry depth, and a first-come-first-served queue of waiters.
//! The owner's connection closing releases it to the next waiter. Nothing of
//! it is in the kernel: a restart drops every connection, so it comes back
//! free, with only its `reentrant` flag saved.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{
    Access, Holder, Kind, KindDetails, KindOp, KindParams, KindReply, LockDetails, LockOp,
    LockParams, LockReply, Name,
};
use tracing::info;

use super::waitlist::{self, Abandon, Answer, Granted, WaitList, lock};
use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;
use crate::peer::SessionId;

/// The `lock` kind.
pub struct Module;

/// A lock's state, behind the object's mutex (shared with its waits).
#[derive(Debug)]
struct State {
    reentrant: bool,
    /// The owning connection and its holder record (`count` is the depth).
    owner: Option<(SessionId, Holder)>,
    waiters: WaitList,
}

/// A daemon-hosted lock.
#[derive(Debug)]
pub struct LockObject {
    state: Arc<Mutex<State>>,
}

impl LockObject {
    fn new(reentrant: bool) -> Self {
        LockObject {
            state: Arc::new(Mutex::new(State {
                reentrant,
                owner: None,
                waiters: WaitList::default(),
            })),
        }
    }
}

impl State {
    /// The lock is free: the oldest waiter still waiting takes it.
    fn hand_off(&mut self) {
        let acquired = |_: &Asker| Ok(KindReply::Lock(LockReply::Acquired { depth: 1 }));
        self.owner = self
            .waiters
            .grant(acquired)
            .map(|(_, who)| (who.session, waitlist::holder(&who, 1)));
    }

    /// Gives back one level held by `session`; returns the depth left.
    fn release(&mut self, session: SessionId) -> Option<u32> {
        let (owner, holder) = self.owner.as_mut()?;
        if *owner != session {
            return None;
        }
        holder.count -= 1;
        let left = holder.count;
        if left == 0 {
            self.hand_off();
        }
        Some(left)
    }
}

impl Abandon for State {
    fn abandon(&mut self, id: u64, who: &Asker, granted: Option<Answer>) {
        self.waiters.remove(id);
        if let Some(Ok(_)) = granted {
            // Granted to a wait nobody will answer: give it back.
            self.release(who.session);
        }
    }
}

impl KindModule for Module {
    fn kernel_name(&self, _ns: &Namespace, _name: &Name) -> Option<String> {
        None
    }

    fn cost(&self, _args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        Ok(Held::default())
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let KindParams::Lock(LockParams { reentrant }) = args.params else {
            return Err(wrong_params(args.params, Kind::Lock));
        };
        if args.adopt {
            return Err(RequestError::InvalidArgument(
                "a lock lives in ipcd only, so there is nothing to adopt".into(),
            ));
        }
        Ok(Box::new(LockObject::new(*reentrant)))
    }

    fn reopen(
        &self,
        _kernel_name: Option<&str>,
        state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let reentrant = state.get("reentrant").and_then(|v| v.as_bool()) == Some(true);
        Ok(Reopened::Alive(Box::new(LockObject::new(reentrant))))
    }

    fn unlink(&self, _kernel_name: &str) -> Result<(), RequestError> {
        Ok(())
    }

    fn owner(&self, _kernel_name: &str) -> Option<u32> {
        None
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        match op {
            KindOp::Lock(LockOp::Acquire { .. } | LockOp::Release) => Need::Write,
            // Never called with another kind's operation; the strictest answer is safe.
            KindOp::Mq(_)
            | KindOp::Pipe(_)
            | KindOp::Shm(_)
            | KindOp::Sem(_)
            | KindOp::Event(_)
            | KindOp::Barrier(_)
            | KindOp::Signal(_)
            | KindOp::Queue(_) => Need::Owner,
        }
    }
}

impl KindObject for LockObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        let s = lock(&self.state);
        Ok(KindDetails::Lock(LockDetails {
            reentrant: s.reentrant,
            owner: s.owner.map(|(_, h)| h),
            waiters: s.waiters.len() as u32,
        }))
    }

    fn open(&mut self, _access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        Ok(Vec::new())
    }

    fn operate(&mut self, op: KindOp, who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Lock(op) = op else {
            return Err(wrong_op(&op, Kind::Lock));
        };
        let mut s = lock(&self.state);
        let reentrant = s.reentrant;
        match op {
            LockOp::Acquire { timeout_ms } => match &mut s.owner {
                None => {
                    s.owner = Some((who.session, waitlist::holder(who, 1)));
                    Ok(OpAnswer::Now(KindReply::Lock(LockReply::Acquired {
                        depth: 1,
                    })))
                }
                Some((owner, holder)) if *owner == who.session => {
                    if !reentrant {
                        return Err(RequestError::InvalidArgument(
                            "this connection holds the lock already and it is not re-entrant \
                             (acquiring it again would wait forever)"
                                .into(),
                        ));
                    }
                    holder.count += 1;
                    let depth = holder.count;
                    Ok(OpAnswer::Now(KindReply::Lock(LockReply::Acquired {
                        depth,
                    })))
                }
                Some((_, holder)) => {
                    if timeout_ms == Some(0) {
                        return Err(RequestError::WouldBlock(format!(
                            "the lock is held by pid {} (uid {})",
                            holder.pid, holder.uid
                        )));
                    }
                    let (id, rx) = s.waiters.push(*who);
                    drop(s);
                    Ok(OpAnswer::Later {
                        made: false,
                        wait: Box::pin(Granted::new(self.state.clone(), id, *who, rx)),
                        timeout: timeout_ms.map(Duration::from_millis),
                    })
                }
            },
            LockOp::Release => match s.owner {
                None => Err(RequestError::InvalidArgument("the lock is not held".into())),
                Some((owner, holder)) if owner != who.session => {
                    Err(RequestError::PermissionDenied(format!(
                        "the lock is held by another connection (pid {}); only its holder may release it",
                        holder.pid
                    )))
                }
                Some(_) => {
                    let depth = s.release(who.session).unwrap_or(0);
                    Ok(OpAnswer::Now(KindReply::Lock(LockReply::Released {
                        depth,
                    })))
                }
            },
        }
    }

    fn session_ended(&mut self, session: SessionId) {
        let mut s = lock(&self.state);
        s.waiters.forget_session(session);
        if let Some((owner, holder)) = s.owner
            && owner == session
        {
            info!(
                pid = holder.pid,
                uid = holder.uid,
                "lock holder's connection closed; releasing"
            );
            s.owner = None;
            s.hand_off();
        }
    }

    fn held(&self) -> Held {
        Held::default()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "reentrant": lock(&self.state).reentrant })
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        // Dropping the senders answers every waiter `not-found`.
        let mut s = lock(&self.state);
        s.waiters = WaitList::default();
        s.owner = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kinds::test_asker as who;

    fn acquire(timeout_ms: Option<u64>) -> KindOp {
        KindOp::Lock(LockOp::Acquire { timeout_ms })
    }

    fn release() -> KindOp {
        KindOp::Lock(LockOp::Release)
    }

    fn now(answer: Result<OpAnswer, RequestError>) -> KindReply {
        match answer {
            Ok(OpAnswer::Now(r)) => r,
            Ok(OpAnswer::Later { .. }) => panic!("expected an answer now"),
            Err(e) => panic!("{e}"),
        }
    }

    fn later(answer: Result<OpAnswer, RequestError>) -> crate::kinds::Pending {
        match answer {
            Ok(OpAnswer::Later { wait, .. }) => wait,
            _ => panic!("expected a wait"),
        }
    }

    fn owner_pid(l: &LockObject) -> Option<i32> {
        lock(&l.state).owner.map(|(_, h)| h.pid)
    }

    #[tokio::test]
    async fn fifo_hand_off_and_release_on_session_end() {
        let mut l = LockObject::new(false);
        now(l.operate(acquire(None), &who(1)));
        let w2 = later(l.operate(acquire(None), &who(2)));
        let w3 = later(l.operate(acquire(None), &who(3)));
        assert!(matches!(
            l.operate(acquire(Some(0)), &who(4)),
            Err(RequestError::WouldBlock(_))
        ));
        assert!(matches!(
            l.operate(acquire(None), &who(1)),
            Err(RequestError::InvalidArgument(_))
        ));
        assert!(matches!(
            l.operate(release(), &who(2)),
            Err(RequestError::PermissionDenied(_))
        ));
        // Session 1 dies: 2 gets it, then releases to 3.
        l.session_ended(1);
        assert_eq!(owner_pid(&l), Some(102));
        assert!(w2.await.is_ok());
        now(l.operate(release(), &who(2)));
        assert_eq!(owner_pid(&l), Some(103));
        assert!(w3.await.is_ok());
        now(l.operate(release(), &who(3)));
        assert_eq!(owner_pid(&l), None);
    }

    #[tokio::test]
    async fn a_dropped_wait_gives_back_what_it_was_granted() {
        let mut l = LockObject::new(false);
        now(l.operate(acquire(None), &who(1)));
        let w2 = later(l.operate(acquire(None), &who(2)));
        let w3 = later(l.operate(acquire(None), &who(3)));
        // 1 releases: granted to 2's wait, which is dropped before it is read.
        now(l.operate(release(), &who(1)));
        drop(w2);
        assert_eq!(owner_pid(&l), Some(103));
        assert!(w3.await.is_ok());
        // A wait dropped while still queued just leaves the queue.
        let w4 = later(l.operate(acquire(None), &who(4)));
        drop(w4);
        assert_eq!(lock(&l.state).waiters.len(), 0);
    }

    #[tokio::test]
    async fn reentrant_depth_and_delete_wakes_waiters() {
        let mut l = LockObject::new(true);
        now(l.operate(acquire(None), &who(1)));
        let r = now(l.operate(acquire(None), &who(1)));
        assert_eq!(r, KindReply::Lock(LockReply::Acquired { depth: 2 }));
        let r = now(l.operate(release(), &who(1)));
        assert_eq!(r, KindReply::Lock(LockReply::Released { depth: 1 }));
        let w = later(l.operate(acquire(None), &who(2)));
        Box::new(l).remove().unwrap();
        assert!(matches!(w.await, Err(RequestError::KernelObjectMissing(_))));
    }
}
