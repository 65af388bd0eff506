//! Support for the service tests (`e2e/service/`): where the repository and
//! the systemd tools are, and [`Manager`], a stand-in for systemd's side of
//! `sd_notify(3)` — a notification socket that records what ipcd says and
//! keeps the descriptors it hands over (`FDSTORE=1`), to pass them back at
//! the next start through `fd-exec` ([`spawn_with_fds`]).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_owned()
}

/// The path of `name` on `$PATH`; `None`, after printing why the calling
/// test is skipped, when it is not installed.
pub fn tool(name: &str, test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipped {test}: {name} is not installed");
    }
    found
}

/// One notification: its `KEY=value` lines.
pub type Notice = Vec<String>;

/// A stand-in service manager: the notification socket, everything said on
/// it, and an fd store.
pub struct Manager {
    /// The socket's path, for `NOTIFY_SOCKET`.
    pub path: PathBuf,
    socket: UnixDatagram,
    /// Every notification received, in order.
    pub notices: Vec<Notice>,
    /// The fd store: descriptors by `FDNAME`, in the order they came
    /// (received with `MSG_CMSG_CLOEXEC`, closed when removed or dropped).
    store: Vec<(String, RawFd)>,
}

impl Manager {
    /// Binds the socket at `dir/notify`.
    pub fn bind(dir: &Path) -> Self {
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Manager {
            path,
            socket,
            notices: Vec::new(),
            store: Vec::new(),
        }
    }

    /// Receives one notification within `timeout`, acting on `FDSTORE=1` and
    /// `FDSTOREREMOVE=1` as systemd does.
    pub fn next(&mut self, timeout: Duration) -> Option<Notice> {
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("timeout");
        let mut buf = vec![0u8; 65536];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 16]);
        let (len, raw) = {
            let msg = recvmsg::<()>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .ok()?;
            let mut raw = Vec::new();
            for cmsg in msg.cmsgs().expect("control messages") {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    raw.extend(fds);
                }
            }
            (msg.bytes, raw)
        };
        let fds = raw;
        let notice: Notice = String::from_utf8_lossy(&buf[..len])
            .lines()
            .map(str::to_owned)
            .collect();
        let name = notice
            .iter()
            .find_map(|l| l.strip_prefix("FDNAME="))
            .unwrap_or("stored")
            .to_owned();
        if notice.iter().any(|l| l == "FDSTORE=1") {
            self.store
                .extend(fds.into_iter().map(|fd| (name.clone(), fd)));
        } else if !fds.is_empty() {
            // Descriptors sent without FDSTORE=1 are not kept (systemd closes them).
            for fd in fds {
                let _ = nix::unistd::close(fd);
            }
        }
        if notice.iter().any(|l| l == "FDSTOREREMOVE=1") {
            self.store.retain(|(n, fd)| {
                let keep = *n != name;
                if !keep {
                    let _ = nix::unistd::close(*fd);
                }
                keep
            });
        }
        self.notices.push(notice.clone());
        Some(notice)
    }

    /// Receives until a notification satisfies `check`; panics naming `what`
    /// after `timeout`.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Notice) -> bool,
    ) -> Notice {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {what} within {timeout:?}; received: {:?}",
                self.notices
            );
            if let Some(n) = self.next(left)
                && check(&n)
            {
                return n;
            }
        }
    }

    /// Everything received during `span`.
    pub fn during(&mut self, span: Duration) -> Vec<Notice> {
        let deadline = Instant::now() + span;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return got;
            }
            got.extend(self.next(left));
        }
    }

    /// The names in the fd store, sorted.
    pub fn stored_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.store.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }

    /// The fd store's descriptors with their names, for the next start.
    pub fn stored(&self) -> Vec<(String, RawFd)> {
        self.store.iter().map(|(n, fd)| (n.clone(), *fd)).collect()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        for (_, fd) in self.store.drain(..) {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Starts `cmd` the way a service manager does with descriptors: through
/// `fd_exec` (the `fd-exec` helper), which puts `fds` at 3, 4, … and sets
/// `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID` before it becomes `cmd`.
/// Standard error is appended to `log`.
pub fn spawn_with_fds(fd_exec: &str, cmd: &Command, fds: &[(String, RawFd)], log: &Path) -> Child {
    let mut outer = Command::new(fd_exec);
    outer.arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => outer.env(key, v),
            None => outer.env_remove(key),
        };
    }
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let child = outer
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn fd-exec");
    let names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
    let raw: Vec<RawFd> = fds.iter().map(|(_, fd)| *fd).collect();
    let names = names.join(":");
    // At least one byte goes with the descriptors.
    let payload = if names.is_empty() {
        " "
    } else {
        names.as_str()
    };
    sendmsg::<()>(
        ours.as_raw_fd(),
        &[IoSlice::new(payload.as_bytes())],
        &[ControlMessage::ScmRights(&raw)],
        MsgFlags::empty(),
        None,
    )
    .expect("send the descriptors to fd-exec");
    child
}
