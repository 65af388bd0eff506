//! `barrier:NAME` — N parties wait until all have arrived (Python's
//! `Barrier`), hosted by the daemon. A party that leaves (its connection
//! closes) or times out breaks it: every waiter is answered `broken`, and so
//! is every wait until `reset`. Only `parties` is saved; a restart brings it
//! back whole and empty.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{
    Access, BarrierDetails, BarrierOp, BarrierParams, BarrierReply, Kind, KindDetails, KindOp,
    KindParams, KindReply, Name,
};
use tracing::info;

use super::waitlist::{Abandon, Answer, Granted, WaitList, lock};
use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;
use crate::peer::SessionId;

/// The `barrier` kind.
pub struct Module;

#[derive(Debug)]
struct State {
    parties: u32,
    waiters: WaitList,
    broken: bool,
    passed: u64,
}

fn broken() -> RequestError {
    RequestError::Broken("a party left or timed out; reset the barrier to use it again".into())
}

/// What the parties waiting when the barrier is reset are told.
fn reset_under() -> RequestError {
    RequestError::Broken("the barrier was reset while this party waited; wait again".into())
}

impl State {
    /// Breaks the barrier: every waiter is answered `broken`.
    fn break_it(&mut self) {
        self.broken = true;
        self.waiters.drain(|_| Err(broken()));
    }
}

impl Abandon for State {
    fn abandon(&mut self, id: u64, _who: &Asker, granted: Option<Answer>) {
        // A party that was still waiting leaves: the others cannot pass.
        if granted.is_none() && self.waiters.remove(id) && !self.broken {
            info!("a barrier party left or timed out; breaking it");
            self.break_it();
        }
    }
}

/// A daemon-hosted barrier.
#[derive(Debug)]
pub struct BarrierObject {
    state: Arc<Mutex<State>>,
}

