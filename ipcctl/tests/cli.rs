//! `ipcctl` as a process: help, usage errors, exit statuses and output formats,
//! against a small fake daemon that hands out real POSIX message queues.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ipc_client::testing::{self, FakePeer};
use nix::mqueue::{MQ_OFlag, MqAttr, mq_close, mq_open, mq_unlink};
use nix::sys::stat::Mode;
use protocol::{
    Access, ErrorCode, Lifetime, ObjectInfo, Outcome, Reply, Request, ServerFrame, WireError,
};

#[path = "cli/ring.rs"]
mod ring;
#[path = "cli/shm.rs"]
mod shm;
#[path = "cli/signal.rs"]
mod signal;

fn ipcctl(socket: &Path, args: &[&str], stdin: &[u8]) -> Output {
    ipcctl_env(args, stdin, &[("IPCD_SOCKET", socket.as_os_str())])
}

fn ipcctl_env(args: &[&str], stdin: &[u8], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipcctl"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    finish(child, args)
}

/// How long one ipcctl run may take before the test fails.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits for `child` (killing it after [`COMMAND_TIMEOUT`]) and collects its output.
fn finish(mut child: std::process::Child, args: &[&str]) -> Output {
    let mut pipes = (child.stdout.take(), child.stderr.take());
    let read = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                p.read_to_end(&mut buf).unwrap();
            }
            buf
        })
    };
    let out = read(pipes.0.take().map(|p| Box::new(p) as _));
    let err = read(pipes.1.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("ipcctl {args:?} still ran after {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fake ipcd (`ipc_client::testing`) serving one real queue as `mq:q`;
/// everything else is not found.
struct FakeDaemon {
    socket: PathBuf,
    queue: String,
}

impl FakeDaemon {
    fn start(tag: &str) -> Self {
        let queue = format!("/ipcctl-test-{tag}-{}", std::process::id());
        let _ = mq_unlink(queue.as_str());
        let attr = MqAttr::new(0, 2, 32, 0);
        let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
        let mode = Mode::from_bits_truncate(0o600);
        mq_close(mq_open(queue.as_str(), flags, mode, Some(&attr)).unwrap()).unwrap();
        let name = queue.clone();
        let socket = testing::fake_daemon_each("ipcctl", move |mut peer| {
            if peer.handshake().is_some() {
                peer.serve(|peer, id, body| answer(peer, id, body, &name));
            }
        });
        FakeDaemon { socket, queue }
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = mq_unlink(self.queue.as_str());
    }
}

/// The fake daemon's answer to one request about the queue `queue`.
fn answer(peer: &mut FakePeer, id: u64, body: Request, queue: &str) {
    let info = testing::mq_info("mq:q", queue, 2, 32);
    match body {
        // A session object whose daemon goes away right after creating it.
        Request::Create { address, .. } if address == "mq:sess" => {
            let info = ObjectInfo {
                address,
                lifetime: Lifetime::Session,
                ..info
            };
            peer.write(&testing::respond(id, Outcome::Ok(Reply::Created(info))));
            let _ = peer.0.shutdown(std::net::Shutdown::Both);
        }
        Request::Open { address, access } if address == "mq:q" => {
            let flags = match access {
                Access::Read => MQ_OFlag::O_RDONLY,
                Access::Write => MQ_OFlag::O_WRONLY,
                Access::ReadWrite => MQ_OFlag::O_RDWR,
            };
            let mqd = mq_open(queue, flags, Mode::empty(), None).unwrap();
            let result = Outcome::Ok(Reply::Opened { info, access });
            peer.write_with_fds(
                &ServerFrame::Response { id, fds: 1, result },
                &[mqd.as_raw_fd()],
            );
            mq_close(mqd).unwrap();
        }
        Request::Stat { address } if address == "mq:q" => {
            peer.write(&testing::respond(id, Outcome::Ok(Reply::Stat(info))));
        }
        other => {
            let e = WireError::new(ErrorCode::NotFound, format!("no object for {other:?}"));
            peer.write(&testing::respond(id, Outcome::Err(e)));
        }
    }
}

#[test]
fn help_and_usage_errors() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    let help = ipcctl(nowhere, &["--help"], b"");
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8(help.stdout.clone()).unwrap();
    assert!(text.contains("64  usage error"), "{text}");
    for cmd in [
        "ping", "status", "list", "stat", "create", "delete", "close", "path", "send", "recv",
        "wait-for", "exec", "help",
    ] {
        let o = ipcctl(nowhere, &[cmd, "--help"], b"");
        assert_eq!(o.status.code(), Some(0), "{cmd}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Example"), "{cmd} --help has no example");
        assert!(
            text.contains("Exit status:"),
            "{cmd} --help has no exit status"
        );
        // `ipcctl help CMD` says the same.
        let o = ipcctl(nowhere, &["help", cmd], b"");
        assert_eq!(o.status.code(), Some(0), "help {cmd}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), text, "help {cmd}");
    }
    let o = ipcctl(nowhere, &["help"], b"");
    assert_eq!(o.stdout, help.stdout);
    let o = ipcctl(nowhere, &["help", "nope"], b"");
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(stderr(&o).contains("no command 'nope'"), "{}", stderr(&o));
    for args in [
        &[][..],
        &["bogus"],
        &["recv"],
        &["recv", "mq:q", "--timeout", "5"],
        &["create", "mq:q", "--mode", "9"],
        // wait-for takes exactly one of --readable and --writable.
        &["wait-for", "mq:q"],
        &["wait-for", "mq:q", "--readable", "--writable"],
        &["wait-for", "mq:q", "--readable", "--timeout", "soon"],
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
    }
    for (args, says) in [
        (
            &["send", "mq:q", "hi", "--priority", "40000"][..],
            "'--priority <P>': the priority must be 0-32767",
        ),
        (
            &["recv", "mq:q", "--count", "0"],
            "'--count <N>': the count must be at least 1",
        ),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(ipcctl(nowhere, &["--version"], b"").status.code(), Some(0));
}

#[test]
fn a_missing_daemon_is_an_error_naming_the_socket() {
    let o = ipcctl(Path::new("/nonexistent/ipcd.sock"), &["ping"], b"");
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.starts_with("ipcctl: cannot connect to ipcd at /nonexistent/ipcd.sock: "),
        "{e}"
    );
    assert!(e.contains("is ipcd running?"), "{e}");
}

#[test]
fn send_and_recv_with_exit_statuses() {
    let d = FakeDaemon::start("sr");
    let s = &d.socket;
    let o = ipcctl(s, &["recv", "mq:q", "--nonblock"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o), "ipcctl: mq:q is empty (would-block)\n");

    assert!(
        ipcctl(s, &["send", "mq:q", "hello", "--priority", "2"], b"")
            .status
            .success()
    );
    assert!(
        ipcctl(s, &["send", "mq:q"], b"from stdin\n")
            .status
            .success()
    );
    let o = ipcctl(s, &["send", "mq:q", "x", "--timeout", "50ms"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("(timed-out)"), "{}", stderr(&o));

    let o = ipcctl(
        s,
        &["recv", "mq:q", "--json", "--count", "5", "--nonblock"],
        b"",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        // Standard input as one message loses its trailing newline, as in `$(…)`.
        "{\"message\":\"hello\",\"priority\":2}\n{\"message\":\"from stdin\",\"priority\":0}\n"
    );
    assert!(
        ipcctl(s, &["send", "mq:q", "--raw"], b"kept\n")
            .status
            .success()
    );
    let o = ipcctl(s, &["--json", "recv", "mq:q"], b"");
    assert_eq!(o.stdout, b"{\"message\":\"kept\\n\",\"priority\":0}\n");

    assert!(
        ipcctl(s, &["send", "mq:q", "--lines"], b"a\nb\n")
            .status
            .success()
    );
    let o = ipcctl(s, &["recv", "mq:q", "--follow", "--timeout", "100ms"], b"");
    assert_eq!((o.status.code(), o.stdout), (Some(0), b"a\nb\n".to_vec()));

    assert!(ipcctl(s, &["send", "mq:q", "raw"], b"").status.success());
    let o = ipcctl(s, &["recv", "mq:q", "--raw"], b"");
    assert_eq!(o.stdout, b"raw");

    let o = ipcctl(s, &["send", "mq:q", &"x".repeat(33)], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("exceeds the queue's message size of 32 bytes (too-large)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn daemon_errors_and_stat_output() {
    let d = FakeDaemon::start("st");
    let o = ipcctl(&d.socket, &["stat", "mq:nope"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).ends_with("(not-found)\n"), "{}", stderr(&o));
    let o = ipcctl(&d.socket, &["stat", "mq:q"], b"");
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("message size: 32 bytes") && text.contains("mode:         0600"),
        "{text}"
    );
    let o = ipcctl(&d.socket, &["--json", "stat", "mq:q"], b"");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["capacity"].as_u64(), v["mode"].as_str()),
        (Some(2), Some("0600"))
    );
}

#[test]
fn a_reader_that_goes_away_ends_recv_quietly() {
    let d = FakeDaemon::start("hd");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipcctl"))
        .args(["recv", "mq:q", "--follow"])
        .env("IPCD_SOCKET", &d.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        ipcctl(&d.socket, &["send", "mq:q", "one"], b"")
            .status
            .success()
    );
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"one\n");
    drop(stdout); // like `| head -1`: no more messages come, yet recv must end
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ipcctl recv --follow kept running after its reader left");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_zero_timeout_takes_what_is_there() {
    let d = FakeDaemon::start("zero");
    let s = &d.socket;
    let o = ipcctl(s, &["send", "mq:q", "hi", "--timeout", "0s"], b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = ipcctl(s, &["recv", "mq:q", "--timeout", "0s"], b"");
    assert_eq!((o.status.code(), o.stdout), (Some(0), b"hi\n".to_vec()));
    let o = ipcctl(s, &["recv", "mq:q", "--timeout", "0s"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("within 0s (timed-out)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn binary_messages_are_base64_in_json() {
    let d = FakeDaemon::start("b64");
    let s = &d.socket;
    assert!(
        ipcctl(s, &["send", "mq:q", "--raw"], b"a\xff\x00b")
            .status
            .success()
    );
    assert!(ipcctl(s, &["send", "mq:q", "ok"], b"").status.success());
    let o = ipcctl(s, &["--json", "recv", "mq:q", "--count", "2"], b"");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "{\"message_base64\":\"Yf8AYg==\",\"priority\":0}\n{\"message\":\"ok\",\"priority\":0}\n"
    );
}

#[test]
fn a_line_that_cannot_be_sent_is_named() {
    let d = FakeDaemon::start("lines");
    let s = &d.socket;
    let input = format!("one\ntwo\n{}\nfour\n", "x".repeat(33));
    let o = ipcctl(s, &["send", "mq:q", "--lines"], input.as_bytes());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(
            "ipcctl: stopped at line 3 of standard input, after sending 2 lines: cannot send to mq:q: "
        ),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).ends_with("(too-large)\n"), "{}", stderr(&o));
    // A full queue (capacity 2) stops it the same way, as "nothing in time".
    let o = ipcctl(s, &["send", "mq:q", "--lines", "--nonblock"], b"three\n");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "ipcctl: stopped at line 1 of standard input, after sending 0 lines: mq:q is full (would-block)\n"
    );
    let o = ipcctl(s, &["recv", "mq:q", "--count", "2", "--nonblock"], b"");
    assert_eq!(o.stdout, b"one\ntwo\n");
}

