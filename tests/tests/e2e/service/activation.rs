//! Starting and stopping as systemd does, without systemd: socket activation
//! with `systemd-socket-activate` (the first `ipcctl ping` starts ipcd on the
//! inherited socket), readiness, the status line, reload and stop seen on a
//! stand-in notify socket, watchdog pings from the serving loop, and logs
//! sent to the journal with structured fields.

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ipcd_tests::service::{Manager, tool};
use ipcd_tests::{eventually, ipcctl_bin, wait_timeout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{ipcctl_ok, ipcd_in, prefix, temp_dir};

const WAIT: Duration = Duration::from_secs(20);

fn log_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file")
}

fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).expect("signal");
}

fn exe(child: &Child) -> String {
    std::fs::read_link(format!("/proc/{}/exe", child.id()))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// SIGTERM, then the exit status (panics if it hangs).
fn stop(mut child: Child, log: &Path) -> std::process::ExitStatus {
    signal(&child, Signal::SIGTERM);
    wait_timeout(&mut child, WAIT).unwrap_or_else(|| {
        panic!(
            "ipcd ignored SIGTERM\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
}

fn has(notice: &[String], line: &str) -> bool {
    notice.iter().any(|l| l == line)
}

fn status(notice: &[String]) -> Option<&str> {
    notice.iter().find_map(|l| l.strip_prefix("STATUS="))
}

#[test]
fn the_first_ping_starts_ipcd_on_the_activated_socket_then_reload_and_stop() {
    let test = "the_first_ping_starts_ipcd_on_the_activated_socket_then_reload_and_stop";
    let Some(activate) = tool("systemd-socket-activate", test) else {
        return;
    };
    let dir = temp_dir();
    let mut manager = Manager::bind(dir.path());
    let socket = dir.path().join("ipcd.sock");
    let log = dir.path().join("ipcd.log");
    let daemon = ipcd_in(dir.path(), &prefix("act"));
    let mut cmd = Command::new(&activate);
    cmd.arg("--listen")
        .arg(&socket)
        .arg(format!("--setenv=NOTIFY_SOCKET={}", manager.path.display()))
        .arg(daemon.get_program())
        .args(daemon.get_args())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(&log));
    let child = cmd.spawn().expect("systemd-socket-activate");
    eventually("the activated socket", || socket.exists());

    // No client yet: the activator listens, ipcd has not started.
    assert!(
        manager.during(Duration::from_millis(300)).is_empty(),
        "ipcd spoke before any client came"
    );
    assert!(
        exe(&child).ends_with("systemd-socket-activate"),
        "{}",
        exe(&child)
    );

    // The first ping starts ipcd (in the activator's process) and is answered.
    assert!(ipcctl_ok(&socket, &["ping"]).contains("pong"));
    let ready = manager.wait_for("READY=1", WAIT, |n| has(n, "READY=1"));
    // Sent before the serving loop accepts the waiting ping.
    assert_eq!(status(&ready), Some("0 objects, 0 clients"), "{ready:?}");
    assert!(exe(&child).ends_with("/ipcd"), "{}", exe(&child));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("listening on the inherited socket"),
        "{logged}"
    );

    // It serves; the status line follows.
    ipcctl_ok(&socket, &["create", "event:act"]);
    manager.wait_for("the status line with the event", WAIT, |n| {
        status(n) == Some("1 object, 0 clients")
    });

    // SIGHUP (ExecReload=): RELOADING=1 with MONOTONIC_USEC=, then READY=1.
    let config = dir.path().join("ipcd.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\nmax_objects_per_uid = 77\nsocket_mode = \"0640\"\n"),
    )
    .unwrap();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
    };
    let mode_before = mode(&socket);
    signal(&child, Signal::SIGHUP);
    let reloading = manager.wait_for("RELOADING=1", WAIT, |n| has(n, "RELOADING=1"));
    assert!(
        reloading.iter().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    manager.wait_for("READY=1 after the reload", WAIT, |n| has(n, "READY=1"));
    eventually("the reload in the log", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("max_objects_per_uid")
    });
    // The activated socket's mode is the manager's (SocketMode=), not the config's.
    assert_eq!(
        mode(&socket),
        mode_before,
        "ipcd chmodded an inherited socket"
    );

    // SIGTERM: STOPPING=1, exit 0, and the socket stays: it is the activator's.
    ipcctl_ok(&socket, &["delete", "event:act"]);
    let status = stop(child, &log);
    assert!(status.success(), "{status}");
    assert!(
        manager.notices.iter().any(|n| has(n, "STOPPING=1"))
            || manager.next(WAIT).is_some_and(|n| has(&n, "STOPPING=1")),
        "no STOPPING=1: {:?}",
        manager.notices
    );
    assert!(socket.exists(), "ipcd removed a socket it did not bind");
}

