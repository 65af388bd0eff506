//! Configured limits answer with an error code, never a silent disconnect.

use ipcd_tests::TestDaemon;
use ipcd_tests::raw::RawConn;
use protocol::{ErrorCode, ServerFrame};

#[test]
fn objects_per_uid_message_size_and_frame_size() {
    let d = TestDaemon::start_with_config(
        "socket_mode = \"0666\"\nmax_objects_per_uid = 2\nmax_message_size = 1024\nmax_frame = 4096\n",
    );
    d.ipcctl_ok(&["create", "mq:one"]);
    d.ipcctl_ok(&["create", "mq:two", "--msg-size", "1024"]);
    let out = d.run_ipcctl(&["create", "mq:three"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_objects_per_uid"));
    d.ipcctl_ok(&["delete", "mq:two"]);
    let out = d.run_ipcctl(&["create", "mq:big", "--msg-size", "2048"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_message_size"));

    let mut c = RawConn::connect_hello(&d.socket);
    c.send_bytes(&5000u32.to_le_bytes());
    match c.drain().last() {
        Some(ServerFrame::Fatal(e)) => assert_eq!(e.code, ErrorCode::FrameTooLarge),
        other => panic!("{other:?}"),
    }
    d.ipcctl_ok(&["delete", "mq:one"]);
}

#[test]
fn too_many_connections_is_an_error_frame() {
    let d = TestDaemon::start_with_config("socket_mode = \"0666\"\nmax_connections = 2\n");
    let _a = RawConn::connect_hello(&d.socket);
    let _b = RawConn::connect_hello(&d.socket);
    let mut c = RawConn::connect(&d.socket);
    c.send(&protocol::ClientFrame::Hello(protocol::Hello {
        version: 1,
        client_name: "third".into(),
    }));
    match c.drain().last() {
        Some(ServerFrame::Fatal(e)) => {
            assert_eq!(e.code, ErrorCode::LimitExceeded);
            assert!(e.message.contains("max_connections"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    drop(_a);
    // Once a slot frees up, clients are served again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = d.run_ipcctl(&["ping"]);
        if out.status.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{out:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_silent_connection_is_dropped_after_the_handshake_timeout() {
    let d = TestDaemon::start_with_config("socket_mode = \"0666\"\nmax_connections = 1\n");
    let mut silent = RawConn::connect(&d.socket);
    silent
        .stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    match silent.drain().last() {
        Some(ServerFrame::Fatal(e)) => {
            assert_eq!(e.code, ErrorCode::HandshakeRequired);
            assert!(e.message.contains("no hello"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    // The slot is free again.
    d.ipcctl_ok(&["ping"]);
}
