//! `mq:NAME` — a POSIX message queue, `/<prefix>NAME` in the kernel.
//!
//! The daemon creates the queue, keeps one descriptor of its own (for `stat`) and
//! hands each client that opens it a *fresh* descriptor with exactly the access
//! granted. Messages flow through the kernel; the daemon never sees them.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, mq_open, mq_unlink};
use nix::sys::stat::{Mode, fchmod, fstat};
use protocol::{
    Access, Kind, KindDetails, KindOp, KindParams, KindReply, MqDetails, MqOp, MqParams, MqReply,
    Name, Readiness,
};
use tokio::io::Interest;

use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::config::Tunables;
use crate::error::RequestError;
use crate::sys::fd::{mq_getattr_fd, mqd_into_owned};

/// The `mq` kind.
pub struct Module;

/// The daemon's own descriptor on a queue it hosts.
#[derive(Debug)]
pub struct MqObject {
    name: String,
    fd: OwnedFd,
    /// What the kernel charges for it (capacity and message size never change).
    charged: u64,
    /// Registered with `adopt` rather than created by ipcd.
    adopted: bool,
}

impl MqObject {
    /// Wraps the daemon's descriptor. An adopted queue's bytes were charged to
    /// whoever created it, so they count against no one's share here.
    fn new(name: &str, fd: OwnedFd, adopted: bool) -> Result<Self, RequestError> {
        let attr = mq_getattr_fd(fd.as_fd()).map_err(|e| RequestError::os("mq_getattr", e))?;
        let charged = charged_bytes(attr.maxmsg() as u64, attr.msgsize() as u64);
        Ok(MqObject {
            name: name.to_owned(),
            fd,
            charged: if adopted { 0 } else { charged },
            adopted,
        })
    }

    fn attributes(&self) -> Result<MqDetails, RequestError> {
        let attr = mq_getattr_fd(self.fd.as_fd()).map_err(|e| RequestError::os("mq_getattr", e))?;
        Ok(MqDetails {
            capacity: attr.maxmsg() as u64,
            msg_size: attr.msgsize() as u64,
            depth: attr.curmsgs() as u64,
        })
    }
}

impl KindModule for Module {
    fn kernel_name(&self, ns: &Namespace, name: &Name) -> Option<String> {
        Some(format!("/{}{}", ns.prefix, name.as_str()))
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let KindParams::Mq(params) = args.params else {
            return Err(wrong_params(args.params, Kind::Mq));
        };
        let name = args.kernel_name.expect("a queue has a kernel name");
        let fd = if args.adopt {
            adopt(name, args)?
        } else {
            create(name, args, params)?
        };
        MqObject::new(name, fd, args.adopt).map(|q| Box::new(q) as Box<dyn KindObject>)
    }

    fn cost(&self, args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        let KindParams::Mq(params) = args.params else {
            return Err(wrong_params(args.params, Kind::Mq));
        };
        if args.adopt {
            // The adopted queue's size is known once it is open; its bytes were
            // charged to whoever created it.
            return Ok(Held {
                fds: 1,
                mq_bytes: 0,
                shm_bytes: 0,
                subscriptions: 0,
                queue_bytes: 0,
            });
        }
        let (capacity, msg_size) = checked_sizes(params, args.tunables)?;
        Ok(Held {
            fds: 1,
            mq_bytes: charged_bytes(capacity, msg_size),
            shm_bytes: 0,
            subscriptions: 0,
            queue_bytes: 0,
        })
    }

    fn reopen(
        &self,
        kernel_name: Option<&str>,
        state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let name = kernel_name.ok_or_else(|| {
            RequestError::InvalidArgument("a queue record without a kernel name".into())
        })?;
        match mq_open(
            name,
            MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC,
            Mode::empty(),
            None,
        ) {
            Ok(mqd) => Ok(Reopened::Alive(Box::new(MqObject::new(
                name,
                mqd_into_owned(mqd),
                state.get("adopted").and_then(|v| v.as_bool()) == Some(true),
            )?))),
            Err(Errno::ENOENT) => Ok(Reopened::Gone(format!(
                "kernel queue {name} vanished while ipcd was down"
            ))),
            Err(e) => Err(RequestError::os(format!("mq_open {name}"), e)),
        }
    }

