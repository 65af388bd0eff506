//! Byte streams shared by pipes and FIFOs: waiting with `poll(2)`, atomic
//! messages and lines, end-of-file, and the handles' common API.
//!
//! # Atomicity: messages and lines are at most `PIPE_BUF` bytes
//!
//! A pipe is a byte stream that any number of processes may write to. POSIX
//! guarantees that one `write(2)` of at most [`PIPE_BUF`] (4096) bytes lands in
//! the pipe in one piece; larger writes may be split and interleaved with other
//! writers' bytes. So every *message* — a line from
//! [`send_line`](crate::PipeWriter::send_line), a length-prefixed message from
//! [`send_msg`](crate::PipeWriter::send_msg) — goes out in exactly one write, and
//! one that would not fit in `PIPE_BUF` bytes is **refused** with
//! [`Error::ExceedsPipeBuf`] rather than sent in pieces that another writer
//! could tear apart. Use a message queue or the raw byte stream
//! ([`Write`](std::io::Write)) for bigger payloads.
//!
//! # Reading one message takes only that message
//!
//! Several readers may share a pipe, one after the other (`ipcctl recv pipe:p`
//! run twice takes two lines). So a reader never reads ahead:
//! [`recv_msg`](crate::PipeReader::recv_msg) reads exactly the 4-byte length and
//! then exactly that many bytes, and [`read_line`](crate::PipeReader::read_line)
//! reads one byte at a time up to the newline. Bulk reads
//! ([`Read`](std::io::Read)) take whatever is there. Readers running *at the
//! same time* can still split a message between them (the kernel hands each
//! `read` whatever bytes come next); give a pipe one reader at a time, or use a
//! message queue as a work queue.
//!
//! # Waiting
//!
//! Calls without a timeout use the descriptor in blocking mode: a plain
//! `read(2)`/`write(2)`, as fast as the raw pipe. Calls with a timeout (and the
//! `try_` calls) switch the descriptor to `O_NONBLOCK` and wait in `poll(2)`:
//! that is what lets their timeout hold even when other readers or writers race
//! for the same bytes, and never spin. The daemon hands out a fresh open file
//! description per request, so the mode affects no one else; the switch costs
//! two `fcntl` calls only when a handle changes between timed and untimed use.
//! (So one handle used from several threads at once, some with timeouts and some
//! without, may see a timed call wait longer than asked: open a handle per thread.) A read or write that times out part-way through
//! a message keeps what it already took, and the next call continues it.
//! Converting a handle into an [`OwnedFd`] or a [`Stdio`](std::process::Stdio)
//! clears `O_NONBLOCK` again, as children expect.
//!
//! # End-of-file
//!
//! A read returns end-of-file once the pipe is drained and no writer is left:
//! for a `pipe:`, after `close` (or `delete`) and once every handed-out write
//! end is closed. A FIFO reader that opened before any writer does not see
//! end-of-file then: it waits for the first writer, and sees end-of-file once
//! the writers that came have gone, or when the FIFO is deleted.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use protocol::{Access, Kind, ObjectInfo};

use crate::error::{Error, Result};

/// The most bytes one `write(2)` puts into a pipe or FIFO in one piece (POSIX
/// `PIPE_BUF`; 4096 on Linux). Every line and message is one write of at most
/// this many bytes; longer ones are refused (see the crate docs, "Pipes and FIFOs").
pub const PIPE_BUF: usize = 4096;

/// Bytes of the length prefix of a binary message: a `u32`, little-endian.
pub const MSG_HEADER_LEN: usize = 4;

/// The largest binary message payload: [`PIPE_BUF`] less the length prefix.
pub const MAX_MSG_LEN: usize = PIPE_BUF - MSG_HEADER_LEN;

/// How often a FIFO reader that has seen no writer yet checks whether the FIFO
/// was deleted (no writer could come any more).
const FIFO_CHECK: Duration = Duration::from_millis(250);

/// How long an operation may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// As long as it takes.
    Forever,
    /// Until this instant; then [`Error::TimedOut`].
    Until(Instant),
    /// Not at all: [`Error::WouldBlock`].
    Never,
}

impl Wait {
    /// At most `timeout` from now (an absurdly long one is forever).
    pub(crate) fn after(timeout: Duration) -> Wait {
        Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until)
    }

    /// `None`: forever; `Some(t)`: at most `t`.
    pub(crate) fn from_timeout(timeout: Option<Duration>) -> Wait {
        timeout.map_or(Wait::Forever, Wait::after)
    }
}

