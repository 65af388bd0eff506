//! Per-object permissions checked against the caller's socket credentials:
//! another uid (65534) is denied unless the mode grants it.

use std::process::Command;

use ipcd_tests::TestDaemon;

const NOBODY: u32 = 65534;

pub(crate) fn as_nobody(d: &TestDaemon, args: &[&str]) -> std::process::Output {
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

pub(crate) fn assert_denied(out: &std::process::Output, what: &str) {
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

#[test]
fn delete_takes_several_addresses_and_all_means_all_of_yours() {
    let d = TestDaemon::start();
    for address in ["mq:a", "pipe:b", "fifo:c", "fifo:d", "mq:e"] {
        d.ipcctl_ok(&["create", address]);
    }
    let out = as_nobody(&d, &["create", "mq:theirs"]);
    assert!(out.status.success(), "{out:?}");

    // Several addresses: deleted in order, quietly.
    assert_eq!(d.ipcctl_ok(&["delete", "mq:a", "pipe:b"]), "");
    let list = d.ipcctl_ok(&["list"]);
    assert!(!list.contains("mq:a") && !list.contains("pipe:b"), "{list}");
    // The first that cannot be deleted stops it, and says what went before.
    let out = d.run_ipcctl(&["delete", "fifo:c", "mq:a", "mq:e"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ipcctl: cannot delete mq:a (after deleting fifo:c): ")
            && err.ends_with("(not-found)\n"),
        "{err}"
    );

    // --all --kind: one JSON document naming what went.
    d.ipcctl_ok(&["create", "fifo:c"]);
    let out = d.ipcctl_ok(&["--json", "delete", "--all", "--kind", "fifo"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut deleted: Vec<&str> = doc["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["fifo:c", "fifo:d"]);
    // --all: every object of the caller's, none of anyone else's.
    assert_eq!(d.ipcctl_ok(&["delete", "--all"]), "deleted mq:e\n");
    assert_eq!(d.ipcctl_ok(&["delete", "--all"]), "nothing to delete\n");
    assert!(d.ipcctl_ok(&["list"]).contains("mq:theirs"));
    let out = as_nobody(&d, &["delete", "--all", "--json"]);
    assert_eq!(out.stdout, b"{\"deleted\":[\"mq:theirs\"]}\n", "{out:?}");

    for args in [
        &["delete"][..],
        &["delete", "--kind", "mq"],
        &["delete", "--all", "mq:x"],
    ] {
        assert_eq!(d.run_ipcctl(args).status.code(), Some(64), "{args:?}");
    }
}
