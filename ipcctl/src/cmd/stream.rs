//! What `pipe:` and `fifo:` share: byte streams. `send` writes lines (one
//! atomic write each) or `--raw` bytes; `recv` reads lines or `--raw` bytes.
//! The kind-specific parts (opening, create flags, rows) are in `pipe` and `fifo`.

use std::io::{self, BufRead as _, Read as _};
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipc_client::{
    Client, ErrorCode, FifoReader, FifoWriter, Kind, PIPE_BUF, PipeReader, PipeWriter,
};

use super::common::{Sent, daemon_alive, daemon_gone, described, ends_with_daemon, stopped_at};
use super::{fifo, pipe};
use crate::cli::{RecvArgs, SendArgs};
use crate::errors::{Code, client_code, code_of, fail, usage};
use crate::output::{Out, message_json};
use crate::watch::{Wait, Waited, Watch, show};

/// How long a FIFO reader that has seen no writer yet waits before checking
/// again that the FIFO still exists.
const FIFO_CHECK: Duration = Duration::from_millis(250);

/// Bytes read or written per system call when streaming.
const CHUNK: usize = 64 * 1024;

/// The write end of a pipe or FIFO, as `send` and `exec` use it.
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
            Kind::Pipe => Ok(Sink::Pipe(pipe::open_writer(client, address)?)),
            Kind::Fifo => Ok(Sink::Fifo(fifo::open_writer(client, address, wait)?)),
            Kind::Mq
            | Kind::Shm
            | Kind::Ring
            | Kind::Sem
            | Kind::Lock
            | Kind::Event
            | Kind::Barrier
            | Kind::Signal
            | Kind::Queue => Err(fail(
                ErrorCode::WrongKind,
                format!("{address} is {}, not a pipe or FIFO", described(kind)),
            )),
        }
    }

    fn address(&self) -> &str {
        match self {
            Sink::Pipe(w) => w.address(),
            Sink::Fifo(w) => w.address(),
        }
    }

    /// One line in one atomic write (a newline is added unless it ends with one).
    fn line(&self, line: &[u8], wait: Wait, sent: &mut Sent) -> ipc_client::Result<()> {
        match (self, wait) {
            (Sink::Pipe(w), Wait::Forever) => w.send_line(line),
            (Sink::Pipe(w), Wait::Timeout(t)) => w.send_line_timeout(line, t),
            (Sink::Pipe(w), Wait::Never) => w.try_send_line(line),
            (Sink::Fifo(w), Wait::Forever) => w.send_line(line),
            (Sink::Fifo(w), Wait::Timeout(t)) => w.send_line_timeout(line, t),
            (Sink::Fifo(w), Wait::Never) => w.try_send_line(line),
        }?;
        sent.message(line.len() + usize::from(!line.ends_with(b"\n")));
        Ok(())
    }

    /// All of `buf`, in as many writes as it takes; each waits as `wait` says.
    fn bytes(&self, mut buf: &[u8], wait: Wait, sent: &mut Sent) -> ipc_client::Result<()> {
        let t = wait.as_timeout().unwrap_or(Duration::MAX);
        while !buf.is_empty() {
            let n = match self {
                Sink::Pipe(w) if t.is_zero() => w.try_write(buf)?,
                Sink::Pipe(w) => w.write_timeout(buf, t)?,
                Sink::Fifo(w) if t.is_zero() => w.try_write(buf)?,
                Sink::Fifo(w) => w.write_timeout(buf, t)?,
            };
            buf = &buf[n..];
            sent.bytes += n as u64;
        }
        Ok(())
    }
}

impl From<Sink> for OwnedFd {
    /// The descriptor, blocking, for a child process.
    fn from(s: Sink) -> Self {
        match s {
            Sink::Pipe(w) => w.into(),
            Sink::Fifo(w) => w.into(),
        }
    }
}

/// `ipcctl send` to a pipe or FIFO: lines, or `--raw` bytes.
/// A write that finds no reader left fails with `reader-gone`, or with
/// `daemon-gone` when that is because ipcd stopped.
pub fn send(client: &mut Client, args: &SendArgs, kind: Kind) -> anyhow::Result<Sent> {
    check_send_flags(args, kind)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let sink = Sink::open(client, &args.address, kind, wait)?;
    match send_to(&sink, args, wait) {
        Err(e) if code_of(&e) == Code::ReaderGone && !daemon_alive(client) => {
            Err(daemon_gone(&format!("writing to {}", args.address)))
        }
        result => result,
    }
}

