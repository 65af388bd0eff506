//! Commands that move data: send and recv (queues, pipes, FIFOs).

use std::io::{self, BufRead as _, Read as _};
use std::os::fd::{AsFd as _, BorrowedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipc_client::protocol::Address;
use ipc_client::{
    Access, Client, ErrorCode, FifoReader, FifoWriter, Kind, MessageQueue, PIPE_BUF, PipeReader,
    PipeWriter, Reply, Request,
};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::cli::{RecvArgs, SendArgs, Wait};
use crate::output::{Out, message_json};

/// Nothing happened in time: no message to receive, or no room to send. Exit status 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NothingInTime(pub String);

/// The command line asks for something that does not apply to the object's
/// kind. Exit status 64, like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// How long a FIFO reader that has seen no writer yet waits before checking
/// again that the FIFO still exists.
const FIFO_CHECK: Duration = Duration::from_millis(250);

/// Bytes read or written per system call when streaming.
const CHUNK: usize = 64 * 1024;

/// The kind named by `address`, checked as the daemon would check it.
pub fn kind_of(address: &str) -> anyhow::Result<Kind> {
    Address::parse(address)
        .map(|a| a.kind)
        .map_err(|e| ipc_client::Error::Server(e).into())
}

/// `--timeout 2s` as text, for messages.
fn show(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// Opens `address` with `access` and wraps it in the handle for its kind.
fn open_queue(client: &mut Client, address: &str, access: Access) -> anyhow::Result<MessageQueue> {
    let response = client.request(Request::Open {
        address: address.to_owned(),
        access,
    })?;
    let Reply::Opened { info, access } = response.reply else {
        anyhow::bail!(
            "unexpected answer to opening {address}: {:?}",
            response.reply
        );
    };
    Ok(MessageQueue::from_opened(info, access, response.fds)?)
}

/// `ipcctl send`.
pub fn send(client: &mut Client, args: &SendArgs) -> anyhow::Result<()> {
    match kind_of(&args.address)? {
        Kind::Mq => send_mq(client, args),
        kind @ (Kind::Pipe | Kind::Fifo) => {
            if args.priority.is_some() {
                return Err(Usage(format!(
                    "--priority applies to mq: only; {} is a {kind}",
                    args.address
                ))
                .into());
            }
            send_stream(client, args, kind)
        }
    }
}

fn send_mq(client: &mut Client, args: &SendArgs) -> anyhow::Result<()> {
    let q = open_queue(client, &args.address, Access::Write)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let priority = args.priority.unwrap_or(0);
    let send_one = |msg: &[u8]| -> anyhow::Result<()> {
        let result = match wait {
            Wait::Forever => q.send(msg, priority),
            Wait::Timeout(t) => q.send_timeout(msg, priority, t),
            Wait::Never => q.try_send(msg, priority),
        };
        result.map_err(|e| match e {
            ipc_client::Error::WouldBlock => {
                NothingInTime(format!("{} is full (would-block)", q.address())).into()
            }
            ipc_client::Error::TimedOut => NothingInTime(format!(
                "{} stayed full for {} (timed-out)",
                q.address(),
                show(args.timeout.unwrap_or_default())
            ))
            .into(),
            e => anyhow::Error::new(e).context(format!("cannot send to {}", q.address())),
        })
    };
    if let Some(message) = &args.message {
        return send_one(message.as_bytes());
    }
    let stdin = io::stdin().lock();
    if args.lines {
        for (sent, line) in stdin.split(b'\n').enumerate() {
            send_one(&line.context("cannot read standard input")?)
                .with_context(|| stopped_at(sent))?;
        }
        Ok(())
    } else {
        // One byte more than fits, and one for a trailing newline to drop.
        let mut message = Vec::new();
        let mut stdin = stdin.take(q.msg_size() as u64 + 2);
        stdin
            .read_to_end(&mut message)
            .context("cannot read standard input")?;
        // `echo text | ipcctl send` means "text", as `$(echo text)` would.
        if !args.raw && message.ends_with(b"\n") {
            message.pop();
        }
        if message.len() > q.msg_size() {
            anyhow::bail!(
                "cannot send to {}: standard input holds more than the queue's message size of {} bytes (too-large)",
                q.address(),
                q.msg_size()
            );
        }
        send_one(&message)
    }
}

/// Context for a `--lines` send that failed: which line, and what went before it.
fn stopped_at(sent: usize) -> String {
    format!(
        "stopped at line {} of standard input, after sending {sent} line{}",
        sent + 1,
        if sent == 1 { "" } else { "s" }
    )
}

/// The write end of a pipe or FIFO, as `send` uses it.
pub enum Sink {
    /// A `pipe:`.
    Pipe(PipeWriter),
    /// A `fifo:`.
    Fifo(FifoWriter),
}

impl Sink {
    /// Opens the write end of `address`; a FIFO waits as `wait` says for a reader.
    pub fn open(
        client: &mut Client,
        address: &str,
        kind: Kind,
        wait: Wait,
    ) -> anyhow::Result<Self> {
        match kind {
            Kind::Pipe => Ok(Sink::Pipe(client.open_pipe_writer(address).map_err(
                |e| anyhow::Error::new(e).context(format!("cannot open {address} for writing")),
            )?)),
            Kind::Fifo => {
                let timeout = match wait {
                    Wait::Forever => None,
                    Wait::Timeout(t) => Some(t),
                    Wait::Never => Some(Duration::ZERO),
                };
                match client.open_fifo_writer(address, timeout) {
                    Ok(w) => Ok(Sink::Fifo(w)),
                    Err(ipc_client::Error::WouldBlock) => Err(NothingInTime(format!(
                        "no reader has {address} open (would-block)"
                    ))
                    .into()),
                    Err(ipc_client::Error::TimedOut) => Err(NothingInTime(format!(
                        "no reader opened {address} within {} (timed-out)",
                        show(timeout.unwrap_or_default())
                    ))
                    .into()),
                    Err(e) => {
                        Err(anyhow::Error::new(e)
                            .context(format!("cannot open {address} for writing")))
                    }
                }
            }
            Kind::Mq => {
                Err(Usage(format!("{address} is a message queue, not a pipe or FIFO")).into())
            }
        }
    }

    fn address(&self) -> &str {
        match self {
            Sink::Pipe(w) => w.address(),
            Sink::Fifo(w) => w.address(),
        }
    }

    /// One line in one atomic write.
    fn line(&self, line: &[u8], wait: Wait) -> ipc_client::Result<()> {
        match (self, wait) {
            (Sink::Pipe(w), Wait::Forever) => w.send_line(line),
            (Sink::Pipe(w), Wait::Timeout(t)) => w.send_line_timeout(line, t),
            (Sink::Pipe(w), Wait::Never) => w.try_send_line(line),
            (Sink::Fifo(w), Wait::Forever) => w.send_line(line),
            (Sink::Fifo(w), Wait::Timeout(t)) => w.send_line_timeout(line, t),
            (Sink::Fifo(w), Wait::Never) => w.try_send_line(line),
        }
    }

    /// All of `buf`, in as many writes as it takes; each waits as `wait` says.
    fn bytes(&self, mut buf: &[u8], wait: Wait) -> ipc_client::Result<()> {
        let t = match wait {
            Wait::Forever => Duration::MAX,
            Wait::Timeout(t) => t,
            Wait::Never => Duration::ZERO,
        };
        while !buf.is_empty() {
            let n = match self {
                Sink::Pipe(w) if t.is_zero() => w.try_write(buf)?,
                Sink::Pipe(w) => w.write_timeout(buf, t)?,
                Sink::Fifo(w) if t.is_zero() => w.try_write(buf)?,
                Sink::Fifo(w) => w.write_timeout(buf, t)?,
            };
            buf = &buf[n..];
        }
        Ok(())
    }
}

impl From<Sink> for std::os::fd::OwnedFd {
    /// The descriptor, blocking, for a child process.
    fn from(s: Sink) -> Self {
        match s {
            Sink::Pipe(w) => w.into(),
            Sink::Fifo(w) => w.into(),
        }
    }
}

/// `ipcctl send` to a pipe or FIFO: lines, or `--raw` bytes.
fn send_stream(client: &mut Client, args: &SendArgs, kind: Kind) -> anyhow::Result<()> {
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let sink = Sink::open(client, &args.address, kind, wait)?;
    let address = sink.address().to_owned();
    let fail = |e: ipc_client::Error| -> anyhow::Error {
        match e {
            ipc_client::Error::WouldBlock => {
                NothingInTime(format!("{address} is full (would-block)")).into()
            }
            ipc_client::Error::TimedOut => NothingInTime(format!(
                "{address} stayed full for {} (timed-out)",
                show(args.timeout.unwrap_or_default())
            ))
            .into(),
            e @ ipc_client::Error::ReaderGone { .. } => e.into(),
            e => anyhow::Error::new(e).context(format!("cannot send to {address}")),
        }
    };
    if args.raw {
        if let Some(message) = &args.message {
            return sink.bytes(message.as_bytes(), wait).map_err(fail);
        }
        // Stream: forward each chunk as soon as standard input has it.
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0; CHUNK];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow::Error::new(e).context("cannot read standard input")),
            };
            sink.bytes(&buf[..n], wait).map_err(fail)?;
        }
    }
    if let Some(message) = &args.message {
        return sink.line(message.as_bytes(), wait).map_err(fail);
    }
    let stdin = io::stdin().lock();
    if args.lines {
        for (sent, line) in stdin.split(b'\n').enumerate() {
            sink.line(&line.context("cannot read standard input")?, wait)
                .map_err(fail)
                .with_context(|| stopped_at(sent))?;
        }
        return Ok(());
    }
    // All of standard input as one write, so it stays whole.
    let mut message = Vec::new();
    stdin
        .take(PIPE_BUF as u64 + 1)
        .read_to_end(&mut message)
        .context("cannot read standard input")?;
    let len = message.len() + usize::from(!message.ends_with(b"\n"));
    if len > PIPE_BUF {
        // --lines helps only when there are several lines to split at.
        let hint = if message[..message.len().saturating_sub(1)].contains(&b'\n') {
            "use --lines to send it a line at a time, or --raw to stream it"
        } else {
            "use --raw to stream it as bytes"
        };
        anyhow::bail!(
            "cannot send to {address}: standard input holds more than the {PIPE_BUF} bytes \
             (PIPE_BUF) one atomic write carries; {hint} (too-large)"
        );
    }
    sink.line(&message, wait).map_err(fail)
}

