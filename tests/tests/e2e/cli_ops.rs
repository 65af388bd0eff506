//! `ipcctl` operations against the real daemon: `wait-for`, the caller's usage
//! in `status`, the connect timeout, and `exec`'s command dying with ipcctl.

use std::os::fd::AsRawFd as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ipcd_tests::{TestDaemon, eventually, ipcctl_bin, run_with_timeout};
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
