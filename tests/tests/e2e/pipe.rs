//! `pipe:` — anonymous pipes hosted by ipcd, used by processes that never forked
//! from each other: line and raw modes, atomic messages from concurrent senders,
//! end-of-file after close, `ipcctl exec`, limits and permissions.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipcd_tests::{TestDaemon, eventually, wait_timeout};

fn stat(d: &TestDaemon, address: &str) -> serde_json::Value {
    serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", address])).unwrap()
}

#[test]
fn lines_between_separate_processes() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:p"]);
    d.ipcctl_ok(&["send", "pipe:p", "first"]);
    d.ipcctl_ok(&["send", "pipe:p", "second message"]);
    let s = stat(&d, "pipe:p");
    assert_eq!(s["buffered_bytes"], 6 + 15, "{s}");
    assert_eq!(d.ipcctl_ok(&["recv", "pipe:p"]), "first\n");
    assert_eq!(d.ipcctl_ok(&["recv", "pipe:p"]), "second message\n");
    let out = d.run_ipcctl(&["recv", "pipe:p", "--timeout", "100ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    d.ipcctl_ok(&["delete", "pipe:p"]);
}

#[test]
fn raw_mode_streams_bytes_and_eof_follows_close() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:raw"]);
    let reader = d
        .ipcctl()
        .args(["recv", "--raw", "pipe:raw"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || reader.wait_with_output().unwrap());
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut sender = d
        .ipcctl()
        .args(["send", "--raw", "pipe:raw"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    sender.stdin.take().unwrap().write_all(&payload).unwrap();
    assert!(sender.wait().unwrap().success());
    // Closing the daemon's write end lets the reader see end-of-file once drained.
    d.ipcctl_ok(&["close", "pipe:raw"]);
    let out = reader.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, payload);
    assert_eq!(stat(&d, "pipe:raw")["closed"], true);
    let out = d.run_ipcctl(&["send", "pipe:raw", "too late"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    d.ipcctl_ok(&["delete", "pipe:raw"]);
}

#[test]
fn two_concurrent_senders_never_interleave() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:busy"]);
    let receiver = d
        .ipcctl()
        .args(["recv", "pipe:busy", "--count", "20000", "--timeout", "30s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let receiver = std::thread::spawn(move || receiver.wait_with_output().unwrap());
    let senders: Vec<_> = ["A", "B"]
        .into_iter()
        .map(|tag| {
            let mut child = d
                .ipcctl()
                .args(["send", "pipe:busy", "--lines"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let body = "x".repeat(100);
                let input: String = (0..10_000).map(|i| format!("{tag} {i} {body}\n")).collect();
                stdin.write_all(input.as_bytes()).unwrap();
                drop(stdin);
                assert!(child.wait().unwrap().success());
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let out = receiver.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut next = [0u32; 2];
    let body = "x".repeat(100);
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (tag, n, rest) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert_eq!(rest, body, "interleaved line: {line}");
        let who = if tag == "A" { 0 } else { 1 };
        assert_eq!(n.parse::<u32>().unwrap(), next[who], "out of order: {line}");
        next[who] += 1;
    }
    assert_eq!(next, [10_000, 10_000]);
    d.ipcctl_ok(&["delete", "pipe:busy"]);
}

#[test]
fn exec_joins_a_command_to_hosted_pipes() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:in"]);
    d.ipcctl_ok(&["create", "pipe:out"]);
    d.ipcctl_ok(&["send", "pipe:in", "hello exec"]);
    d.ipcctl_ok(&["close", "pipe:in"]);
    let out = d.run_ipcctl(&[
        "exec", "--stdin", "pipe:in", "--stdout", "pipe:out", "--", "tr", "a-z", "A-Z",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(d.ipcctl_ok(&["recv", "pipe:out"]), "HELLO EXEC\n");
    // The command's exit code comes back.
    let out = d.run_ipcctl(&["exec", "--stdout", "pipe:out", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    d.ipcctl_ok(&["delete", "pipe:in"]);
    d.ipcctl_ok(&["delete", "pipe:out"]);
}

#[test]
fn capacity_is_set_and_checked() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:big", "--capacity", "262144"]);
    assert_eq!(stat(&d, "pipe:big")["capacity"], 262144);
    let max: u64 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let too_big = (max * 2).to_string();
    let out = d.run_ipcctl(&["create", "pipe:huge", "--capacity", &too_big]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pipe-max-size"),
        "{out:?}"
    );
    let out = d.run_ipcctl(&["create", "pipe:zero", "--capacity", "0"]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    d.ipcctl_ok(&["delete", "pipe:big"]);
}

#[test]
fn delete_while_a_reader_waits_ends_the_wait() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:gone"]);
    let mut reader = d
        .ipcctl()
        .args(["recv", "pipe:gone", "--timeout", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the reader to open the pipe", || {
        stat(&d, "pipe:gone")["readers_opened"] != 0
    });
    d.ipcctl_ok(&["delete", "pipe:gone"]);
    let status =
        wait_timeout(&mut reader, Duration::from_secs(10)).expect("reader hung after delete");
    assert!(!status.success(), "{status}");
}

#[test]
fn another_uid_is_denied_and_session_pipes_vanish() {
    use std::os::unix::process::CommandExt;
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:private"]);
    let out = ipcd_tests::run_with_timeout(
        Command::new(ipcd_tests::ipcctl_bin())
            .arg("--socket")
            .arg(&d.socket)
            .args(["send", "pipe:private", "x"])
            .uid(65534)
            .gid(65534),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{out:?}"
    );
    d.ipcctl_ok(&["delete", "pipe:private"]);

    let mut client = ipc_client::Client::connect_to(&d.socket).unwrap();
    let spec = ipc_client::CreateSpec {
        mode: None,
        lifetime: ipc_client::Lifetime::Session,
        adopt: false,
        params: ipc_client::KindParams::Pipe(protocol::PipeParams { capacity: None }),
    };
    client.create("pipe:short", spec).unwrap();
    assert!(d.ipcctl_ok(&["list"]).contains("pipe:short"));
    drop(client);
    eventually("the session pipe to go with its connection", || {
        !d.ipcctl_ok(&["list"]).contains("pipe:short")
    });
}

#[test]
fn a_version_1_client_neither_sees_nor_touches_pipes() {
    use ipcd_tests::raw::RawConn;
    use protocol::{ClientFrame, ErrorCode, Hello, Outcome, Reply, Request, ServerFrame};
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:new"]);
    d.ipcctl_ok(&["create", "mq:old"]);
    let mut c = RawConn::connect(&d.socket);
    c.send(&ClientFrame::Hello(Hello {
        version: 1,
        client_name: "v1".into(),
    }));
    assert!(matches!(c.recv(), Some(ServerFrame::Welcome(w)) if w.version == 1));
    match c.request(Request::List { kind: None }) {
        ServerFrame::Response {
            result: Outcome::Ok(Reply::List(objects)),
            ..
        } => {
            let names: Vec<_> = objects.iter().map(|o| o.address.as_str()).collect();
            assert_eq!(names, ["mq:old"]);
        }
        other => panic!("{other:?}"),
    }
    match c.request(Request::Stat {
        address: "pipe:new".into(),
    }) {
        ServerFrame::Response {
            result: Outcome::Err(e),
            ..
        } => {
            assert_eq!(e.code, ErrorCode::UnknownKind, "{}", e.message);
            assert!(e.message.contains("version 2"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    d.ipcctl_ok(&["delete", "pipe:new"]);
    d.ipcctl_ok(&["delete", "mq:old"]);
}

#[test]
fn exec_timeout_bounds_the_wait_on_a_pipe() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:idle"]);
    // Nothing comes: exit 1 without running the command, instead of blocking.
    let started = Instant::now();
    let out = d.run_ipcctl(&[
        "exec",
        "--stdin",
        "pipe:idle",
        "--timeout",
        "300ms",
        "--",
        "cat",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ipcctl: nothing arrived on pipe:idle within 300ms (timed-out)\n"
    );
    // Bytes (then end of file) came: the command runs.
    d.ipcctl_ok(&["send", "pipe:idle", "here"]);
    d.ipcctl_ok(&["close", "pipe:idle"]);
    let out = d.run_ipcctl(&[
        "exec",
        "--stdin",
        "pipe:idle",
        "--timeout",
        "300ms",
        "--",
        "cat",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"here\n");

    // --stdout: a full pipe is waited on for room, as long as --timeout says.
    d.ipcctl_ok(&["create", "pipe:full", "--capacity", "4096"]);
    let fill = "x".repeat(4096);
    d.ipcctl_ok(&["send", "--raw", "pipe:full", &fill, "--nonblock"]);
    let out = d.run_ipcctl(&[
        "exec",
        "--stdout",
        "pipe:full",
        "--timeout",
        "200ms",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pipe:full stayed full for 200ms"),
        "{out:?}"
    );
    d.ipcctl_ok(&["delete", "pipe:idle"]);
    d.ipcctl_ok(&["delete", "pipe:full"]);
}
