//! The fd store across a restart, with a stand-in manager that keeps the
//! descriptors ipcd hands over (`FDSTORE=1`, `FDNAME=`) and passes them back
//! at the next start the way systemd does (`LISTEN_FDS`, `LISTEN_FDNAMES`,
//! through the `fd-exec` helper), beside the listening socket: a hosted pipe
//! and the bytes in it survive, so do a buffered FIFO's bytes; deleting or
//! closing gives descriptors back (`FDSTOREREMOVE=1`); `--fd-store-max`
//! bounds the store; without the store the pipe is forgotten as before.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use ipcd_tests::service::{Manager, spawn_with_fds};
use ipcd_tests::wait_timeout;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{ipcctl_ok, ipcd_in, prefix, temp_dir};

const WAIT: Duration = Duration::from_secs(20);
const FD_EXEC: &str = env!("CARGO_BIN_EXE_fd-exec");

/// Starts ipcd through `fd-exec` with `fds` (the listener first, as
/// `ipcd.socket`), the manager's socket and an fd store of `max`; waits for READY=1.
fn start(dir: &Path, manager: &mut Manager, max: &str, fds: &[(String, RawFd)]) -> Child {
    let mut cmd = ipcd_in(dir, &prefix("fs"));
    cmd.arg("--fd-store-max")
        .arg(max)
        .env("NOTIFY_SOCKET", &manager.path);
    let child = spawn_with_fds(FD_EXEC, &cmd, fds, &dir.join("ipcd.log"));
    manager.wait_for("READY=1", WAIT, |n| n.iter().any(|l| l == "READY=1"));
    child
}

fn stop(mut child: Child, dir: &Path) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_timeout(&mut child, WAIT).unwrap_or_else(|| {
        panic!(
            "ipcd ignored SIGTERM:\n{}",
            std::fs::read_to_string(dir.join("ipcd.log")).unwrap_or_default()
        )
    });
    assert!(status.success(), "{status}");
}

/// Reads notifications until the store holds exactly `names`.
fn store_settles(manager: &mut Manager, names: &[&str]) {
    let want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let deadline = std::time::Instant::now() + WAIT;
    while manager.stored_names() != want {
        assert!(
            std::time::Instant::now() < deadline,
            "the fd store holds {:?}, not {want:?}; notices: {:?}",
            manager.stored_names(),
            manager.notices
        );
        manager.next(Duration::from_millis(100));
    }
}

