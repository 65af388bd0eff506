//! `Client` against the scripted fake daemon of [`crate::testing`].

use protocol::{ErrorCode, Event, Outcome, Reply, Request, ServerFrame, WireError};

use super::*;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use crate::testing::{fake_daemon, respond};

fn info(address: &str) -> protocol::ObjectInfo {
    crate::testing::mq_info(address, &format!("/fake.{address}"), 10, 8192)
}

#[test]
fn handshake_requests_and_server_errors() {
    let (path, daemon) = fake_daemon(|mut peer| {
        peer.handshake();
        peer.serve(|peer, id, body| {
            let result = match body {
                Request::Ping => Outcome::Ok(Reply::Pong),
                Request::Stat { address } if address == "mq:there" => {
                    Outcome::Ok(Reply::Stat(info(&address)))
                }
                Request::Stat { address } => Outcome::Err(WireError::new(
                    ErrorCode::NotFound,
                    format!("no object {address}"),
                )),
                other => panic!("unexpected {other:?}"),
            };
            peer.write(&ServerFrame::Event(Event::ShuttingDown));
            peer.write(&respond(id, result));
        });
    });
    let mut client = Client::connect_with(&path, "test").unwrap();
    assert_eq!(client.welcome().server, "fake 0");
    client.ping().unwrap();
    assert_eq!(client.stat("mq:there").unwrap().address, "mq:there");
    let e = client.stat("mq:gone").unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    assert_eq!(e.to_string(), "no object mq:gone (not-found)");
    client.ping().unwrap();
    assert!(client.shutting_down());
    assert_eq!(client.take_events(), vec![Event::ShuttingDown; 4]);
    assert!(!client.shutting_down());
    drop(client);
    daemon.join().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_long_pipeline_against_a_daemon_that_blocks_on_writes() {
    // The fake daemon answers each request as it reads it and blocks while its
    // answers are not read: writing the whole pipeline first would deadlock.
    let (path, daemon) = fake_daemon(|mut peer| {
        peer.handshake();
        peer.serve(|peer, id, body| {
            let Request::Stat { address } = body else {
                panic!("expected stat")
            };
            peer.write(&respond(id, Outcome::Ok(Reply::Stat(info(&address)))));
        });
    });
    let mut client = Client::connect_to(&path).unwrap();
    let requests: Vec<Request> = (0..20_000)
        .map(|i| Request::Stat {
            address: format!("mq:q{i}"),
        })
        .collect();
    let answers = client.pipeline(&requests).unwrap();
    assert_eq!(answers.len(), requests.len());
    for (i, a) in answers.into_iter().enumerate() {
        match a.unwrap() {
            Reply::Stat(info) => assert_eq!(info.address, format!("mq:q{i}")),
            other => panic!("{other:?}"),
        }
    }
    assert!(client.pipeline(Vec::<Request>::new()).unwrap().is_empty());
    drop(client);
    daemon.join().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn descriptors_come_with_their_response() {
    let (path, daemon) = fake_daemon(|mut peer| {
        peer.handshake();
        peer.serve(|peer, id, body| {
            let Request::Open { address, access } = body else {
                panic!("expected open")
            };
            let (a, _b) = UnixStream::pair().unwrap();
            let frame = ServerFrame::Response {
                id,
                fds: 1,
                result: Outcome::Ok(Reply::Opened {
                    info: info(&address),
                    access,
                }),
            };
            peer.write_with_fds(&frame, &[a.as_raw_fd()]);
        });
    });
    let mut client = Client::connect_to(&path).unwrap();
    for _ in 0..3 {
        let (info, fds) = client.open("mq:x", Access::Read).unwrap();
        assert_eq!(info.address, "mq:x");
        assert_eq!(fds.len(), 1);
    }
    // Not a queue: the typed handle refuses it.
    let e = client.open_mq("x", Access::Read).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Os {
                op: "mq_getattr",
                ..
            }
        ),
        "{e:?}"
    );
    let answers = client
        .exchange(vec![
            Request::Open {
                address: "mq:y".into(),
                access: Access::Write
            };
            5
        ])
        .unwrap();
    assert!(answers.iter().all(|a| a.as_ref().unwrap().fds.len() == 1));
    drop(client);
    daemon.join().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn fatal_handshake_and_closed_connections() {
    let (path, daemon) = fake_daemon(|mut peer| {
        peer.read();
        peer.write(&ServerFrame::Fatal(WireError::new(
            ErrorCode::LimitExceeded,
            "too many connections (10)",
        )));
    });
    let e = Client::connect_to(&path).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::LimitExceeded));
    assert_eq!(
        e.to_string(),
        "ipcd closed the connection: too many connections (10) (limit-exceeded)"
    );
    daemon.join().unwrap();

    let (path2, daemon) = fake_daemon(|mut peer| {
        peer.handshake();
        peer.read();
    });
    let mut client = Client::connect_to(&path2).unwrap();
    assert!(matches!(client.ping(), Err(Error::Closed)));
    assert!(matches!(client.ping(), Err(Error::Closed)));
    daemon.join().unwrap();

    let (path3, daemon) = fake_daemon(|mut peer| {
        peer.handshake();
        peer.read();
        std::thread::sleep(std::time::Duration::from_millis(200));
    });
    let mut client = Client::builder()
        .socket(&path3)
        .timeout(std::time::Duration::from_millis(20))
        .connect()
        .unwrap();
    assert!(matches!(client.ping(), Err(Error::TimedOut)));
    daemon.join().unwrap();
    for p in [path, path2, path3] {
        std::fs::remove_file(p).unwrap();
    }

    let e = Client::connect_to("/nonexistent/ipcd.sock").unwrap_err();
    assert!(matches!(e, Error::Connect { .. }));
}

#[test]
fn idle_waits_end_when_the_daemon_leaves() {
    let (path, daemon) = fake_daemon(|mut peer| {
        peer.handshake();
        peer.write(&ServerFrame::Event(Event::ShuttingDown));
    });
    let mut client = Client::connect_to(&path).unwrap();
    client.wait_closed().unwrap();
    assert!(client.shutting_down());
    daemon.join().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_batch_that_cannot_be_encoded_is_not_sent_at_all() {
    let (path, daemon) = fake_daemon(|mut peer| {
        peer.handshake();
        peer.serve(|peer, id, body| {
            assert_eq!(body, Request::Ping, "no part of the failed batch arrives");
            peer.write(&respond(id, Outcome::Ok(Reply::Pong)));
        });
    });
    let mut client = Client::connect_to(&path).unwrap();
    let huge = "x".repeat(2 << 20);
    let batch = [
        Request::Stat {
            address: "mq:a".into(),
        },
        Request::Stat { address: huge },
    ];
    let e = client.pipeline(&batch).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    client.ping().unwrap();
    drop(client);
    daemon.join().unwrap();
    std::fs::remove_file(path).unwrap();
}
