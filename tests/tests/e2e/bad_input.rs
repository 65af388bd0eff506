//! Malformed frames, bad names and misbehaving clients: each gets a clear error,
//! and the daemon keeps serving everyone else with nothing lost.

use ipcd_tests::TestDaemon;
use ipcd_tests::raw::RawConn;
use protocol::{
    ClientFrame, CreateSpec, ErrorCode, Hello, KindParams, Lifetime, MqParams, Outcome, Reply,
    Request, ServerFrame,
};

/// Creates `mq:keep` holding one message, to check later that nothing was lost.
fn with_witness(d: &TestDaemon) {
    d.ipcctl_ok(&["create", "mq:keep"]);
    d.ipcctl_ok(&["send", "mq:keep", "still here"]);
}

/// The daemon answers a fresh client and the witness message is intact.
fn assert_still_serving(d: &TestDaemon) {
    let mut c = RawConn::connect_hello(&d.socket);
    assert!(matches!(
        c.request(Request::Ping),
        ServerFrame::Response {
            result: Outcome::Ok(Reply::Pong),
            ..
        }
    ));
    assert_eq!(
        d.ipcctl_ok(&["recv", "mq:keep", "--nonblock"]),
        "still here\n"
    );
    d.ipcctl_ok(&["delete", "mq:keep"]);
}

fn fatal_code(frames: &[ServerFrame]) -> ErrorCode {
    match frames.last() {
        Some(ServerFrame::Fatal(e)) => e.code,
        other => panic!("expected a fatal error frame, got {other:?}"),
    }
}

#[test]
fn garbage_bytes_get_a_fatal_error() {
    let d = TestDaemon::start();
    with_witness(&d);
    let mut c = RawConn::connect(&d.socket);
    c.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(fatal_code(&c.drain()), ErrorCode::FrameTooLarge);
    assert_still_serving(&d);
}

#[test]
fn header_announcing_4_gib_is_refused_before_allocation() {
    let d = TestDaemon::start();
    with_witness(&d);
    let mut c = RawConn::connect_hello(&d.socket);
    c.send_bytes(&u32::MAX.to_le_bytes());
    let frames = c.drain();
    assert_eq!(fatal_code(&frames), ErrorCode::FrameTooLarge);
    let ServerFrame::Fatal(e) = frames.last().unwrap() else {
        unreachable!()
    };
    assert!(e.message.contains("4294967295"), "{}", e.message);
    assert_still_serving(&d);
}

#[test]
fn truncated_frame_then_disconnect() {
    let d = TestDaemon::start();
    with_witness(&d);
    let mut c = RawConn::connect_hello(&d.socket);
    // Announce 100 bytes, send 10, and keep the connection open while others work.
    c.send_bytes(&100u32.to_le_bytes());
    c.send_bytes(&[1; 10]);
    assert_still_serving(&d);
    with_witness(&d);
    drop(c);
    assert_still_serving(&d);
}

#[test]
fn malformed_payload_and_missing_handshake() {
    let d = TestDaemon::start();
    with_witness(&d);
    let mut c = RawConn::connect_hello(&d.socket);
    c.send_bytes(&[5, 0, 0, 0, 9, 9, 9, 9, 9]);
    assert_eq!(fatal_code(&c.drain()), ErrorCode::MalformedFrame);

    let mut c = RawConn::connect(&d.socket);
    c.send(&ClientFrame::Request {
        id: 1,
        body: Request::Ping,
    });
    assert_eq!(fatal_code(&c.drain()), ErrorCode::HandshakeRequired);

    let mut c = RawConn::connect(&d.socket);
    c.send_bytes(&[0, 0, 0, 0]);
    assert_eq!(fatal_code(&c.drain()), ErrorCode::MalformedFrame);
    assert_still_serving(&d);
}

#[test]
fn wrong_protocol_version_is_explained() {
    let d = TestDaemon::start();
    let mut c = RawConn::connect(&d.socket);
    c.send(&ClientFrame::Hello(Hello {
        version: 999,
        client_name: "future".into(),
    }));
    let frames = c.drain();
    assert_eq!(fatal_code(&frames), ErrorCode::UnsupportedVersion);
    let ServerFrame::Fatal(e) = frames.last().unwrap() else {
        unreachable!()
    };
    assert!(
        e.message.contains("999") && e.message.contains("speaks versions"),
        "{}",
        e.message
    );
}

#[test]
fn bad_names_and_kinds_are_refused_by_the_daemon() {
    let d = TestDaemon::start();
    let long = format!("mq:{}", "x".repeat(300));
    let cases = [
        ("mq:", ErrorCode::InvalidName),
        ("mq:../x", ErrorCode::InvalidName),
        ("mq:a/b", ErrorCode::InvalidName),
        (long.as_str(), ErrorCode::InvalidName),
        ("mq:.hidden", ErrorCode::InvalidName),
        ("nope:x", ErrorCode::UnknownKind),
        ("jobs", ErrorCode::InvalidAddress),
    ];
    let mut c = RawConn::connect_hello(&d.socket);
    for (address, code) in cases {
        let spec = CreateSpec {
            mode: None,
            lifetime: Lifetime::Persistent,
            adopt: false,
            params: KindParams::Mq(MqParams::default()),
        };
        match c.request(Request::Create {
            address: address.into(),
            spec,
        }) {
            ServerFrame::Response {
                result: Outcome::Err(e),
                ..
            } => {
                assert_eq!(e.code, code, "{address}: {}", e.message);
                if code == ErrorCode::InvalidName {
                    assert!(e.message.contains("1-200 characters"), "{}", e.message);
                }
            }
            other => panic!("{address}: expected an error, got {other:?}"),
        }
    }
    // Same through ipcctl: exit code 2 and the rule on stderr.
    for address in ["mq:", "mq:../x", "mq:a/b", long.as_str()] {
        let out = d.run_ipcctl(&["create", address]);
        assert_eq!(out.status.code(), Some(2), "{address}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("1-200 characters"), "{address}: {err}");
    }
    let out = d.run_ipcctl(&["create", "nope:x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown kind"));
}

#[test]
fn create_twice_and_missing_objects() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:twice"]);
    let out = d.run_ipcctl(&["create", "mq:twice"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    for args in [
        &["recv", "mq:missing", "--nonblock"][..],
        &["send", "mq:missing", "x"],
        &["stat", "mq:missing"],
        &["delete", "mq:missing"],
    ] {
        let out = d.run_ipcctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no object 'mq:missing'"),
            "{args:?}"
        );
    }
    d.ipcctl_ok(&["delete", "mq:twice"]);
}

#[test]
fn client_killed_mid_operation_loses_nothing() {
    let d = TestDaemon::start();
    with_witness(&d);
    d.ipcctl_ok(&["create", "mq:work"]);
    // A receiver blocked on an empty queue is killed; the queue and daemon carry on.
    let mut waiting = d
        .ipcctl()
        .args(["recv", "mq:work", "--follow"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn ipcctl");
    // A client killed in the middle of sending a frame.
    let mut half = RawConn::connect_hello(&d.socket);
    half.send_bytes(&64u32.to_le_bytes());
    half.send_bytes(&[0; 8]);
    drop(half);
    waiting.kill().expect("kill receiver");
    waiting.wait().expect("reap");
    d.ipcctl_ok(&["send", "mq:work", "after the crash"]);
    assert_eq!(
        d.ipcctl_ok(&["recv", "mq:work", "--timeout", "5s"]),
        "after the crash\n"
    );
    d.ipcctl_ok(&["delete", "mq:work"]);
    assert_still_serving(&d);
}
