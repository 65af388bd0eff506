//! Named pipes hosted by ipcd (`fifo:NAME`): a FIFO file in the daemon's
//! runtime directory, with a lifecycle, permissions and a path plain shell
//! tools can use.
//!
//! The daemon creates the FIFO (`mkfifo`) at `<runtime dir>/fifo/<prefix>NAME`
//! and opens it on request, so a program needs no access to the directory;
//! [`Client::fifo_path`] gives the path for `cat`, `echo … >` and friends.
//! A [`FifoReader`] and a [`FifoWriter`] offer the same byte stream, lines and
//! length-prefixed messages as the pipe handles (see [`crate::PipeWriter`]),
//! with the same rule: each line or message is one atomic write of at most
//! `PIPE_BUF` (4096) bytes, and bigger ones are refused.
//!
//! FIFO semantics, as the kernel has them:
//!
//! - A writer needs a reader. [`Client::open_fifo_writer`] retries (5 ms, then
//!   doubling up to 50 ms) until a reader has the FIFO open, or its timeout.
//!   A *buffered* FIFO ([`FifoOptions::buffered`]) is held open by the daemon,
//!   so writers get in at once and bytes wait in the kernel buffer (they are
//!   lost if ipcd stops).
//! - A reader that opened before any writer waits for the first one; it sees
//!   end-of-file once the writers that came have all gone (or the FIFO is
//!   deleted). A new writer may come after that: open a new reader to wait
//!   for it.
//! - Writing when the reader has left fails with
//!   [`Error::ReaderGone`](crate::Error::ReaderGone).
//!
//! ```no_run
//! use std::time::Duration;
//! use ipc_client::{Client, FifoOptions};
//!
//! let mut client = Client::connect()?;
//! client.create_fifo("events", &FifoOptions::new().buffered().mode(0o660))?;
//! println!("shell: echo hi > {}", client.fifo_path("events")?.display());
//!
//! let tx = client.open_fifo_writer("events", Some(Duration::from_secs(1)))?;
//! tx.send_line(b"started")?;
//!
//! let mut rx = client.open_fifo_reader("fifo:events")?;
//! assert_eq!(rx.read_line()?.as_deref(), Some(&b"started"[..]));
//! # Ok::<(), ipc_client::Error>(())
//! ```

use std::borrow::Cow;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use protocol::{
    Access, CreateSpec, ErrorCode, FifoParams, Kind, KindDetails, KindParams, Lifetime, ObjectInfo,
    Request,
};

use crate::client::{Client, Response};
use crate::error::{Error, Result};
use crate::stream::{End, ReadEnd, Wait, address_of, opened_parts, reader_api, writer_api};

/// The first pause between attempts to open a FIFO for writing while no reader has it open.
const FIRST_RETRY: Duration = Duration::from_millis(5);
/// The longest pause between attempts.
const MAX_RETRY: Duration = Duration::from_millis(50);

/// How to create a FIFO with [`Client::create_fifo`].
///
/// ```
/// use ipc_client::FifoOptions;
/// let opts = FifoOptions::new().buffered().mode(0o660);
/// assert!(opts.buffered);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoOptions {
    /// The daemon holds the FIFO open, so writers need not wait for a reader
    /// and their bytes wait in the kernel buffer until one comes.
    pub buffered: bool,
    /// Permission bits of the object and of the FIFO file (read allows reading,
    /// write allows writing); `None`: `0o600`.
    pub mode: Option<u32>,
    /// Whether the FIFO outlives the connection that created it.
    pub lifetime: Lifetime,
    /// Register a FIFO that already exists at the path instead of creating one.
    pub adopt: bool,
}

impl Default for FifoOptions {
    fn default() -> Self {
        FifoOptions {
            buffered: false,
            mode: None,
            lifetime: Lifetime::Persistent,
            adopt: false,
        }
    }
}

impl FifoOptions {
    /// The defaults: standard FIFO semantics, mode `0o600`, persistent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the daemon hold the FIFO open (see [`buffered`](Self::buffered)).
    pub fn buffered(mut self) -> Self {
        self.buffered = true;
        self
    }

    /// Sets the permission bits, e.g. `0o660`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Makes the FIFO go away when the creating connection closes.
    pub fn session(mut self) -> Self {
        self.lifetime = Lifetime::Session;
        self
    }

    /// Adopts an existing FIFO at the object's path instead of creating one.
    pub fn adopt(mut self) -> Self {
        self.adopt = true;
        self
    }