/// What one wait for a message ended with.
enum Received {
    /// A message of this length and priority is in the buffer.
    Message(usize, u32),
    /// The time ran out, or the queue was empty and waiting was not wanted.
    Nothing,
    /// Whoever reads our output has gone away.
    ReaderGone,
}

/// `ipcctl recv`.
pub fn recv(client: &mut Client, args: &RecvArgs, json: bool) -> anyhow::Result<()> {
    match kind_of(&args.address)? {
        Kind::Mq => recv_mq(client, args, json),
        kind @ (Kind::Pipe | Kind::Fifo) => recv_stream(client, args, json, kind),
    }
}

fn recv_mq(client: &mut Client, args: &RecvArgs, json: bool) -> anyhow::Result<()> {
    let q = open_queue(client, &args.address, Access::Read)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let limit = if args.follow {
        u64::MAX
    } else {
        args.count.unwrap_or(1)
    };
    let mut buf = vec![0; q.msg_size()];
    let mut out = Out::new();
    let mut watch = Watch::new();
    let mut received = 0;
    while received < limit {
        let (len, priority) = match receive(&q, &mut buf, wait, &mut watch)? {
            Received::Message(len, priority) => (len, priority),
            Received::Nothing => break,
            Received::ReaderGone => return Ok(()),
        };
        let msg = &buf[..len];
        if json {
            out.json(&message_json(msg, Some(priority)))?;
        } else if args.raw {
            out.bytes(msg)?;
        } else {
            out.bytes(msg)?;
            out.bytes(b"\n")?;
        }
        out.flush()?;
        received += 1;
    }
    if received == 0 {
        return Err(nothing(q.address(), wait).into());
    }
    Ok(())
}

