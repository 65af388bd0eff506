//! POSIX shared-memory segments hosted by ipcd (`shm:NAME`), mapped into the
//! processes that open them.
//!
//! A segment is the POSIX object `/<prefix>NAME` (`/dev/shm/<prefix>NAME`;
//! the default prefix is `ipcd.`). The daemon creates it, sizes it and checks
//! who may open it; [`Client::open_shm`] then gets its descriptor and maps the
//! whole segment `MAP_SHARED`. **The bytes never pass through the daemon**:
//! every process that has it mapped reads and writes the same memory.
//!
//! Other processes write this memory at any moment, so a [`SharedMemory`]
//! never lends out `&[u8]` or `&mut [u8]` over it (the compiler would assume
//! the bytes cannot change under it): bytes are copied in and out
//! ([`read_at`](SharedMemory::read_at), [`write_at`](SharedMemory::write_at)),
//! every access is bounds-checked, and words shared between processes are used
//! through atomics ([`atomic_u64`](SharedMemory::atomic_u64)). A copy that
//! races with another process's write may see some old and some new bytes:
//! agree on a protocol (an atomic flag or counter) for anything bigger than a word.
//!
//! Segments only grow ([`Client::resize_shm`]); a mapping keeps the size it was
//! made with until [`SharedMemory::refresh`] maps the segment again. ipcd
//! refuses to shrink a segment, but a process holding a writable descriptor
//! can still `ftruncate` it behind ipcd's back; touching mapped bytes past
//! the new end then raises `SIGBUS` in every process that does. Share write
//! access only with programs you trust that far.
//!
//! ```no_run
//! use std::sync::atomic::Ordering;
//! use ipc_client::{Access, Client, ShmOptions};
//!
//! let mut client = Client::connect()?;
//! client.create_shm("frames", &ShmOptions::new().size(1 << 20).mode(0o660))?;
//!
//! let shm = client.open_shm("shm:frames", Access::ReadWrite)?;
//! shm.write_at(64, b"hello")?;
//! shm.atomic_u64(0)?.fetch_add(1, Ordering::AcqRel); // a counter other processes see
//!
//! let reader = client.open_shm("frames", Access::Read)?; // mapped read-only
//! assert_eq!(reader.read_vec(64, 5)?, b"hello");
//! # Ok::<(), ipc_client::Error>(())
//! ```

use std::borrow::Cow;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64};

use nix::errno::Errno;
use protocol::{
    Access, CreateSpec, KindOp, KindParams, KindReply, Lifetime, ObjectInfo, Reply, Request, ShmOp,
    ShmParams, ShmReply,
};

use crate::client::{Client, Response};
use crate::error::{Error, Result};
use crate::sys::region::{Region, RegionError};

/// How to create a segment with [`Client::create_shm`].
///
/// ```
/// use ipc_client::ShmOptions;
/// let opts = ShmOptions::new().size(1 << 20).mode(0o660).session();
/// assert_eq!(opts.size, Some(1048576));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShmOptions {
    /// Size in bytes, 1 to [`SHM_MAX_SIZE`](protocol::SHM_MAX_SIZE) (and within
    /// the caller's byte share); required unless adopting. New bytes read as zero.
    pub size: Option<u64>,
    /// Permission bits (read allows mapping read-only, write mapping
    /// read-write and resizing); `None`: `0o600`.
    pub mode: Option<u32>,
    /// Whether the segment outlives the connection that created it.
    pub lifetime: Lifetime,
    /// Register an existing segment `/<prefix>NAME` the caller owns instead of
    /// creating one (it keeps its size).
    pub adopt: bool,
}

impl Default for ShmOptions {
    fn default() -> Self {
        ShmOptions {
            size: None,
            mode: None,
            lifetime: Lifetime::Persistent,
            adopt: false,
        }
    }
}

impl ShmOptions {
    /// The defaults: no size yet (set one), mode `0o600`, persistent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the size in bytes.
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = Some(bytes);
        self
    }

    /// Sets the permission bits, e.g. `0o660`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Makes the segment go away when the creating connection closes.
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
            params: KindParams::Shm(ShmParams { size: self.size }),
        }
    }
}

/// `shm:NAME` for a bare `NAME`; an address that already says `shm:` is kept.
///
/// ```
/// assert_eq!(ipc_client::shm_address("frames"), "shm:frames");
/// assert_eq!(ipc_client::shm_address("shm:frames"), "shm:frames");
/// ```
pub fn shm_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Shm, name)
}

impl Client {
    /// Creates (or with [`ShmOptions::adopt`], adopts) a segment; `name` is
    /// `NAME` or `shm:NAME`. Map it with [`open_shm`](Self::open_shm).
    ///
    /// A size of 0, above [`SHM_MAX_SIZE`](protocol::SHM_MAX_SIZE) or past the
    /// caller's byte share is refused by the daemon, with an error naming the limit.
    ///
    /// ```no_run
    /// use ipc_client::{Client, ShmOptions};
    /// let mut client = Client::connect()?;
    /// let info = client.create_shm("frames", &ShmOptions::new().size(4096).session())?;
    /// assert_eq!(info.address, "shm:frames");
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn create_shm(&mut self, name: &str, opts: &ShmOptions) -> Result<ObjectInfo> {
        self.create(&shm_address(name), opts.to_spec())
    }

