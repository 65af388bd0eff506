//! Daemon lifecycle: restart after kill -9, SIGTERM, a second daemon, session
//! lifetime, SIGHUP and SIGUSR1.

use std::time::Duration;

use ipcd_tests::raw::RawConn;
use ipcd_tests::{TestDaemon, eventually};
use nix::sys::signal::Signal;
use protocol::{CreateSpec, KindParams, Lifetime, MqParams, Outcome, Request, ServerFrame};

#[test]
fn kill_9_and_restart_keeps_objects_owner_mode_and_messages() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&[
        "create",
        "mq:durable",
        "--mode",
        "0640",
        "--capacity",
        "5",
        "--msg-size",
        "256",
    ]);
    d.ipcctl_ok(&["send", "mq:durable", "survives", "--priority", "3"]);
    let before = d.ipcctl_ok(&["--json", "stat", "mq:durable"]);
    d.kill9();
    assert!(d.socket.exists(), "kill -9 leaves a stale socket behind");
    d.restart();
    assert!(d.ipcctl_ok(&["list"]).contains("mq:durable"));
    let after = d.ipcctl_ok(&["--json", "stat", "mq:durable"]);
    let (before, after): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&before).unwrap(),
        serde_json::from_str(&after).unwrap(),
    );
    for key in [
        "owner_uid",
        "owner_gid",
        "mode",
        "created_at_ms",
        "kernel_name",
    ] {
        assert_eq!(before[key], after[key], "{key} changed across the restart");
    }
    assert_eq!(
        d.ipcctl_ok(&["--json", "recv", "mq:durable", "--nonblock"])
            .trim(),
        r#"{"message":"survives","priority":3}"#
    );
    d.ipcctl_ok(&["delete", "mq:durable"]);
}

#[test]
fn sigterm_exits_0_removes_socket_and_keeps_objects() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:kept"]);
    d.ipcctl_ok(&["send", "mq:kept", "hello"]);
    let status = d.terminate();
    assert!(status.success(), "{status}");
    assert!(!d.socket.exists(), "socket must be removed on SIGTERM");
    d.restart();
    assert_eq!(d.ipcctl_ok(&["recv", "mq:kept", "--nonblock"]), "hello\n");
    d.ipcctl_ok(&["delete", "mq:kept"]);
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_to_start() {
    let d = TestDaemon::start();
    let out = ipcd_tests::run_with_timeout(
        std::process::Command::new(ipcd_tests::ipcd_bin())
            .arg("--socket")
            .arg(&d.socket)
            .arg("--state-dir")
            .arg(d.dir().join("other-state")),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already listening"),
        "{out:?}"
    );
    d.ipcctl_ok(&["ping"]);
}

#[test]
fn session_objects_vanish_with_their_connection() {
    let d = TestDaemon::start();
    let mut owner = RawConn::connect_hello(&d.socket);
    let spec = CreateSpec {
        mode: None,
        lifetime: Lifetime::Session,
        adopt: false,
        params: KindParams::Mq(MqParams::default()),
    };
    let reply = owner.request(Request::Create {
        address: "mq:ephemeral".into(),
        spec,
    });
    assert!(
        matches!(
            reply,
            ServerFrame::Response {
                result: Outcome::Ok(_),
                ..
            }
        ),
        "{reply:?}"
    );
    assert!(d.ipcctl_ok(&["list"]).contains("mq:ephemeral"));
    let kernel = d.mq_kernel_name("ephemeral");
    drop(owner);
    eventually("session object removed", || {
        !d.ipcctl_ok(&["list"]).contains("mq:ephemeral")
    });
    let gone = nix::mqueue::mq_open(
        kernel.as_str(),
        nix::mqueue::MQ_OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
        None,
    );
    assert_eq!(
        gone.err(),
        Some(nix::errno::Errno::ENOENT),
        "kernel queue must be unlinked"
    );
}

