//! POSIX message queues: created and opened through ipcd, then used directly.
//!
//! The daemon only hands out the queue's descriptor; every message goes through
//! `mq_send`/`mq_receive` on it, so a [`MessageQueue`] costs nothing over the
//! raw calls: no allocation and no extra system call per message on the
//! `send`/`recv_into` paths.

use std::borrow::Cow;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::mqueue::{MqAttr, mq_getattr, mq_receive, mq_send, mq_setattr, mq_timedreceive};
use nix::sys::time::TimeSpec;
use protocol::{Access, CreateSpec, KindParams, Lifetime, MqParams, ObjectInfo, Request};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::sys::{self, MqFd};

/// Priorities run from 0 to `MQ_PRIO_MAX - 1` (Linux: 32767); higher is received first.
pub const MQ_PRIO_MAX: u32 = 32768;

/// How to create a message queue with [`Client::create_mq`].
///
/// ```
/// use ipc_client::MqOptions;
/// let opts = MqOptions::new().capacity(10).msg_size(512).mode(0o660).session();
/// assert_eq!(opts.capacity, Some(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqOptions {
    /// Maximum messages in the queue (`mq_maxmsg`); `None`: the kernel default.
    pub capacity: Option<u32>,
    /// Maximum bytes per message (`mq_msgsize`); `None`: the kernel default.
    pub msg_size: Option<u32>,
    /// Permission bits (read allows receiving, write sending); `None`: `0o600`.
    pub mode: Option<u32>,
    /// Whether the queue outlives the connection that created it.
    pub lifetime: Lifetime,
    /// Register a kernel queue that already exists instead of creating one.
    pub adopt: bool,
    /// The access to open the new queue with.
    pub access: Access,
}

impl Default for MqOptions {
    fn default() -> Self {
        MqOptions {
            capacity: None,
            msg_size: None,
            mode: None,
            lifetime: Lifetime::Persistent,
            adopt: false,
            access: Access::ReadWrite,
        }
    }
}

impl MqOptions {
    /// The defaults: kernel-default sizes, mode `0o600`, persistent, read-write.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the maximum number of messages.
    pub fn capacity(mut self, n: u32) -> Self {
        self.capacity = Some(n);
        self
    }

    /// Sets the maximum message size in bytes.
    pub fn msg_size(mut self, bytes: u32) -> Self {
        self.msg_size = Some(bytes);
        self
    }

    /// Sets the permission bits, e.g. `0o660`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Makes the queue go away when the creating connection closes.
    pub fn session(mut self) -> Self {
        self.lifetime = Lifetime::Session;
        self
    }

    /// Adopts an existing kernel queue instead of creating one.
    pub fn adopt(mut self) -> Self {
        self.adopt = true;
        self
    }

    /// Sets the access the creator opens the queue with.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// The creation request these options describe.
    pub fn to_spec(&self) -> CreateSpec {
        CreateSpec {
            mode: self.mode,
            lifetime: self.lifetime,
            adopt: self.adopt,
            params: KindParams::Mq(MqParams {
                capacity: self.capacity,
                msg_size: self.msg_size,
            }),
        }
    }
}

/// `mq:NAME` for a bare `NAME`; an address that already says `mq:` is kept.
pub fn mq_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Mq, name)
}

impl Client {
    /// Creates a message queue and opens it with `opts.access`, in one round trip.
    ///
    /// `name` is `NAME` or `mq:NAME`. If the creation succeeds but the open is
    /// refused (say the mode denies the creator reading), the queue stays
    /// created and the open's error is returned.
    ///
    /// ```no_run
    /// use ipc_client::{Client, MqOptions};
    /// let mut client = Client::connect()?;
    /// let q = client.create_mq("jobs", &MqOptions::new().capacity(8).msg_size(256).session())?;
    /// q.send(b"hello", 0)?;
    /// assert_eq!(q.recv()?.data, b"hello");
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn create_mq(&mut self, name: &str, opts: &MqOptions) -> Result<MessageQueue> {
        let address = mq_address(name).into_owned();
        let requests = [
            Request::Create {
                address: address.clone(),
                spec: opts.to_spec(),
            },
            Request::Open {
                address,
                access: opts.access,
            },
        ];
        let mut answers = self.exchange(&requests)?.into_iter();
        let created = answers
            .next()
            .ok_or_else(|| Error::Protocol("missing answer".into()))?;
        let opened = answers
            .next()
            .ok_or_else(|| Error::Protocol("missing answer".into()))?;
        created?;
        MessageQueue::from_response(opened?)
    }