/// Why nothing was received.
fn nothing(address: &str, wait: Wait) -> NothingInTime {
    NothingInTime(match wait {
        Wait::Timeout(t) => {
            format!(
                "no message arrived on {address} within {} (timed-out)",
                show(t)
            )
        }
        _ => format!("{address} is empty (would-block)"),
    })
}

/// Receives a message into `buf`, waiting for one as `wait` says. A message
/// already there is taken even when there is no time to wait (`--timeout 0s`).
///
/// Standard output is checked before a message is taken and watched while
/// waiting, so that `ipcctl recv --follow | head -1` ends when `head` does
/// (not only when the next message comes), without taking a message it cannot print.
fn receive(
    q: &MessageQueue,
    buf: &mut [u8],
    wait: Wait,
    watch: &mut Watch,
) -> anyhow::Result<Received> {
    let deadline = match wait {
        Wait::Timeout(t) => Instant::now().checked_add(t),
        Wait::Never | Wait::Forever => None,
    };
    loop {
        if watch.output_gone()? {
            return Ok(Received::ReaderGone);
        }
        if let Some(got) = try_receive(q, buf)? {
            return Ok(got);
        }
        if wait == Wait::Never {
            return Ok(Received::Nothing);
        }
        // Then readable, unless another receiver is quicker: wait again.
        match watch.wait(q.as_fd(), deadline, None)? {
            Waited::Ready => {}
            Waited::TimedOut => return Ok(Received::Nothing),
            Waited::OutputGone => return Ok(Received::ReaderGone),
        }
    }
}

