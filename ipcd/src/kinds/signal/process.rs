//! Processes ipcd signals for its clients: a channel's deliveries and
//! `Request::Kill`. Each is opened as a pidfd, so a pid reused after the
//! process exits is never signalled, and checked to be the caller's own as
//! `kill(2)` checks it (the caller's uid is the process's real or saved uid;
//! root: any), so ipcd lets nobody signal what they could not signal themselves.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use protocol::kinds::signal::{is_valid_signal, signal_name};
use tracing::info;

use crate::error::RequestError;
use crate::peer::Peer;
use crate::sys::pidfd;

/// A process opened as a pidfd, checked to be one the caller may signal.
#[derive(Debug)]
pub struct Target {
    /// Its pid when opened.
    pub pid: i32,
    /// Its real uid.
    pub uid: u32,
    /// The pidfd.
    pub fd: OwnedFd,
}

/// `invalid-argument` unless `signal` is a signal number.
pub fn check_signal(signal: i32) -> Result<(), RequestError> {
    if is_valid_signal(signal) {
        Ok(())
    } else {
        Err(RequestError::InvalidArgument(format!(
            "{signal} is not a signal: use 1 to 31, or {} to {}",
            protocol::kinds::signal::SIGRTMIN,
            protocol::kinds::signal::SIGRTMAX
        )))
    }
}

fn no_process(pid: i32) -> RequestError {
    RequestError::KernelObjectMissing(format!("no process with pid {pid}"))
}

/// The real and saved uids of `pid`, from `/proc/PID/status`.
pub fn uids(pid: i32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let ids: Vec<u32> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    Some((*ids.first()?, *ids.get(2)?))
}

/// Whether the process a pidfd names is still running (its pidfd is not yet readable).
pub fn alive(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => true,
        Ok(_) => !fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

impl Target {
    /// Opens `pid` for `caller`, or says why not: `not-found` (no such
    /// process), `permission-denied` (another uid's).
    pub fn open(pid: i32, caller: &Peer) -> Result<Target, RequestError> {
        if pid <= 0 {
            return Err(RequestError::InvalidArgument(format!(
                "pid {pid} is not a process id (groups and 'every process' are not signalled)"
            )));
        }
        let fd = pidfd::pidfd_open(pid).map_err(|e| match e {
            Errno::ESRCH => no_process(pid),
            e => RequestError::os(format!("pidfd_open {pid}"), e),
        })?;
        // Read after the pidfd is open and checked alive after: if the
        // process is still there, the uids read were its own (the pid could
        // not have been reused in between).
        let (real, saved) = uids(pid).ok_or_else(|| no_process(pid))?;
        if !alive(&fd) {
            return Err(no_process(pid));
        }
        if !caller.is_root() && caller.uid != real && caller.uid != saved {
            return Err(RequestError::PermissionDenied(format!(
                "uid {} may not signal pid {pid}, a process of uid {real} (only its own \
                 processes; root: any)",
                caller.uid
            )));
        }
        Ok(Target { pid, uid: real, fd })
    }

    /// Sends `signal` through the pidfd.
    pub fn send(&self, signal: i32) -> Result<(), RequestError> {
        send(&self.fd, self.pid, signal)
    }
}

/// Sends `signal` to the process `fd` names (`pid` for messages).
pub fn send(fd: &OwnedFd, pid: i32, signal: i32) -> Result<(), RequestError> {
    pidfd::pidfd_send_signal(fd.as_fd(), signal).map_err(|e| match e {
        Errno::ESRCH => no_process(pid),
        Errno::EPERM => RequestError::PermissionDenied(format!(
            "ipcd itself may not signal pid {pid} (it runs as another user)"
        )),
        e => RequestError::os(
            format!("pidfd_send_signal {pid} {}", signal_name(signal)),
            e,
        ),
    })
}

/// `Request::Kill`: sends `signal` to `pid` for `caller`, and logs who asked.
pub fn kill(caller: &Peer, pid: i32, signal: i32) -> Result<(), RequestError> {
    check_signal(signal)?;
    let target = Target::open(pid, caller)?;
    target.send(signal)?;
    info!(
        uid = caller.uid,
        by_pid = caller.pid,
        pid,
        target_uid = target.uid,
        signal = %signal_name(signal),
        "sent a signal on a client's behalf"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Peer {
        Peer {
            pid: std::process::id() as i32,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }

    #[test]
    fn a_process_of_ones_own_is_opened_and_others_are_refused() {
        let t = Target::open(std::process::id() as i32, &me()).unwrap();
        assert!(alive(&t.fd));
        assert_eq!(t.uid, nix::unistd::getuid().as_raw());
        let stranger = Peer {
            uid: 4_000_000,
            ..me()
        };
        // pid 1 is root's (uid 4 000 000 is nobody's).
        let e = Target::open(1, &stranger).unwrap_err();
        assert!(matches!(e, RequestError::PermissionDenied(_)), "{e}");
        assert!(matches!(
            Target::open(0, &me()),
            Err(RequestError::InvalidArgument(_))
        ));
        assert!(matches!(
            check_signal(0),
            Err(RequestError::InvalidArgument(_))
        ));
    }

    #[test]
    fn a_reaped_child_is_never_signalled() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let fd = Target::open(pid, &me()).map(|t| t.fd);
        child.wait().unwrap();
        // Opened before it exited (it may also have been gone already):
        // once reaped, the pidfd says so, whoever has the pid now.
        if let Ok(fd) = fd {
            assert!(!alive(&fd));
            assert!(matches!(
                send(&fd, pid, 0),
                Err(RequestError::KernelObjectMissing(_))
            ));
        }
    }
}