/// One end of a pipe or FIFO: the descriptor (non-blocking) and what it is.
#[derive(Debug)]
pub(crate) struct End {
    fd: OwnedFd,
    info: ObjectInfo,
    /// Whether the descriptor is in `O_NONBLOCK` mode now.
    nonblocking: AtomicBool,
}

impl End {
    /// Checks an `Opened` answer for `kind` and `access` and takes its one
    /// descriptor, switched to non-blocking mode.
    pub(crate) fn from_opened(
        info: ObjectInfo,
        access: Access,
        fds: Vec<OwnedFd>,
        kind: Kind,
        want: Access,
    ) -> Result<End> {
        if info.kind != kind {
            return Err(Error::InvalidArgument(format!(
                "{} is a {}, not a {kind}",
                info.address, info.kind
            )));
        }
        if access != want {
            return Err(Error::InvalidArgument(format!(
                "{} was opened for {access:?}, this handle needs {want:?}",
                info.address
            )));
        }
        let [fd]: [OwnedFd; 1] = fds.try_into().map_err(|fds: Vec<OwnedFd>| {
            Error::Protocol(format!(
                "expected 1 descriptor for {}, got {}",
                info.address,
                fds.len()
            ))
        })?;
        let end = End {
            fd,
            info,
            nonblocking: AtomicBool::new(true),
        };
        end.set_nonblocking(true)?;
        Ok(end)
    }

    pub(crate) fn info(&self) -> &ObjectInfo {
        &self.info
    }

    pub(crate) fn address(&self) -> &str {
        &self.info.address
    }

    pub(crate) fn is_fifo(&self) -> bool {
        self.info.kind == Kind::Fifo
    }

    /// Sets or clears `O_NONBLOCK` on this handle's open file description.
    pub(crate) fn set_nonblocking(&self, on: bool) -> Result<()> {
        let flags = fcntl(self.fd.as_fd(), FcntlArg::F_GETFL).map_err(|e| self.os("fcntl", e))?;
        let mut flags = OFlag::from_bits_retain(flags);
        flags.set(OFlag::O_NONBLOCK, on);
        fcntl(self.fd.as_fd(), FcntlArg::F_SETFL(flags)).map_err(|e| self.os("fcntl", e))?;
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Puts the descriptor in the mode `wait` needs: blocking for `Forever`
    /// (plain system calls), non-blocking for timed and `try_` calls (`poll`).
    fn mode_for(&self, wait: Wait) -> Result<()> {
        let want = !matches!(wait, Wait::Forever);
        if self.nonblocking.load(Ordering::Relaxed) != want {
            self.set_nonblocking(want)?;
        }
        Ok(())
    }

    /// The descriptor, blocking again (as a child process expects it).
    pub(crate) fn into_blocking_fd(self) -> OwnedFd {
        // F_SETFL on a descriptor we own cannot fail in practice; if it did,
        // the child would see EAGAIN, which is no worse than not converting.
        let _ = self.set_nonblocking(false);
        self.fd
    }

    #[cold]
    pub(crate) fn os(&self, op: &'static str, errno: Errno) -> Error {
        Error::Os {
            op,
            address: self.info.address.clone(),
            errno,
        }
    }

    /// Waits in `poll` until `events` (or an error or hang-up) may have
    /// happened, or the wait runs out. The caller retries its operation.
    fn wait_for(&self, events: PollFlags, wait: Wait) -> Result<()> {
        let left = match wait {
            Wait::Never => return Err(Error::WouldBlock),
            Wait::Forever => None,
            Wait::Until(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::TimedOut);
                }
                Some(left)
            }
        };
        // A FIFO reader that has seen no writer yet wakes now and then to
        // notice a deletion (no writer can come then).
        let check = (self.is_fifo() && events.contains(PollFlags::POLLIN)).then_some(FIFO_CHECK);
        let timeout = match (left, check) {
            (None, None) => PollTimeout::NONE,
            (Some(t), None) | (None, Some(t)) => poll_timeout(t),
            (Some(a), Some(b)) => poll_timeout(a.min(b)),
        };
        let mut fds = [PollFd::new(self.fd.as_fd(), events)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(self.os("poll", e)),
        }
    }

    /// Whether a FIFO reader that just read nothing has really reached
    /// end-of-file: a writer came and went since it opened (`POLLHUP`), or the
    /// FIFO was deleted so none can come. Otherwise no writer has come yet.
    fn fifo_ended(&self) -> Result<bool> {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(self.os("poll", e)),
        }
        if fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
        {
            return Ok(true);
        }
        let st = nix::sys::stat::fstat(self.fd.as_fd()).map_err(|e| self.os("fstat", e))?;
        Ok(st.st_nlink == 0)
    }

    /// One `read(2)`, waiting as `wait` says for bytes or end-of-file; 0 is end-of-file.
    pub(crate) fn read(&self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.mode_for(wait)?;
        loop {
            match nix::unistd::read(self.fd.as_fd(), buf) {
                Ok(0) => {
                    // No writer now. For a pipe that is end-of-file; a FIFO
                    // reader may just be early.
                    if !self.is_fifo() || self.fifo_ended()? {
                        return Ok(0);
                    }
                    self.wait_for(PollFlags::POLLIN, wait)?;
                }
                Ok(n) => return Ok(n),
                Err(Errno::EAGAIN) => self.wait_for(PollFlags::POLLIN, wait)?,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.os("read", e)),
            }
        }
    }

    /// Waits until a read would not block: bytes are there, or end-of-file.
    pub(crate) fn wait_readable(&self, wait: Wait) -> Result<()> {
        loop {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(self.os("poll", e)),
            }
            let ready = fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
            if ready || (self.is_fifo() && self.fifo_ended()?) {
                return Ok(());
            }
            self.wait_for(PollFlags::POLLIN, wait)?;
        }
    }

    /// One `write(2)`, waiting as `wait` says for room; returns the bytes written.
    pub(crate) fn write(&self, buf: &[u8], wait: Wait) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.mode_for(wait)?;
        loop {
            match nix::unistd::write(self.fd.as_fd(), buf) {
                Ok(n) => return Ok(n),
                Err(Errno::EAGAIN) => self.wait_for(PollFlags::POLLOUT, wait)?,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.write_error("write", e)),
            }
        }
    }

    /// Writes `parts` with one `writev(2)` of at most [`PIPE_BUF`] bytes, which
    /// the kernel puts into the pipe whole or not at all.
    pub(crate) fn write_atomic(&self, parts: &[&[u8]], wait: Wait) -> Result<()> {
        let iov: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        debug_assert!(total <= PIPE_BUF);
        self.mode_for(wait)?;
        loop {
            match nix::sys::uio::writev(self.fd.as_fd(), &iov) {
                Ok(n) if n == total => return Ok(()),
                Ok(n) => {
                    return Err(Error::BadMessage {
                        address: self.address().to_owned(),
                        detail: format!("the kernel wrote {n} of {total} bytes of an atomic write"),
                    });
                }
                Err(Errno::EAGAIN) => self.wait_for(PollFlags::POLLOUT, wait)?,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.write_error("writev", e)),
            }
        }
    }

    /// Writes all of `buf`, in as many writes as it takes.
    pub(crate) fn write_all(&self, mut buf: &[u8], wait: Wait) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf, wait)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    #[cold]
    fn write_error(&self, op: &'static str, errno: Errno) -> Error {
        match errno {
            Errno::EPIPE => Error::ReaderGone {
                address: self.info.address.clone(),
            },
            e => self.os(op, e),
        }
    }
}

