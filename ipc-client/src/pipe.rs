//! Anonymous pipes hosted by ipcd (`pipe:NAME`), shared by processes that never
//! forked from each other.
//!
//! The daemon holds both ends of a `pipe2(2)` and hands out either end as a
//! descriptor; bytes then flow through the kernel, not the daemon. A
//! [`PipeReader`] and a [`PipeWriter`] are plain byte streams
//! ([`Read`](std::io::Read)/[`Write`](std::io::Write)) with two message
//! framings on top: lines ([`send_line`](PipeWriter::send_line) /
//! [`read_line`](PipeReader::read_line)), which shell tools understand, and
//! length-prefixed binary messages ([`send_msg`](PipeWriter::send_msg) /
//! [`recv_msg`](PipeReader::recv_msg)).
//!
//! Messages are atomic: each is one write of at most `PIPE_BUF` (4096) bytes,
//! so concurrent writers never interleave one; **larger ones are refused**
//! ([`Error::ExceedsPipeBuf`](crate::Error::ExceedsPipeBuf)). A reader takes
//! exactly one message and nothing after it. `stream.rs` has the details (the
//! crate docs summarise them).
//!
//! Because the daemon keeps its own write end, readers see end-of-file only
//! after [`Client::close_pipe`] (and once the other writers are gone), and
//! writers never see `EPIPE` while the pipe exists. The buffered bytes live in
//! the daemon's process: they are lost if ipcd stops.
//!
//! ```no_run
//! use ipc_client::{Client, PipeOptions};
//!
//! let mut client = Client::connect()?;
//! client.create_pipe("chunks", &PipeOptions::new().capacity(1 << 20).mode(0o660))?;
//!
//! let tx = client.open_pipe_writer("chunks")?;
//! tx.send_msg(b"part 1")?;
//! tx.send_line(b"a line for shell tools")?;
//!
//! let mut rx = client.open_pipe_reader("pipe:chunks")?;
//! assert_eq!(rx.recv_msg()?.as_deref(), Some(&b"part 1"[..]));
//! assert_eq!(rx.read_line()?.as_deref(), Some(&b"a line for shell tools"[..]));
//!
//! client.close_pipe("chunks")?; // readers see end-of-file once it is drained
//! drop(tx);
//! assert_eq!(rx.read_line()?, None);
//! client.delete("pipe:chunks")?;
//! # Ok::<(), ipc_client::Error>(())
//! ```

use std::borrow::Cow;
use std::os::fd::OwnedFd;
use std::process::Stdio;

use protocol::{Access, CreateSpec, Kind, KindParams, Lifetime, ObjectInfo, PipeParams, Request};

use crate::client::{Client, Response};
use crate::error::Result;
use crate::stream::{End, ReadEnd, address_of, opened_parts, reader_api, writer_api};

/// How to create a pipe with [`Client::create_pipe`].
///
/// ```
/// use ipc_client::PipeOptions;
/// let opts = PipeOptions::new().capacity(256 * 1024).mode(0o660).session();
/// assert_eq!(opts.capacity, Some(262144));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeOptions {
    /// Buffer size in **bytes** (`F_SETPIPE_SZ`; the kernel rounds it up to a
    /// power of two pages); `None`: the kernel default, 64 KiB. At most
    /// `/proc/sys/fs/pipe-max-size` (1 MiB by default) for an unprivileged daemon.
    pub capacity: Option<u32>,
    /// Permission bits (read allows reading, write allows writing); `None`: `0o600`.
    pub mode: Option<u32>,
    /// Whether the pipe outlives the connection that created it.
    pub lifetime: Lifetime,
}

impl Default for PipeOptions {
    fn default() -> Self {
        PipeOptions {
            capacity: None,
            mode: None,
            lifetime: Lifetime::Persistent,
        }
    }
}

impl PipeOptions {
    /// The defaults: the kernel's buffer size, mode `0o600`, persistent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the buffer size in bytes.
    pub fn capacity(mut self, bytes: u32) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// Sets the permission bits, e.g. `0o660`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Makes the pipe go away when the creating connection closes.
    pub fn session(mut self) -> Self {
        self.lifetime = Lifetime::Session;
        self
    }

    /// The creation request these options describe.
    pub fn to_spec(&self) -> CreateSpec {
        CreateSpec {
            mode: self.mode,
            lifetime: self.lifetime,
            adopt: false,
            params: KindParams::Pipe(PipeParams {
                capacity: self.capacity,
            }),
        }
    }
}

/// `pipe:NAME` for a bare `NAME`; an address that already says `pipe:` is kept.
///
/// ```
/// assert_eq!(ipc_client::pipe_address("logs"), "pipe:logs");
/// assert_eq!(ipc_client::pipe_address("pipe:logs"), "pipe:logs");
/// ```
pub fn pipe_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Pipe, name)
}

impl Client {
    /// Creates a pipe; `name` is `NAME` or `pipe:NAME`. Open its ends with
    /// [`open_pipe_reader`](Self::open_pipe_reader) and
    /// [`open_pipe_writer`](Self::open_pipe_writer).
    ///
    /// A capacity above `/proc/sys/fs/pipe-max-size` is refused with the
    /// daemon's `KernelLimit` error, which names the limit.
    ///
    /// ```no_run
    /// use ipc_client::{Client, PipeOptions};
    /// let mut client = Client::connect()?;
    /// let info = client.create_pipe("logs", &PipeOptions::new().session())?;
    /// assert_eq!(info.address, "pipe:logs");
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn create_pipe(&mut self, name: &str, opts: &PipeOptions) -> Result<ObjectInfo> {
        let address = address_of(Kind::Pipe, name)?;
        self.create(&address, opts.to_spec())
    }

