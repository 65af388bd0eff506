//! Deferred answers: a kind operation that waits (`mq` wait-for) is answered
//! later — when the queue becomes ready, when it times out, or with not-found
//! when the queue is deleted — while the connection's other requests are
//! served meanwhile; a connection that closes drops its waits.

use std::time::{Duration, Instant};

use ipc_client::{Client, Error, ErrorCode, MqOptions, Readiness};
use ipcd_tests::raw::RawConn;
use ipcd_tests::{TestDaemon, eventually};
use protocol::{
    ClientFrame, KindOp, KindReply, MqOp, MqReply, Outcome, Reply, Request, ServerFrame,
};

fn small() -> MqOptions {
    MqOptions::new().capacity(2).msg_size(64)
}

fn wait_op(ready: Readiness, timeout_ms: Option<u64>) -> KindOp {
    KindOp::Mq(MqOp::WaitFor { ready, timeout_ms })
}

fn server_code(e: &Error) -> Option<ErrorCode> {
    match e {
        Error::Server(w) => Some(w.code),
        _ => None,
    }
}

/// The id and outcome of a response frame.
fn response(frame: Option<ServerFrame>) -> (u64, Outcome) {
    match frame {
        Some(ServerFrame::Response { id, result, .. }) => (id, result),
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn a_reader_waiting_for_a_message_is_answered_when_another_process_sends() {
    let d = TestDaemon::start();
    let mut client = Client::connect_to(&d.socket).unwrap();
    client.create_mq("w", &small()).unwrap();
    let socket = d.socket.clone();
    let waiter = std::thread::spawn(move || {
        let mut c = Client::connect_to(&socket).unwrap();
        let started = Instant::now();
        let depth = c
            .wait_for("mq:w", Readiness::Readable, Some(Duration::from_secs(20)))
            .unwrap();
        (depth, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    d.ipcctl_ok(&["send", "mq:w", "wake up"]);
    let (depth, waited) = waiter.join().unwrap();
    assert_eq!(depth, 1);
    assert!(
        waited >= Duration::from_millis(250),
        "answered early: {waited:?}"
    );
    // Ready now: answered at once.
    assert_eq!(
        client
            .wait_for("mq:w", Readiness::Readable, Some(Duration::ZERO))
            .unwrap(),
        1
    );
    client.delete("mq:w").unwrap();
}

#[test]
fn a_writer_waiting_for_room_is_answered_when_a_reader_takes_a_message() {
    let d = TestDaemon::start();
    let mut client = Client::connect_to(&d.socket).unwrap();
    let q = client.create_mq("full", &small()).unwrap();
    q.send(b"1", 0).unwrap();
    q.send(b"2", 0).unwrap();
    let err = client
        .wait_for(
            "mq:full",
            Readiness::Writable,
            Some(Duration::from_millis(100)),
        )
        .unwrap_err();
    assert_eq!(server_code(&err), Some(ErrorCode::TimedOut), "{err}");
    let socket = d.socket.clone();
    let waiter = std::thread::spawn(move || {
        let mut c = Client::connect_to(&socket).unwrap();
        c.wait_for("mq:full", Readiness::Writable, None)
    });
    std::thread::sleep(Duration::from_millis(200));
    d.ipcctl_ok(&["recv", "mq:full"]);
    assert_eq!(waiter.join().unwrap().unwrap(), 1);
    // The connection that timed out is still usable.
    client.ping().unwrap();
    client.delete("mq:full").unwrap();
}

#[test]
fn other_requests_on_the_connection_are_served_while_one_waits() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:busy", "--capacity", "2", "--msg-size", "64"]);
    let mut c = RawConn::connect_hello(&d.socket);
    let body = Request::Kind {
        address: "mq:busy".into(),
        op: wait_op(Readiness::Readable, Some(20_000)),
    };
    c.send(&ClientFrame::Request { id: 7, body });
    c.send(&ClientFrame::Request {
        id: 8,
        body: Request::Ping,
    });
    let (id, outcome) = response(c.recv());
    assert_eq!(
        (id, outcome),
        (8, Outcome::Ok(Reply::Pong)),
        "ping overtakes the wait"
    );
    // Reusing the id of the request still waiting is refused, at once.
    c.send(&ClientFrame::Request {
        id: 7,
        body: Request::Ping,
    });
    let (id, outcome) = response(c.recv());
    assert_eq!(id, 7);
    assert!(
        matches!(&outcome, Outcome::Err(e) if e.code == ErrorCode::InvalidArgument && e.message.contains("still waiting")),
        "{outcome:?}"
    );
    d.ipcctl_ok(&["send", "mq:busy", "now"]);
    let (id, outcome) = response(c.recv());
    assert_eq!(id, 7);
    assert_eq!(
        outcome,
        Outcome::Ok(Reply::Kind(KindReply::Mq(MqReply::Ready { depth: 1 })))
    );
    d.ipcctl_ok(&["delete", "mq:busy"]);
}

#[test]
fn deleting_the_queue_cancels_its_waiters_with_not_found() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:doomed", "--capacity", "2", "--msg-size", "64"]);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let socket = d.socket.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect_to(&socket).unwrap();
                c.wait_for(
                    "mq:doomed",
                    Readiness::Readable,
                    Some(Duration::from_secs(20)),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    d.ipcctl_ok(&["delete", "mq:doomed"]);
    for w in waiters {
        let err = w.join().unwrap().unwrap_err();
        assert_eq!(server_code(&err), Some(ErrorCode::NotFound), "{err}");
        assert!(err.to_string().contains("deleted while waiting"), "{err}");
    }
}

/// Descriptors the daemon process holds now.
fn daemon_fds(d: &TestDaemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[test]
fn a_closed_connection_drops_its_waits_and_what_they_held() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:idle", "--capacity", "2", "--msg-size", "64"]);
    let before = daemon_fds(&d);
    let mut conns: Vec<RawConn> = (0..4).map(|_| RawConn::connect_hello(&d.socket)).collect();
    for c in &mut conns {
        for id in 0..16 {
            let body = Request::Kind {
                address: "mq:idle".into(),
                op: wait_op(Readiness::Readable, None),
            };
            c.send(&ClientFrame::Request { id, body });
        }
        // A ping answered after 16 waits were registered: they are all in place.
        c.send(&ClientFrame::Request {
            id: 99,
            body: Request::Ping,
        });
        assert_eq!(response(c.recv()).0, 99);
    }
    assert!(
        daemon_fds(&d) >= before + 64,
        "each wait watches the queue through a descriptor of its own"
    );
    drop(conns);
    eventually("the daemon to drop the waits of closed connections", || {
        daemon_fds(&d) <= before
    });
    // And nobody was answered late: a message now wakes no stale waiter.
    d.ipcctl_ok(&["send", "mq:idle", "x"]);
    d.ipcctl_ok(&["recv", "mq:idle"]);
    d.ipcctl_ok(&["delete", "mq:idle"]);
}

#[test]
fn one_connection_may_hold_a_bounded_number_of_waits() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:many", "--capacity", "2", "--msg-size", "64"]);
    let mut c = RawConn::connect_hello(&d.socket);
    for id in 0..65 {
        let body = Request::Kind {
            address: "mq:many".into(),
            op: wait_op(Readiness::Readable, None),
        };
        c.send(&ClientFrame::Request { id, body });
    }
    let (id, outcome) = response(c.recv());
    assert_eq!(id, 64);
    assert!(
        matches!(&outcome, Outcome::Err(e) if e.code == ErrorCode::LimitExceeded),
        "{outcome:?}"
    );
    d.ipcctl_ok(&["delete", "mq:many"]);
    // Every waiter is told its queue went away.
    for _ in 0..64 {
        let (_, outcome) = response(c.recv());
        assert!(
            matches!(&outcome, Outcome::Err(e) if e.code == ErrorCode::NotFound),
            "{outcome:?}"
        );
    }
}

#[test]
fn wait_for_is_refused_on_another_kind() {
    let d = TestDaemon::start();
    let mut client = Client::connect_to(&d.socket).unwrap();
    client
        .create_pipe("p", &ipc_client::PipeOptions::new())
        .unwrap();
    let err = client
        .wait_for("pipe:p", Readiness::Readable, None)
        .unwrap_err();
    assert_eq!(server_code(&err), Some(ErrorCode::WrongKind), "{err}");
    client.delete("pipe:p").unwrap();
}

#[test]
fn a_daemon_shutting_down_answers_its_waiting_requests() {
    let mut d = TestDaemon::start();
    let mut c = RawConn::connect_hello(&d.socket);
    d.ipcctl_ok(&["create", "mq:stop3", "--capacity", "2", "--msg-size", "64"]);
    let body = Request::Kind {
        address: "mq:stop3".into(),
        op: wait_op(Readiness::Readable, None),
    };
    c.send(&ClientFrame::Request { id: 9, body });
    c.send(&ClientFrame::Request {
        id: 10,
        body: Request::Ping,
    });
    assert_eq!(response(c.recv()).0, 10);
    assert!(d.terminate().success());
    let frames = c.drain();
    assert!(
        frames.iter().any(|f| matches!(f,
            ServerFrame::Response { id: 9, result: Outcome::Err(e), .. }
                if e.code == ErrorCode::ShuttingDown)),
        "{frames:?}"
    );
    assert!(frames.iter().any(|f| matches!(f, ServerFrame::Event(_))));
    // The queue outlives the daemon (persistent): remove it by its kernel name.
    let _ = nix::mqueue::mq_unlink(d.mq_kernel_name("stop3").as_str());
}