/// Takes a message if one is there now.
fn try_receive(q: &MessageQueue, buf: &mut [u8]) -> anyhow::Result<Option<Received>> {
    match q.try_recv_into(buf) {
        Ok((len, priority)) => Ok(Some(Received::Message(len, priority))),
        Err(ipc_client::Error::WouldBlock) => Ok(None),
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("cannot receive from {}", q.address())))
        }
    }
}

/// How a wait in [`Watch::wait`] ended.
enum Waited {
    /// The descriptor may be ready (or a periodic check is due): try again.
    Ready,
    /// The deadline passed.
    TimedOut,
    /// Standard output's reader has gone away.
    OutputGone,
}

/// Waits on a descriptor while watching standard output for its reader leaving.
struct Watch {
    stdout: io::Stdout,
    watch_stdout: bool,
}

impl Watch {
    fn new() -> Self {
        Watch {
            stdout: io::stdout(),
            watch_stdout: true,
        }
    }

    /// Whether standard output's reader has gone away, checked without waiting.
    fn output_gone(&mut self) -> anyhow::Result<bool> {
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
    fn wait(
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

/// The read end of a pipe or FIFO, as `recv` uses it.
enum Source {
    Pipe(PipeReader),
    Fifo(FifoReader),
}

impl Source {
    fn open(client: &mut Client, address: &str, kind: Kind) -> anyhow::Result<Self> {
        Ok(match kind {
            Kind::Fifo => Source::Fifo(client.open_fifo_reader(address)?),
            _ => Source::Pipe(client.open_pipe_reader(address)?),
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Source::Pipe(r) => r.as_fd(),
            Source::Fifo(r) => r.as_fd(),
        }
    }

    fn try_line(&mut self) -> ipc_client::Result<Option<Vec<u8>>> {
        match self {
            Source::Pipe(r) => r.try_read_line(),
            Source::Fifo(r) => r.try_read_line(),
        }
    }

    fn try_read(&mut self, buf: &mut [u8]) -> ipc_client::Result<usize> {
        match self {
            Source::Pipe(r) => r.try_read(buf),
            Source::Fifo(r) => r.try_read(buf),
        }
    }

    fn take_partial(&mut self) -> Vec<u8> {
        match self {
            Source::Pipe(r) => r.take_partial(),
            Source::Fifo(r) => r.take_partial(),
        }
    }
}

/// What one non-blocking read from a stream gave.
enum Got {
    /// A whole line (without its newline).
    Line(Vec<u8>),
    /// This many bytes in the buffer.
    Bytes(usize),
    /// End of file.
    Eof,
}

/// How a stream receive ended.
enum Ended {
    /// As many lines as asked for.
    Done,
    /// End of file.
    Eof,
    /// Nothing came in time (or at once, with `--nonblock`).
    Idle,
    /// Standard output's reader left.
    OutputGone,
}

/// Prints lines: as JSON objects or as text, one per line.
struct Lines<'a> {
    out: &'a mut Out,
    json: bool,
}

impl Lines<'_> {
    fn print(&mut self, line: &[u8]) -> anyhow::Result<()> {
        if self.json {
            self.out.json(&message_json(line, None))
        } else {
            self.out.bytes(line)?;
            self.out.bytes(b"\n")
        }
    }
}

/// `ipcctl recv` from a pipe or FIFO: lines (one at a time, byte by byte), bulk
/// lines with `--follow`, or bytes with `--raw`.
fn recv_stream(client: &mut Client, args: &RecvArgs, json: bool, kind: Kind) -> anyhow::Result<()> {
    if args.raw && args.count.is_some() {
        return Err(Usage(
            "--count counts lines; with --raw, recv copies bytes until end of file \
             (take N bytes with: ipcctl recv --raw ADDR | head -c N)"
                .into(),
        )
        .into());
    }
    let address = args.address.as_str();
    let mut src = Source::open(client, address, kind)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let bulk = args.raw || args.follow;
    let limit = if bulk {
        u64::MAX
    } else {
        args.count.unwrap_or(1)
    };
    let is_fifo = kind == Kind::Fifo;
    let deadline_from_now = || match wait {
        Wait::Timeout(t) => Instant::now().checked_add(t),
        _ => None,
    };
    let mut out = Out::new();
    let mut watch = Watch::new();
    let mut buf = vec![0; if bulk { CHUNK } else { 0 }];
    // --follow: bytes of a line whose newline has not come yet.
    let mut carry: Vec<u8> = Vec::new();
    let mut received: u64 = 0;
    let mut deadline = deadline_from_now();
    let ended = loop {
        if received >= limit {
            break Ended::Done;
        }
        // Take nothing that could not be printed.
        if watch.output_gone()? {
            break Ended::OutputGone;
        }
        let step = if bulk {
            src.try_read(&mut buf)
                .map(|n| if n == 0 { Got::Eof } else { Got::Bytes(n) })
        } else {
            src.try_line().map(|l| l.map_or(Got::Eof, Got::Line))
        };
        match step {
            Ok(Got::Line(line)) => {
                Lines {
                    out: &mut out,
                    json,
                }
                .print(&line)?;
                received += 1;
                out.flush()?;
                deadline = deadline_from_now();
            }
            Ok(Got::Bytes(n)) => {
                if args.raw {
                    out.bytes(&buf[..n])?;
                    received += 1;
                } else {
                    carry.extend_from_slice(&buf[..n]);
                    let mut lines = Lines {
                        out: &mut out,
                        json,
                    };
                    let mut start = 0;
                    while let Some(i) = carry[start..].iter().position(|&b| b == b'\n') {
                        lines.print(&carry[start..start + i])?;
                        start += i + 1;
                        received += 1;
                    }
                    carry.drain(..start);
                }
                out.flush()?;
                deadline = deadline_from_now();
            }
            Ok(Got::Eof) => {
                // A FIFO's writers may come again: unless this is a one-shot
                // --raw copy, wait for the next one (a new open does that).
                let again = args.follow || (!args.raw && received < limit);
                if !(is_fifo && again) {
                    break Ended::Eof;
                }
                // That writer's last line, even without its newline, is a line.
                if !args.raw && !carry.is_empty() {
                    Lines {
                        out: &mut out,
                        json,
                    }
                    .print(&carry)?;
                    out.flush()?;
                    carry.clear();
                    received += 1;
                }
                src = match Source::open(client, address, kind) {
                    Ok(s) => s,
                    Err(e) if client_code(&e) == Some(ErrorCode::NotFound) => {
                        return Err(
                            e.context(format!("{address} was deleted while waiting for a writer"))
                        );
                    }
                    Err(e) => return Err(e),
                };
            }
            Err(ipc_client::Error::WouldBlock) => {
                if wait == Wait::Never {
                    break Ended::Idle;
                }
                let check = is_fifo.then_some(FIFO_CHECK);
                match watch.wait(src.fd(), deadline, check)? {
                    Waited::Ready => {}
                    Waited::TimedOut => break Ended::Idle,
                    Waited::OutputGone => break Ended::OutputGone,
                }
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot receive from {address}")));
            }
        }
    };
    if matches!(ended, Ended::OutputGone) {
        return Ok(());
    }
    // A last line without its newline (at end of file, or when the wait ended
    // part-way through it) is printed rather than lost.
    carry.extend(src.take_partial());
    if !carry.is_empty() {
        if args.raw {
            out.bytes(&carry)?;
        } else {
            Lines {
                out: &mut out,
                json,
            }
            .print(&carry)?;
        }
        out.flush()?;
        received += 1;
    }
    // A FIFO deleted while a raw copy waited for its first writer ends in plain
    // end-of-file; say so instead of succeeding silently.
    if matches!(ended, Ended::Eof)
        && is_fifo
        && received == 0
        && let Err(e) = client.stat(address)
        && e.code() == Some(ErrorCode::NotFound)
    {
        anyhow::bail!("{address} was deleted while waiting for a writer (not-found)");
    }
    match ended {
        _ if received > 0 => Ok(()),
        Ended::Eof if args.raw => Ok(()),
        Ended::Eof => Err(NothingInTime(format!(
            "{address} is at end of file: closed or deleted, and drained"
        ))
        .into()),
        _ => Err(NothingInTime(match wait {
            Wait::Timeout(t) => format!(
                "nothing arrived on {address} within {} (timed-out)",
                show(t)
            ),
            _ => format!("{address} is empty (would-block)"),
        })
        .into()),
    }
}

/// The stable code of the client error inside `e`, if any.
fn client_code(e: &anyhow::Error) -> Option<ErrorCode> {
    e.chain()
        .find_map(|c| c.downcast_ref::<ipc_client::Error>())
        .and_then(ipc_client::Error::code)
}

/// A poll timeout that never rounds a remaining wait down to zero.
fn poll_timeout(left: Duration) -> PollTimeout {
    PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX)
}