    fn unlink(&self, kernel_name: &str) -> Result<(), RequestError> {
        unlink(kernel_name)
    }

    fn owner(&self, kernel_name: &str) -> Option<u32> {
        owner(kernel_name)
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        // Never called with another kind's operation; the strictest answer is safe.
        let KindOp::Mq(MqOp::WaitFor { ready, .. }) = op else {
            return Need::Owner;
        };
        match ready {
            Readiness::Readable => Need::Read,
            Readiness::Writable => Need::Write,
        }
    }
}

impl KindObject for MqObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        self.attributes().map(KindDetails::Mq)
    }

    fn open(&mut self, access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        Ok(vec![open(&self.name, access)?])
    }

    fn operate(&mut self, op: KindOp, _who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Mq(MqOp::WaitFor { ready, timeout_ms }) = op else {
            return Err(wrong_op(&op, Kind::Mq));
        };
        let now = self.attributes()?;
        if is_ready(&now, ready) {
            return Ok(OpAnswer::Now(KindReply::Mq(MqReply::Ready {
                depth: now.depth,
            })));
        }
        if timeout_ms == Some(0) {
            return Err(RequestError::TimedOut(format!(
                "{} is not {} now",
                self.name,
                describe(ready)
            )));
        }
        let fd = open(&self.name, Access::Read)?;
        set_nonblocking(&fd)?;
        Ok(OpAnswer::Later {
            made: false,
            wait: Box::pin(wait_until(fd, ready)),
            timeout: timeout_ms.map(Duration::from_millis),
        })
    }

    fn held(&self) -> Held {
        Held {
            fds: 1,
            mq_bytes: self.charged,
            shm_bytes: 0,
            subscriptions: 0,
            queue_bytes: 0,
        }
    }

    fn state(&self) -> serde_json::Value {
        if self.adopted {
            serde_json::json!({ "adopted": true })
        } else {
            serde_json::Value::Null
        }
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        let name = self.name.clone();
        drop(self);
        unlink(&name)
    }
}

fn is_ready(details: &MqDetails, ready: Readiness) -> bool {
    match ready {
        Readiness::Readable => details.depth > 0,
        Readiness::Writable => details.depth < details.capacity,
    }
}

fn describe(ready: Readiness) -> &'static str {
    match ready {
        Readiness::Readable => "readable (no message is waiting)",
        Readiness::Writable => "writable (the queue is full)",
    }
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), RequestError> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map(drop)
        .map_err(|e| RequestError::os("setting O_NONBLOCK on a queue", e))
}

