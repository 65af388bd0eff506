//! `event:NAME` — a flag processes wait on (Python's `Event`), hosted by the
//! daemon. Setting it answers every waiter at once; its `set` flag is saved
//! with the record before `Set`/`Clear` is answered (`dispatch::saves_state`),
//! waiters vanish with their connections.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{
    Access, EventDetails, EventOp, EventParams, EventReply, Kind, KindDetails, KindOp, KindParams,
    KindReply, Name,
};

use super::waitlist::{Abandon, Answer, Granted, WaitList, lock};
use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;
use crate::peer::SessionId;

/// The `event` kind.
pub struct Module;

#[derive(Debug)]
struct State {
    set: bool,
    waiters: WaitList,
}

impl Abandon for State {
    fn abandon(&mut self, id: u64, _who: &Asker, _granted: Option<Answer>) {
        self.waiters.remove(id);
    }
}

/// A daemon-hosted event.
#[derive(Debug)]
pub struct EventObject {
    state: Arc<Mutex<State>>,
}

impl EventObject {
    fn new(set: bool) -> Self {
        EventObject {
            state: Arc::new(Mutex::new(State {
                set,
                waiters: WaitList::default(),
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
        let KindParams::Event(EventParams { set }) = args.params else {
            return Err(wrong_params(args.params, Kind::Event));
        };
        if args.adopt {
            return Err(RequestError::InvalidArgument(
                "an event lives in ipcd only, so there is nothing to adopt".into(),
            ));
        }
        Ok(Box::new(EventObject::new(*set)))
    }

    fn reopen(
        &self,
        _kernel_name: Option<&str>,
        state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let set = state.get("set").and_then(|v| v.as_bool()) == Some(true);
        Ok(Reopened::Alive(Box::new(EventObject::new(set))))
    }

    fn unlink(&self, _kernel_name: &str) -> Result<(), RequestError> {
        Ok(())
    }

    fn owner(&self, _kernel_name: &str) -> Option<u32> {
        None
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        match op {
            KindOp::Event(EventOp::Set | EventOp::Clear) => Need::Write,
            KindOp::Event(EventOp::Wait { .. }) => Need::Read,
            // Never called with another kind's operation; the strictest answer is safe.
            KindOp::Mq(_)
            | KindOp::Pipe(_)
            | KindOp::Shm(_)
            | KindOp::Sem(_)
            | KindOp::Lock(_)
            | KindOp::Barrier(_)
            | KindOp::Signal(_)
            | KindOp::Queue(_) => Need::Owner,
        }
    }
}

impl KindObject for EventObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        let s = lock(&self.state);
        Ok(KindDetails::Event(EventDetails {
            set: s.set,
            waiters: s.waiters.len() as u32,
        }))
    }

    fn open(&mut self, _access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        Ok(Vec::new())
    }

    fn operate(&mut self, op: KindOp, who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Event(op) = op else {
            return Err(wrong_op(&op, Kind::Event));
        };
        let mut s = lock(&self.state);
        let reply = match op {
            EventOp::Set => {
                s.set = true;
                s.waiters.drain(|_| Ok(KindReply::Event(EventReply::IsSet)));
                EventReply::IsSet
            }
            EventOp::Clear => {
                s.set = false;
                EventReply::IsClear
            }
            EventOp::Wait { .. } if s.set => EventReply::IsSet,
            EventOp::Wait {
                timeout_ms: Some(0),
            } => return Err(RequestError::TimedOut("the event is clear".into())),
            EventOp::Wait { timeout_ms } => {
                let (id, rx) = s.waiters.push(*who);
                drop(s);
                return Ok(OpAnswer::Later {
                    made: false,
                    wait: Box::pin(Granted::new(self.state.clone(), id, *who, rx)),
                    timeout: timeout_ms.map(Duration::from_millis),
                });
            }
        };
        Ok(OpAnswer::Now(KindReply::Event(reply)))
    }

    fn session_ended(&mut self, session: SessionId) {
        lock(&self.state).waiters.forget_session(session);
    }

    fn held(&self) -> Held {
        Held::default()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "set": lock(&self.state).set })
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

    fn op(o: EventOp, e: &mut EventObject) -> Result<OpAnswer, RequestError> {
        e.operate(KindOp::Event(o), &who(1))
    }

    #[tokio::test]
    async fn set_wakes_every_waiter_and_clear_makes_them_wait() {
        let mut e = EventObject::new(false);
        let wait = |e: &mut EventObject| match op(EventOp::Wait { timeout_ms: None }, e) {
            Ok(OpAnswer::Later { wait, .. }) => wait,
            _ => panic!("expected a wait"),
        };
        let (a, b) = (wait(&mut e), wait(&mut e));
        assert!(matches!(
            op(
                EventOp::Wait {
                    timeout_ms: Some(0)
                },
                &mut e
            ),
            Err(RequestError::TimedOut(_))
        ));
        let c = wait(&mut e);
        drop(c);
        assert_eq!(lock(&e.state).waiters.len(), 2);
        assert!(matches!(op(EventOp::Set, &mut e), Ok(OpAnswer::Now(_))));
        assert_eq!(a.await.unwrap(), KindReply::Event(EventReply::IsSet));
        assert_eq!(b.await.unwrap(), KindReply::Event(EventReply::IsSet));
        assert!(matches!(
            op(
                EventOp::Wait {
                    timeout_ms: Some(0)
                },
                &mut e
            ),
            Ok(OpAnswer::Now(_))
        ));
        assert_eq!(e.state(), serde_json::json!({ "set": true }));
        op(EventOp::Clear, &mut e).unwrap();
        assert!(matches!(
            op(EventOp::Wait { timeout_ms: None }, &mut e),
            Ok(OpAnswer::Later { .. })
        ));
    }
}
