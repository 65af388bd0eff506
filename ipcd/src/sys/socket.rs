//! Sending a buffer with file descriptors attached (`SCM_RIGHTS`).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

/// Sends `data` on a stream socket with `fds` attached as `SCM_RIGHTS`.
///
/// Returns how many bytes went out; the descriptors travel with the first byte,
/// so a caller that sends the rest later must not attach them again.
pub fn send_with_fds(socket: BorrowedFd<'_>, data: &[u8], fds: &[OwnedFd]) -> nix::Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsgs };
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(data)],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        None,
    )
}
