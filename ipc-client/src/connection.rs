//! One daemon connection: framing, buffered reads with `recvmsg`, and received descriptors.
//!
//! The socket is non-blocking and every wait goes through `poll`, so writing a
//! long pipeline never deadlocks against a daemon that is writing answers: while
//! requests are still going out, answers are read into the buffer.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, send};
use protocol::FrameBuffer;
use protocol::frame::HARD_MAX_FRAME;
use protocol::{ClientFrame, ServerFrame};

use crate::error::{Error, Result};
use crate::sys;

/// `connect(2)` to a Unix socket, giving up after `timeout` (a Unix socket's
/// connect waits under the send timeout, `SO_SNDTIMEO`, which is then cleared).
fn connect_within(path: &Path, timeout: Option<Duration>) -> io::Result<UnixStream> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, UnixAddr, connect, setsockopt, socket, sockopt,
    };
    use nix::sys::time::TimeVal;
    let Some(timeout) = timeout else {
        return UnixStream::connect(path);
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let tv = |d: Duration| TimeVal::new(d.as_secs() as _, d.subsec_micros() as _);
    // A zero timeval means "no limit" to the kernel: wait at least 1 µs.
    setsockopt(
        &fd,
        sockopt::SendTimeout,
        &tv(timeout.max(Duration::from_micros(1))),
    )?;
    match connect(fd.as_raw_fd(), &UnixAddr::new(path)?) {
        Ok(()) => {}
        Err(Errno::EAGAIN | Errno::EINPROGRESS) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "ipcd accepted no connection within {timeout:?} (its queue of new connections is full)"
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    setsockopt(&fd, sockopt::SendTimeout, &tv(Duration::ZERO))?;
    Ok(UnixStream::from(fd))
}

/// Descriptors received as `SCM_RIGHTS`, in arrival order, waiting for the
/// response frame that announces them.
#[derive(Debug, Default)]
pub(crate) struct FdQueue(VecDeque<OwnedFd>);

impl FdQueue {
    /// Takes the `n` oldest descriptors.
    pub(crate) fn take(&mut self, n: usize) -> Result<Vec<OwnedFd>> {
        if self.0.len() < n {
            return Err(Error::Protocol(format!(
                "a response announced {n} file descriptors but {} arrived",
                self.0.len()
            )));
        }
        Ok(self.0.drain(..n).collect())
    }

    /// Descriptors waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// A framed connection to the daemon.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: UnixStream,
    input: FrameBuffer,
    fds: FdQueue,
    cmsg: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    max_frame: u32,
    /// Set after an error that leaves the byte stream in an unknown state.
    broken: bool,
    /// Set when the daemon stopped reading (EPIPE): what is left is read, not written.
    write_closed: bool,
}

impl std::os::fd::AsFd for Connection {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl Connection {
    /// Connects to the socket at `path`.
    ///
    /// `timeout` also bounds `connect(2)` itself, which waits while the
    /// daemon's queue of connections not yet accepted is full.
    pub(crate) fn connect(path: &Path, timeout: Option<Duration>) -> Result<Self> {
        let connect_err = |source| Error::Connect {
            path: path.to_path_buf(),
            source,
        };
        let stream = connect_within(path, timeout).map_err(connect_err)?;
        stream.set_nonblocking(true).map_err(connect_err)?;
        Ok(Connection {
            stream,
            input: FrameBuffer::new(),
            fds: FdQueue::default(),
            cmsg: sys::cmsg_buffer(),
            output: Vec::new(),
            written: 0,
            max_frame: HARD_MAX_FRAME,
            broken: false,
            write_closed: false,
        })
    }

    /// Sets the frame size limit agreed in the handshake.
    pub(crate) fn set_max_frame(&mut self, max: u32) {
        self.max_frame = max.min(HARD_MAX_FRAME);
    }

    /// Encodes `frame` and queues it for sending; it goes out during the next
    /// [`receive`](Self::receive).
    pub(crate) fn queue(&mut self, frame: &ClientFrame) -> Result<()> {
        if self.broken {
            return Err(Error::Closed);
        }
        let payload = protocol::encode_client(frame)?;
        let framed = protocol::frame::frame(&payload, self.max_frame).map_err(|_| {
            Error::InvalidArgument(format!(
                "request of {} bytes exceeds the daemon's frame limit of {} bytes",
                payload.len(),
                self.max_frame
            ))
        })?;
        self.output.extend_from_slice(&framed);
        Ok(())
    }

    /// How many bytes are queued; pass it to [`unqueue`](Self::unqueue) to drop
    /// frames queued after this point.
    pub(crate) fn queued(&self) -> usize {
        self.output.len()
    }

    /// Drops frames queued after [`queued`](Self::queued) returned `mark`.
    /// Nothing is sent between the two calls, so those frames are still whole.
    pub(crate) fn unqueue(&mut self, mark: usize) {
        debug_assert!(mark >= self.written);
        self.output.truncate(mark.max(self.written));
    }

    /// The next frame from the daemon, sending queued bytes while waiting.
    pub(crate) fn receive(&mut self, deadline: Option<Instant>) -> Result<ServerFrame> {
        if self.broken {
            return Err(Error::Closed);
        }
        loop {
            match self.input.next_frame(self.max_frame) {
                Ok(Some(payload)) => {
                    return protocol::decode_server(payload).map_err(|e| self.poison(e.into()));
                }
                Ok(None) => self.guard(|c| c.pump(deadline))?,
                Err(e) => return Err(self.poison(e.into())),
            }
        }
    }

    /// Like [`receive`](Self::receive), but when `deadline` passes first it
    /// returns `Ok(None)` and the connection stays usable: nothing half-read
    /// is lost (a partial frame waits in the buffer for the next call).
    pub(crate) fn receive_by(&mut self, deadline: Option<Instant>) -> Result<Option<ServerFrame>> {
        if self.broken {
            return Err(Error::Closed);
        }
        loop {
            match self.input.next_frame(self.max_frame) {
                Ok(Some(payload)) => {
                    return protocol::decode_server(payload)
                        .map(Some)
                        .map_err(|e| self.poison(e.into()));
                }
                Ok(None) => match self.pump(deadline) {
                    Ok(()) => {}
                    // Only a wait that saw no progress times out: the stream is whole.
                    Err(Error::TimedOut) => return Ok(None),
                    Err(e) => return Err(self.poison(e)),
                },
                Err(e) => return Err(self.poison(e.into())),
            }
        }
    }

    /// Writes what the socket takes of the queued bytes now, without waiting
    /// and without reading; the rest goes out during the next receive.
    pub(crate) fn send_queued(&mut self) -> Result<()> {
        if self.broken {
            return Err(Error::Closed);
        }
        while self.written < self.output.len() && !self.write_closed {
            match send(
                self.stream.as_raw_fd(),
                &self.output[self.written..],
                MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => self.written += n,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                // As in `pump`: what the daemon said before closing is still read.
                Err(Errno::EPIPE | Errno::ECONNRESET) => self.write_closed = true,
                Err(e) => return Err(self.poison(Error::Io(io::Error::from(e)))),
            }
        }
        if self.written == self.output.len() || self.write_closed {
            self.output.clear();
            self.written = 0;
        }
        Ok(())
    }

    /// Whether the daemon's end of the socket is closed (it exited or dropped
    /// this connection), checked without waiting and without reading.
    pub(crate) fn peer_closed(&self) -> bool {
        if self.broken {
            return true;
        }
        // A Unix socket whose peer closed reports POLLHUP (both directions shut).
        let mut pfd = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::ZERO) {
            Ok(_) => pfd[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
            Err(_) => false,
        }
    }

    /// Takes the `n` oldest received descriptors (those of the response just read).
    pub(crate) fn take_fds(&mut self, n: usize) -> Result<Vec<OwnedFd>> {
        self.fds.take(n).map_err(|e| self.poison(e))
    }

    /// Marks the connection unusable after an error that desynchronised it.
    pub(crate) fn poison(&mut self, e: Error) -> Error {
        self.broken = true;
        e
    }

    fn guard(&mut self, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        f(self).map_err(|e| self.poison(e))
    }

    /// One step of progress: write what the socket takes, read what it has, and
    /// if neither moved, wait in `poll` (until `deadline`).
    fn pump(&mut self, deadline: Option<Instant>) -> Result<()> {
        let mut progressed = false;
        if self.written < self.output.len() && !self.write_closed {
            match send(
                self.stream.as_raw_fd(),
                &self.output[self.written..],
                MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => {
                    self.written += n;
                    progressed = true;
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                // The daemon closed its end (after a fatal error, say): keep reading
                // so that its last frames, which explain why, are not lost.
                Err(Errno::EPIPE | Errno::ECONNRESET) => {
                    self.write_closed = true;
                    progressed = true;
                }
                Err(e) => return Err(Error::Io(io::Error::from(e))),
            }
            if self.written == self.output.len() || self.write_closed {
                self.output.clear();
                self.written = 0;
            }
        }
        let spare = self.input.spare();
        match sys::recv_with_fds(self.stream.as_fd(), spare, &mut self.cmsg, &mut self.fds.0) {
            Ok(0) => {
                return Err(if self.input.is_empty() {
                    Error::Closed
                } else {
                    Error::Protocol(
                        "the daemon closed the connection in the middle of a frame".into(),
                    )
                });
            }
            Ok(n) => {
                self.input.commit(n);
                progressed = true;
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(Errno::ECONNRESET) => return Err(Error::Closed),
            Err(Errno::ENOBUFS) => {
                return Err(Error::Protocol(
                    "file descriptors from the daemon were truncated".into(),
                ));
            }
            Err(e) => return Err(Error::Io(io::Error::from(e))),
        }
        if progressed {
            return Ok(());
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::TimedOut);
                }
                // Round up so that a sub-millisecond remainder still waits.
                let ms = left.as_micros().div_ceil(1000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut events = PollFlags::POLLIN;
        if self.written < self.output.len() {
            events |= PollFlags::POLLOUT;
        }
        let mut pfd = [PollFd::new(self.stream.as_fd(), events)];
        match poll(&mut pfd, timeout) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(Error::Io(io::Error::from(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSlice;

    use nix::sys::socket::{ControlMessage, sendmsg};

    fn framed(payload: &[u8]) -> Vec<u8> {
        protocol::frame::frame(payload, HARD_MAX_FRAME).unwrap()
    }

    #[test]
    fn fd_queue_hands_out_in_order_and_refuses_missing_ones() {
        let (a, b) = UnixStream::pair().unwrap();
        let (ra, rb) = (a.as_raw_fd(), b.as_raw_fd());
        let mut q = FdQueue::default();
        q.0.push_back(a.into());
        q.0.push_back(b.into());
        let first = q.take(1).unwrap();
        assert_eq!(first[0].as_raw_fd(), ra);
        assert!(q.take(2).is_err());
        assert_eq!(q.take(1).unwrap()[0].as_raw_fd(), rb);
        assert_eq!(q.len(), 0);
        assert!(q.take(0).unwrap().is_empty());
    }

    #[test]
    fn descriptors_passed_with_a_frame_are_queued() {
        let (daemon, client) = UnixStream::pair().unwrap();
        let (p1, _p2) = UnixStream::pair().unwrap();
        let bytes = framed(b"payload");
        let fds = [p1.as_raw_fd()];
        sendmsg::<()>(
            daemon.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut fb = FrameBuffer::new();
        let mut q = FdQueue::default();
        let mut cmsg = sys::cmsg_buffer();
        let n = sys::recv_with_fds(client.as_fd(), fb.spare(), &mut cmsg, &mut q.0).unwrap();
        fb.commit(n);
        assert_eq!(fb.next_frame(100).unwrap(), Some(&b"payload"[..]));
        let got = q.take(1).unwrap();
        assert_ne!(got[0].as_raw_fd(), p1.as_raw_fd());
        let flags = nix::fcntl::fcntl(&got[0], nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(
            flags & libc::FD_CLOEXEC,
            0,
            "received descriptors are close-on-exec"
        );
    }
}