#[test]
fn pipes_and_buffered_fifo_bytes_survive_a_restart_through_the_fd_store() {
    let dir = temp_dir();
    let socket = dir.path().join("ipcd.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let with_listener = |stored: Vec<(String, RawFd)>| {
        let mut fds = vec![("ipcd.socket".to_owned(), listener.as_raw_fd())];
        fds.extend(stored);
        fds
    };
    let mut manager = Manager::bind(dir.path());
    let child = start(dir.path(), &mut manager, "64", &with_listener(Vec::new()));

    ipcctl_ok(&socket, &["create", "pipe:kept"]);
    ipcctl_ok(
        &socket,
        &["send", "pipe:kept", "written before the restart"],
    );
    ipcctl_ok(&socket, &["create", "fifo:box", "--buffered"]);
    ipcctl_ok(
        &socket,
        &["send", "fifo:box", "waiting in the fifo", "--nonblock"],
    );
    ipcctl_ok(&socket, &["create", "pipe:shut"]);
    ipcctl_ok(&socket, &["send", "pipe:shut", "last words"]);
    ipcctl_ok(&socket, &["create", "pipe:gone"]);
    ipcctl_ok(&socket, &["create", "event:flag"]); // nothing to store for it
    store_settles(
        &mut manager,
        &[
            "fifo.hold.box",
            "pipe.r.gone",
            "pipe.r.kept",
            "pipe.r.shut",
            "pipe.w.gone",
            "pipe.w.kept",
            "pipe.w.shut",
        ],
    );
    // Deleting gives both ends back; closing gives the write end back.
    ipcctl_ok(&socket, &["delete", "pipe:gone"]);
    ipcctl_ok(&socket, &["close", "pipe:shut"]);
    let kept = ["fifo.hold.box", "pipe.r.kept", "pipe.r.shut", "pipe.w.kept"];
    store_settles(&mut manager, &kept);

    stop(child, dir.path());
    // ipcd has exited; the manager still holds the pipes and the FIFO's end.
    let passed = with_listener(manager.stored());
    let child = start(dir.path(), &mut manager, "64", &passed);
    let log = std::fs::read_to_string(dir.path().join("ipcd.log")).unwrap();
    assert!(
        log.contains("descriptors given back by the fd store"),
        "{log}"
    );
    assert_eq!(
        ipcctl_ok(&socket, &["recv", "pipe:kept"]).trim(),
        "written before the restart"
    );
    assert_eq!(
        ipcctl_ok(&socket, &["recv", "fifo:box"]).trim(),
        "waiting in the fifo"
    );
    // The closed pipe is still closed: its last line, then end of file.
    let stat = ipcctl_ok(&socket, &["--json", "stat", "pipe:shut"]);
    let stat: serde_json::Value = serde_json::from_str(&stat).unwrap();
    assert_eq!(stat["closed"], true, "{stat}");
    assert_eq!(
        ipcctl_ok(&socket, &["recv", "pipe:shut"]).trim(),
        "last words"
    );
    assert!(!ipcctl_ok(&socket, &["list"]).contains("pipe:gone"));
    // The store was not sent the same descriptors twice.
    store_settles(&mut manager, &kept);
    // New objects after the restart are stored too.
    ipcctl_ok(&socket, &["create", "pipe:new"]);
    let mut after: Vec<&str> = kept.to_vec();
    after.extend(["pipe.r.new", "pipe.w.new"]);
    after.sort();
    store_settles(&mut manager, &after);

    // Started without the stored descriptors, ipcd forgets the pipes (they
    // died with the process) and keeps the FIFO, empty.
    ipcctl_ok(&socket, &["send", "pipe:kept", "lost with the store"]);
    stop(child, dir.path());
    std::fs::create_dir(dir.path().join("bare")).unwrap();
    let mut bare = Manager::bind(&dir.path().join("bare"));
    let child = start(dir.path(), &mut bare, "64", &with_listener(Vec::new()));
    let list = ipcctl_ok(&socket, &["list"]);
    assert!(
        !list.contains("pipe:kept") && !list.contains("pipe:new"),
        "{list}"
    );
    assert!(
        list.contains("fifo:box") && list.contains("event:flag"),
        "{list}"
    );
    ipcctl_ok(&socket, &["delete", "fifo:box", "event:flag"]);
    stop(child, dir.path());
}

#[test]
fn fd_store_max_bounds_what_ipcd_hands_over() {
    let dir = temp_dir();
    let socket = dir.path().join("ipcd.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut manager = Manager::bind(dir.path());
    let fds = [("ipcd.socket".to_owned(), listener.as_raw_fd())];
    let child = start(dir.path(), &mut manager, "3", &fds);
    ipcctl_ok(&socket, &["create", "pipe:one"]);
    store_settles(&mut manager, &["pipe.r.one", "pipe.w.one"]);
    // Room for one more descriptor, not for a pipe's two: the write end waits outside.
    ipcctl_ok(&socket, &["create", "pipe:two"]);
    store_settles(&mut manager, &["pipe.r.one", "pipe.r.two", "pipe.w.one"]);
    let log = std::fs::read_to_string(dir.path().join("ipcd.log")).unwrap();
    assert!(log.contains("the fd store is full"), "{log}");
    // Deleting the first makes room again for new objects.
    ipcctl_ok(&socket, &["delete", "pipe:one", "pipe:two"]);
    store_settles(&mut manager, &[]);
    ipcctl_ok(&socket, &["create", "pipe:three"]);
    store_settles(&mut manager, &["pipe.r.three", "pipe.w.three"]);
    ipcctl_ok(&socket, &["delete", "pipe:three"]);
    stop(child, dir.path());

    // Without --fd-store-max (and no $FDSTORE) nothing is handed over.
    std::fs::create_dir(dir.path().join("off")).unwrap();
    let mut manager = Manager::bind(&dir.path().join("off"));
    let mut cmd = ipcd_in(dir.path(), &prefix("fs"));
    cmd.env("NOTIFY_SOCKET", &manager.path);
    let child = spawn_with_fds(FD_EXEC, &cmd, &fds, &dir.path().join("ipcd.log"));
    manager.wait_for("READY=1", WAIT, |n| n.iter().any(|l| l == "READY=1"));
    ipcctl_ok(&socket, &["create", "pipe:four"]);
    let said = manager.during(Duration::from_millis(500));
    assert!(
        said.iter().flatten().all(|l| !l.starts_with("FDSTORE")),
        "{said:?}"
    );
    ipcctl_ok(&socket, &["delete", "pipe:four"]);
    stop(child, dir.path());
}