/// Starts ipcd on its own socket in `dir`, telling `manager`; waits for READY=1.
fn start(dir: &Path, manager: &mut Manager, tag: &str, env: &[(&str, &str)]) -> Child {
    let mut cmd = ipcd_in(dir, &prefix(tag));
    cmd.arg("--socket")
        .arg(dir.join("ipcd.sock"))
        .env("NOTIFY_SOCKET", &manager.path)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(&dir.join("ipcd.log")));
    let child = cmd.spawn().expect("spawn ipcd");
    manager.wait_for("READY=1", WAIT, |n| has(n, "READY=1"));
    child
}

#[test]
fn the_status_line_counts_objects_and_clients() {
    let dir = temp_dir();
    let mut manager = Manager::bind(dir.path());
    // JOURNAL_STREAM naming another file: logs stay on stderr.
    let child = start(dir.path(), &mut manager, "st", &[("JOURNAL_STREAM", "1:1")]);
    let socket = dir.path().join("ipcd.sock");
    ipcctl_ok(&socket, &["create", "event:a"]);
    ipcctl_ok(&socket, &["create", "event:b"]);
    // A client that stays connected while it waits.
    let mut waiter = Command::new(ipcctl_bin())
        .arg("--socket")
        .arg(&socket)
        .args(["wait", "event:a", "--timeout", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ipcctl wait");
    manager.wait_for("2 objects and the waiting client", WAIT, |n| {
        status(n) == Some("2 objects, 1 client")
    });
    waiter.kill().unwrap();
    waiter.wait().unwrap();
    manager.wait_for("the client gone", WAIT, |n| {
        status(n) == Some("2 objects, 0 clients")
    });
    ipcctl_ok(&socket, &["delete", "event:a", "event:b"]);
    manager.wait_for("no objects", WAIT, |n| {
        status(n) == Some("0 objects, 0 clients")
    });
    let log = dir.path().join("ipcd.log");
    assert!(stop(child, &log).success());
    manager.wait_for("STOPPING=1", WAIT, |n| has(n, "STOPPING=1"));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("ipcd ready"),
        "logs go to stderr outside the journal:\n{logged}"
    );
}

#[test]
fn watchdog_pings_come_from_the_serving_loop_and_stop_when_it_does() {
    let dir = temp_dir();
    let mut manager = Manager::bind(dir.path());
    // WatchdogSec=200ms: a ping every 100 ms.
    let child = start(
        dir.path(),
        &mut manager,
        "wd",
        &[("WATCHDOG_USEC", "200000")],
    );
    let pings = |notices: &[Vec<String>]| notices.iter().filter(|n| has(n, "WATCHDOG=1")).count();
    let got = manager.during(Duration::from_secs(1));
    assert!(pings(&got) >= 4, "too few pings in 1 s: {got:?}");
    assert!(
        got.iter().all(|n| status(n).is_some()),
        "each beat carries the status"
    );

    // A stopped (wedged) process sends none, so the manager would restart it.
    signal(&child, Signal::SIGSTOP);
    manager.during(Duration::from_millis(200));
    let got = manager.during(Duration::from_millis(800));
    assert_eq!(pings(&got), 0, "pings while stopped: {got:?}");
    signal(&child, Signal::SIGCONT);
    manager.wait_for("a ping after SIGCONT", WAIT, |n| has(n, "WATCHDOG=1"));
    assert!(stop(child, &dir.path().join("ipcd.log")).success());

    // WATCHDOG_PID names another process: the watchdog is not ipcd's.
    let dir = temp_dir();
    let mut manager = Manager::bind(dir.path());
    let child = start(
        dir.path(),
        &mut manager,
        "wp",
        &[("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
    );
    let got = manager.during(Duration::from_millis(1200));
    assert_eq!(pings(&got), 0, "pings for another pid's watchdog: {got:?}");
    assert!(!got.is_empty(), "the status line still comes once a second");
    assert!(stop(child, &dir.path().join("ipcd.log")).success());
}

/// Fields of one journald native-protocol datagram.
fn journal_fields(datagram: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..line_end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let key = String::from_utf8_lossy(&line[..eq]).into_owned();
            fields.push((key, String::from_utf8_lossy(&line[eq + 1..]).into_owned()));
            rest = rest.get(line_end + 1..).unwrap_or_default();
        } else {
            // KEY\n, a little-endian u64 length, the bytes, \n.
            let key = String::from_utf8_lossy(line).into_owned();
            let after = &rest[line_end + 1..];
            let len = u64::from_le_bytes(after[..8].try_into().unwrap()) as usize;
            fields.push((
                key,
                String::from_utf8_lossy(&after[8..8 + len]).into_owned(),
            ));
            rest = after.get(8 + len + 1..).unwrap_or_default();
        }
    }
    fields
}

#[test]
fn under_systemd_logs_go_to_the_journal_with_structured_fields() {
    let test = "under_systemd_logs_go_to_the_journal_with_structured_fields";
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped {test}: needs root for a private mount namespace");
        return;
    }
    if tool("unshare", test).is_none() {
        return;
    }
    let dir = temp_dir();
    let mut manager = Manager::bind(dir.path());
    // journald's socket, as ipcd will see it at /run/systemd/journal/socket.
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).unwrap();
    let journal = UnixDatagram::bind(journal_dir.join("socket")).unwrap();
    journal.set_read_timeout(Some(WAIT)).unwrap();
    // stderr is the "journal stream" JOURNAL_STREAM names, as under systemd.
    let log = dir.path().join("ipcd.log");
    let stream = log_file(&log);
    let meta = stream.metadata().unwrap();
    let socket = dir.path().join("ipcd.sock");
    let daemon = ipcd_in(dir.path(), &prefix("jr"));
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd && \
             ln -s \"$0\" /run/systemd/journal && exec \"$@\"",
        )
        .arg(&journal_dir)
        .arg(daemon.get_program())
        .args(daemon.get_args())
        .arg("--socket")
        .arg(&socket)
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", &manager.path)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stream)
        .spawn()
        .expect("unshare");
    manager.wait_for("READY=1", WAIT, |n| has(n, "READY=1"));
    let mut buf = vec![0u8; 65536];
    let ready = loop {
        let n = journal
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no journal entry 'ipcd ready': {e}"));
        let fields = journal_fields(&buf[..n]);
        if fields
            .iter()
            .any(|(k, v)| k == "MESSAGE" && v == "ipcd ready")
        {
            break fields;
        }
    };
    let field = |key: &str| {
        ready
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} in {ready:?}"))
    };
    assert_eq!(field("IPCD_SOCKET"), socket.display().to_string());
    assert_eq!(field("IPCD_PREFIX"), prefix("jr"));
    assert_eq!(field("PRIORITY"), "6", "info");
    assert_eq!(field("SYSLOG_IDENTIFIER"), "ipcd");
    let status = stop(child, &log);
    assert!(status.success(), "{status}");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        !stderr.contains("ipcd ready"),
        "logs went to stderr too:\n{stderr}"
    );
}