#[test]
fn addresses_and_kinds_are_checked_before_connecting() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for (args, says) in [
        (&["create", "mq:a/b"][..], "invalid name 'a/b' (3 chars)"),
        (&["create", "foo:bar"], "unknown kind 'foo'"),
        (
            &["list", "foo"],
            "unknown kind 'foo' (known kinds: mq, pipe, fifo, shm, ring, sem, lock, event, barrier, signal, queue) (unknown-kind)",
        ),
        (
            &["list", "--kind", "foo"],
            "unknown kind 'foo' (known kinds: mq, pipe, fifo, shm, ring, sem, lock, event, barrier, signal, queue) (unknown-kind)",
        ),
        (
            &["send", "jobs", "hi"],
            "invalid address 'jobs': expected KIND:NAME",
        ),
        (&["recv", "pipe:"], "invalid name ''"),
        (&["stat", "mq:.x"], "invalid name '.x'"),
        (
            &[
                "exec", "--stdin", "pipe:a", "--stdout", "fifo:b c", "--", "true",
            ],
            "invalid name 'b c'",
        ),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with("ipcctl: "),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("connect"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn an_empty_socket_variable_counts_as_unset() {
    let o = ipcctl_env(
        &["ping"],
        b"",
        &[
            ("IPCD_SOCKET", "".as_ref()),
            ("XDG_RUNTIME_DIR", "/nonexistent-runtime".as_ref()),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .starts_with("ipcctl: cannot connect to ipcd at /nonexistent-runtime/ipcd/ipcd.sock"),
        "{}",
        stderr(&o)
    );
    // Conflicts show a usage line without a --socket taken from the environment.
    let o = ipcctl_env(
        &["recv", "mq:q", "--count", "2", "--follow"],
        b"",
        &[("IPCD_SOCKET", "/x.sock".as_ref())],
    );
    assert_eq!(o.status.code(), Some(64));
    assert!(!stderr(&o).contains("--socket"), "{}", stderr(&o));
}

#[test]
fn a_session_object_whose_daemon_goes_away_is_an_error() {
    let d = FakeDaemon::start("sess");
    let o = ipcctl(&d.socket, &["create", "mq:sess", "--session"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("created mq:sess"),
        "{o:?}"
    );
    assert_eq!(
        stderr(&o),
        "ipcctl: ipcd closed the connection; mq:sess (session lifetime) is gone (daemon-gone)\n"
    );
}

#[test]
fn stat_explains_its_counters() {
    let d = FakeDaemon::start("opens");
    let o = ipcctl(&d.socket, &["stat", "mq:q"], b"");
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("opens:        0 (descriptors handed out since ipcd started)"),
        "{text}"
    );
}

#[test]
fn nothing_is_taken_for_an_output_nobody_reads() {
    let d = FakeDaemon::start("gone");
    for m in ["m1", "m2"] {
        assert!(
            ipcctl(&d.socket, &["send", "mq:q", m], b"")
                .status
                .success()
        );
    }
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let status = Command::new(env!("CARGO_BIN_EXE_ipcctl"))
        .args(["recv", "mq:q", "--count", "2"])
        .env("IPCD_SOCKET", &d.socket)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let o = ipcctl(
        &d.socket,
        &["recv", "mq:q", "--count", "2", "--nonblock"],
        b"",
    );
    assert_eq!(o.stdout, b"m1\nm2\n");
}

/// The one JSON document on standard output (a single line), parsed.
fn json_out(o: &Output) -> serde_json::Value {
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "not one line: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The one JSON error document on standard error, parsed.
fn json_err(o: &Output) -> serde_json::Value {
    let text = stderr(o);
    assert_eq!(text.lines().count(), 1, "not one line: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn json_is_one_compact_document_per_command_and_errors_are_json_too() {
    let d = FakeDaemon::start("json");
    let s = &d.socket;
    let o = ipcctl(s, &["--json", "stat", "mq:q"], b"");
    assert_eq!(json_out(&o)["address"], "mq:q");

    // send says what it sent.
    let o = ipcctl(s, &["--json", "send", "mq:q", "hi"], b"");
    assert_eq!(
        json_out(&o),
        serde_json::json!({"sent": "mq:q", "messages": 1, "bytes": 2})
    );
    assert!(ipcctl(s, &["recv", "mq:q"], b"").status.success());
    let o = ipcctl(s, &["send", "mq:q", "--lines", "--json"], b"a\nbb\n");
    assert_eq!(
        json_out(&o),
        serde_json::json!({"sent": "mq:q", "messages": 2, "bytes": 3})
    );
    // Several messages received: one document per message (JSON Lines).
    let o = ipcctl(s, &["--json", "recv", "mq:q", "--count", "2"], b"");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "{\"message\":\"a\",\"priority\":0}\n{\"message\":\"bb\",\"priority\":0}\n"
    );

    // Errors: one document on stderr, the code apart from the message.
    let o = ipcctl(s, &["--json", "stat", "mq:nope"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let e = json_err(&o);
    assert_eq!(e["error"]["code"], "not-found", "{e}");
    assert_eq!(e["error"]["number"], ErrorCode::NotFound.as_u16(), "{e}");
    assert!(
        !e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(not-found)"),
        "{e}"
    );
    let o = ipcctl(s, &["--json", "recv", "mq:q", "--nonblock"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        json_err(&o)["error"],
        serde_json::json!({"code": "would-block", "number": ErrorCode::WouldBlock.as_u16(), "message": "mq:q is empty"})
    );
    // ipcctl's own codes have no number; usage errors are JSON too.
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    let o = ipcctl(nowhere, &["ping", "--json"], b"");
    let e = json_err(&o);
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["number"].as_u64()),
        (Some("not-running"), None)
    );
    let o = ipcctl(nowhere, &["--json", "recv", "mq:q", "--count", "0"], b"");
    assert_eq!(o.status.code(), Some(64));
    let e = json_err(&o);
    assert_eq!(e["error"]["code"], "usage", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 1"),
        "{e}"
    );
}

#[test]
fn every_error_line_ends_with_its_code() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    let d = FakeDaemon::start("shape");
    for (socket, args, code) in [
        (nowhere, &["ping"][..], "not-running"),
        (nowhere, &["recv", "mq:q", "--timeout", "5"], "usage"),
        (nowhere, &["bogus"], "usage"),
        (nowhere, &["stat", "mq:a/b"], "invalid-name"),
        (&d.socket, &["stat", "mq:nope"], "not-found"),
        (&d.socket, &["recv", "mq:q", "--nonblock"], "would-block"),
        (&d.socket, &["send", "mq:q", &"x".repeat(33)], "too-large"),
    ] {
        let o = ipcctl(socket, args, b"");
        let e = stderr(&o);
        let first = e.lines().next().unwrap_or_default();
        assert!(first.starts_with("ipcctl: "), "{args:?}: {e}");
        assert!(first.ends_with(&format!(" ({code})")), "{args:?}: {e}");
        assert_eq!(
            first.matches(&format!("({code})")).count(),
            1,
            "{args:?}: {e}"
        );
    }
}

#[test]
fn a_wrong_kind_is_the_same_error_for_every_verb() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for (args, says) in [
        (
            &["close", "mq:x"][..],
            "close takes pipe: only; mq:x is a message queue",
        ),
        (
            &["close", "fifo:x"],
            "close takes pipe: only; fifo:x is a FIFO",
        ),
        (
            &["path", "pipe:x"],
            "path takes fifo: only; pipe:x is a pipe",
        ),
        (
            &["exec", "--stdin", "mq:x", "--", "cat"],
            "exec --stdin takes pipe: or fifo: only; mq:x is a message queue",
        ),
        (
            &["exec", "--stdin", "pipe:a", "--stdout", "mq:y", "--", "cat"],
            "exec --stdout takes pipe: or fifo: only; mq:y is a message queue",
        ),
        (
            &["wait-for", "pipe:x", "--readable"],
            "wait-for takes mq: only; pipe:x is a pipe",
        ),
    ] {
        // Checked before connecting, so no daemon is needed to hear it.
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!("ipcctl: {says} (wrong-kind)\n"),
            "{args:?}"
        );
    }
}

#[test]
fn flags_that_do_not_apply_are_usage_errors_before_connecting() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for (args, says) in [
        (
            &["create", "pipe:p", "--adopt"][..],
            "--adopt is for mq: and fifo: only",
        ),
        (
            &["create", "mq:q", "--adopt", "--capacity", "5"],
            "an adopted queue keeps its own",
        ),
        (
            &["create", "fifo:f", "--capacity", "10"],
            "--capacity is for mq: and pipe: only",
        ),
        (
            &["create", "mq:q", "--buffered"],
            "--buffered is for fifo: only",
        ),
        (
            &["send", "pipe:p", "hi", "--priority", "3"],
            "--priority applies to mq: only",
        ),
        (
            &["recv", "fifo:f", "--raw", "--count", "2"],
            "--count counts lines",
        ),
        (
            &["--json", "exec", "--stdin", "pipe:a", "--", "true"],
            "--json does not apply to exec",
        ),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(says), "{args:?}: {e}");
        if args.contains(&"--json") {
            assert_eq!(json_err(&o)["error"]["code"], "usage", "{args:?}: {e}");
        } else {
            assert!(e.starts_with("ipcctl: "), "{args:?}: {e}");
            assert!(e.ends_with(" (usage)\n"), "{args:?}: {e}");
        }
    }
}