    /// The creation request these options describe.
    pub fn to_spec(&self) -> CreateSpec {
        CreateSpec {
            mode: self.mode,
            lifetime: self.lifetime,
            adopt: self.adopt,
            params: KindParams::Fifo(FifoParams {
                buffered: self.buffered,
            }),
        }
    }
}

/// `fifo:NAME` for a bare `NAME`; an address that already says `fifo:` is kept.
///
/// ```
/// assert_eq!(ipc_client::fifo_address("events"), "fifo:events");
/// ```
pub fn fifo_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Fifo, name)
}

/// The FIFO's path as the daemon reports it in an object's details.
pub(crate) fn path_of(info: &ObjectInfo) -> &Path {
    match &info.details {
        KindDetails::Fifo(d) => Path::new(&d.path),
        _ => Path::new(&info.kernel_name),
    }
}

impl Client {
    /// Creates a FIFO; `name` is `NAME` or `fifo:NAME`.
    ///
    /// ```no_run
    /// use ipc_client::{Client, FifoOptions};
    /// let mut client = Client::connect()?;
    /// let info = client.create_fifo("events", &FifoOptions::new().mode(0o660))?;
    /// println!("created {}", info.kernel_name); // the FIFO's path
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn create_fifo(&mut self, name: &str, opts: &FifoOptions) -> Result<ObjectInfo> {
        let address = address_of(Kind::Fifo, name)?;
        self.create(&address, opts.to_spec())
    }

    /// The FIFO's path, for programs that open it themselves (permissions
    /// allowing); `name` is `NAME` or `fifo:NAME`.
    ///
    /// ```no_run
    /// let mut client = ipc_client::Client::connect()?;
    /// let path = client.fifo_path("events")?;
    /// std::fs::write(&path, "hi\n")?; // blocks until a reader has it open
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fifo_path(&mut self, name: &str) -> Result<PathBuf> {
        let address = address_of(Kind::Fifo, name)?;
        let info = self.stat(&address)?;
        if info.kind != Kind::Fifo {
            return Err(Error::InvalidArgument(format!(
                "{address} is a {}, not a fifo",
                info.kind
            )));
        }
        Ok(path_of(&info).to_path_buf())
    }

    /// Opens a FIFO for reading; `name` is `NAME` or `fifo:NAME`. Never waits:
    /// the first read waits for a writer.
    ///
    /// ```no_run
    /// let mut client = ipc_client::Client::connect()?;
    /// let mut rx = client.open_fifo_reader("events")?;
    /// while let Some(line) = rx.read_line()? {
    ///     println!("{}", String::from_utf8_lossy(&line));
    /// }
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn open_fifo_reader(&mut self, name: &str) -> Result<FifoReader> {
        let address = address_of(Kind::Fifo, name)?;
        let response = self.request(Request::Open {
            address,
            access: Access::Read,
        })?;
        FifoReader::from_response(response)
    }

    /// Opens a FIFO for writing; `name` is `NAME` or `fifo:NAME`.
    ///
    /// While no process has the FIFO open for reading the daemon answers
    /// `WouldBlock`, and this retries (5 ms, doubling up to 50 ms) for at most
    /// `timeout` — `None`: until a reader comes — then fails with
    /// [`Error::TimedOut`] (or [`Error::WouldBlock`] for a zero timeout). A
    /// buffered FIFO opens at once.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut client = ipc_client::Client::connect()?;
    /// let tx = client.open_fifo_writer("events", Some(Duration::from_secs(5)))?;
    /// tx.send_line(b"hello")?;
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn open_fifo_writer(
        &mut self,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<FifoWriter> {
        let address = address_of(Kind::Fifo, name)?;
        let wait = Wait::from_timeout(timeout);
        let mut pause = FIRST_RETRY;
        loop {
            let request = Request::Open {
                address: address.clone(),
                access: Access::Write,
            };
            match self.request(request) {
                Ok(response) => return FifoWriter::from_response(response),
                Err(Error::Server(e)) if e.code == ErrorCode::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let nap = match wait {
                Wait::Never => return Err(Error::WouldBlock),
                Wait::Forever => pause,
                Wait::Until(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(if timeout.is_some_and(|t| t.is_zero()) {
                            Error::WouldBlock
                        } else {
                            Error::TimedOut
                        });
                    }
                    pause.min(left)
                }
            };
            std::thread::sleep(nap);
            pause = (pause * 2).min(MAX_RETRY);
        }
    }
}

/// A FIFO open for reading.
///
/// Reads wait for a writer and its bytes (blocking `read(2)`, or `poll(2)` in
/// the timeout variants). A line or message read takes exactly that. Converting it
/// into an [`OwnedFd`] or a [`Stdio`] for a child waits first until a writer
/// has written (or come and gone), because a child reading a FIFO that no
/// writer has opened yet would see end-of-file at once.
///
/// ```no_run
/// use std::process::Command;
/// let mut client = ipc_client::Client::connect()?;
/// let rx = client.open_fifo_reader("events")?;
/// Command::new("grep").arg("error").stdin(rx).status()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FifoReader {
    inner: ReadEnd,
}