#[test]
fn sighup_rereads_config_and_sigusr1_dumps_status() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:dumped"]);
    std::fs::write(
        d.dir().join("ipcd.toml"),
        "socket_mode = \"0666\"\nmax_connections = 7\n",
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    eventually("reload logged", || {
        d.log().contains("max_connections: 1024 -> 7")
    });
    eventually("new limit in force", || {
        let status = d.ipcctl_ok(&["--json", "status"]);
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        status["limits"]["max_connections"] == 7
    });
    d.signal(Signal::SIGUSR1);
    eventually("status dump logged", || {
        d.log().contains("object mq:dumped")
    });
    // A broken config file keeps the old one.
    std::fs::write(d.dir().join("ipcd.toml"), "max_connections = \"many\"\n").unwrap();
    d.signal(Signal::SIGHUP);
    eventually("bad config reported", || {
        d.log().contains("keeping the old configuration")
    });
    d.ipcctl_ok(&["delete", "mq:dumped"]);
}

#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_and_leaves_no_socket() {
    let d = TestDaemon::start();
    let other_socket = d.dir().join("other.sock");
    let out = ipcd_tests::run_with_timeout(
        std::process::Command::new(ipcd_tests::ipcd_bin())
            .arg("--socket")
            .arg(&other_socket)
            .arg("--state-dir")
            .arg(&d.state_dir),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another ipcd is using the state directory"),
        "{out:?}"
    );
    assert!(
        !other_socket.exists(),
        "a failed start must remove its socket"
    );
    d.ipcctl_ok(&["ping"]);
}

#[test]
fn a_daemon_that_dies_is_not_mistaken_for_end_of_file() {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut d = TestDaemon::start();
    for create in [
        &["create", "pipe:lines"][..],
        &["create", "pipe:raw"],
        &["create", "pipe:exec"],
        &["create", "fifo:box", "--buffered"],
    ] {
        d.ipcctl_ok(create);
    }
    d.ipcctl_ok(&["send", "pipe:lines", "before"]);
    let readers: Vec<(&str, std::process::Child)> = [
        ("pipe:lines", &["recv", "pipe:lines", "--count", "2"][..]),
        ("pipe:raw", &["recv", "--raw", "pipe:raw"]),
        ("pipe:exec", &["exec", "--stdin", "pipe:exec", "--", "cat"]),
        ("fifo:box", &["recv", "fifo:box"]),
    ]
    .into_iter()
    .map(|(address, args)| {
        let child = d
            .ipcctl()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (address, child)
    })
    .collect();
    for (address, _) in &readers {
        eventually(&format!("a reader on {address}"), || {
            let stat = d.ipcctl_ok(&["--json", "stat", address]);
            let stat: serde_json::Value = serde_json::from_str(&stat).unwrap();
            stat["readers_opened"] == 1
        });
    }
    // The one line that came first is received; then ipcd dies under them all.
    eventually("the first line received", || {
        let stat = d.ipcctl_ok(&["--json", "stat", "pipe:lines"]);
        let stat: serde_json::Value = serde_json::from_str(&stat).unwrap();
        stat["buffered_bytes"] == 0
    });
    d.kill9();
    for (address, mut child) in readers {
        let status = ipcd_tests::wait_timeout(&mut child, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("the reader of {address} hung after ipcd died"));
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{address}: {stderr}");
        assert!(
            stderr.starts_with("ipcctl: ipcd stopped while ")
                && stderr.contains(address)
                && stderr.ends_with("; data buffered in the daemon is lost (daemon-gone)\n"),
            "{address}: {stderr}"
        );
        if address == "pipe:lines" {
            let mut stdout = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
            assert_eq!(stdout, "before\n");
        }
    }
    assert_eq!(
        d.run_ipcctl(&["recv", "pipe:lines"]).status.code(),
        Some(2),
        "no daemon, no receiving"
    );
    // Pipes die with ipcd; the buffered FIFO is re-adopted.
    d.restart();
    d.ipcctl_ok(&["delete", "fifo:box"]);
}