impl BarrierObject {
    fn new(parties: u32) -> Self {
        BarrierObject {
            state: Arc::new(Mutex::new(State {
                parties,
                waiters: WaitList::default(),
                broken: false,
                passed: 0,
            })),
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
        let KindParams::Barrier(BarrierParams { parties }) = args.params else {
            return Err(wrong_params(args.params, Kind::Barrier));
        };
        if args.adopt {
            return Err(RequestError::InvalidArgument(
                "a barrier lives in ipcd only, so there is nothing to adopt".into(),
            ));
        }
        if *parties == 0 {
            return Err(RequestError::InvalidArgument(
                "a barrier needs at least 1 party".into(),
            ));
        }
        Ok(Box::new(BarrierObject::new(*parties)))
    }

    fn reopen(
        &self,
        _kernel_name: Option<&str>,
        state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        match state.get("parties").and_then(|v| v.as_u64()) {
            Some(p) if p >= 1 && p <= u64::from(u32::MAX) => {
                Ok(Reopened::Alive(Box::new(BarrierObject::new(p as u32))))
            }
            _ => Ok(Reopened::Gone("its record has no valid party count".into())),
        }
    }

    fn unlink(&self, _kernel_name: &str) -> Result<(), RequestError> {
        Ok(())
    }

    fn owner(&self, _kernel_name: &str) -> Option<u32> {
        None
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        match op {
            KindOp::Barrier(BarrierOp::Wait { .. } | BarrierOp::Reset) => Need::Write,
            // Never called with another kind's operation; the strictest answer is safe.
            KindOp::Mq(_)
            | KindOp::Pipe(_)
            | KindOp::Shm(_)
            | KindOp::Sem(_)
            | KindOp::Lock(_)
            | KindOp::Event(_)
            | KindOp::Signal(_)
            | KindOp::Queue(_) => Need::Owner,
        }
    }
}

impl KindObject for BarrierObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        let s = lock(&self.state);
        Ok(KindDetails::Barrier(BarrierDetails {
            parties: s.parties,
            waiting: s.waiters.len() as u32,
            broken: s.broken,
            passed: s.passed,
        }))
    }

    fn open(&mut self, _access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        Ok(Vec::new())
    }

    fn operate(&mut self, op: KindOp, who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Barrier(op) = op else {
            return Err(wrong_op(&op, Kind::Barrier));
        };
        let mut s = lock(&self.state);
        match op {
            BarrierOp::Reset => {
                s.waiters.drain(|_| Err(reset_under()));
                s.broken = false;
                Ok(OpAnswer::Now(KindReply::Barrier(BarrierReply::Reset)))
            }
            BarrierOp::Wait { .. } if s.broken => Err(broken()),
            BarrierOp::Wait { .. } if s.waiters.len() as u64 + 1 >= u64::from(s.parties) => {
                let index = s.waiters.len() as u32;
                s.waiters
                    .drain(|i| Ok(KindReply::Barrier(BarrierReply::Passed { index: i })));
                s.passed += 1;
                Ok(OpAnswer::Now(KindReply::Barrier(BarrierReply::Passed {
                    index,
                })))
            }
            BarrierOp::Wait {
                timeout_ms: Some(0),
            } => {
                s.break_it();
                Err(RequestError::TimedOut(
                    "not every party has arrived; the barrier is now broken".into(),
                ))
            }
            BarrierOp::Wait { timeout_ms } => {
                let (id, rx) = s.waiters.push(*who);
                drop(s);
                Ok(OpAnswer::Later {
                    made: false,
                    wait: Box::pin(Granted::new(self.state.clone(), id, *who, rx)),
                    timeout: timeout_ms.map(Duration::from_millis),
                })
            }
        }
    }

    fn session_ended(&mut self, session: SessionId) {
        // Its waits are aborted with the connection and break the barrier as
        // they are dropped; one not dropped yet is a party leaving all the same.
        let mut s = lock(&self.state);
        if s.waiters.forget_session(session) && !s.broken {
            info!("a barrier party's connection closed while it waited; breaking it");
            s.break_it();
        }
    }

    fn held(&self) -> Held {
        Held::default()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "parties": lock(&self.state).parties })
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        lock(&self.state).waiters = WaitList::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kinds::test_asker as who;

    fn wait(b: &mut BarrierObject, s: SessionId) -> Result<OpAnswer, RequestError> {
        b.operate(
            KindOp::Barrier(BarrierOp::Wait { timeout_ms: None }),
            &who(s),
        )
    }

    fn later(a: Result<OpAnswer, RequestError>) -> crate::kinds::Pending {
        match a {
            Ok(OpAnswer::Later { wait, .. }) => wait,
            _ => panic!("expected a wait"),
        }
    }

    fn passed(index: u32) -> KindReply {
        KindReply::Barrier(BarrierReply::Passed { index })
    }

    #[tokio::test]
    async fn parties_pass_with_their_arrival_index() {
        let mut b = BarrierObject::new(3);
        let w0 = later(wait(&mut b, 1));
        let w1 = later(wait(&mut b, 2));
        let Ok(OpAnswer::Now(r)) = wait(&mut b, 3) else {
            panic!("the last party passes at once")
        };
        assert_eq!(r, passed(2));
        assert_eq!(w0.await.unwrap(), passed(0));
        assert_eq!(w1.await.unwrap(), passed(1));
        assert_eq!(lock(&b.state).passed, 1);
    }

    #[tokio::test]
    async fn a_party_leaving_breaks_it_until_reset() {
        let mut b = BarrierObject::new(3);
        let w0 = later(wait(&mut b, 1));
        let w1 = later(wait(&mut b, 2));
        drop(w1);
        assert!(matches!(w0.await, Err(RequestError::Broken(_))));
        assert!(matches!(wait(&mut b, 3), Err(RequestError::Broken(_))));
        b.operate(KindOp::Barrier(BarrierOp::Reset), &who(3))
            .unwrap();
        assert!(matches!(wait(&mut b, 3), Ok(OpAnswer::Later { .. })));
    }

    #[tokio::test]
    async fn a_closed_connection_breaks_it_before_its_wait_is_dropped() {
        // Its aborted wait task is dropped a moment after the session ends.
        let mut b = BarrierObject::new(3);
        let w0 = later(wait(&mut b, 1));
        let w1 = later(wait(&mut b, 2));
        b.session_ended(2);
        assert!(matches!(w0.await, Err(RequestError::Broken(_))));
        drop(w1);
        assert!(lock(&b.state).broken);
    }
}