impl FifoReader {
    /// Builds a reader from the parts of a [`Reply::Opened`](protocol::Reply::Opened)
    /// answer for a `fifo:` opened with [`Access::Read`].
    pub fn from_opened(info: ObjectInfo, access: Access, fds: Vec<OwnedFd>) -> Result<Self> {
        let end = End::from_opened(info, access, fds, Kind::Fifo, Access::Read)?;
        Ok(FifoReader {
            inner: ReadEnd::new(end),
        })
    }

    fn from_response(response: Response) -> Result<Self> {
        let (info, access, fds) = opened_parts(response)?;
        Self::from_opened(info, access, fds)
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        path_of(self.inner.end.info())
    }

    /// Waits until a read would not wait: bytes are there, or end-of-file (a
    /// writer came and went, or the FIFO was deleted). `timeout`: at most that
    /// long, then [`Error::TimedOut`]; `None`: as long as it takes.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<()> {
        self.inner.end.wait_readable(Wait::from_timeout(timeout))
    }

    /// For a child process: waits as [`wait_readable`](Self::wait_readable)
    /// does, then returns the descriptor in blocking mode. Bytes of a partly
    /// read line or message are dropped.
    pub fn into_blocking(self, timeout: Option<Duration>) -> Result<OwnedFd> {
        self.wait_readable(timeout)?;
        Ok(self.inner.end.into_blocking_fd())
    }
}

reader_api!(FifoReader, "FifoWriter");

impl From<FifoReader> for OwnedFd {
    /// Waits until a writer has written (or come and gone), then returns the
    /// descriptor in blocking mode; see [`FifoReader::into_blocking`] for a
    /// bounded wait.
    fn from(r: FifoReader) -> OwnedFd {
        // Waiting forever fails only if poll itself fails, which it does not
        // on a descriptor we own; the child then reads what there is.
        let _ = r.wait_readable(None);
        r.inner.end.into_blocking_fd()
    }
}

impl From<FifoReader> for Stdio {
    /// For a child's standard input; waits as `From<FifoReader> for OwnedFd` does.
    fn from(r: FifoReader) -> Stdio {
        Stdio::from(OwnedFd::from(r))
    }
}

/// A FIFO open for writing.
///
/// Methods take `&self`: threads may share one writer, and each line or
/// message still goes out whole. Writes wait for room (blocking `write(2)`, or
/// `poll(2)` in the timeout variants); once the reader has left they fail with
/// [`Error::ReaderGone`].
#[derive(Debug)]
pub struct FifoWriter {
    inner: End,
}

impl FifoWriter {
    /// Builds a writer from the parts of a [`Reply::Opened`](protocol::Reply::Opened)
    /// answer for a `fifo:` opened with [`Access::Write`].
    pub fn from_opened(info: ObjectInfo, access: Access, fds: Vec<OwnedFd>) -> Result<Self> {
        let inner = End::from_opened(info, access, fds, Kind::Fifo, Access::Write)?;
        Ok(FifoWriter { inner })
    }

    fn from_response(response: Response) -> Result<Self> {
        let (info, access, fds) = opened_parts(response)?;
        Self::from_opened(info, access, fds)
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        path_of(self.inner.info())
    }
}

writer_api!(FifoWriter, "FifoReader");

impl From<FifoWriter> for OwnedFd {
    /// The descriptor, in blocking mode.
    fn from(w: FifoWriter) -> OwnedFd {
        w.inner.into_blocking_fd()
    }
}

impl From<FifoWriter> for Stdio {
    /// For a child's standard output or error (blocking mode restored).
    fn from(w: FifoWriter) -> Stdio {
        Stdio::from(OwnedFd::from(w))
    }
}

#[cfg(test)]
mod tests;