#[test]
fn connect_errors_say_what_to_check() {
    let dir = std::env::temp_dir().join(format!("ipcctl-connect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("file");
    std::fs::write(&file, b"").unwrap();
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    for (socket, says, code) in [
        (&dir, "it is a directory, not a socket", "not-a-socket"),
        (&file, "it is a regular file, not a socket", "not-a-socket"),
        (&stale, "nothing listens on it", "not-running"),
    ] {
        let o = ipcctl(socket, &["ping"], b"");
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(says), "{e}");
        assert!(e.ends_with(&format!(" ({code})\n")), "{e}");
    }
    // Permission to connect: only another uid can be refused (root never is).
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt as _;
        use std::os::unix::process::CommandExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.join("private.sock");
        let _listener = UnixListener::bind(&socket).unwrap();
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ipcctl"))
            .args(["--socket", socket.to_str().unwrap(), "ping"])
            .uid(65534)
            .gid(65534)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = finish(child, &["ping"]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("socket_mode") && e.contains("socket_group"),
            "{e}"
        );
        assert!(e.ends_with(" (permission-denied)\n"), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn queue_sizes_beyond_linux_s_hard_limits_are_refused_before_asking() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    let o = ipcctl(nowhere, &["create", "mq:big", "--capacity", "65537"], b"");
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("at most 65536 messages"),
        "{}",
        stderr(&o)
    );
    let o = ipcctl(nowhere, &["create", "mq:big", "--msg-size", "17MiB"], b"");
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    // 65536 itself is the daemon's (and the kernel's) to judge.
    let o = ipcctl(nowhere, &["create", "mq:big", "--capacity", "65536"], b"");
    assert!(stderr(&o).ends_with("(not-running)\n"), "{}", stderr(&o));
}

#[test]
fn a_connect_timeout_must_be_a_duration_above_zero() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for args in [
        &["--connect-timeout", "0s", "ping"][..],
        &["ping", "--connect-timeout", "soon"],
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
    }
    let env = |value: &str| {
        ipcctl_env(
            &["ping"],
            b"",
            &[
                ("IPCD_SOCKET", nowhere.as_os_str()),
                ("IPCCTL_CONNECT_TIMEOUT", value.as_ref()),
            ],
        )
    };
    let o = env("soon");
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("ipcctl: IPCCTL_CONNECT_TIMEOUT='soon': "),
        "{}",
        stderr(&o)
    );
    // Empty counts as unset; the flag is read before the variable.
    for o in [
        env(""),
        ipcctl_env(
            &["--connect-timeout", "1s", "ping"],
            b"",
            &[
                ("IPCD_SOCKET", nowhere.as_os_str()),
                ("IPCCTL_CONNECT_TIMEOUT", "soon".as_ref()),
            ],
        ),
    ] {
        assert!(stderr(&o).ends_with("(not-running)\n"), "{}", stderr(&o));
    }
}