/// Sends MESSAGE or standard input to `sink` as `args` say.
fn send_to(sink: &Sink, args: &SendArgs, wait: Wait) -> anyhow::Result<Sent> {
    let address = sink.address().to_owned();
    let failed = |e: ipc_client::Error| -> anyhow::Error {
        match e {
            ipc_client::Error::WouldBlock => {
                fail(ErrorCode::WouldBlock, format!("{address} is full"))
            }
            ipc_client::Error::TimedOut => fail(
                ErrorCode::TimedOut,
                format!(
                    "{address} stayed full for {}",
                    show(args.timeout.unwrap_or_default())
                ),
            ),
            e @ ipc_client::Error::ReaderGone { .. } => e.into(),
            e => anyhow::Error::new(e).context(format!("cannot send to {address}")),
        }
    };
    let mut sent = Sent::default();
    match (&args.message, args.raw) {
        (Some(message), true) => sink
            .bytes(message.as_bytes(), wait, &mut sent)
            .map_err(failed)?,
        (None, true) => send_raw_stdin(sink, wait, &mut sent, failed)?,
        (Some(message), false) => sink
            .line(message.as_bytes(), wait, &mut sent)
            .map_err(failed)?,
        (None, false) if args.lines => {
            for (n, line) in io::stdin().lock().split(b'\n').enumerate() {
                sink.line(
                    &line.context("cannot read standard input")?,
                    wait,
                    &mut sent,
                )
                .map_err(&failed)
                .with_context(|| stopped_at(n))?;
            }
        }
        (None, false) => sink
            .line(&read_stdin_line(&address)?, wait, &mut sent)
            .map_err(failed)?,
    }
    Ok(sent)
}

/// `send`'s flags that do not apply to a pipe or FIFO: usage errors.
pub fn check_send_flags(args: &SendArgs, kind: Kind) -> anyhow::Result<()> {
    if args.priority.is_some() {
        return Err(usage(format!(
            "--priority applies to mq: only; {} is {}",
            args.address,
            described(kind)
        )));
    }
    Ok(())
}

/// `recv`'s flags that do not apply to a pipe or FIFO: usage errors.
pub fn check_recv_flags(args: &RecvArgs) -> anyhow::Result<()> {
    if args.raw && args.count.is_some() {
        return Err(usage(
            "--count counts lines; with --raw, recv copies bytes until end of file \
             (take N bytes with: ipcctl recv --raw ADDR | head -c N)",
        ));
    }
    Ok(())
}

/// Streams standard input into `sink`, each chunk as soon as it is read.
fn send_raw_stdin(
    sink: &Sink,
    wait: Wait,
    sent: &mut Sent,
    failed: impl Fn(ipc_client::Error) -> anyhow::Error,
) -> anyhow::Result<()> {
    let mut stdin = io::stdin().lock();
    let mut buf = vec![0; CHUNK];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("cannot read standard input")),
        };
        sink.bytes(&buf[..n], wait, sent).map_err(&failed)?;
    }
}

/// All of standard input, to be sent as one write (so it stays whole): at most
/// `PIPE_BUF` bytes with the newline `send` adds.
fn read_stdin_line(address: &str) -> anyhow::Result<Vec<u8>> {
    let mut message = Vec::new();
    io::stdin()
        .lock()
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
        return Err(fail(
            ErrorCode::TooLarge,
            format!(
                "cannot send to {address}: standard input holds more than the {PIPE_BUF} bytes \
                 (PIPE_BUF) one atomic write carries; {hint}"
            ),
        ));
    }
    Ok(message)
}

/// The read end of a pipe or FIFO, as `recv` uses it.
enum Source {
    Pipe(PipeReader),
    Fifo(FifoReader),
}