impl AsFd for End {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The read end's state: the descriptor and bytes already taken from the pipe
/// that belong to a line or message not yet complete.
#[derive(Debug)]
pub(crate) struct ReadEnd {
    pub(crate) end: End,
    pending: Vec<u8>,
}

impl ReadEnd {
    pub(crate) fn new(end: End) -> Self {
        ReadEnd {
            end,
            pending: Vec::new(),
        }
    }

    /// Like `read(2)`, but first hands out bytes a timed-out call left behind.
    pub(crate) fn read(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        if !self.pending.is_empty() {
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Ok(n);
        }
        self.end.read(buf, wait)
    }

    /// Reads until `pending` holds `want` bytes, never more; `false` if
    /// end-of-file came first.
    fn fill(&mut self, want: usize, wait: Wait) -> Result<bool> {
        while self.pending.len() < want {
            let have = self.pending.len();
            self.pending.resize(want, 0);
            let got = self.end.read(&mut self.pending[have..], wait);
            let n = *got.as_ref().unwrap_or(&0);
            self.pending.truncate(have + n);
            if got? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Receives one length-prefixed message into `out`; `false` at end-of-file.
    pub(crate) fn recv_msg_into(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<bool> {
        if !self.fill(MSG_HEADER_LEN, wait)? {
            if self.pending.is_empty() {
                return Ok(false);
            }
            return Err(self.truncated(MSG_HEADER_LEN));
        }
        let header = self.pending[..MSG_HEADER_LEN]
            .try_into()
            .expect("four bytes were read");
        let len = u32::from_le_bytes(header) as usize;
        if len > MAX_MSG_LEN {
            return Err(Error::BadMessage {
                address: self.end.address().to_owned(),
                detail: format!(
                    "a message header claims {len} bytes, more than the {MAX_MSG_LEN} a \
                     sender may write; is the writer sending lines or raw bytes instead?"
                ),
            });
        }
        if !self.fill(MSG_HEADER_LEN + len, wait)? {
            return Err(self.truncated(MSG_HEADER_LEN + len));
        }
        out.clear();
        out.extend_from_slice(&self.pending[MSG_HEADER_LEN..MSG_HEADER_LEN + len]);
        self.pending.drain(..MSG_HEADER_LEN + len);
        Ok(true)
    }

    /// Reads one line, byte by byte so nothing after its newline is taken.
    /// The newline is not returned; a last line without one is returned as it
    /// is. `None` at end-of-file.
    pub(crate) fn read_line(&mut self, wait: Wait) -> Result<Option<Vec<u8>>> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.pending[scanned..].iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=scanned + i).collect();
                line.pop();
                return Ok(Some(line));
            }
            scanned = self.pending.len();
            if !self.fill(scanned + 1, wait)? {
                return Ok((!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending)));
            }
        }
    }

    /// Takes the bytes of an incomplete line or message left by a call that
    /// timed out (or hit end-of-file) part-way.
    pub(crate) fn take_partial(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    #[cold]
    fn truncated(&self, expected: usize) -> Error {
        Error::BadMessage {
            address: self.end.address().to_owned(),
            detail: format!(
                "end of file after {} of the {expected} bytes of a message",
                self.pending.len()
            ),
        }
    }
}