    /// Opens a segment and maps all of it: read-only for [`Access::Read`],
    /// read-write otherwise (a shared mapping cannot be write-only, so
    /// [`Access::Write`] maps it readable too). `name` is `NAME` or `shm:NAME`.
    ///
    /// ```no_run
    /// use ipc_client::{Access, Client};
    /// let mut client = Client::connect()?;
    /// let shm = client.open_shm("frames", Access::Read)?;
    /// let header = shm.read_vec(0, 16)?;
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn open_shm(&mut self, name: &str, access: Access) -> Result<SharedMemory> {
        let address = shm_address(name).into_owned();
        let response = self.request(Request::Open { address, access })?;
        SharedMemory::from_response(response)
    }

    /// Grows the segment to `size` bytes (needs the write bit); returns its
    /// size now. Shrinking is refused (`invalid-argument`): another process's
    /// mapping past the new end would fault. Mappings made before keep their
    /// size; [`SharedMemory::refresh`] maps the new bytes, which read as zero.
    ///
    /// ```no_run
    /// use ipc_client::{Access, Client};
    /// let mut client = Client::connect()?;
    /// let mut shm = client.open_shm("frames", Access::ReadWrite)?;
    /// client.resize_shm("frames", 2 << 20)?;
    /// assert_eq!(shm.refresh()?, 2 << 20);
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn resize_shm(&mut self, name: &str, size: u64) -> Result<u64> {
        let address = shm_address(name);
        match self.operate(&address, KindOp::Shm(ShmOp::Resize { size }))? {
            KindReply::Shm(ShmReply::Resized { size }) => Ok(size),
            other => Err(Error::Protocol(format!(
                "expected a segment's resized answer, got {other:?}"
            ))),
        }
    }
}

/// A shared-memory segment mapped into this process, as handed out by ipcd.
///
/// The whole segment is mapped (`MAP_SHARED`), from offset 0 for the size it
/// had when it was mapped ([`len`](Self::len)). Every access is bounds-checked
/// and copies bytes ([`read_at`](Self::read_at), [`write_at`](Self::write_at));
/// shared words are atomics ([`atomic_u64`](Self::atomic_u64),
/// [`atomic_u32`](Self::atomic_u32)). Methods take `&self`, so a segment may be
/// shared between threads as it is between processes. Dropping it unmaps the
/// segment and closes the descriptor; the segment itself stays.
///
/// Errors: a range past the end is [`Error::OutOfBounds`] (naming offset,
/// length and size); an atomic at an unaligned offset [`Error::Misaligned`];
/// writing through a read-only mapping [`Error::AccessDenied`].
#[derive(Debug)]
pub struct SharedMemory {
    fd: OwnedFd,
    /// `None` while the segment is empty: there is nothing to map.
    region: Option<Region>,
    writable: bool,
    info: Option<ObjectInfo>,
    address: String,
}

impl SharedMemory {
    /// Maps a segment from the parts of a [`Reply::Opened`] answer: the object,
    /// the granted access (read-write mapping unless [`Access::Read`]) and the
    /// one descriptor that came with it.
    pub fn from_opened(info: ObjectInfo, access: Access, fds: Vec<OwnedFd>) -> Result<Self> {
        let [fd]: [OwnedFd; 1] = fds.try_into().map_err(|fds: Vec<OwnedFd>| {
            Error::Protocol(format!(
                "expected 1 descriptor for {}, got {}",
                info.address,
                fds.len()
            ))
        })?;
        let address = info.address.clone();
        Self::map(fd, access.writes(), address, Some(info))
    }

    /// Maps the segment (or any file that can be mapped) behind `fd`, all of it,
    /// read-write if `writable` (`fd` must then be open `O_RDWR`), else read-only.
    ///
    /// ```no_run
    /// use ipc_client::SharedMemory;
    /// # fn descriptor_from_elsewhere() -> std::os::fd::OwnedFd { unimplemented!() }
    /// let fd = descriptor_from_elsewhere(); // e.g. passed over a Unix socket
    /// let shm = SharedMemory::from_fd(fd, false)?;
    /// println!("{} bytes", shm.len());
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn from_fd(fd: OwnedFd, writable: bool) -> Result<Self> {
        let address = format!("shared memory (descriptor {})", fd.as_raw_fd());
        Self::map(fd, writable, address, None)
    }

    fn from_response(response: Response) -> Result<Self> {
        match response.reply {
            Reply::Opened { info, access } => Self::from_opened(info, access, response.fds),
            other => Err(Error::Protocol(format!(
                "expected an Opened reply, got {other:?}"
            ))),
        }
    }