impl Source {
    fn open(client: &mut Client, address: &str, kind: Kind) -> anyhow::Result<Self> {
        Ok(match kind {
            Kind::Fifo => Source::Fifo(fifo::open_reader(client, address)?),
            _ => Source::Pipe(pipe::open_reader(client, address)?),
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

    /// Whether end of file may mean that ipcd stopped.
    fn ends_with_daemon(&self) -> bool {
        ends_with_daemon(match self {
            Source::Pipe(r) => r.info(),
            Source::Fifo(r) => r.info(),
        })
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

/// `ipcctl recv` from a pipe or FIFO: lines (one at a time, byte by byte), bulk
/// lines with `--follow`, or bytes with `--raw`.
pub fn recv(client: &mut Client, args: &RecvArgs, json: bool, kind: Kind) -> anyhow::Result<()> {
    check_recv_flags(args)?;
    let src = Source::open(client, &args.address, kind)?;
    let mut r = Receiver::new(args, json, kind, src);
    let ended = r.run(client)?;
    r.finish(client, ended)
}

/// One `recv` from a pipe or FIFO, as it goes.
struct Receiver<'a> {
    args: &'a RecvArgs,
    json: bool,
    kind: Kind,
    wait: Wait,
    /// Reads in chunks (`--raw`, `--follow`) rather than a line at a time.
    bulk: bool,
    /// Lines to receive.
    limit: u64,
    src: Source,
    out: Out,
    watch: Watch,
    buf: Vec<u8>,
    /// Bulk lines: bytes of a line whose newline has not come yet.
    carry: Vec<u8>,
    /// Lines (or, with `--raw`, chunks) printed.
    received: u64,
    deadline: Option<Instant>,
}

impl<'a> Receiver<'a> {
    fn new(args: &'a RecvArgs, json: bool, kind: Kind, src: Source) -> Self {
        let wait = Wait::from_flags(args.timeout, args.nonblock);
        let bulk = args.raw || args.follow;
        Receiver {
            args,
            json,
            kind,
            wait,
            bulk,
            limit: if bulk {
                u64::MAX
            } else {
                args.count.unwrap_or(1)
            },
            src,
            out: Out::new(),
            watch: Watch::new(),
            buf: vec![0; if bulk { CHUNK } else { 0 }],
            carry: Vec::new(),
            received: 0,
            deadline: wait.deadline_from_now(),
        }
    }

    fn address(&self) -> &'a str {
        &self.args.address
    }

    /// Receives until the count is reached, end of file, a wait that ends, or
    /// standard output's reader leaving.
    fn run(&mut self, client: &mut Client) -> anyhow::Result<Ended> {
        loop {
            if self.received >= self.limit {
                return Ok(Ended::Done);
            }
            // Take nothing that could not be printed.
            if self.watch.output_gone()? {
                return Ok(Ended::OutputGone);
            }
            let ended = match self.read() {
                Ok(Got::Line(line)) => {
                    self.print_line(&line)?;
                    self.received += 1;
                    self.printed()?
                }
                Ok(Got::Bytes(n)) => {
                    self.print_bytes(n)?;
                    self.printed()?
                }
                Ok(Got::Eof) => self.at_eof(client)?,
                Err(ipc_client::Error::WouldBlock) => self.idle()?,
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot receive from {}", self.address())));
                }
            };
            if let Some(ended) = ended {
                return Ok(ended);
            }
        }
    }

    /// One non-blocking read: a line, or a chunk of bytes in bulk mode.
    fn read(&mut self) -> ipc_client::Result<Got> {
        if self.bulk {
            self.src
                .try_read(&mut self.buf)
                .map(|n| if n == 0 { Got::Eof } else { Got::Bytes(n) })
        } else {
            self.src.try_line().map(|l| l.map_or(Got::Eof, Got::Line))
        }
    }

    /// A line: as a JSON object or as text, then a newline.
    fn print_line(&mut self, line: &[u8]) -> anyhow::Result<()> {
        if self.json {
            self.out.json(&message_json(line, None))
        } else {
            self.out.bytes(line)?;
            self.out.bytes(b"\n")
        }
    }

    /// The `n` bytes in the buffer: as they are with `--raw`, else the lines
    /// they complete (the rest waits in `carry`).
    fn print_bytes(&mut self, n: usize) -> anyhow::Result<()> {
        if self.args.raw {
            self.out.bytes(&self.buf[..n])?;
            self.received += 1;
            return Ok(());
        }
        let mut carry = std::mem::take(&mut self.carry);
        carry.extend_from_slice(&self.buf[..n]);
        let mut start = 0;
        while let Some(i) = carry[start..].iter().position(|&b| b == b'\n') {
            self.print_line(&carry[start..start + i])?;
            start += i + 1;
            self.received += 1;
        }
        carry.drain(..start);
        self.carry = carry;
        Ok(())
    }

    /// After printing: flush, and the wait for the next line starts again.
    fn printed(&mut self) -> anyhow::Result<Option<Ended>> {
        self.out.flush()?;
        self.deadline = self.wait.deadline_from_now();
        Ok(None)
    }

    /// End of file: the end of a pipe, or of a FIFO's writers. A FIFO's writers
    /// may come again: unless this is a one-shot `--raw` copy, wait for the next
    /// one (a new open does that).
    fn at_eof(&mut self, client: &mut Client) -> anyhow::Result<Option<Ended>> {
        let address = self.address();
        if self.src.ends_with_daemon() && !daemon_alive(client) {
            // What came before is the daemon's last data: print it, then say so.
            self.print_partial()?;
            return Err(daemon_gone(&format!("reading {address}")));
        }
        let again = self.args.follow || (!self.args.raw && self.received < self.limit);
        if !(self.kind == Kind::Fifo && again) {
            return Ok(Some(Ended::Eof));
        }
        // That writer's last line, even without its newline, is a line.
        if !self.args.raw && !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.print_line(&carry)?;
            self.out.flush()?;
            self.received += 1;
        }
        self.src = match Source::open(client, address, self.kind) {
            Ok(s) => s,
            Err(e) if client_code(&e) == Some(ErrorCode::NotFound) => {
                return Err(e.context(format!("{address} was deleted while waiting for a writer")));
            }
            Err(e) if code_of(&e) == Code::DaemonGone => {
                return Err(daemon_gone(&format!("reading {address}")));
            }
            Err(e) => return Err(e),
        };
        Ok(None)
    }

    /// Nothing to read now: wait, unless waiting is not wanted.
    fn idle(&mut self) -> anyhow::Result<Option<Ended>> {
        if self.wait == Wait::Never {
            return Ok(Some(Ended::Idle));
        }
        // A FIFO is checked now and then, in case it was deleted.
        let check = (self.kind == Kind::Fifo).then_some(FIFO_CHECK);
        Ok(
            match self.watch.wait(self.src.fd(), self.deadline, check)? {
                Waited::Ready => None,
                Waited::TimedOut => Some(Ended::Idle),
                Waited::OutputGone => Some(Ended::OutputGone),
            },
        )
    }

    /// Prints a last line without its newline (at end of file, or when the
    /// wait ended part-way through it) rather than losing it.
    fn print_partial(&mut self) -> anyhow::Result<()> {
        let mut carry = std::mem::take(&mut self.carry);
        carry.extend(self.src.take_partial());
        if !carry.is_empty() {
            if self.args.raw {
                self.out.bytes(&carry)?;
            } else {
                self.print_line(&carry)?;
            }
            self.out.flush()?;
            self.received += 1;
        }
        Ok(())
    }

    /// Prints what is left and turns how the receive ended into a result.
    fn finish(mut self, client: &mut Client, ended: Ended) -> anyhow::Result<()> {
        if matches!(ended, Ended::OutputGone) {
            return Ok(());
        }
        self.print_partial()?;
        let address = self.address();
        // A FIFO deleted while a raw copy waited for its first writer ends in plain
        // end-of-file; say so instead of succeeding silently.
        if matches!(ended, Ended::Eof)
            && self.kind == Kind::Fifo
            && self.received == 0
            && let Err(e) = client.stat(address)
            && e.code() == Some(ErrorCode::NotFound)
        {
            return Err(fail(
                ErrorCode::NotFound,
                format!("{address} was deleted while waiting for a writer"),
            ));
        }
        match ended {
            _ if self.received > 0 => Ok(()),
            Ended::Eof if self.args.raw => Ok(()),
            Ended::Eof => Err(fail(
                Code::EndOfFile,
                format!("{address} is at end of file: closed or deleted, and drained"),
            )),
            _ => Err(match self.wait {
                Wait::Timeout(t) => fail(
                    ErrorCode::TimedOut,
                    format!("nothing arrived on {address} within {}", show(t)),
                ),
                _ => fail(ErrorCode::WouldBlock, format!("{address} is empty")),
            }),
        }
    }
}
