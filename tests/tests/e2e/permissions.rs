//! Per-object permissions checked against the caller's socket credentials:
//! another uid (65534) is denied unless the mode grants it.

use std::process::Command;

use ipcd_tests::TestDaemon;

const NOBODY: u32 = 65534;

fn as_nobody(d: &TestDaemon, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(ipcd_tests::ipcctl_bin());
    cmd.arg("--socket")
        .arg(&d.socket)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .env_remove("IPCD_SOCKET");
    ipcd_tests::run_with_timeout(&mut cmd)
}

use std::os::unix::process::CommandExt;

fn assert_denied(out: &std::process::Output, what: &str) {
    assert_eq!(out.status.code(), Some(2), "{what}: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{what}: {out:?}"
    );
}

#[test]
fn another_uid_is_denied_a_private_queue() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "mq:private"]);
    d.ipcctl_ok(&["send", "mq:private", "secret"]);
    assert_denied(
        &as_nobody(&d, &["recv", "mq:private", "--nonblock"]),
        "recv",
    );
    assert_denied(&as_nobody(&d, &["send", "mq:private", "x"]), "send");
    assert_denied(&as_nobody(&d, &["stat", "mq:private"]), "stat");
    assert_denied(&as_nobody(&d, &["delete", "mq:private"]), "delete");
    let list = as_nobody(&d, &["list"]);
    assert!(list.status.success(), "{list:?}");
    assert!(!String::from_utf8_lossy(&list.stdout).contains("mq:private"));
    // Nothing was lost: the owner still receives the message.
    assert_eq!(
        d.ipcctl_ok(&["recv", "mq:private", "--nonblock"]),
        "secret\n"
    );
    d.ipcctl_ok(&["delete", "mq:private"]);
}

#[test]
fn mode_bits_grant_exactly_what_they_say() {
    let d = TestDaemon::start();
    // Others may send but not receive.
    d.ipcctl_ok(&["create", "mq:dropbox", "--mode", "0602"]);
    let out = as_nobody(&d, &["send", "mq:dropbox", "from nobody"]);
    assert!(out.status.success(), "{out:?}");
    assert_denied(
        &as_nobody(&d, &["recv", "mq:dropbox", "--nonblock"]),
        "recv",
    );
    assert_eq!(
        d.ipcctl_ok(&["recv", "mq:dropbox", "--nonblock"]),
        "from nobody\n"
    );
    d.ipcctl_ok(&["delete", "mq:dropbox"]);

    // An object created by nobody belongs to nobody; root may still delete it.
    let out = as_nobody(&d, &["create", "mq:theirs"]);
    assert!(out.status.success(), "{out:?}");
    let stat: serde_json::Value =
        serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", "mq:theirs"])).unwrap();
    assert_eq!(stat["owner_uid"], NOBODY);
    let out = as_nobody(&d, &["delete", "mq:theirs"]);
    assert!(out.status.success(), "{out:?}");
}
