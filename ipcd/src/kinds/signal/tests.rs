//! Unit tests of the signal kind: what may be bound, payload limits, a
//! delivery to a child process, and deliveries taken back after a restart
//! only for the very process recorded.

use std::process::{Command, Stdio};

use super::*;
use crate::config::Tunables;

fn me(session: SessionId) -> Asker {
    Asker {
        peer: Peer {
            pid: std::process::id() as i32,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        },
        session,
        max_frame: protocol::HARD_MAX_FRAME,
    }
}

fn create(bind: Option<i32>) -> Result<Box<dyn KindObject>, RequestError> {
    let params = KindParams::Signal(SignalParams { bind });
    let tunables = Tunables::default();
    let peer = me(1).peer;
    Module.create(&CreateArgs {
        kernel_name: None,
        params: &params,
        mode: 0o600,
        adopt: false,
        peer: &peer,
        tunables: &tunables,
    })
}

fn op(o: &mut dyn KindObject, op: SignalOp) -> Result<KindReply, RequestError> {
    match o.operate(KindOp::Signal(op), &me(1))? {
        OpAnswer::Now(r) => Ok(r),
        OpAnswer::Later { .. } => panic!("expected an answer now"),
    }
}

#[test]
fn kill_and_the_signals_ipcd_uses_cannot_be_bound() {
    for refused in [9, 19, 11, 15, 1, 10, 2] {
        let e = create(Some(refused)).unwrap_err();
        assert!(matches!(e, RequestError::InvalidArgument(_)), "{e}");
    }
    let o = create(Some(12)).unwrap();
    assert_eq!(o.binds(), Some(12));
    assert_eq!(o.state()["bind"], 12);
    // A record naming a signal that may not be bound is not taken back.
    let state = serde_json::json!({ "bind": 15, "deliveries": [] });
    assert!(matches!(Module.reopen(None, &state), Ok(Reopened::Gone(_))));
}

#[test]
fn payloads_are_bounded_and_next_needs_a_subscription() {
    let mut o = create(None).unwrap();
    let big = SignalOp::Raise {
        payload: vec![0; MAX_SIGNAL_PAYLOAD + 1],
    };
    assert!(matches!(op(&mut *o, big), Err(RequestError::TooLarge(_))));
    let next = SignalOp::Next {
        max: 0,
        timeout_ms: Some(0),
    };
    assert!(matches!(
        op(&mut *o, next.clone()),
        Err(RequestError::InvalidArgument(_))
    ));
    op(&mut *o, SignalOp::Subscribe { buffer: 0 }).unwrap();
    assert!(matches!(op(&mut *o, next), Err(RequestError::TimedOut(_))));
    assert_eq!(o.held_for(me(1).peer.uid).subscriptions, 1);
    o.session_ended(1);
    assert_eq!(o.held_for(me(1).peer.uid), Held::default());
}

#[tokio::test]
async fn a_delivery_signals_the_process_and_is_taken_back_only_for_it() {
    let mut child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut o = create(None).unwrap();
    op(&mut *o, SignalOp::Deliver { pid, signal: 15 }).unwrap();
    let saved = o.state();
    assert_eq!(saved["deliveries"][0]["pid"], pid);
    // After a restart the same process is signalled again...
    let Ok(Reopened::Alive(mut again)) = Module.reopen(None, &saved) else {
        panic!("reopened")
    };
    let KindDetails::Signal(d) = again.details().unwrap() else {
        panic!()
    };
    assert_eq!(d.deliveries.len(), 1);
    // ...but not a record whose start time is another process's.
    let mut forged = saved.clone();
    forged["deliveries"][0]["start"] = serde_json::json!(1);
    let Ok(Reopened::Alive(other)) = Module.reopen(None, &forged) else {
        panic!("reopened")
    };
    let KindDetails::Signal(d) = other.details().unwrap() else {
        panic!()
    };
    assert!(d.deliveries.is_empty());
    let r = op(&mut *again, SignalOp::Raise { payload: vec![] }).unwrap();
    assert_eq!(
        r,
        KindReply::Signal(SignalReply::Raised {
            seq: 1,
            subscribers: 0,
            delivered: 1
        })
    );
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
    drop(o);
}