    /// Opens the read end of a pipe; `name` is `NAME` or `pipe:NAME`.
    ///
    /// ```no_run
    /// use std::io::Read;
    /// let mut client = ipc_client::Client::connect()?;
    /// let mut rx = client.open_pipe_reader("logs")?;
    /// let mut all = String::new();
    /// rx.read_to_string(&mut all)?; // until the pipe is closed and drained
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_pipe_reader(&mut self, name: &str) -> Result<PipeReader> {
        let address = address_of(Kind::Pipe, name)?;
        let response = self.request(Request::Open {
            address,
            access: Access::Read,
        })?;
        PipeReader::from_response(response)
    }

    /// Opens the write end of a pipe; `name` is `NAME` or `pipe:NAME`. Refused
    /// once the pipe was closed with [`close_pipe`](Self::close_pipe).
    ///
    /// ```no_run
    /// use std::io::Write;
    /// let mut client = ipc_client::Client::connect()?;
    /// let mut tx = client.open_pipe_writer("logs")?;
    /// writeln!(tx, "started")?; // raw bytes: one write per call
    /// tx.send_line(b"one atomic line")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_pipe_writer(&mut self, name: &str) -> Result<PipeWriter> {
        let address = address_of(Kind::Pipe, name)?;
        let response = self.request(Request::Open {
            address,
            access: Access::Write,
        })?;
        PipeWriter::from_response(response)
    }

    /// Closes the daemon's write end of a pipe: no new writers may open it, and
    /// readers see end-of-file once it is drained and the writers already
    /// handed out are closed. `name` is `NAME` or `pipe:NAME`.
    pub fn close_pipe(&mut self, name: &str) -> Result<()> {
        let address = address_of(Kind::Pipe, name)?;
        self.close(&address)
    }
}

/// The read end of a hosted pipe.
///
/// Reads without a timeout are plain blocking `read(2)`s; the timeout variants
/// wait in `poll(2)` and hold even when other readers take the bytes first. Reading a line or a
/// message takes exactly that, leaving the rest for other readers. Dropping
/// it closes the descriptor; converting it into an [`OwnedFd`] or a
/// [`Stdio`] hands it to a child process (blocking mode restored).
///
/// ```no_run
/// use std::process::Command;
/// let mut client = ipc_client::Client::connect()?;
/// let rx = client.open_pipe_reader("jobs")?;
/// // `wc -l` counts the lines until the pipe is closed and drained.
/// let status = Command::new("wc").arg("-l").stdin(rx).status()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PipeReader {
    inner: ReadEnd,
}

impl PipeReader {
    /// Builds a reader from the parts of a [`Reply::Opened`](protocol::Reply::Opened)
    /// answer for a `pipe:` opened with [`Access::Read`].
    pub fn from_opened(info: ObjectInfo, access: Access, fds: Vec<OwnedFd>) -> Result<Self> {
        let end = End::from_opened(info, access, fds, Kind::Pipe, Access::Read)?;
        Ok(PipeReader {
            inner: ReadEnd::new(end),
        })
    }

    fn from_response(response: Response) -> Result<Self> {
        let (info, access, fds) = opened_parts(response)?;
        Self::from_opened(info, access, fds)
    }
}

reader_api!(PipeReader, "PipeWriter");

impl From<PipeReader> for OwnedFd {
    /// The descriptor, in blocking mode. Bytes of a partly read line or
    /// message (see [`PipeReader::take_partial`]) are dropped.
    fn from(r: PipeReader) -> OwnedFd {
        r.inner.end.into_blocking_fd()
    }
}

impl From<PipeReader> for Stdio {
    /// For a child's standard input (blocking mode restored).
    fn from(r: PipeReader) -> Stdio {
        Stdio::from(OwnedFd::from(r))
    }
}

/// The write end of a hosted pipe.
///
/// Methods take `&self`: threads may share one writer, and each line or
/// message still goes out whole. Writes without a timeout are plain blocking
/// `write(2)`s; the timeout variants wait in `poll(2)` for room. Dropping it closes the descriptor; converting it into
/// an [`OwnedFd`] or a [`Stdio`] hands it to a child process.
///
/// ```no_run
/// use std::process::Command;
/// let mut client = ipc_client::Client::connect()?;
/// let tx = client.open_pipe_writer("jobs")?;
/// Command::new("seq").arg("10").stdout(tx).status()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PipeWriter {
    inner: End,
}

impl PipeWriter {
    /// Builds a writer from the parts of a [`Reply::Opened`](protocol::Reply::Opened)
    /// answer for a `pipe:` opened with [`Access::Write`].
    pub fn from_opened(info: ObjectInfo, access: Access, fds: Vec<OwnedFd>) -> Result<Self> {
        let inner = End::from_opened(info, access, fds, Kind::Pipe, Access::Write)?;
        Ok(PipeWriter { inner })
    }

    fn from_response(response: Response) -> Result<Self> {
        let (info, access, fds) = opened_parts(response)?;
        Self::from_opened(info, access, fds)
    }
}

writer_api!(PipeWriter, "PipeReader");

impl From<PipeWriter> for OwnedFd {
    /// The descriptor, in blocking mode.
    fn from(w: PipeWriter) -> OwnedFd {
        w.inner.into_blocking_fd()
    }
}

impl From<PipeWriter> for Stdio {
    /// For a child's standard output or error (blocking mode restored).
    fn from(w: PipeWriter) -> Stdio {
        Stdio::from(OwnedFd::from(w))
    }
}

#[cfg(test)]
mod tests;
