//! Unit tests of the `sem` kind: FIFO service by the helper thread, permits
//! given back on session end and by dropped waits, the bound on release.

use super::*;

use crate::kinds::test_asker as who;

fn object(initial: u32, max: Option<u32>) -> (SemObject, String) {
    let name = format!(
        "/ipcd-test-sem-{}-{initial}-{}",
        std::process::id(),
        max.unwrap_or(0)
    );
    let s = sem::create(&name, 0o600, initial).unwrap();
    let ledger = HeldLedger::open(&shm_path(&name)).unwrap();
    (SemObject::new(&name, s, max, false, Some(ledger)), name)
}

fn op(o: &mut SemObject, op: SemOp, s: SessionId) -> Result<OpAnswer, RequestError> {
    o.operate(KindOp::Sem(op), &who(s))
}

fn acquire(timeout_ms: Option<u64>) -> SemOp {
    SemOp::Acquire { timeout_ms }
}

fn later(a: Result<OpAnswer, RequestError>) -> crate::kinds::Pending {
    match a {
        Ok(OpAnswer::Later { wait, .. }) => wait,
        Ok(OpAnswer::Now(r)) => panic!("expected a wait, got {r:?}"),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn waiters_are_served_in_order_and_holders_given_back() {
    let (mut o, _) = object(1, None);
    assert!(matches!(op(&mut o, acquire(None), 1), Ok(OpAnswer::Now(_))));
    assert!(matches!(
        op(&mut o, acquire(Some(0)), 2),
        Err(RequestError::WouldBlock(_))
    ));
    let w2 = later(op(&mut o, acquire(None), 2));
    let w3 = later(op(&mut o, acquire(None), 3));
    // Session 1 dies: its permit goes to 2, the first in line.
    o.session_ended(1);
    assert!(w2.await.is_ok());
    assert_eq!(lock(&o.state).holders.get(&2).map(|h| h.count), Some(1));
    op(&mut o, SemOp::Release, 2).unwrap();
    assert!(w3.await.is_ok());
    let KindDetails::Sem(d) = o.details().unwrap() else {
        panic!()
    };
    assert_eq!((d.value, d.holders.len(), d.waiters), (0, 1, 0));
    Box::new(o).remove().unwrap();
}

#[tokio::test]
async fn bounded_release_and_delete_wakes_waiters() {
    let (mut o, _) = object(1, Some(1));
    assert!(matches!(
        op(&mut o, SemOp::Release, 1),
        Err(RequestError::InvalidArgument(_))
    ));
    op(&mut o, acquire(None), 1).unwrap();
    let w = later(op(&mut o, acquire(None), 2));
    Box::new(o).remove().unwrap();
    assert!(matches!(w.await, Err(RequestError::KernelObjectMissing(_))));
}

#[tokio::test]
async fn a_dropped_wait_leaves_no_permit_behind() {
    let (mut o, _) = object(0, None);
    let w = later(op(&mut o, acquire(None), 1));
    drop(w);
    op(&mut o, SemOp::Release, 2).unwrap();
    std::thread::sleep(SLICE * 3);
    let KindDetails::Sem(d) = o.details().unwrap() else {
        panic!()
    };
    assert_eq!((d.value, d.holders.len(), d.waiters), (1, 0, 0));
    assert!(!lock(&o.state).helper);
    Box::new(o).remove().unwrap();
}

#[tokio::test]
async fn a_take_consumes_what_an_acquire_would_hold() {
    // A producer posts two items; a consumer takes them (now and after a
    // wait): nothing is held, so its closing posts nothing back.
    let (mut o, _) = object(0, Some(7));
    op(&mut o, SemOp::Release, 1).unwrap();
    assert!(matches!(
        op(&mut o, SemOp::Take { timeout_ms: None }, 2),
        Ok(OpAnswer::Now(_))
    ));
    let w = later(op(&mut o, SemOp::Take { timeout_ms: None }, 2));
    op(&mut o, SemOp::Release, 1).unwrap();
    assert!(w.await.is_ok());
    assert!(lock(&o.state).holders.is_empty());
    assert!(lock(&o.state).takers.is_empty());
    o.session_ended(2);
    let KindDetails::Sem(d) = o.details().unwrap() else {
        panic!()
    };
    assert_eq!((d.value, d.holders.len()), (0, 0));
    // The same with acquire: held, and given back when the connection closes.
    op(&mut o, SemOp::Release, 1).unwrap();
    op(&mut o, acquire(None), 3).unwrap();
    assert_eq!(lock(&o.state).holders.get(&3).map(|h| h.count), Some(1));
    o.session_ended(3);
    let KindDetails::Sem(d) = o.details().unwrap() else {
        panic!()
    };
    assert_eq!((d.value, d.holders.len()), (1, 0));
    Box::new(o).remove().unwrap();
}

#[tokio::test]
async fn a_post_by_a_connection_holding_nothing_is_a_plain_post() {
    // Whoever holds keeps holding: a post by another connection adds a
    // permit, and the holder's is still given back when it closes.
    let (mut o, _) = object(1, Some(4));
    op(&mut o, acquire(None), 1).unwrap();
    op(&mut o, SemOp::Release, 2).unwrap();
    assert_eq!(lock(&o.state).holders.get(&1).map(|h| h.count), Some(1));
    o.session_ended(1);
    let KindDetails::Sem(d) = o.details().unwrap() else {
        panic!()
    };
    assert_eq!((d.value, d.holders.len()), (2, 0));
    Box::new(o).remove().unwrap();
}

#[tokio::test]
async fn a_dropped_take_that_was_granted_posts_its_permit_back() {
    let (mut o, _) = object(0, Some(5));
    let w = later(op(&mut o, SemOp::Take { timeout_ms: None }, 4));
    op(&mut o, SemOp::Release, 1).unwrap();
    // Granted by the helper thread, then dropped before it was taken.
    for _ in 0..200 {
        if lock(&o.state).waiters.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(w);
    let KindDetails::Sem(d) = o.details().unwrap() else {
        panic!()
    };
    assert_eq!((d.value, d.holders.len()), (1, 0));
    assert!(lock(&o.state).takers.is_empty());
    Box::new(o).remove().unwrap();
}

#[test]
fn held_permits_are_in_the_ledger_and_a_new_daemon_gives_them_back() {
    let (mut o, name) = object(3, Some(3));
    let ledger = || HeldLedger::open(&shm_path(&name)).unwrap().get();
    assert!(matches!(
        op(&mut o, acquire(Some(0)), 1),
        Ok(OpAnswer::Now(_))
    ));
    assert!(matches!(
        op(&mut o, acquire(Some(0)), 2),
        Ok(OpAnswer::Now(_))
    ));
    assert!(matches!(
        op(&mut o, acquire(Some(0)), 2),
        Ok(OpAnswer::Now(_))
    ));
    assert_eq!(ledger(), 3);
    op(&mut o, SemOp::Release, 2).unwrap();
    assert_eq!(ledger(), 2);
    // The daemon is killed here (no session_ended): what a restart does.
    let again = sem::open(&name).unwrap();
    assert_eq!(again.value().unwrap(), 1);
    give_back_held(
        &name,
        &again,
        Some(3),
        &HeldLedger::open(&shm_path(&name)).unwrap(),
    );
    assert_eq!(again.value().unwrap(), 3);
    assert_eq!(ledger(), 0);
    // Never above the bound, even if the ledger says more.
    HeldLedger::open(&shm_path(&name)).unwrap().set(5);
    give_back_held(
        &name,
        &again,
        Some(3),
        &HeldLedger::open(&shm_path(&name)).unwrap(),
    );
    assert_eq!(again.value().unwrap(), 3);
    assert_eq!(ledger(), 0);
    sem::unlink(&name).unwrap();
}