    /// Opens an existing message queue; `name` is `NAME` or `mq:NAME`.
    ///
    /// ```no_run
    /// use ipc_client::{Access, Client};
    /// let mut client = Client::connect()?;
    /// let q = client.open_mq("mq:jobs", Access::Write)?;
    /// q.send(b"job 1", 5)?;
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn open_mq(&mut self, name: &str, access: Access) -> Result<MessageQueue> {
        let address = mq_address(name).into_owned();
        let response = self.request(Request::Open { address, access })?;
        MessageQueue::from_response(response)
    }
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The bytes.
    pub data: Vec<u8>,
    /// Its priority (higher arrives first).
    pub priority: u32,
}

/// A queue's attributes as the kernel reports them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqAttributes {
    /// Maximum messages (`mq_maxmsg`).
    pub capacity: u64,
    /// Maximum bytes per message (`mq_msgsize`).
    pub msg_size: u64,
    /// Messages waiting now (`mq_curmsgs`).
    pub depth: u64,
    /// Whether this descriptor is in non-blocking mode.
    pub nonblocking: bool,
}

/// An open POSIX message queue, as handed out by ipcd.
///
/// Sending and receiving are plain `mq_*` calls on the descriptor; the daemon is
/// not involved. Methods take `&self`: the kernel serialises concurrent use, so
/// a queue may be shared between threads. Dropping it closes the descriptor.
///
/// Errors: a full (send) or empty (receive) queue is [`Error::WouldBlock`] for
/// the `try_*` methods and on a non-blocking descriptor; a timed operation
/// whose time runs out is [`Error::TimedOut`]; a message longer than the
/// queue's message size is [`Error::MessageTooLarge`]. Interrupted calls are
/// retried.
#[derive(Debug)]
pub struct MessageQueue {
    fd: MqFd,
    info: ObjectInfo,
    access: Access,
    msg_size: usize,
}

impl MessageQueue {
    /// Builds a queue handle from the parts of a [`Reply::Opened`](protocol::Reply::Opened)
    /// answer: the object, the granted access and the one descriptor that came with it.
    pub fn from_opened(info: ObjectInfo, access: Access, fds: Vec<OwnedFd>) -> Result<Self> {
        let [fd]: [OwnedFd; 1] = fds.try_into().map_err(|fds: Vec<OwnedFd>| {
            Error::Protocol(format!(
                "expected 1 descriptor for {}, got {}",
                info.address,
                fds.len()
            ))
        })?;
        let fd = MqFd::new(fd).map_err(|errno| Error::Os {
            op: "mq_getattr",
            address: info.address.clone(),
            errno,
        })?;
        let attr = mq_getattr(fd.mqd()).map_err(|errno| Error::Os {
            op: "mq_getattr",
            address: info.address.clone(),
            errno,
        })?;
        let msg_size = usize::try_from(attr.msgsize()).unwrap_or(0);
        Ok(MessageQueue {
            fd,
            info,
            access,
            msg_size,
        })
    }

    fn from_response(response: crate::Response) -> Result<Self> {
        match response.reply {
            protocol::Reply::Opened { info, access } => {
                Self::from_opened(info, access, response.fds)
            }
            other => Err(Error::Protocol(format!(
                "expected an Opened reply, got {other:?}"
            ))),
        }
    }

    /// The queue's address, e.g. `mq:jobs`.
    pub fn address(&self) -> &str {
        &self.info.address
    }

    /// What the daemon said about the queue when it was opened.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// The access the daemon granted.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The largest message the queue takes, in bytes; also the smallest buffer
    /// [`recv_into`](Self::recv_into) accepts.
    pub fn msg_size(&self) -> usize {
        self.msg_size
    }

    /// Sends `msg` with `priority` (0–32767), waiting while the queue is full.
    #[inline]
    pub fn send(&self, msg: &[u8], priority: u32) -> Result<()> {
        loop {
            match mq_send(self.fd.mqd(), msg, priority) {
                Ok(()) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(self.send_error("mq_send", e, msg.len(), priority)),
            }
        }
    }

    /// Like [`send`](Self::send), but gives up with [`Error::TimedOut`] after `timeout`.
    pub fn send_timeout(&self, msg: &[u8], priority: u32, timeout: Duration) -> Result<()> {
        self.timed_send(msg, priority, &deadline_after(timeout)?)
    }