    fn map(fd: OwnedFd, writable: bool, address: String, info: Option<ObjectInfo>) -> Result<Self> {
        let mut shm = SharedMemory {
            fd,
            region: None,
            writable,
            info,
            address,
        };
        shm.refresh()?;
        Ok(shm)
    }

    /// The segment's address, e.g. `shm:frames` (for [`from_fd`](Self::from_fd):
    /// a description of the descriptor).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// What the daemon said about the segment when it was opened (`None` for
    /// [`from_fd`](Self::from_fd)).
    pub fn info(&self) -> Option<&ObjectInfo> {
        self.info.as_ref()
    }

    /// Bytes mapped: the segment's size when it was last mapped.
    #[inline]
    pub fn len(&self) -> usize {
        self.region.as_ref().map_or(0, Region::len)
    }

    /// Whether nothing is mapped (the segment was empty when last mapped).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the mapping may be written.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        match &self.region {
            Some(r) => r.read(offset, buf).map_err(|e| self.error(e)),
            None => self.check(offset, buf.len()),
        }
    }

    /// Copies `data` into the segment at `offset`; all of it or, past the end,
    /// none of it.
    #[inline]
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        match &self.region {
            Some(r) => r.write(offset, data).map_err(|e| self.error(e)),
            None if !self.writable => Err(self.error(RegionError::ReadOnly)),
            None => self.check(offset, data.len()),
        }
    }

    /// `len` bytes from `offset`, as a new vector (checked before allocating).
    pub fn read_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        self.check(offset, len)?;
        let mut buf = vec![0; len];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// The `u64` word at `offset` (a multiple of 8), shared with every process
    /// mapping the segment. Needs a writable mapping (even to load: an
    /// `AtomicU64` may be stored through).
    ///
    /// ```no_run
    /// use std::sync::atomic::Ordering;
    /// # let shm: ipc_client::SharedMemory = unimplemented!();
    /// let count = shm.atomic_u64(0)?.fetch_add(1, Ordering::AcqRel) + 1;
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        match &self.region {
            Some(r) => r.atomic_u64(offset).map_err(|e| self.error(e)),
            None => self.empty_word(offset, 8),
        }
    }

    /// The `u32` word at `offset` (a multiple of 4), shared with every process
    /// mapping the segment. Needs a writable mapping.
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        match &self.region {
            Some(r) => r.atomic_u32(offset).map_err(|e| self.error(e)),
            None => self.empty_word(offset, 4),
        }
    }

    /// Looks at the segment's size again (`fstat`) and, if it changed since it
    /// was mapped (another process resized it), maps it again: afterwards
    /// [`len`](Self::len) is the new size, the grown bytes read as zero and the
    /// old ones are as they were. Returns the size.
    ///
    /// It takes `&mut self`, so no word from [`atomic_u64`](Self::atomic_u64)
    /// is still borrowed from the old mapping.
    pub fn refresh(&mut self) -> Result<u64> {
        let st = nix::sys::stat::fstat(&self.fd).map_err(|e| self.os_error("fstat", e))?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let len = usize::try_from(size).map_err(|_| {
            Error::InvalidArgument(format!(
                "{} is {size} bytes, more than this process can map",
                self.address
            ))
        })?;
        if self.region.is_some() && len == self.len() {
            return Ok(size);
        }
        self.region = match len {
            0 => None,
            _ => Some(
                Region::map(self.fd.as_fd(), len, self.writable).map_err(|e| {
                    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                    self.os_error("mmap", errno)
                })?,
            ),
        };
        Ok(size)
    }

    /// Gives up the handle (unmapping the segment), returning its descriptor.
    pub fn into_owned_fd(self) -> OwnedFd {
        self.fd
    }

    /// The mapping, for the raw-pointer accessors in `sys`.
    pub(crate) fn region(&self) -> Option<&Region> {
        self.region.as_ref()
    }

    /// Checks that `offset..offset + len` lies within the mapping.
    #[inline]
    fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(self.error(RegionError::OutOfBounds {
                offset: offset as u64,
                len: len as u64,
                size: self.len() as u64,
            })),
        }
    }

    /// A word of an empty segment: there is none.
    fn empty_word<T>(&self, offset: usize, size: usize) -> Result<&T> {
        Err(self.error(if self.writable {
            RegionError::OutOfBounds {
                offset: offset as u64,
                len: size as u64,
                size: 0,
            }
        } else {
            RegionError::ReadOnly
        }))
    }

    fn error(&self, e: RegionError) -> Error {
        let address = self.address.clone();
        match e {
            RegionError::OutOfBounds { offset, len, size } => Error::OutOfBounds {
                address,
                offset,
                len,
                size,
            },
            RegionError::Misaligned { offset, align } => Error::Misaligned {
                address,
                offset,
                align,
            },
            RegionError::ReadOnly => Error::AccessDenied {
                address,
                needed: "writing",
            },
        }
    }

    fn os_error(&self, op: &'static str, errno: Errno) -> Error {
        Error::Os {
            op,
            address: self.address.clone(),
            errno,
        }
    }
}

impl AsFd for SharedMemory {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for SharedMemory {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests;