#[test]
fn exec_s_child_runs_nothing_for_an_ipcctl_that_is_gone() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    // Started by this test, not by the ipcctl whose pid it was given.
    let o = ipcctl(
        nowhere,
        &["exec-child", "--parent-pid", "1", "--", "echo", "ran"],
        b"",
    );
    assert_eq!(o.status.code(), Some(128 + 9), "{}", stderr(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{o:?}");
    let me = std::process::id().to_string();
    let o = ipcctl(
        nowhere,
        &["exec-child", "--parent-pid", &me, "--", "echo", "ran"],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"ran\n");
}

#[test]
fn sync_verbs_check_kinds_and_flags_before_connecting() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for (args, code, says) in [
        (
            &["acquire", "event:e"][..],
            2,
            "acquire takes sem: or lock: only; event:e is an event (wrong-kind)",
        ),
        (&["release", "mq:q"], 2, "(wrong-kind)"),
        (&["with", "barrier:b", "--", "true"], 2, "(wrong-kind)"),
        (&["set", "lock:l"], 2, "set takes event: only"),
        (&["clear", "sem:s"], 2, "(wrong-kind)"),
        (&["wait", "sem:s"], 2, "wait takes event: or barrier: only"),
        (&["reset", "event:e"], 2, "reset takes barrier: only"),
        (
            &["acquire", "lock:l", "--nonblock", "--timeout", "1s"],
            64,
            "cannot be used with",
        ),
        (&["with", "lock:l"], 64, "(usage)"),
        (
            &["--json", "with", "lock:l", "--", "true"],
            64,
            "--json does not apply to with",
        ),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("connect"), "{args:?}: {}", stderr(&o));
    }
    for verb in [
        "acquire", "release", "with", "set", "clear", "wait", "reset",
    ] {
        let o = ipcctl(nowhere, &[verb, "--help"], b"");
        assert_eq!(o.status.code(), Some(0), "{verb}");
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.contains("Example"), "{verb}: {help}");
        assert!(help.contains("Exit status"), "{verb}: {help}");
    }
    let o = ipcctl(nowhere, &["acquire", "--help"], b"");
    assert!(String::from_utf8_lossy(&o.stdout).contains("given back"));
}