/// The object, granted access and descriptors of an `Opened` answer.
pub(crate) fn opened_parts(
    response: crate::Response,
) -> Result<(ObjectInfo, Access, Vec<OwnedFd>)> {
    match response.reply {
        protocol::Reply::Opened { info, access } => Ok((info, access, response.fds)),
        other => Err(Error::Protocol(format!(
            "expected an Opened reply, got {other:?}"
        ))),
    }
}

/// Checks a binary message against [`MAX_MSG_LEN`].
pub(crate) fn check_msg(address: &str, msg: &[u8]) -> Result<[u8; MSG_HEADER_LEN]> {
    match u32::try_from(msg.len()) {
        Ok(len) if msg.len() <= MAX_MSG_LEN => Ok(len.to_le_bytes()),
        _ => Err(Error::ExceedsPipeBuf {
            address: address.to_owned(),
            what: "message",
            len: msg.len(),
            max: MAX_MSG_LEN,
        }),
    }
}

/// Checks a line against [`PIPE_BUF`]; returns whether a newline must be added.
pub(crate) fn check_line(address: &str, line: &[u8]) -> Result<bool> {
    let add_newline = !line.ends_with(b"\n");
    let len = line.len() + usize::from(add_newline);
    if len > PIPE_BUF {
        return Err(Error::ExceedsPipeBuf {
            address: address.to_owned(),
            what: "line (with its newline)",
            len,
            max: PIPE_BUF,
        });
    }
    Ok(add_newline)
}

/// `KIND:NAME` for `name`, which is `NAME` or already `KIND:NAME`; another
/// kind's address is refused here rather than sent as an odd name.
pub(crate) fn address_of(kind: Kind, name: &str) -> Result<String> {
    match name.split_once(':') {
        None => Ok(format!("{kind}:{name}")),
        Some((k, _)) if k == kind.as_str() => Ok(name.to_owned()),
        Some((k, _)) => Err(Error::InvalidArgument(format!(
            "'{name}' is a {k}: address, expected NAME or {kind}:NAME"
        ))),
    }
}

/// An error as `std::io::Error`, for the `Read`/`Write` impls: a vanished
/// reader is `BrokenPipe`, timeouts `TimedOut`/`WouldBlock`, system errors
/// keep their errno.
pub(crate) fn io_error(e: Error) -> io::Error {
    match e {
        Error::Os { errno, .. } => io::Error::from(errno),
        Error::WouldBlock => io::ErrorKind::WouldBlock.into(),
        Error::TimedOut => io::ErrorKind::TimedOut.into(),
        e @ Error::ReaderGone { .. } => io::Error::new(io::ErrorKind::BrokenPipe, e),
        e => io::Error::other(e),
    }
}

/// A poll timeout that never rounds a remaining wait down to zero.
fn poll_timeout(left: Duration) -> PollTimeout {
    PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX)
}

mod api;
pub(crate) use api::{reader_api, writer_api};

#[cfg(test)]
pub(crate) mod tests;
