//! While `ipcctl with` runs its command, a thread watches the connection
//! that holds the permit: if ipcd goes away (killed, restarted), what the
//! connection held is no longer held — ipcd gave it back, or the next ipcd
//! will — so the user is told at once, not when the command ends.

use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The watching thread and how to stop it.
pub struct Watch {
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Starts watching `conn` (a copy of its descriptor) for the peer
    /// closing; `what` names what is held, for the warning.
    pub fn start(conn: impl AsFd, what: String, command: String) -> Watch {
        // A close-on-exec copy (F_DUPFD_CLOEXEC): the command does not inherit it.
        let started = conn
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            .and_then(|sock| {
                let (wake, stop) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                Ok((sock, wake, stop))
            });
        let Ok((sock, wake, stop)) = started else {
            // Without a watch the warning comes when the command ends.
            return Watch {
                stop: None,
                thread: None,
            };
        };
        let thread = std::thread::spawn(move || {
            // No events asked: POLLHUP comes anyway, and a Unix stream socket
            // reports it once the peer has closed (data to read does not wake us).
            let mut fds = [
                PollFd::new(sock.as_fd(), PollFlags::empty()),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            loop {
                match poll(&mut fds, PollTimeout::NONE) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return,
                    Ok(_) => {}
                }
                let gone = PollFlags::POLLHUP | PollFlags::POLLERR;
                if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                    return;
                }
                if fds[0].revents().is_some_and(|r| r.intersects(gone)) {
                    eprintln!(
                        "ipcctl: warning: the connection to ipcd closed while {command} runs: \
                         {what} is no longer held by it (ipcd is gone or restarting; it gives \
                         what a closed connection held back)"
                    );
                    return;
                }
            }
        });
        Watch {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Closing the write end wakes the thread (POLLHUP on the read end).
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
