//! `Client` against a scripted fake daemon on a real Unix socket.

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use protocol::{
    ClientFrame, Credentials, ErrorCode, Event, Kind, KindDetails, Lifetime, Limits, MqDetails,
    ObjectInfo, Outcome, Reply, Request, ServerFrame, Welcome, WireError,
};

use super::*;

/// The daemon's side of one connection.
struct Peer(UnixStream);

impl Peer {
    fn read(&mut self) -> Option<ClientFrame> {
        let mut header = [0u8; 4];
        self.0.read_exact(&mut header).ok()?;
        let mut payload = vec![0; u32::from_le_bytes(header) as usize];
        self.0.read_exact(&mut payload).unwrap();
        Some(protocol::decode_client(&payload).unwrap())
    }

    fn bytes(frame: &ServerFrame) -> Vec<u8> {
        protocol::frame::frame(&protocol::encode_server(frame).unwrap(), 1 << 20).unwrap()
    }

    fn write(&mut self, frame: &ServerFrame) {
        self.0.write_all(&Self::bytes(frame)).unwrap();
    }

    fn write_with_fds(&mut self, frame: &ServerFrame, fds: &[RawFd]) {
        let bytes = Self::bytes(frame);
        let cmsg = [ControlMessage::ScmRights(fds)];
        let n = sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        assert_eq!(n, bytes.len());
    }

    fn handshake(&mut self) {
        match self.read() {
            Some(ClientFrame::Hello(h)) => assert_eq!(h.version, PROTOCOL_VERSION),
            other => panic!("expected hello, got {other:?}"),
        }
        self.write(&ServerFrame::Welcome(welcome()));
    }

    /// Answers requests until the client hangs up.
    fn serve(&mut self, mut answer: impl FnMut(&mut Self, u64, Request)) {
        while let Some(frame) = self.read() {
            match frame {
                ClientFrame::Request { id, body } => answer(self, id, body),
                ClientFrame::Hello(_) => panic!("second hello"),
            }
        }
    }
}

fn welcome() -> Welcome {
    Welcome {
        version: PROTOCOL_VERSION,
        min_version: 1,
        max_version: PROTOCOL_VERSION,
        server: "fake 0".into(),
        limits: Limits {
            max_frame: 1 << 20,
            max_message_size: 8192,
            max_objects_per_uid: 10,
            max_connections: 10,
        },
        peer: Credentials {
            pid: 1,
            uid: 2,
            gid: 3,
        },
    }
}

fn info(address: &str) -> ObjectInfo {
    ObjectInfo {
        address: address.into(),
        kind: Kind::Mq,
        kernel_name: format!("/fake.{address}"),
        owner_uid: 0,
        owner_gid: 0,
        mode: 0o600,
        creator_pid: 1,
        created_at_ms: 0,
        lifetime: Lifetime::Persistent,
        opens: 0,
        details: KindDetails::Mq(MqDetails {
            capacity: 10,
            msg_size: 8192,
            depth: 0,
        }),
    }
}

fn respond(id: u64, result: Outcome) -> ServerFrame {
    ServerFrame::Response { id, fds: 0, result }
}

/// Starts a fake daemon that runs `script` on its first connection.
fn fake_daemon(script: impl FnOnce(Peer) + Send + 'static) -> (PathBuf, JoinHandle<()>) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("ipcc-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        script(Peer(stream));
    });
    (path, handle)
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
