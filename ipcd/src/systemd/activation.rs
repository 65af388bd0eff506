//! Socket activation (`LISTEN_FDS`, `sd_listen_fds(3)`): the listening socket
//! a service manager (or `systemd-socket-activate`) made and passed, and the
//! descriptors its fd store gives back, told apart by what they are — the
//! listener is a listening Unix stream socket, stored descriptors carry our
//! fd names (see [`super::fdstore`]).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::sys::socket::{SockType, UnixAddr, getsockname, getsockopt, sockopt};
use tracing::{info, warn};

use super::fdstore::Stored;
use crate::error::DaemonError;

/// What the manager passed at start.
#[derive(Debug, Default)]
pub struct Inherited {
    /// The listening socket and its path, when socket-activated.
    pub listener: Option<(UnixListener, PathBuf)>,
    /// Descriptors from the fd store.
    pub stored: Stored,
}

/// Takes the descriptors passed with `LISTEN_FDS` (for this process:
/// `LISTEN_PID`), once. Without them the result is empty and ipcd binds its
/// own socket.
pub fn take() -> Result<Inherited, DaemonError> {
    let io = |context: &str, error| DaemonError::Io {
        context: context.into(),
        error,
    };
    let mut inherited = Inherited::default();
    let passed: Vec<(i32, String)> = sd_notify::listen_fds_with_names()
        .map_err(|e| io("reading LISTEN_FDS", e))?
        .collect();
    let numbers: Vec<i32> = passed.iter().map(|(fd, _)| *fd).collect();
    let owned = crate::sys::inherited::take_listen_fds(numbers.into_iter());
    for ((_, name), fd) in passed.into_iter().zip(owned) {
        if is_listener(&fd) {
            if inherited.listener.is_some() {
                warn!(fdname = %name, "a second listening socket was passed; closing it");
                continue;
            }
            let path = socket_path(&fd);
            let listener = UnixListener::from(fd);
            listener
                .set_nonblocking(true)
                .map_err(|e| io("making the inherited listener non-blocking", e))?;
            info!(socket = %path.display(), fdname = %name, "listening on the inherited socket");
            inherited.listener = Some((listener, path));
        } else if !inherited.stored.add(&name, fd) {
            warn!(fdname = %name, "an unknown descriptor was passed; closing it");
        }
    }
    if !inherited.stored.is_empty() {
        info!(
            descriptors = inherited.stored.len(),
            "descriptors given back by the fd store"
        );
    }
    Ok(inherited)
}

/// Whether `fd` is a Unix stream socket in the listening state.
fn is_listener(fd: &OwnedFd) -> bool {
    let listening = getsockopt(&fd.as_fd(), sockopt::AcceptConn).unwrap_or(false);
    let stream = getsockopt(&fd.as_fd(), sockopt::SockType).is_ok_and(|t| t == SockType::Stream);
    let unix = getsockname::<UnixAddr>(std::os::fd::AsRawFd::as_raw_fd(fd)).is_ok();
    listening && stream && unix
}

/// The path a listening socket is bound to (empty if it has none).
fn socket_path(fd: &OwnedFd) -> PathBuf {
    getsockname::<UnixAddr>(std::os::fd::AsRawFd::as_raw_fd(fd))
        .ok()
        .and_then(|a| a.path().map(|p| p.to_owned()))
        .unwrap_or_default()
}
