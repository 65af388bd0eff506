//! Waiting: how long a send or receive may wait (`Wait`), and waiting on a
//! descriptor while watching standard output for its reader leaving (`Watch`).

use std::io;
use std::os::fd::{AsFd as _, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// How long a send or receive may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// As long as it takes.
    Forever,
    /// At most this long.
    Timeout(Duration),
    /// Not at all.
    Never,
}

impl Wait {
    /// From the `--timeout` and `--nonblock` flags (clap makes them exclusive).
    pub fn from_flags(timeout: Option<Duration>, nonblock: bool) -> Self {
        match (timeout, nonblock) {
            (_, true) => Wait::Never,
            (Some(t), false) => Wait::Timeout(t),
            (None, false) => Wait::Forever,
        }
    }

    /// The wait as a timeout for calls that take one (`None`: forever).
    pub fn as_timeout(self) -> Option<Duration> {
        match self {
            Wait::Forever => None,
            Wait::Timeout(t) => Some(t),
            Wait::Never => Some(Duration::ZERO),
        }
    }

    /// When a wait that starts now ends (`None`: never, or not at all).
    pub fn deadline_from_now(self) -> Option<Instant> {
        match self {
            Wait::Timeout(t) => Instant::now().checked_add(t),
            Wait::Never | Wait::Forever => None,
        }
    }
}

/// `--timeout 2s` as text, for messages.
pub fn show(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// How a wait in [`Watch::wait`] ended.
pub enum Waited {
    /// The descriptor may be ready (or a periodic check is due): try again.
    Ready,
    /// The deadline passed.
    TimedOut,
    /// Standard output's reader has gone away.
    OutputGone,
}

/// Waits on a descriptor while watching standard output for its reader leaving.
pub struct Watch {
    stdout: io::Stdout,
    watch_stdout: bool,
}

impl Watch {
    /// Watches this process's standard output.
    pub fn new() -> Self {
        Watch {
            stdout: io::stdout(),
            watch_stdout: true,
        }
    }

    /// Whether standard output's reader has gone away, checked without waiting.
    pub fn output_gone(&mut self) -> anyhow::Result<bool> {
        if !self.watch_stdout {
            return Ok(false);
        }
        let mut fds = [PollFd::new(self.stdout.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("poll")),
        }
        Ok(self.gone(fds[0].revents()))
    }

    /// Whether `revents` of standard output say its reader left; stops watching
    /// a standard output that cannot be polled (closed).
    fn gone(&mut self, revents: Option<PollFlags>) -> bool {
        let Some(revents) = revents else {
            return false;
        };
        if revents.contains(PollFlags::POLLNVAL) {
            self.watch_stdout = false;
        }
        revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)
    }

    /// Waits until `fd` is readable, `deadline` passes, `check` elapses (if
    /// given: a periodic re-check) or standard output's reader leaves.
    pub fn wait(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Option<Instant>,
        check: Option<Duration>,
    ) -> anyhow::Result<Waited> {
        let left = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Waited::TimedOut);
                }
                Some(left)
            }
        };
        let timeout = match (left, check) {
            (None, None) => PollTimeout::NONE,
            (Some(t), None) | (None, Some(t)) => poll_timeout(t),
            (Some(a), Some(b)) => poll_timeout(a.min(b)),
        };
        let mut fds = vec![PollFd::new(fd, PollFlags::POLLIN)];
        if self.watch_stdout {
            fds.push(PollFd::new(self.stdout.as_fd(), PollFlags::empty()));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("poll")),
        }
        let revents = fds.get(1).and_then(PollFd::revents);
        if self.gone(revents) {
            return Ok(Waited::OutputGone);
        }
        Ok(Waited::Ready)
    }
}

/// Waits at most `timeout` until `fd` is ready for `events` (or at end of
/// file, or in error); returns whether it is.
pub fn wait_ready(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(fd, events)];
        match poll(&mut fds, poll_timeout(left)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) => {}
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("poll")),
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

/// A poll timeout that never rounds a remaining wait down to zero.
fn poll_timeout(left: Duration) -> PollTimeout {
    PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_come_from_two_flags() {
        let t = Duration::from_secs(1);
        assert_eq!(Wait::from_flags(None, false), Wait::Forever);
        assert_eq!(Wait::from_flags(Some(t), false), Wait::Timeout(t));
        assert_eq!(Wait::from_flags(None, true), Wait::Never);
        assert_eq!(Wait::Never.as_timeout(), Some(Duration::ZERO));
        assert_eq!(Wait::Forever.as_timeout(), None);
    }

    #[test]
    fn poll_timeouts_round_up() {
        assert_eq!(
            poll_timeout(Duration::from_micros(1)),
            PollTimeout::try_from(1).unwrap()
        );
    }
}