    /// Like [`send`](Self::send), but gives up with [`Error::TimedOut`] at `deadline`
    /// (wall-clock time, as the kernel measures it for message queues).
    pub fn send_deadline(&self, msg: &[u8], priority: u32, deadline: SystemTime) -> Result<()> {
        self.timed_send(msg, priority, &timespec_at(deadline))
    }

    /// Sends without waiting: [`Error::WouldBlock`] if the queue is full.
    #[inline]
    pub fn try_send(&self, msg: &[u8], priority: u32) -> Result<()> {
        self.timed_send(msg, priority, &PAST)
            .map_err(timed_out_is_would_block)
    }

    #[inline]
    fn timed_send(&self, msg: &[u8], priority: u32, deadline: &TimeSpec) -> Result<()> {
        loop {
            match sys::mq_timedsend(self.fd.mqd(), msg, priority, deadline) {
                Ok(()) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(self.send_error("mq_timedsend", e, msg.len(), priority)),
            }
        }
    }

    /// Receives the oldest message of the highest priority, waiting while the
    /// queue is empty. Allocates a buffer of [`msg_size`](Self::msg_size) bytes;
    /// [`recv_into`](Self::recv_into) reuses the caller's.
    pub fn recv(&self) -> Result<Message> {
        self.recv_with(|q, buf| q.recv_into(buf))
    }

    /// Like [`recv`](Self::recv), but gives up with [`Error::TimedOut`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message> {
        let deadline = deadline_after(timeout)?;
        self.recv_with(|q, buf| q.timed_recv_into(buf, &deadline))
    }

    /// Receives without waiting: [`Error::WouldBlock`] if the queue is empty.
    pub fn try_recv(&self) -> Result<Message> {
        self.recv_with(|q, buf| q.try_recv_into(buf))
    }

    /// Receives into `buf`, which must hold at least [`msg_size`](Self::msg_size)
    /// bytes, waiting while the queue is empty. Returns the message's length and
    /// priority. Allocates nothing.
    ///
    /// ```no_run
    /// # let mut client = ipc_client::Client::connect()?;
    /// # let q = client.open_mq("jobs", ipc_client::Access::Read)?;
    /// let mut buf = vec![0; q.msg_size()];
    /// loop {
    ///     let (len, priority) = q.recv_into(&mut buf)?;
    ///     println!("{priority}: {:?}", &buf[..len]);
    /// }
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    #[inline]
    pub fn recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32)> {
        let mut priority = 0;
        loop {
            match mq_receive(self.fd.mqd(), buf, &mut priority) {
                Ok(n) => return Ok((n, priority)),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(self.recv_error("mq_receive", e, buf.len())),
            }
        }
    }

    /// Like [`recv_into`](Self::recv_into), but gives up with [`Error::TimedOut`]
    /// after `timeout`.
    pub fn recv_into_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<(usize, u32)> {
        self.timed_recv_into(buf, &deadline_after(timeout)?)
    }

    /// Like [`recv_into`](Self::recv_into), but gives up with [`Error::TimedOut`]
    /// at `deadline` (wall-clock time).
    pub fn recv_into_deadline(&self, buf: &mut [u8], deadline: SystemTime) -> Result<(usize, u32)> {
        self.timed_recv_into(buf, &timespec_at(deadline))
    }

    /// Like [`recv_into`](Self::recv_into), without waiting: [`Error::WouldBlock`]
    /// if the queue is empty.
    #[inline]
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32)> {
        self.timed_recv_into(buf, &PAST)
            .map_err(timed_out_is_would_block)
    }

    #[inline]
    fn timed_recv_into(&self, buf: &mut [u8], deadline: &TimeSpec) -> Result<(usize, u32)> {
        let mut priority = 0;
        loop {
            match mq_timedreceive(self.fd.mqd(), buf, &mut priority, deadline) {
                Ok(n) => return Ok((n, priority)),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(self.recv_error("mq_timedreceive", e, buf.len())),
            }
        }
    }

    fn recv_with(
        &self,
        f: impl FnOnce(&Self, &mut [u8]) -> Result<(usize, u32)>,
    ) -> Result<Message> {
        let mut data = vec![0; self.msg_size];
        let (len, priority) = f(self, &mut data)?;
        data.truncate(len);
        Ok(Message { data, priority })
    }

    /// The queue's attributes now, including how many messages wait in it.
    pub fn attributes(&self) -> Result<MqAttributes> {
        let attr = mq_getattr(self.fd.mqd()).map_err(|e| self.os_error("mq_getattr", e))?;
        Ok(attributes_from(&attr))
    }

    /// Switches this descriptor between blocking and non-blocking mode. In
    /// non-blocking mode [`send`](Self::send) and [`recv`](Self::recv) return
    /// [`Error::WouldBlock`] instead of waiting. The descriptor is this handle's
    /// own (the daemon opens a fresh one per request), so other handles on the
    /// same queue are unaffected.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        let old = mq_getattr(self.fd.mqd()).map_err(|e| self.os_error("mq_getattr", e))?;
        let flags = if nonblocking {
            libc::O_NONBLOCK.into()
        } else {
            0
        };
        let new = MqAttr::new(flags, old.maxmsg(), old.msgsize(), old.curmsgs());
        mq_setattr(self.fd.mqd(), &new).map_err(|e| self.os_error("mq_setattr", e))?;
        Ok(())
    }

    /// Gives up the handle, returning the queue's descriptor.
    pub fn into_owned_fd(self) -> OwnedFd {
        self.fd.into_owned_fd()
    }

    #[cold]
    fn send_error(&self, op: &'static str, errno: Errno, len: usize, priority: u32) -> Error {
        match errno {
            Errno::EAGAIN => Error::WouldBlock,
            Errno::ETIMEDOUT => Error::TimedOut,
            Errno::EMSGSIZE => Error::MessageTooLarge {
                len,
                msg_size: self.msg_size,
            },
            Errno::EBADF if !self.access.writes() => Error::AccessDenied {
                address: self.info.address.clone(),
                needed: "sending",
            },
            Errno::EINVAL if priority >= MQ_PRIO_MAX => Error::InvalidArgument(format!(
                "priority {priority} is out of range 0-{}",
                MQ_PRIO_MAX - 1
            )),
            e => self.os_error(op, e),
        }
    }

    #[cold]
    fn recv_error(&self, op: &'static str, errno: Errno, len: usize) -> Error {
        match errno {
            Errno::EAGAIN => Error::WouldBlock,
            Errno::ETIMEDOUT => Error::TimedOut,
            Errno::EMSGSIZE => Error::BufferTooSmall {
                len,
                msg_size: self.msg_size,
            },
            Errno::EBADF if !self.access.reads() => Error::AccessDenied {
                address: self.info.address.clone(),
                needed: "receiving",
            },
            e => self.os_error(op, e),
        }
    }

    #[cold]
    fn os_error(&self, op: &'static str, errno: Errno) -> Error {
        Error::Os {
            op,
            address: self.info.address.clone(),
            errno,
        }
    }
}

