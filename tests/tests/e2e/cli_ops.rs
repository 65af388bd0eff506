//! `ipcctl` operations against the real daemon: `wait-for`, the caller's usage
//! in `status`, the connect timeout, and `exec`'s command dying with ipcctl.

use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipcd_tests::{TestDaemon, eventually, ipcctl_bin, run_with_timeout, wait_timeout};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `ipcctl --socket SOCKET ARGS…`, taking no connect timeout from the environment.
fn ipcctl_at(socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(ipcctl_bin());
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("IPCCTL_CONNECT_TIMEOUT");
    cmd
}

/// Runs `cmd`; asserts it gave up on the daemon within a few seconds, saying
/// that ipcd did not `what` within `within`; returns how long it took.
fn gives_up(cmd: &mut Command, socket: &Path, what: &str, within: &str) -> Duration {
    let started = Instant::now();
    let out = run_with_timeout(cmd);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    let says = format!(
        "ipcctl: ipcd at {} did not {what} within {within} (is it overloaded or stopped with SIGSTOP?",
        socket.display()
    );
    assert!(e.starts_with(&says), "{e}");
    assert!(e.ends_with(" (not-answering)\n"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    took
}

// ------------------------------------------------------------ connect timeout

#[test]
fn a_daemon_that_accepts_but_never_answers_is_given_up_on() {
    let dir = tempfile::Builder::new()
        .prefix("ipcctl")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("s");
    let listener = UnixListener::bind(&socket).unwrap();
    // Accepts and holds every connection, answering nothing.
    let holder = std::thread::spawn(move || -> Vec<UnixStream> {
        listener.incoming().take(2).map(Result::unwrap).collect()
    });
    let took = gives_up(
        &mut ipcctl_at(&socket, &["--connect-timeout", "300ms", "ping"]),
        &socket,
        "answer the handshake",
        "300ms",
    );
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    // The variable sets it when the flag does not.
    gives_up(
        ipcctl_at(&socket, &["status"]).env("IPCCTL_CONNECT_TIMEOUT", "200ms"),
        &socket,
        "answer the handshake",
        "200ms",
    );
    assert_eq!(holder.join().unwrap().len(), 2);
}

#[test]
fn a_daemon_whose_connection_queue_is_full_is_given_up_on() {
    let dir = tempfile::Builder::new()
        .prefix("ipcctl")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("s");
    // A listener that never accepts, with room for one waiting connection.
    let listener = nix::sys::socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    nix::sys::socket::bind(listener.as_raw_fd(), &UnixAddr::new(&socket).unwrap()).unwrap();
    nix::sys::socket::listen(&listener, Backlog::new(0).unwrap()).unwrap();
    let _first = UnixStream::connect(&socket).unwrap();
    // connect(2) itself now blocks: the handshake's timeout never starts.
    gives_up(
        &mut ipcctl_at(&socket, &["--connect-timeout", "300ms", "ping"]),
        &socket,
        "accept the connection",
        "300ms",
    );
}

/// Sends SIGCONT to a daemon stopped with SIGSTOP when dropped, even when
/// the test fails.
struct Stopped<'a>(&'a TestDaemon);

impl<'a> Stopped<'a> {
    fn stop(d: &'a TestDaemon) -> Self {
        d.signal(Signal::SIGSTOP);
        let stat = format!("/proc/{}/stat", d.pid());
        eventually("ipcd to be stopped", || {
            let s = std::fs::read_to_string(&stat).unwrap_or_default();
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        });
        Stopped(d)
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let _ = kill(self.0.pid(), Signal::SIGCONT);
    }
}

#[test]
fn a_stopped_daemon_is_given_up_on_and_answers_once_continued() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["ping"]);
    let stopped = Stopped::stop(&d);
    gives_up(
        &mut ipcctl_at(&d.socket, &["--connect-timeout", "300ms", "ping"]),
        &d.socket,
        "answer the handshake",
        "300ms",
    );
    drop(stopped);
    d.ipcctl_ok(&["--connect-timeout", "5s", "ping"]);
}

