//! POSIX message queues through `ipcctl`, sender and receiver in separate processes.

use std::io::Write;
use std::process::Stdio;

use ipcd_tests::TestDaemon;

#[test]
fn send_and_recv_across_processes_with_priorities() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:jobs", "--capacity", "10", "--msg-size", "128"]);
    d.ipcctl_ok(&["send", "mq:jobs", "low", "--priority", "1"]);
    d.ipcctl_ok(&["send", "mq:jobs", "high", "--priority", "9"]);
    d.ipcctl_ok(&["send", "mq:jobs", "mid", "--priority", "5"]);
    let stat = d.ipcctl_ok(&["--json", "stat", "mq:jobs"]);
    let stat: serde_json::Value = serde_json::from_str(&stat).unwrap();
    assert_eq!(stat["depth"], 3, "{stat}");
    assert_eq!(stat["capacity"], 10, "{stat}");
    assert_eq!(stat["msg_size"], 128, "{stat}");
    let out = d.ipcctl_ok(&["--json", "recv", "mq:jobs", "--count", "3"]);
    let got: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let order: Vec<(&str, u64)> = got
        .iter()
        .map(|v| {
            (
                v["message"].as_str().unwrap(),
                v["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, [("high", 9), ("mid", 5), ("low", 1)]);
    d.ipcctl_ok(&["delete", "mq:jobs"]);
    assert!(!d.ipcctl_ok(&["list"]).contains("mq:jobs"));
}

#[test]
fn a_blocked_receiver_gets_a_message_sent_later() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:wake"]);
    let receiver = d
        .ipcctl()
        .args(["recv", "mq:wake", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    d.ipcctl_ok(&["send", "mq:wake", "wake up"]);
    let out = receiver.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "wake up\n");
    d.ipcctl_ok(&["delete", "mq:wake"]);
}

#[test]
fn empty_and_full_queues_time_out_with_exit_code_1() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:small", "--capacity", "2", "--msg-size", "16"]);
    let out = d.run_ipcctl(&["recv", "mq:small", "--nonblock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let started = std::time::Instant::now();
    let out = d.run_ipcctl(&["recv", "mq:small", "--timeout", "200ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    d.ipcctl_ok(&["send", "mq:small", "a"]);
    d.ipcctl_ok(&["send", "mq:small", "b"]);
    let out = d.run_ipcctl(&["send", "mq:small", "c", "--nonblock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = d.run_ipcctl(&["send", "mq:small", "c", "--timeout", "100ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = d.run_ipcctl(&[
        "send",
        "mq:small",
        "this message is longer than sixteen bytes",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("16"),
        "{out:?}"
    );
    assert_eq!(d.ipcctl_ok(&["recv", "mq:small", "--count", "2"]), "a\nb\n");
    d.ipcctl_ok(&["delete", "mq:small"]);
}

#[test]
fn ten_thousand_messages_arrive_in_order() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:bulk"]);
    let receiver = d
        .ipcctl()
        .args(["recv", "mq:bulk", "--count", "10000", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the receiver's stdout concurrently, or it blocks on a full pipe.
    let receiver = std::thread::spawn(move || receiver.wait_with_output().unwrap());
    let mut sender = d
        .ipcctl()
        .args(["send", "mq:bulk", "--lines"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = (0..10_000).map(|i| format!("message {i}\n")).collect();
    let mut stdin = sender.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    assert!(sender.wait().unwrap().success());
    let out = receiver.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), input);
    d.ipcctl_ok(&["delete", "mq:bulk"]);
}

#[test]
fn stdin_message_and_raw_output() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:raw"]);
    let mut sender = d
        .ipcctl()
        .args(["send", "mq:raw"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    sender
        .stdin
        .take()
        .unwrap()
        .write_all(b"two\nlines\x00bin")
        .unwrap();
    assert!(sender.wait().unwrap().success());
    let out = d.run_ipcctl(&["recv", "mq:raw", "--raw", "--nonblock"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"two\nlines\x00bin");
    d.ipcctl_ok(&["delete", "mq:raw"]);
}

#[test]
fn closed_stdout_is_not_an_error() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:head"]);
    for i in 0..5 {
        d.ipcctl_ok(&["send", "mq:head", &format!("m{i}")]);
    }
    let mut recv = d
        .ipcctl()
        .args(["recv", "mq:head", "--count", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(recv.stdout.take());
    let status = recv.wait().unwrap();
    assert!(status.success() || status.code() == Some(0), "{status}");
    d.ipcctl_ok(&["delete", "mq:head"]);
}

#[test]
fn help_teaches_and_usage_errors_exit_64() {
    let d = TestDaemon::start();
    let help = d.ipcctl_ok(&["--help"]);
    for needle in ["Exit status", "64", "send", "recv", "create", "list"] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    for cmd in [
        "send", "recv", "create", "delete", "stat", "list", "status", "ping", "bench",
    ] {
        let h = d.ipcctl_ok(&[cmd, "--help"]);
        assert!(
            h.contains("Example") || h.contains("example"),
            "{cmd} --help has no example:\n{h}"
        );
    }
    let out = d.run_ipcctl(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(64));
    let out = d.run_ipcctl(&["recv", "mq:x", "--timeout", "nonsense"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn adopt_registers_a_queue_made_elsewhere() {
    let d = TestDaemon::start();
    let kernel = d.mq_kernel_name("foreign");
    let attr = nix::mqueue::MqAttr::new(0, 4, 64, 0);
    let q = nix::mqueue::mq_open(
        kernel.as_str(),
        nix::mqueue::MQ_OFlag::O_CREAT | nix::mqueue::MQ_OFlag::O_RDWR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        Some(&attr),
    )
    .unwrap();
    nix::mqueue::mq_send(&q, b"from outside", 0).unwrap();
    nix::mqueue::mq_close(q).unwrap();
    let out = d.run_ipcctl(&["create", "mq:foreign"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "creating over an existing queue must fail"
    );
    d.ipcctl_ok(&["create", "mq:foreign", "--adopt"]);
    assert_eq!(
        d.ipcctl_ok(&["recv", "mq:foreign", "--nonblock"]),
        "from outside\n"
    );
    d.ipcctl_ok(&["delete", "mq:foreign"]);
    let gone = nix::mqueue::mq_open(
        kernel.as_str(),
        nix::mqueue::MQ_OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
        None,
    );
    assert_eq!(gone.err(), Some(nix::errno::Errno::ENOENT));
}

#[test]
fn a_receiver_waiting_on_a_deleted_queue_is_told() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:gone", "--capacity", "2", "--msg-size", "64"]);
    let receiver = d
        .ipcctl()
        .args(["recv", "mq:gone"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it has opened the queue, delete it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !d
        .ipcctl_ok(&["--json", "stat", "mq:gone"])
        .contains("\"opens\":1")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiver never opened mq:gone"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    d.ipcctl_ok(&["delete", "mq:gone"]);
    let out = receiver.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mq:gone was deleted while waiting"), "{err}");
}
