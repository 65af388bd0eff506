//! `fifo:` — named pipes in the daemon's runtime directory: plain-shell interop
//! through the path, standard and buffered semantics, restart and deletion.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ipcd_tests::{TestDaemon, eventually, run_with_timeout, wait_timeout};

fn sh(script: &str, path: &std::path::Path) -> std::process::Output {
    run_with_timeout(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(path),
    )
}

#[test]
fn shell_interop_through_the_path() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "fifo:f", "--mode", "0600"]);
    let path = d.ipcctl_ok(&["path", "fifo:f"]);
    assert_eq!(std::path::Path::new(path.trim()), d.fifo_path("f"));
    let stat: serde_json::Value =
        serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", "fifo:f"])).unwrap();
    assert_eq!(stat["path"], path.trim(), "{stat}");

    // echo > path is received by ipcctl recv.
    let receiver = d
        .ipcctl()
        .args(["recv", "fifo:f", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = sh("echo hi from sh > \"$1\"", &d.fifo_path("f"));
    assert!(out.status.success(), "{out:?}");
    let got = receiver.wait_with_output().unwrap();
    assert!(got.status.success(), "{got:?}");
    assert_eq!(String::from_utf8_lossy(&got.stdout), "hi from sh\n");

    // ipcctl send is read by cat.
    let fifo = d.fifo_path("f");
    let cat = std::thread::spawn(move || sh("cat \"$1\"", &fifo));
    d.ipcctl_ok(&["send", "fifo:f", "hi from ipcctl", "--timeout", "20s"]);
    let out = cat.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from ipcctl\n");
    d.ipcctl_ok(&["delete", "fifo:f"]);
    assert!(!d.fifo_path("f").exists(), "delete must unlink the FIFO");
}

#[test]
fn a_writer_waits_for_a_reader_until_its_timeout() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "fifo:lonely"]);
    let started = Instant::now();
    let out = d.run_ipcctl(&["send", "fifo:lonely", "anyone?", "--timeout", "200ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    let out = d.run_ipcctl(&["send", "fifo:lonely", "anyone?", "--nonblock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    d.ipcctl_ok(&["delete", "fifo:lonely"]);
}

#[test]
fn buffered_fifos_keep_messages_until_a_reader_comes_and_survive_restarts() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&["create", "fifo:box", "--buffered"]);
    d.ipcctl_ok(&["send", "fifo:box", "waiting for you", "--nonblock"]);
    let stat: serde_json::Value =
        serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", "fifo:box"])).unwrap();
    assert_eq!(stat["buffered"], true, "{stat}");
    assert_eq!(
        d.ipcctl_ok(&["recv", "fifo:box", "--timeout", "5s"]),
        "waiting for you\n"
    );
    d.ipcctl_ok(&["create", "fifo:plain"]);
    d.kill9();
    d.restart();
    let list = d.ipcctl_ok(&["list"]);
    assert!(
        list.contains("fifo:box") && list.contains("fifo:plain"),
        "{list}"
    );
    // Still buffered after the restart.
    d.ipcctl_ok(&["send", "fifo:box", "after restart", "--nonblock"]);
    assert_eq!(
        d.ipcctl_ok(&["recv", "fifo:box", "--timeout", "5s"]),
        "after restart\n"
    );
    d.ipcctl_ok(&["delete", "fifo:box"]);
    d.ipcctl_ok(&["delete", "fifo:plain"]);
}

#[test]
fn delete_while_a_reader_waits_ends_the_wait() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "fifo:gone"]);
    let spawn = |args: &[&str]| {
        d.ipcctl()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut reader = spawn(&["recv", "fifo:gone", "--timeout", "60s"]);
    let mut raw_reader = spawn(&["recv", "--raw", "fifo:gone", "--timeout", "60s"]);
    eventually("both readers to open the FIFO", || {
        let stat: serde_json::Value =
            serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", "fifo:gone"])).unwrap();
        stat["readers_opened"] == 2
    });
    d.ipcctl_ok(&["delete", "fifo:gone"]);
    for r in [&mut reader, &mut raw_reader] {
        let status = wait_timeout(r, Duration::from_secs(10)).expect("reader hung after delete");
        assert_eq!(
            status.code(),
            Some(2),
            "a deleted FIFO is an error: {status}"
        );
    }
}

#[test]
fn fifo_names_and_kinds_are_checked() {
    let d = TestDaemon::start();
    let out = d.run_ipcctl(&["create", "fifo:../escape"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!d.dir().join("escape").exists());
    d.ipcctl_ok(&["create", "fifo:once"]);
    let out = d.run_ipcctl(&["create", "fifo:once"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = d.run_ipcctl(&["close", "fifo:once"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "only pipes can be closed: {out:?}"
    );
    d.ipcctl_ok(&["delete", "fifo:once"]);
}