/// Waits on the queue's own readiness (an mq descriptor is pollable on Linux)
/// in the runtime's reactor: no thread waits.
async fn wait_until(fd: OwnedFd, ready: Readiness) -> Result<KindReply, RequestError> {
    let interest = match ready {
        Readiness::Readable => Interest::READABLE,
        Readiness::Writable => Interest::WRITABLE,
    };
    let afd = crate::sys::fd::watch(fd, interest)
        .map_err(|e| RequestError::os("watching a queue", io_errno(&e)))?;
    loop {
        let mut guard = afd
            .ready(interest)
            .await
            .map_err(|e| RequestError::os("watching a queue", io_errno(&e)))?;
        let attr =
            mq_getattr_fd(afd.get_ref().as_fd()).map_err(|e| RequestError::os("mq_getattr", e))?;
        let now = MqDetails {
            capacity: attr.maxmsg() as u64,
            msg_size: attr.msgsize() as u64,
            depth: attr.curmsgs() as u64,
        };
        if is_ready(&now, ready) {
            return Ok(KindReply::Mq(MqReply::Ready { depth: now.depth }));
        }
        // Another client took the message (or filled the slot) first: wait again.
        guard.clear_ready();
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The uid owning the queue `name`, if it exists.
fn owner(name: &str) -> Option<u32> {
    let mqd = mq_open(
        name,
        MQ_OFlag::O_RDONLY | MQ_OFlag::O_CLOEXEC,
        Mode::empty(),
        None,
    )
    .ok()?;
    let fd = mqd_into_owned(mqd);
    fstat(fd.as_fd()).ok().map(|st| st.st_uid)
}

/// The kernel's hard maximum for `msg_max` (`HARD_MSGMAX`).
const HARD_MSGMAX: u64 = 65_536;

/// The kernel's hard maximum for `msgsize_max` (`HARD_MSGSIZEMAX`, 16 MiB).
const HARD_MSGSIZEMAX: u64 = 16 * 1024 * 1024;

fn read_proc(key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{key}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Creates the queue for a create request.
/// Capacity and message size a create asks for, kernel defaults filled in.
/// The default message size never exceeds the daemon's limit; an explicit one may not.
fn resolve(params: &MqParams, tunables: &Tunables) -> (u64, u64) {
    let capacity = params
        .capacity
        .or(tunables.mq_default_capacity)
        .map(u64::from)
        .unwrap_or_else(|| read_proc("msg_default").unwrap_or(10));
    let msg_size = params
        .msg_size
        .or(tunables.mq_default_msg_size)
        .map(u64::from)
        .unwrap_or_else(|| read_proc("msgsize_default").unwrap_or(8192))
        .min(match params.msg_size {
            Some(_) => u64::MAX,
            None => tunables.limits.max_message_size,
        });
    (capacity, msg_size)
}

/// Bytes the kernel charges a queue against `RLIMIT_MSGQUEUE` (ipc/mqueue.c:
/// a `struct msg_msg` pointer tree plus the messages themselves).
pub fn charged_bytes(capacity: u64, msg_size: u64) -> u64 {
    const MSG_MSG: u64 = 48;
    const TREE_NODE: u64 = 40;
    const MQ_PRIO_MAX: u64 = 32_768;
    capacity * MSG_MSG + capacity.min(MQ_PRIO_MAX) * TREE_NODE + capacity * msg_size
}

/// The capacity and message size a create asks for, checked against what no
/// queue may have (before any budget is checked, so the caller hears the real
/// reason).
fn checked_sizes(params: &MqParams, tunables: &Tunables) -> Result<(u64, u64), RequestError> {
    let (capacity, msg_size) = resolve(params, tunables);
    let max_message_size = tunables.limits.max_message_size;
    if capacity == 0 || msg_size == 0 {
        return Err(RequestError::InvalidArgument(format!(
            "capacity and message size must be at least 1 (got capacity {capacity}, message size {msg_size})"
        )));
    }
    if msg_size > max_message_size {
        return Err(RequestError::TooLarge(format!(
            "message size {msg_size} exceeds the daemon's max_message_size of {max_message_size} bytes"
        )));
    }
    Ok((capacity, msg_size))
}

fn create(name: &str, args: &CreateArgs<'_>, params: &MqParams) -> Result<OwnedFd, RequestError> {
    let (capacity, msg_size) = checked_sizes(params, args.tunables)?;
    let attr = MqAttr::new(0, capacity as _, msg_size as _, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
    let mqd = mq_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr))
        .map_err(|e| create_error(name, e, capacity, msg_size))?;
    let fd = mqd_into_owned(mqd);
    // Only the "other" bits are mirrored on the kernel object: its owner is the
    // daemon's user, so owner and group bits would grant the wrong people.
    let kernel_mode = Mode::from_bits_truncate(0o600 | (args.mode & 0o006));
    if let Err(e) = fchmod(fd.as_fd(), kernel_mode) {
        let _ = mq_unlink(name);
        return Err(RequestError::os(format!("fchmod {name}"), e));
    }
    Ok(fd)
}

fn create_error(name: &str, errno: Errno, capacity: u64, msg_size: u64) -> RequestError {
    match errno {
        Errno::EEXIST => RequestError::KernelNameTaken(format!(
            "kernel queue {name} already exists and is not registered in ipcd (owner uid {}); \
             its owner may adopt it, or remove it",
            owner(name).map_or_else(|| "unknown".into(), |u| u.to_string())
        )),
        Errno::EINVAL | Errno::EPERM => {
            let msg_max = read_proc("msg_max").unwrap_or(10);
            let size_max = read_proc("msgsize_max").unwrap_or(8192);
            if capacity > HARD_MSGMAX {
                RequestError::KernelLimit(format!(
                    "capacity {capacity} exceeds the kernel's hard maximum of {HARD_MSGMAX} messages per queue"
                ))
            } else if capacity > msg_max {
                RequestError::KernelLimit(format!(
                    "capacity {capacity} exceeds /proc/sys/fs/mqueue/msg_max ({msg_max}); raise it with \
                     'sysctl fs.mqueue.msg_max={capacity}' or run ipcd with CAP_SYS_RESOURCE"
                ))
            } else if msg_size > HARD_MSGSIZEMAX {
                RequestError::KernelLimit(format!(
                    "message size {msg_size} exceeds the kernel's hard maximum of {HARD_MSGSIZEMAX} bytes"
                ))
            } else if msg_size > size_max {
                RequestError::KernelLimit(format!(
                    "message size {msg_size} exceeds /proc/sys/fs/mqueue/msgsize_max ({size_max}); raise it with \
                     'sysctl fs.mqueue.msgsize_max={msg_size}' or run ipcd with CAP_SYS_RESOURCE"
                ))
            } else {
                RequestError::KernelLimit(format!(
                    "mq_open {name} refused capacity {capacity} × message size {msg_size}: {errno}"
                ))
            }
        }
        Errno::EMFILE => RequestError::KernelLimit(format!(
            "mq_open {name}: the daemon's RLIMIT_MSGQUEUE (bytes of queued messages per user) or open-file \
             limit is used up; raise it (systemd: LimitMSGQUEUE= / LimitNOFILE= in ipcd.service; shell: \
             'ulimit -q' / 'ulimit -n' before starting ipcd) or delete unused queues"
        )),
        Errno::ENOSPC => RequestError::KernelLimit(format!(
            "mq_open {name}: the system-wide queue limit /proc/sys/fs/mqueue/queues_max is reached"
        )),
        e => RequestError::os(format!("mq_open {name}"), e),
    }
}

fn adopt(name: &str, args: &CreateArgs<'_>) -> Result<OwnedFd, RequestError> {
    let mqd = mq_open(
        name,
        MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC,
        Mode::empty(),
        None,
    )
    .map_err(|e| match e {
        Errno::ENOENT => {
            RequestError::KernelObjectMissing(format!("no kernel queue {name} to adopt"))
        }
        e => RequestError::os(format!("mq_open {name}"), e),
    })?;
    let fd = mqd_into_owned(mqd);
    let st = fstat(fd.as_fd()).map_err(|e| RequestError::os(format!("fstat {name}"), e))?;
    if args.peer.uid != 0 && args.peer.uid != st.st_uid {
        return Err(RequestError::PermissionDenied(format!(
            "kernel queue {name} belongs to uid {}, not to uid {}",
            st.st_uid, args.peer.uid
        )));
    }
    Ok(fd)
}

/// A fresh descriptor on the queue with exactly `access`, for a client.
fn open(name: &str, access: Access) -> Result<OwnedFd, RequestError> {
    let mode = match access {
        Access::Read => MQ_OFlag::O_RDONLY,
        Access::Write => MQ_OFlag::O_WRONLY,
        Access::ReadWrite => MQ_OFlag::O_RDWR,
    };
    let mqd =
        mq_open(name, mode | MQ_OFlag::O_CLOEXEC, Mode::empty(), None).map_err(|e| match e {
            Errno::ENOENT => RequestError::KernelObjectMissing(format!(
                "kernel queue {name} vanished (removed outside ipcd?); delete the object to forget it"
            )),
            e => RequestError::os(format!("mq_open {name}"), e),
        })?;
    Ok(mqd_into_owned(mqd))
}

/// Unlinks the queue; a queue that is already gone is not an error.
fn unlink(name: &str) -> Result<(), RequestError> {
    match mq_unlink(name) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(RequestError::os(format!("mq_unlink {name}"), e)),
    }
}
