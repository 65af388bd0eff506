//! The only module with `unsafe`: small safe wrappers over system calls nix lacks.

pub(crate) mod region;
pub(crate) mod ring_mem;
pub(crate) mod sem_map;
mod shm_ptr;

use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::mqueue::MqdT;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::time::TimeSpec;

/// Most descriptors one `recvmsg` can bring; the daemon sends fewer per frame.
pub(crate) const MAX_FDS_PER_READ: usize = 8;

/// A control-message buffer big enough for [`MAX_FDS_PER_READ`] descriptors.
pub(crate) fn cmsg_buffer() -> Vec<u8> {
    nix::cmsg_space!([RawFd; MAX_FDS_PER_READ])
}

/// Reads from a stream socket with `recvmsg`, appending any descriptors passed
/// as `SCM_RIGHTS` to `fds` (received close-on-exec). Returns the bytes read;
/// 0 means end of stream.
pub(crate) fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    cmsg: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
) -> Result<usize, Errno> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    // `cmsgs` fails (ENOBUFS) when the kernel truncated the control data: some
    // descriptors were lost, so the stream can no longer be trusted.
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                // SAFETY: the kernel has just installed `fd` in this process's
                // descriptor table for this message; nothing else knows or owns
                // it, so taking ownership here is the only ownership there is.
                fds.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Ok(msg.bytes)
}

/// A POSIX message queue descriptor: owns the fd and offers it as nix's [`MqdT`].
#[derive(Debug)]
pub(crate) struct MqFd {
    // `mqd` is a view of `fd`: `MqdT` has no `Drop`, so only `fd` closes it.
    mqd: MqdT,
    fd: OwnedFd,
}

impl MqFd {
    /// Wraps `fd`, checking with `mq_getattr` that it is a message queue.
    pub(crate) fn new(fd: OwnedFd) -> Result<Self, Errno> {
        // SAFETY: the raw fd stays open as long as `fd`, which this struct owns and
        // keeps beside the `MqdT`; `MqdT` never closes it (no `Drop`). Were it not
        // a queue, mq_* calls would fail with EBADF, which the check below catches.
        let mqd = unsafe { MqdT::from_raw_fd(fd.as_raw_fd()) };
        nix::mqueue::mq_getattr(&mqd)?;
        Ok(MqFd { mqd, fd })
    }

    /// The descriptor as nix's message queue type.
    #[inline]
    pub(crate) fn mqd(&self) -> &MqdT {
        &self.mqd
    }

    /// Gives up the wrapper, returning the owned descriptor.
    pub(crate) fn into_owned_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for MqFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `mq_timedsend(3)`: sends `msg` with `priority`, waiting until the absolute
/// `CLOCK_REALTIME` time `deadline` at most for room in a full queue.
#[inline]
pub(crate) fn mq_timedsend(
    mqd: &MqdT,
    msg: &[u8],
    priority: u32,
    deadline: &TimeSpec,
) -> Result<(), Errno> {
    // SAFETY: `msg` is a live slice whose pointer and length are passed together,
    // `deadline` is a valid timespec borrowed for the call, and the descriptor is
    // borrowed from a live `MqdT`; the kernel only reads from both pointers.
    let res = unsafe {
        libc::mq_timedsend(
            mqd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            priority,
            deadline.as_ref(),
        )
    };
    Errno::result(res).map(drop)
}

/// Takes ownership of a queue descriptor opened by `nix::mqueue::mq_open` (for tests).
#[cfg(test)]
pub(crate) fn mqd_into_owned_fd(mqd: MqdT) -> OwnedFd {
    use std::os::fd::IntoRawFd;
    // SAFETY: `into_raw_fd` gives up the `MqdT`, which owned this open descriptor;
    // no other owner exists, and on Linux a queue descriptor is a file descriptor.
    unsafe { OwnedFd::from_raw_fd(mqd.into_raw_fd()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_non_queue_descriptor_is_refused() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(MqFd::new(OwnedFd::from(a)).unwrap_err(), Errno::EBADF);
    }

    #[test]
    fn plain_bytes_arrive_without_descriptors() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"hello").unwrap();
        let mut buf = [0u8; 16];
        let mut cmsg = cmsg_buffer();
        let mut fds = VecDeque::new();
        let n = recv_with_fds(b.as_fd(), &mut buf, &mut cmsg, &mut fds).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert!(fds.is_empty());
    }
}
