//! Process descriptors (`pidfd_open(2)`, `pidfd_send_signal(2)`): a pidfd
//! names one process for as long as it is open, so a signal sent through it
//! never reaches another process that reused the pid. nix 0.31 has neither
//! call; these are the raw system calls.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use tokio::io::unix::AsyncFd;

/// A descriptor for the process `pid` (close-on-exec, as the kernel makes
/// every pidfd); `ESRCH` if there is none.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    if pid <= 0 {
        return Err(Errno::ESRCH);
    }
    // SAFETY: pidfd_open takes a pid and flags by value and touches no memory
    // of ours; it returns a new descriptor or -1.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    let fd = Errno::result(rc)?;
    // SAFETY: on success the kernel returned a new open descriptor that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` to the process `pidfd` names; `ESRCH` once it has exited
/// (even if its pid was reused since).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> nix::Result<()> {
    // SAFETY: the descriptor is open for the duration of the borrow; a null
    // siginfo asks the kernel to fill it as kill(2) would; flags are 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    Errno::result(rc).map(drop)
}

/// Registers a shared pidfd with the tokio reactor: it becomes readable when
/// its process exits.
pub fn watch_exit(pidfd: Arc<OwnedFd>) -> std::io::Result<AsyncFd<Arc<OwnedFd>>> {
    // SAFETY: the `Arc` keeps the descriptor open, naming the same open file
    // description, for as long as the `AsyncFd` holds this clone of it; its
    // `as_raw_fd` always returns that one number.
    unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}