// ------------------------------------------------------------ wait-for

/// Starts `ipcctl ARGS…` against `d` in the background, output captured.
fn spawn(d: &TestDaemon, args: &[&str]) -> Child {
    d.ipcctl()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 20 s) for a background `ipcctl` and collects its output.
fn finish(mut child: Child) -> Output {
    let status = wait_timeout(&mut child, Duration::from_secs(20)).expect("ipcctl finished");
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The descriptors the daemon has open now.
fn fds(d: &TestDaemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count()
}

/// The daemon's descriptors once connections that just closed are gone:
/// the same count five times in a row.
fn settled_fds(d: &TestDaemon) -> usize {
    let mut last = (fds(d), 0);
    eventually("ipcd's descriptors to settle", || {
        std::thread::sleep(Duration::from_millis(20));
        let now = fds(d);
        last = if now == last.0 {
            (now, last.1 + 1)
        } else {
            (now, 0)
        };
        last.1 >= 5
    });
    last.0
}

/// Creates a small queue `mq:NAME` (2 messages of 64 bytes).
fn small_queue(d: &TestDaemon, name: &str) -> String {
    let address = format!("mq:{name}");
    d.ipcctl_ok(&["create", &address, "--capacity", "2", "--msg-size", "64"]);
    address
}

/// Starts a `wait-for` and returns once ipcd holds its wait (the daemon has
/// its connection and a queue descriptor for it open).
fn waiting(d: &TestDaemon, args: &[&str]) -> Child {
    let before = settled_fds(d);
    let mut child = spawn(d, args);
    eventually("ipcd to hold the wait", || fds(d) >= before + 2);
    assert!(
        child.try_wait().unwrap().is_none(),
        "wait-for returned early"
    );
    child
}

#[test]
fn a_waiter_is_answered_when_another_ipcctl_sends() {
    let d = TestDaemon::start();
    let q = small_queue(&d, "w");
    let mut waiter = waiting(&d, &["wait-for", &q, "--readable", "--timeout", "20s"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "wait-for returned before the send"
    );
    d.ipcctl_ok(&["send", &q, "wake up"]);
    let out = finish(waiter);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "mq:w readable (1 message waiting)\n"
    );
    // Ready now: answered at once, as one JSON document.
    let out = d.ipcctl_ok(&["--json", "wait-for", &q, "--readable", "--timeout", "0s"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"address": "mq:w", "ready": "readable", "depth": 1})
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    // Nothing was taken.
    assert_eq!(d.ipcctl_ok(&["recv", &q, "--nonblock"]), "wake up\n");
    d.ipcctl_ok(&["delete", &q]);
}

#[test]
fn a_waiter_for_room_is_answered_when_a_message_is_received() {
    let d = TestDaemon::start();
    let q = small_queue(&d, "full");
    d.ipcctl_ok(&["send", &q, "1"]);
    d.ipcctl_ok(&["send", &q, "2"]);
    let mut waiter = waiting(&d, &["wait-for", &q, "--writable"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "wait-for returned before the recv"
    );
    assert_eq!(d.ipcctl_ok(&["recv", &q]), "1\n");
    let out = finish(waiter);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "mq:full writable (1 message waiting)\n"
    );
    d.ipcctl_ok(&["delete", &q]);
}

#[test]
fn a_wait_that_times_out_exits_1_and_the_connect_timeout_does_not_cut_it_short() {
    let d = TestDaemon::start();
    let q = small_queue(&d, "idle");
    let started = Instant::now();
    let out = d.run_ipcctl(&[
        "--connect-timeout",
        "100ms",
        "wait-for",
        &q,
        "--readable",
        "--timeout",
        "700ms",
    ]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "ipcctl: no message arrived on mq:idle within 700ms (timed-out)\n"
    );
    assert!(took >= Duration::from_millis(700), "took {took:?}");
    let out = d.run_ipcctl(&["wait-for", &q, "--readable", "--timeout", "0s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "ipcctl: mq:idle is empty (timed-out)\n");
    // Room there is: writable at once.
    let out = d.ipcctl_ok(&["wait-for", &q, "--writable", "--timeout", "0s"]);
    assert_eq!(out, "mq:idle writable (0 messages waiting)\n");
    d.ipcctl_ok(&["delete", &q]);
}

#[test]
fn a_queue_deleted_while_waited_for_is_an_error() {
    let d = TestDaemon::start();
    let q = small_queue(&d, "doomed");
    let waiter = waiting(&d, &["--json", "wait-for", &q, "--readable"]);
    d.ipcctl_ok(&["delete", &q]);
    let out = finish(waiter);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "not-found", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("mq:doomed") && message.contains("deleted while waiting"),
        "{e}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_killed_waiter_leaves_the_daemon_serving_and_holding_nothing() {
    let d = TestDaemon::start();
    let q = small_queue(&d, "k");
    let before = settled_fds(&d);
    let mut waiter = waiting(&d, &["wait-for", &q, "--readable"]);
    waiter.kill().unwrap();
    waiter.wait().unwrap();
    eventually("ipcd to close the killed waiter's descriptors", || {
        fds(&d) == before
    });
    // Others are served: a new waiter, a send, a receive.
    let second = waiting(&d, &["wait-for", &q, "--readable", "--timeout", "20s"]);
    d.ipcctl_ok(&["send", &q, "still here"]);
    assert!(finish(second).status.success());
    assert_eq!(d.ipcctl_ok(&["recv", &q]), "still here\n");
    d.ipcctl_ok(&["delete", &q]);
    assert_eq!(
        settled_fds(&d),
        before - 1,
        "the queue's own descriptor went with it"
    );
}

// ------------------------------------------------------------ status: your usage

/// `ipcctl ARGS…` run as uid/gid 65534 (the socket is 0666).
fn as_nobody(d: &TestDaemon, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt as _;
    run_with_timeout(d.ipcctl().args(args).uid(65534).gid(65534))
}

/// The one JSON document a successful `ipcctl --json status` printed.
fn status_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn status_shows_the_caller_s_usage_unlimited_for_root() {
    let d = TestDaemon::start();
    let text = d.ipcctl_ok(&["status"]);
    let me = nix::unistd::geteuid().as_raw();
    // Root, or ipcd's own uid when the tests do not run as root: privileged.
    let heading = format!("\n\nyour usage (uid {me}, privileged: ");
    assert!(text.contains(&heading), "{text}");
    for row in [
        "  connections:             1 / unlimited\n",
        "  daemon-held descriptors: 0 / unlimited\n",
        "  waits:                   0 / unlimited\n",
        "  mq queue bytes:          0 / unlimited\n",
        "  mq byte budget:          ",
        "  work-queue memory:       0 bytes reserved",
        "  open-file limit:         ",
    ] {
        assert!(text.contains(row), "no {row:?} in:\n{text}");
    }
    let v = status_json(&d.run_ipcctl(&["--json", "status"]));
    let usage = &v["usage"];
    assert_eq!(usage["uid"], me, "{v}");
    assert_eq!(usage["privileged"], true, "{v}");
    assert!(
        usage["max_mq_bytes"].is_null() && usage["max_fds"].is_null(),
        "{v}"
    );
    assert!(usage["mq_budget_bytes"].as_u64().unwrap() > 0, "{v}");
    assert!(usage["nofile"].as_u64().unwrap() > 0, "{v}");
    // The daemon's own part is still there.
    assert!(v["limits"]["max_connections"].as_u64().is_some(), "{v}");
}

#[test]
fn status_shows_an_unprivileged_caller_s_holdings_against_numeric_shares() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: this test runs ipcctl as uid 65534 and needs root; skipped");
        return;
    }
    let d = TestDaemon::start();
    let created = as_nobody(
        &d,
        &["create", "mq:nobody", "--capacity", "2", "--msg-size", "64"],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let v = status_json(&as_nobody(&d, &["--json", "status"]));
    let usage = &v["usage"];
    assert_eq!(usage["uid"], 65534, "{v}");
    assert_eq!(usage["privileged"], false, "{v}");
    assert_eq!(usage["objects"], 1, "{v}");
    assert_eq!(usage["connections"], 1, "{v}");
    assert!(usage["mq_bytes"].as_u64().unwrap() > 0, "{v}");
    assert!(usage["fds"].as_u64().unwrap() >= 1, "{v}");
    for share in [
        "max_connections",
        "max_objects",
        "max_fds",
        "max_waits",
        "max_mq_bytes",
    ] {
        let n = usage[share].as_u64();
        assert!(n.is_some_and(|n| n > 0 && n < u64::MAX), "{share}: {v}");
    }
    let out = as_nobody(&d, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\n\nyour usage (uid 65534):\n"), "{text}");
    let objects = format!("  objects:                 1 / {}\n", usage["max_objects"]);
    assert!(text.contains(&objects), "{text}");
    let bytes = format!(
        "  mq queue bytes:          {} / {}\n",
        usage["mq_bytes"], usage["max_mq_bytes"]
    );
    assert!(text.contains(&bytes), "{text}");
    assert!(!text.contains("unlimited"), "{text}");
    assert!(as_nobody(&d, &["delete", "mq:nobody"]).status.success());
}

// ------------------------------------------------------------ exec dies with ipcctl

/// The processes whose parent is `pid` now.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether process `pid` is gone, or dead and waiting to be reaped (a
/// zombie: this sandbox's PID 1 reaps no orphans).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with(['Z', 'X'])),
    }
}

#[test]
fn an_exec_command_dies_with_a_killed_ipcctl_and_swallows_nothing_after() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:p"]);
    let mut exec = spawn(&d, &["exec", "--stdin", "pipe:p", "--", "cat"]);
    let mut command = 0;
    eventually("ipcctl exec to start cat", || {
        let children = children_of(exec.id());
        let comm = |pid: &u32| std::fs::read_to_string(format!("/proc/{pid}/comm"));
        match children.as_slice() {
            [pid] if comm(pid).is_ok_and(|c| c == "cat\n") => {
                command = *pid;
                true
            }
            _ => false,
        }
    });
    exec.kill().unwrap();
    exec.wait().unwrap();
    eventually("cat to die with ipcctl", || dead(command));
    // Nobody reads pipe:p now: a line sent is there for the next reader.
    d.ipcctl_ok(&["send", "pipe:p", "not swallowed"]);
    assert_eq!(
        d.ipcctl_ok(&["recv", "pipe:p", "--timeout", "5s"]),
        "not swallowed\n"
    );
    d.ipcctl_ok(&["delete", "pipe:p"]);
}

#[test]
fn an_exec_command_that_cannot_run_exits_127_or_126_saying_why() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "pipe:p"]);
    for (command, status, says) in [
        (
            "no-such-command-here",
            127,
            "ipcctl: cannot run no-such-command-here: No such file or directory (os error 2) \
             (command-not-found)\n",
        ),
        (
            "/dev/null",
            126,
            "ipcctl: cannot run /dev/null: Permission denied (os error 13) (cannot-run)\n",
        ),
    ] {
        let out = d.run_ipcctl(&["exec", "--stdin", "pipe:p", "--", command]);
        assert_eq!(out.status.code(), Some(status), "{}", stderr(&out));
        assert_eq!(stderr(&out), says);
    }
    d.ipcctl_ok(&["delete", "pipe:p"]);
}
