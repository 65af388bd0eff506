//! Shared-memory rings (`ring:NAME`): a multi-producer, multi-consumer bounded
//! queue of messages in a segment every participant maps. The daemon creates
//! the segment and writes its header; after that messages go from producer to
//! consumer through the mapped slots, without the daemon and without a system
//! call unless somebody sleeps. [`Ring`] describes the semantics.

mod engine;
mod loan;
pub(crate) mod participants;
mod wait;

use std::borrow::Cow;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use protocol::{Access, CreateSpec, KindParams, Lifetime, ObjectInfo, Reply, Request, RingParams};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::sys::ring_mem::{MapError, RingMem};
use engine::Engine;
pub use loan::{RingMessage, SlotLoan};
use wait::Timeout;

/// How to create a ring with [`Client::create_ring`].
///
/// ```
/// use ipc_client::RingOptions;
/// let opts = RingOptions::new().slots(1024).slot_size(256).mode(0o660).session();
/// assert_eq!(opts.slots, Some(1024));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingOptions {
    /// Number of slots, a power of two (2 ..= 1 048 576); `None`: 256.
    pub slots: Option<u32>,
    /// Largest message in bytes (1 ..= 64 MiB); `None`: 1024.
    pub slot_size: Option<u32>,
    /// Permission bits; opening a ring needs both read and write. `None`: `0o600`.
    pub mode: Option<u32>,
    /// Whether the ring outlives the connection that created it.
    pub lifetime: Lifetime,
    /// Register a segment that already exists instead of creating one.
    pub adopt: bool,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            slots: None,
            slot_size: None,
            mode: None,
            lifetime: Lifetime::Persistent,
            adopt: false,
        }
    }
}

impl RingOptions {
    /// The defaults: 256 slots of 1024 bytes, mode `0o600`, persistent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of slots (a power of two).
    pub fn slots(mut self, n: u32) -> Self {
        self.slots = Some(n);
        self
    }

    /// Sets the largest message in bytes.
    pub fn slot_size(mut self, bytes: u32) -> Self {
        self.slot_size = Some(bytes);
        self
    }

    /// Sets the permission bits, e.g. `0o660`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Makes the ring go away when the creating connection closes.
    pub fn session(mut self) -> Self {
        self.lifetime = Lifetime::Session;
        self
    }

    /// Adopts an existing segment instead of creating one.
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
            params: KindParams::Ring(RingParams {
                slots: self.slots,
                slot_size: self.slot_size,
            }),
        }
    }
}

/// `ring:NAME` for a bare `NAME`; an address that already says `ring:` is kept.
pub fn ring_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Ring, name)
}

impl Client {
    /// Creates a ring; `name` is `NAME` or `ring:NAME`. Open it with
    /// [`open_ring`](Self::open_ring).
    ///
    /// ```no_run
    /// use ipc_client::{Client, RingOptions};
    /// let mut client = Client::connect()?;
    /// client.create_ring("frames", &RingOptions::new().slots(64).slot_size(4096))?;
    /// let ring = client.open_ring("frames")?;
    /// ring.send(b"hello")?;
    /// assert_eq!(ring.recv()?, b"hello");
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn create_ring(&mut self, name: &str, opts: &RingOptions) -> Result<ObjectInfo> {
        self.create(&ring_address(name), opts.to_spec())
    }

    /// Opens a ring (read-write: consumers write slot states too) and attaches
    /// to it; `name` is `NAME` or `ring:NAME`.
    pub fn open_ring(&mut self, name: &str) -> Result<Ring> {
        let address = ring_address(name).into_owned();
        let response = self.request(Request::Open {
            address,
            access: Access::ReadWrite,
        })?;
        match response.reply {
            Reply::Opened { info, .. } => Ring::from_opened(info, response.fds),
            other => Err(Error::Protocol(format!(
                "expected an Opened reply, got {other:?}"
            ))),
        }
    }
}

