//! Descriptors inherited from a service manager (`LISTEN_FDS`), taken over once.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes ownership of the descriptors `fds` the service manager passed (the
/// numbers `sd_listen_fds` reports: 3 and up), skipping any that are not open.
/// Only the first call takes anything; later calls return nothing, so no
/// descriptor ever gets two owners.
pub fn take_listen_fds(fds: impl Iterator<Item = RawFd>) -> Vec<OwnedFd> {
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Vec::new();
    }
    fds.filter(|&fd| {
        // SAFETY: F_GETFD on a bare number only reads its flags (EBADF if it is
        // not open); no memory is involved.
        fd >= 3 && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
    })
    .map(|fd| {
        // SAFETY: by the socket-activation protocol the descriptors from 3 up to
        // 3 + LISTEN_FDS belong to this process and nothing else in it uses
        // them; `TAKEN` makes sure each is wrapped once, and the check above
        // that it is open.
        unsafe { OwnedFd::from_raw_fd(fd) }
    })
    .collect()
}
