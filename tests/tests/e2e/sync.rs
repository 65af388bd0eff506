//! The synchronization kinds end to end: a lock and a semaphore permit held
//! by a connection that closes go to the next waiter; event waits and
//! barrier breaks through the daemon.

use std::thread;
use std::time::{Duration, Instant};

use ipc_client::{Client, Error, ErrorCode};
use ipcd_tests::TestDaemon;

fn code(e: &Error) -> Option<ErrorCode> {
    match e {
        Error::Server(w) => Some(w.code),
        _ => None,
    }
}

#[test]
fn a_lock_and_a_permit_held_by_a_closed_connection_go_to_the_waiter() {
    let d = TestDaemon::start();
    let mut a = Client::connect_to(&d.socket).unwrap();
    a.create_lock("l", false, None).unwrap();
    a.create_sem("s", 1, Some(1), None).unwrap();
    assert_eq!(a.lock_acquire("l", None).unwrap(), 1);
    assert_eq!(a.sem_acquire("s", None).unwrap(), 0);
    let mut b = Client::connect_to(&d.socket).unwrap();
    let e = b.lock_acquire("l", Some(Duration::ZERO)).unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::WouldBlock));
    let waiter = {
        let mut b = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || {
            let started = Instant::now();
            b.lock_acquire("l", Some(Duration::from_secs(5))).unwrap();
            b.sem_acquire("s", Some(Duration::from_secs(5))).unwrap();
            (started.elapsed(), b)
        })
    };
    thread::sleep(Duration::from_millis(200));
    drop(a);
    let (waited, mut w) = waiter.join().unwrap();
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    // The waiter gives its permit back (the semaphore is at its max again;
    // without this the release would race the waiter's closing connection).
    w.sem_release("s").unwrap();
    // A bounded semaphore refuses a release above its max.
    let e = b.sem_release("s").unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::InvalidArgument));
    b.delete("sem:s").unwrap();
    b.delete("lock:l").unwrap();
}

#[test]
fn event_waits_time_out_and_wake_and_a_leaving_party_breaks_a_barrier() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_event("e", false, None).unwrap();
    let e = c
        .event_wait("e", Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::TimedOut));
    let waiter = {
        let mut w = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || w.event_wait("e", Some(Duration::from_secs(5))))
    };
    thread::sleep(Duration::from_millis(100));
    c.event_set("e").unwrap();
    waiter.join().unwrap().unwrap();

    c.create_barrier("b", 2, None).unwrap();
    let e = c
        .barrier_wait("b", Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::TimedOut));
    let e = c.barrier_wait("b", Some(Duration::ZERO)).unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::Broken));
    c.barrier_reset("b").unwrap();
    let other = {
        let mut w = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || w.barrier_wait("b", Some(Duration::from_secs(5))))
    };
    let mine = c.barrier_wait("b", Some(Duration::from_secs(5))).unwrap();
    let theirs = other.join().unwrap().unwrap();
    assert_eq!(mine + theirs, 1);
}