/// An attached ring: send and receive messages through shared memory.
///
/// Methods take `&self`, so one handle may serve several threads (they share
/// its participant entry); separate handles are separate participants. The
/// handle detaches from the participant table when dropped.
///
/// Errors: a full (send) or empty (receive) ring is [`Error::WouldBlock`] for
/// the `try_*` methods; a timed operation whose time runs out is
/// [`Error::TimedOut`]; a message longer than the slot size is
/// [`Error::ExceedsSlotSize`]; a receive buffer shorter than the next message
/// is [`Error::RingBufferTooSmall`] (the message stays); an impossible slot
/// state is [`Error::RingCorrupted`].
///
/// # Semantics
///
/// - **MPMC, FIFO by claim order.** Any number of handles (up to 128 at once,
///   in any processes) send and receive. Each message goes to exactly one
///   consumer, in the order producers claimed their positions; one producer's
///   messages stay in its order. With several consumers, each consumer still
///   sees each producer's messages in increasing order.
/// - **Crashes.** A producer that dies while writing loses that message; a
///   consumer that dies holding a message loses it (at-most-once). Neither
///   blocks the others for long: waiters check the owner of a slot that has
///   blocked them for 50 ms (pid, entry generation and process start time)
///   and move past a dead one.
/// - **Waiting.** Blocked operations sleep on futex words in the segment, at
///   most 50 ms at a time. [`Ring::set_spin`] makes them first spin for a
///   while, which cuts wake-up latency (tens of microseconds across CPUs) to
///   well under a microsecond when the peer runs on another CPU; it is off by
///   default because on few CPUs a spinner delays the very peer it waits for
///   (on 2 vCPUs, a spinner beside its peer makes round trips far slower).
/// - **No shared slices.** Memory another process writes is never exposed as
///   `&[u8]` or `&mut [u8]` by safe code: messages are copied in and out, or
///   written and read in place through [`SlotLoan`] and [`RingMessage`].
///
/// A handle must not be used across `fork` (the child is not the participant
/// its slots name), and all participants must share one pid namespace. Any
/// process holding the descriptor could shrink the segment (`ftruncate`);
/// touching the lost pages then raises `SIGBUS`, as with any shared mapping.
///
/// ```no_run
/// use std::io::Write;
/// let mut client = ipc_client::Client::connect()?;
/// let ring = client.open_ring("frames")?;
/// ring.send(b"copied in")?;
/// let mut loan = ring.loan()?; // written in place
/// write!(loan, "frame {}", 42)?;
/// loan.commit()?;
/// assert_eq!(ring.recv()?, b"copied in");
/// let msg = ring.recv_borrowed()?; // read in place; released on drop
/// assert_eq!(msg.to_vec(), b"frame 42");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Ring {
    engine: Engine,
    info: Option<ObjectInfo>,
    fd: OwnedFd,
}

impl Ring {
    /// Maps a ring segment read-write from its descriptor (as the daemon's
    /// `Open` hands out, or any `O_RDWR` descriptor of a segment holding a ring
    /// header), checks the header and attaches to the participant table.
    /// [`Error::BadRing`] if the segment holds no valid ring header or is
    /// shorter than the header says; [`Error::Os`] if it cannot be mapped
    /// read-write.
    /// [`Error::RingAttachLimit`] if 128 handles are attached already.
    pub fn from_fd(fd: OwnedFd) -> Result<Ring> {
        let address = format!("ring on fd {}", fd.as_raw_fd());
        Ring::attach(fd, address, None)
    }

    /// Builds a handle from the parts of a [`Reply::Opened`] answer: the
    /// object and the one descriptor that came with it.
    pub fn from_opened(info: ObjectInfo, fds: Vec<OwnedFd>) -> Result<Ring> {
        let [fd]: [OwnedFd; 1] = fds.try_into().map_err(|fds: Vec<OwnedFd>| {
            Error::Protocol(format!(
                "expected 1 descriptor for {}, got {}",
                info.address,
                fds.len()
            ))
        })?;
        Ring::attach(fd, info.address.clone(), Some(info))
    }

