//! Work queues through ipcctl: create with the queue flags (refused for
//! other kinds, and the other kinds' flags for queues), send (one message,
//! --lines, --count, --priority, a full queue), recv with and without --ack
//! (without: the message comes back when ipcctl exits, as stderr says),
//! dead letters, join, stat and list, and the exit codes.

use std::process::Stdio;
use std::time::Duration;

use ipcd_tests::{TestDaemon, wait_timeout};
use serde_json::Value;

/// `ipcctl --json stat ADDRESS`, parsed.
fn stat(d: &TestDaemon, address: &str) -> Value {
    serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", address])).unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn send_recv_ack_join_stat_and_list() {
    let d = TestDaemon::start();
    let created = d.ipcctl_ok(&[
        "create",
        "queue:jobs",
        "--capacity",
        "5",
        "--max-deliveries",
        "3",
    ]);
    assert_eq!(
        created.trim(),
        "created queue:jobs (fifo, capacity 5, at most 16 MiB, 3 deliveries, then queue:jobs.dead)"
    );
    d.ipcctl_ok(&["send", "queue:jobs", "first"]);
    let out = d
        .ipcctl()
        .args(["--json", "send", "queue:jobs", "--lines"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"two\nthree\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        "{\"bytes\":8,\"messages\":2,\"sent\":\"queue:jobs\"}\n"
    );
    d.ipcctl_ok(&["send", "queue:jobs", "x", "--count", "2"]);
    // Full: five held.
    let out = d.run_ipcctl(&["send", "queue:jobs", "more", "--nonblock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stderr(&out), "ipcctl: queue:jobs is full (would-block)\n");
    let out = d.run_ipcctl(&["send", "queue:jobs", "more", "--timeout", "100ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("stayed full for 100ms (timed-out)"),
        "{out:?}"
    );

    let s = stat(&d, "queue:jobs");
    assert_eq!(s["kind"], "queue");
    assert_eq!(s["order"], "fifo");
    assert_eq!(
        (s["depth"].as_u64(), s["capacity"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(s["dead_letters"], "queue:jobs.dead");
    assert_eq!(s["journal"], Value::Null);
    let text = d.ipcctl_ok(&["stat", "queue:jobs"]);
    assert!(text.contains("depth:          5 waiting"), "{text}");
    assert!(
        text.contains("max deliveries: 3, then to queue:jobs.dead"),
        "{text}"
    );
    assert!(text.contains("journal:        none"), "{text}");

    // Without --ack: printed, and back in the queue once ipcctl exits.
    let out = d.run_ipcctl(&["recv", "queue:jobs"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "first\n");
    assert!(
        stderr(&out).contains("goes back to the queue when ipcctl exits"),
        "{out:?}"
    );
    let s = stat(&d, "queue:jobs");
    assert_eq!(
        (s["depth"].as_u64(), s["redelivered"].as_u64()),
        (Some(5), Some(1))
    );

    // With --ack: gone for good; --json says how often it was delivered.
    let out = d.run_ipcctl(&["--json", "recv", "queue:jobs", "--ack", "--count", "2"]);
    assert!(out.status.success(), "{out:?}");
    let docs: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{out:?}");
    assert_eq!(docs[0]["message"], "first");
    assert_eq!(docs[0]["deliveries"], 2);
    assert_eq!(docs[0]["acked"], true);
    assert_eq!(docs[1]["message"], "two");
    assert_eq!(docs[1]["deliveries"], 1);
    assert!(stderr(&out).is_empty(), "{out:?}");
    let s = stat(&d, "queue:jobs");
    assert_eq!(
        (s["depth"].as_u64(), s["acked"].as_u64()),
        (Some(3), Some(2))
    );

    let list = d.ipcctl_ok(&["list", "queue"]);
    let row = list.lines().find(|l| l.starts_with("queue:jobs ")).unwrap();
    assert!(
        row.contains("3 msg") && row.contains("5 msg") && row.contains("0 in flight"),
        "{list}"
    );
    assert!(list.contains("queue:jobs.dead"), "{list}");

    let out = d.run_ipcctl(&["join", "queue:jobs", "--timeout", "100ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("timed-out"), "{out:?}");
    let mut joiner = d
        .ipcctl()
        .args(["--json", "join", "queue:jobs", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = d.run_ipcctl(&["recv", "queue:jobs", "--ack", "--follow", "--nonblock"]);
    assert_eq!(stdout(&out), "three\nx\nx\n", "{out:?}");
    assert!(wait_timeout(&mut joiner, Duration::from_secs(20)).is_some_and(|s| s.success()));
    let mut joined = String::new();
    std::io::Read::read_to_string(&mut joiner.stdout.take().unwrap(), &mut joined).unwrap();
    assert_eq!(joined, "{\"joined\":\"queue:jobs\"}\n");

    // Empty now: exit 1, in both kinds of wait.
    let out = d.run_ipcctl(&["recv", "queue:jobs", "--nonblock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stderr(&out), "ipcctl: queue:jobs is empty (would-block)\n");
    let out = d.run_ipcctl(&["recv", "queue:jobs", "--timeout", "100ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("within 100ms (timed-out)"), "{out:?}");
    d.ipcctl_ok(&["delete", "queue:jobs"]);
    let out = d.run_ipcctl(&["stat", "queue:jobs.dead"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "deleted with its queue: {out:?}"
    );
}

#[test]
fn priorities_dead_letters_and_a_durable_queue_through_ipcctl() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&[
        "create",
        "queue:p",
        "--order",
        "priority",
        "--max-deliveries",
        "1",
        "--max-bytes",
        "1MiB",
    ]);
    d.ipcctl_ok(&["send", "queue:p", "low", "--priority", "1"]);
    d.ipcctl_ok(&["send", "queue:p", "high", "--priority", "9"]);
    d.ipcctl_ok(&["send", "queue:p", "none"]);
    // Looked at once without --ack: delivered once, so dead (max 1).
    assert_eq!(d.ipcctl_ok(&["recv", "queue:p"]), "high\n");
    let out = d.run_ipcctl(&[
        "--json",
        "recv",
        "queue:p",
        "--ack",
        "--count",
        "5",
        "--nonblock",
    ]);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(
        (&lines[0]["message"], &lines[0]["priority"]),
        (&"low".into(), &1.into())
    );
    assert_eq!(lines[1]["message"], "none");
    let s = stat(&d, "queue:p");
    assert_eq!(
        (s["dead"].as_u64(), s["max_bytes"].as_u64()),
        (Some(1), Some(1 << 20))
    );
    assert_eq!(d.ipcctl_ok(&["recv", "queue:p.dead", "--ack"]), "high\n");

    d.ipcctl_ok(&["create", "queue:d", "--durable", "--fsync", "always"]);
    let s = stat(&d, "queue:d");
    assert_eq!(s["journal"]["fsync"], "always");
    let text = d.ipcctl_ok(&["stat", "queue:d"]);
    assert!(text.contains("journal:        fsync always, "), "{text}");
    d.ipcctl_ok(&["create", "queue:b", "--durable"]);
    assert_eq!(stat(&d, "queue:b")["journal"]["fsync"], "batch");
    d.ipcctl_ok(&["delete", "queue:p", "queue:d", "queue:b"]);
}

#[test]
fn queue_flags_are_for_queues_and_other_kinds_flags_are_not() {
    let d = TestDaemon::start();
    for (args, status, says) in [
        (
            &["create", "mq:m", "--order", "lifo"][..],
            64,
            "--order is for queue: only",
        ),
        (
            &["create", "sem:s", "--max-deliveries", "2"],
            64,
            "--max-deliveries is for queue: only",
        ),
        (
            &["create", "pipe:p", "--durable"],
            64,
            "--durable is for queue: only",
        ),
        (&["create", "queue:q", "--fsync", "never"], 64, "--durable"),
        (&["create", "queue:q", "--order", "random"], 64, "random"),
        (
            &["create", "queue:q", "--msg-size", "10"],
            64,
            "--msg-size is not for queues",
        ),
        (
            &["create", "queue:q", "--slots", "4"],
            64,
            "--slots is for ring: only",
        ),
        (
            &["create", "queue:q", "--adopt"],
            64,
            "lives in ipcd itself",
        ),
        (
            &["create", "queue:q", "--initial", "1"],
            64,
            "--initial is for sem: only",
        ),
        (
            &["send", "mq:m", "x", "--count", "2"],
            64,
            "--count is for queue: only",
        ),
        (&["send", "queue:q", "x", "--spin-us", "5"], 64, "--spin-us"),
        (&["recv", "mq:m", "--ack"], 64, "--ack is for queue: only"),
        (&["recv", "queue:q", "--spin-us", "5"], 64, "--spin-us"),
        (&["join", "mq:m"], 2, "join takes queue: only"),
        (
            &["wait-for", "queue:q", "--readable"],
            2,
            "ipcctl join waits",
        ),
        (
            &["exec", "--stdin", "queue:q", "--", "true"],
            2,
            "queue:q is a work queue",
        ),
    ] {
        let out = d.run_ipcctl(args);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {out:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    // None of that reached ipcd.
    assert_eq!(d.ipcctl_ok(&["list"]).trim(), "no objects");
    let help = d.ipcctl_ok(&["recv", "--help"]);
    assert!(
        help.contains("at least once") && help.contains("--ack"),
        "{help}"
    );
    let help = d.ipcctl_ok(&["create", "--help"]);
    assert!(help.contains("queue:NAME.dead"), "{help}");
}

#[test]
fn send_lines_and_count_fit_their_batches_to_a_small_queue() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "queue:small", "--capacity", "10"]);
    let consumer = d
        .ipcctl()
        .args([
            "recv",
            "queue:small",
            "--ack",
            "--count",
            "35",
            "--timeout",
            "20s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // 30 lines at once into a queue of 10: batches no larger than half of it,
    // each waiting for room, so everything goes through.
    let mut send = d
        .ipcctl()
        .args(["send", "queue:small", "--lines"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let text: String = (1..=30).map(|n| format!("{n}\n")).collect();
    std::io::Write::write_all(&mut send.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let status = wait_timeout(&mut send, Duration::from_secs(20)).expect("send finished");
    assert!(status.success(), "send --lines: {status}");
    let out = d.run_ipcctl(&[
        "send",
        "queue:small",
        "x",
        "--count",
        "5",
        "--timeout",
        "20s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = consumer.wait_with_output().unwrap();
    let got: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    let mut want: Vec<String> = (1..=30).map(|n| n.to_string()).collect();
    want.extend(std::iter::repeat_n("x".to_string(), 5));
    assert_eq!(got, want);
}