impl AsFd for MessageQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for MessageQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

/// A deadline that has passed: timed calls with it never wait.
const PAST: TimeSpec = TimeSpec::new(0, 0);

fn timed_out_is_would_block(e: Error) -> Error {
    match e {
        Error::TimedOut => Error::WouldBlock,
        e => e,
    }
}

/// The absolute `CLOCK_REALTIME` time `timeout` from now, as the mq calls want it.
fn deadline_after(timeout: Duration) -> Result<TimeSpec> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .map_err(|e| Error::Io(e.into()))?;
    Ok(add_timeout(now, timeout))
}

/// `now + timeout`, with absurdly long timeouts capped at about 68 years.
fn add_timeout(now: TimeSpec, timeout: Duration) -> TimeSpec {
    const CAP: Duration = Duration::from_secs(i32::MAX as u64);
    now + TimeSpec::from_duration(timeout.min(CAP))
}

fn timespec_at(t: SystemTime) -> TimeSpec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => add_timeout(PAST, d),
        Err(_) => PAST,
    }
}

fn attributes_from(attr: &MqAttr) -> MqAttributes {
    let u = |v: nix::mqueue::mq_attr_member_t| u64::try_from(v).unwrap_or(0);
    MqAttributes {
        capacity: u(attr.maxmsg()),
        msg_size: u(attr.msgsize()),
        depth: u(attr.curmsgs()),
        nonblocking: attr.flags() & nix::mqueue::mq_attr_member_t::from(libc::O_NONBLOCK) != 0,
    }
}

#[cfg(test)]
mod tests;