    fn attach(fd: OwnedFd, address: String, info: Option<ObjectInfo>) -> Result<Ring> {
        let os = |op, errno| Error::Os {
            op,
            address: address.clone(),
            errno,
        };
        let size = nix::sys::stat::fstat(&fd)
            .map_err(|e| os("fstat", e))?
            .st_size;
        let len = usize::try_from(size).map_err(|_| Error::BadRing {
            address: address.clone(),
            detail: format!("segment size {size}"),
        })?;
        let mem = RingMem::map(fd.as_fd(), len).map_err(|e| match e {
            MapError::Map(io) => os(
                "mmap",
                nix::errno::Errno::from_raw(io.raw_os_error().unwrap_or(0)),
            ),
            MapError::Header(detail) => Error::BadRing {
                address: address.clone(),
                detail,
            },
        })?;
        let me = participants::attach(&mem).map_err(|_| Error::RingAttachLimit {
            address: address.clone(),
            max: protocol::kinds::ring::layout::PARTICIPANTS_MAX,
        })?;
        let watch = fd.try_clone().map_err(|e| {
            os(
                "dup",
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        Ok(Ring {
            engine: Engine::new(mem, me, address, watch),
            info,
            fd,
        })
    }

    /// The ring's address, e.g. `ring:frames` (or `ring on fd N` for [`from_fd`](Self::from_fd)).
    pub fn address(&self) -> &str {
        self.engine.address()
    }

    /// What the daemon said about the ring when it was opened (none for [`from_fd`](Self::from_fd)).
    pub fn info(&self) -> Option<&ObjectInfo> {
        self.info.as_ref()
    }

    /// Number of slots: messages that can wait at once.
    pub fn slots(&self) -> usize {
        self.engine.mem.geometry().slots as usize
    }

    /// The largest message in bytes.
    pub fn slot_size(&self) -> usize {
        self.engine.mem.slot_size()
    }

    /// Messages claimed by producers and not yet by consumers: a snapshot,
    /// stale as soon as it is read.
    pub fn depth(&self) -> usize {
        self.engine.depth() as usize
    }

    /// How long a blocked operation spins (polling the slot) before it sleeps.
    pub fn spin(&self) -> Duration {
        self.engine.spin()
    }

    /// Sets [`spin`](Self::spin) for this handle (`Duration::ZERO`, the
    /// default: sleep at once). Spinning trades CPU for latency: worth it only
    /// when the peer runs on another CPU that is not needed for anything else.
    pub fn set_spin(&self, spin: Duration) {
        self.engine.set_spin(spin);
    }

    // ------------------------------------------------------------ sending

    /// Sends `msg`, waiting while the ring is full.
    #[inline]
    pub fn send(&self, msg: &[u8]) -> Result<()> {
        self.send_with(msg, Timeout::Forever)
    }

    /// Like [`send`](Self::send), but gives up with [`Error::TimedOut`] after `timeout`.
    pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_with(msg, Timeout::After(timeout))
    }

    /// Sends without waiting: [`Error::WouldBlock`] if the ring is full.
    #[inline]
    pub fn try_send(&self, msg: &[u8]) -> Result<()> {
        self.send_with(msg, Timeout::Never)
    }

    #[inline]
    fn send_with(&self, msg: &[u8], timeout: Timeout) -> Result<()> {
        if msg.len() > self.slot_size() {
            return Err(self.too_large(msg.len()));
        }
        let claim = self.engine.claim_produce(timeout)?;
        self.engine.mem.write_payload(claim.slot, 0, msg);
        self.engine.commit(claim, msg.len() as u32)
    }

    /// Claims a slot to write one message in place, waiting while the ring is full.
    pub fn loan(&self) -> Result<SlotLoan<'_>> {
        self.loan_with(Timeout::Forever)
    }

    /// Like [`loan`](Self::loan), but gives up with [`Error::TimedOut`] after `timeout`.
    pub fn loan_timeout(&self, timeout: Duration) -> Result<SlotLoan<'_>> {
        self.loan_with(Timeout::After(timeout))
    }

