//! Conversions between nix's message-queue descriptor and owned file descriptors.

use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use nix::mqueue::{MqAttr, MqdT, mq_getattr};

/// Turns a message-queue descriptor into an owned fd (on Linux an `mqd_t` is an fd).
pub fn mqd_into_owned(mqd: MqdT) -> OwnedFd {
    let raw = mqd.into_raw_fd();
    // SAFETY: `into_raw_fd` gave up ownership of a valid, open descriptor, so the
    // new `OwnedFd` is its only owner.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// `mq_getattr` on a queue held as an owned fd (nix's `MqdT` never closes itself,
/// so the daemon keeps queues as `OwnedFd`s and views them as `MqdT` only here).
pub fn mq_getattr_fd(fd: BorrowedFd<'_>) -> nix::Result<MqAttr> {
    // SAFETY: `fd` is a valid open descriptor for the duration of the borrow; the
    // `MqdT` is a temporary view that is never closed (`ManuallyDrop`), so
    // ownership stays with the caller.
    let view = ManuallyDrop::new(unsafe { MqdT::from_raw_fd(fd.as_raw_fd()) });
    mq_getattr(&view)
}

/// Bytes waiting to be read in a pipe or FIFO (`FIONREAD`).
pub fn bytes_readable(fd: std::os::fd::BorrowedFd<'_>) -> nix::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points to a
    // live local; the descriptor is valid for the duration of the borrow.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int) };
    nix::errno::Errno::result(rc).map(|_| n.max(0) as u64)
}

/// Registers an owned descriptor with the tokio reactor, to await its readiness.
pub fn watch(
    fd: OwnedFd,
    interest: tokio::io::Interest,
) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor that stays open, and names
    // the same open file description, until the `AsyncFd` that owns it drops it;
    // `as_raw_fd` on it always returns that one number.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }
        .map_err(std::io::Error::from)
}
