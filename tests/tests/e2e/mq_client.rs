//! POSIX message queues through the `ipc-client` library, with the other side in
//! a separate `ipcctl` process.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ipc_client::{Access, Client, Error, ErrorCode, MqOptions, Reply, Request};
use ipcd_tests::{TestDaemon, eventually};

#[test]
fn library_sender_and_cli_receiver_in_another_process() {
    let d = TestDaemon::start();
    let mut client = Client::connect_to(&d.socket).unwrap();
    assert_eq!(client.welcome().peer.uid, nix::unistd::getuid().as_raw());
    let q = client
        .create_mq("lib", &MqOptions::new().capacity(8).msg_size(64))
        .unwrap();
    let receiver = d
        .ipcctl()
        .args([
            "--json",
            "recv",
            "mq:lib",
            "--count",
            "3",
            "--timeout",
            "20s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    q.send(b"one", 1).unwrap();
    q.send(b"two", 2).unwrap();
    q.send(b"three", 3).unwrap();
    let out = receiver.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    client.delete("mq:lib").unwrap();
}

#[test]
fn cli_sender_and_library_receiver_with_priorities() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:toLib"]);
    for (msg, prio) in [("a", "0"), ("b", "7"), ("c", "3")] {
        d.ipcctl_ok(&["send", "mq:toLib", msg, "--priority", prio]);
    }
    let mut client = Client::connect_to(&d.socket).unwrap();
    let rx = client.open_mq("mq:toLib", Access::Read).unwrap();
    assert_eq!(rx.attributes().unwrap().depth, 3);
    let got: Vec<(Vec<u8>, u32)> = (0..3)
        .map(|_| {
            let m = rx.recv().unwrap();
            (m.data, m.priority)
        })
        .collect();
    assert_eq!(
        got,
        [(b"b".to_vec(), 7), (b"c".to_vec(), 3), (b"a".to_vec(), 0)]
    );
    // Read access does not allow sending.
    assert!(rx.send(b"x", 0).is_err());
    client.delete("mq:toLib").unwrap();
}

#[test]
fn timeouts_full_and_empty() {
    let d = TestDaemon::start();
    let mut client = Client::connect_to(&d.socket).unwrap();
    let q = client
        .create_mq("edge", &MqOptions::new().capacity(1).msg_size(16))
        .unwrap();
    assert!(matches!(q.try_recv(), Err(Error::WouldBlock)));
    let started = Instant::now();
    assert!(matches!(
        q.recv_timeout(Duration::from_millis(100)),
        Err(Error::TimedOut)
    ));
    assert!(started.elapsed() >= Duration::from_millis(100));
    q.try_send(b"fill", 0).unwrap();
    assert!(matches!(q.try_send(b"more", 0), Err(Error::WouldBlock)));
    assert!(matches!(
        q.send_timeout(b"more", 0, Duration::from_millis(50)),
        Err(Error::TimedOut)
    ));
    assert!(q.send(&[0; 17], 0).is_err(), "larger than msg_size");
    assert_eq!(q.try_recv().unwrap().data, b"fill");
    client.delete("mq:edge").unwrap();
}

#[test]
fn errors_carry_stable_codes_and_the_connection_survives() {
    let d = TestDaemon::start();
    let mut client = Client::connect_to(&d.socket).unwrap();
    let err = client.stat("mq:nothing").unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    let err = client.stat("mq:../etc").unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidName));
    client.create_mq("dup", &MqOptions::new()).unwrap();
    let err = client.create_mq("dup", &MqOptions::new()).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::AlreadyExists));
    client.ping().unwrap();
    client.delete("mq:dup").unwrap();
}

#[test]
fn pipelined_requests_and_session_lifetime() {
    let d = TestDaemon::start();
    let mut client = Client::connect_to(&d.socket).unwrap();
    client
        .create_mq("mine", &MqOptions::new().session())
        .unwrap();
    let answers = client
        .pipeline((0..1000).map(|_| Request::Stat {
            address: "mq:mine".into(),
        }))
        .unwrap();
    assert_eq!(answers.len(), 1000);
    assert!(answers.iter().all(|a| matches!(a, Ok(Reply::Stat(_)))));
    let status = client.status().unwrap();
    assert!(status.counters.requests >= 1000);
    drop(client);
    let mut other = Client::connect_to(&d.socket).unwrap();
    eventually("the session object to go with its connection", || {
        other.stat("mq:mine").is_err()
    });
}