    /// Like [`loan`](Self::loan), without waiting: [`Error::WouldBlock`] if the ring is full.
    pub fn try_loan(&self) -> Result<SlotLoan<'_>> {
        self.loan_with(Timeout::Never)
    }

    fn loan_with(&self, timeout: Timeout) -> Result<SlotLoan<'_>> {
        let claim = self.engine.claim_produce(timeout)?;
        Ok(SlotLoan::new(&self.engine, claim))
    }

    // ------------------------------------------------------------ receiving

    /// Receives the next message, waiting while the ring is empty.
    pub fn recv(&self) -> Result<Vec<u8>> {
        self.recv_vec(Timeout::Forever)
    }

    /// Like [`recv`](Self::recv), but gives up with [`Error::TimedOut`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Vec<u8>> {
        self.recv_vec(Timeout::After(timeout))
    }

    /// Receives without waiting: [`Error::WouldBlock`] if the ring is empty.
    pub fn try_recv(&self) -> Result<Vec<u8>> {
        self.recv_vec(Timeout::Never)
    }

    fn recv_vec(&self, timeout: Timeout) -> Result<Vec<u8>> {
        let claim = self.engine.claim_consume(timeout, usize::MAX)?;
        let mut data = vec![0; claim.len];
        self.engine.mem.read_payload(claim.slot, 0, &mut data);
        self.engine.release(claim)?;
        Ok(data)
    }

    /// Receives the next message into `buf`, waiting while the ring is empty,
    /// and returns its length. Allocates nothing. A `buf` of
    /// [`slot_size`](Self::slot_size) bytes fits every message; a shorter one
    /// that does not fit the next message gets [`Error::RingBufferTooSmall`]
    /// and the message stays in the ring.
    #[inline]
    pub fn recv_into(&self, buf: &mut [u8]) -> Result<usize> {
        self.recv_into_with(buf, Timeout::Forever)
    }

    /// Like [`recv_into`](Self::recv_into), but gives up with
    /// [`Error::TimedOut`] after `timeout`.
    pub fn recv_into_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        self.recv_into_with(buf, Timeout::After(timeout))
    }

    /// Like [`recv_into`](Self::recv_into), without waiting:
    /// [`Error::WouldBlock`] if the ring is empty.
    #[inline]
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<usize> {
        self.recv_into_with(buf, Timeout::Never)
    }

    #[inline]
    fn recv_into_with(&self, buf: &mut [u8], timeout: Timeout) -> Result<usize> {
        let claim = self.engine.claim_consume(timeout, buf.len())?;
        self.engine
            .mem
            .read_payload(claim.slot, 0, &mut buf[..claim.len]);
        self.engine.release(claim)?;
        Ok(claim.len)
    }

    /// Receives the next message in place, waiting while the ring is empty;
    /// the slot is released when the view is dropped.
    pub fn recv_borrowed(&self) -> Result<RingMessage<'_>> {
        self.borrow_with(Timeout::Forever)
    }

    /// Like [`recv_borrowed`](Self::recv_borrowed), but gives up with
    /// [`Error::TimedOut`] after `timeout`.
    pub fn recv_borrowed_timeout(&self, timeout: Duration) -> Result<RingMessage<'_>> {
        self.borrow_with(Timeout::After(timeout))
    }

    /// Like [`recv_borrowed`](Self::recv_borrowed), without waiting:
    /// [`Error::WouldBlock`] if the ring is empty.
    pub fn try_recv_borrowed(&self) -> Result<RingMessage<'_>> {
        self.borrow_with(Timeout::Never)
    }

    fn borrow_with(&self, timeout: Timeout) -> Result<RingMessage<'_>> {
        let claim = self.engine.claim_consume(timeout, usize::MAX)?;
        Ok(RingMessage::new(&self.engine, claim))
    }

    #[cold]
    fn too_large(&self, len: usize) -> Error {
        Error::ExceedsSlotSize {
            address: self.address().to_owned(),
            len,
            slot_size: self.slot_size(),
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        participants::detach(&self.engine.mem, self.engine.me);
    }
}

impl AsFd for Ring {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests;
