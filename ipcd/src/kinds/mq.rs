//! `mq:NAME` — a POSIX message queue, `/<prefix>NAME` in the kernel.
//!
//! The daemon creates the queue, keeps one descriptor of its own (for `stat`) and
//! hands each client that opens it a *fresh* descriptor with exactly the access
//! granted. Messages flow through the kernel; the daemon never sees them.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, mq_open, mq_unlink};
use nix::sys::stat::{Mode, fchmod, fstat};
use protocol::{Access, MqDetails, MqParams};

use super::CreateArgs;
use crate::error::RequestError;
use crate::sys::fd::{mq_getattr_fd, mqd_into_owned};

/// The daemon's own descriptor on a queue it hosts.
#[derive(Debug)]
pub struct MqObject {
    fd: OwnedFd,
}

impl MqObject {
    /// Capacity, message size and depth, as the kernel reports them now.
    pub fn details(&self) -> Result<MqDetails, RequestError> {
        let attr = mq_getattr_fd(self.fd.as_fd()).map_err(|e| RequestError::os("mq_getattr", e))?;
        Ok(MqDetails {
            capacity: attr.maxmsg() as u64,
            msg_size: attr.msgsize() as u64,
            depth: attr.curmsgs() as u64,
        })
    }
}

fn read_proc(key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{key}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Creates the queue (or adopts an existing one) for a create request.
pub fn create(args: &CreateArgs<'_>, params: &MqParams) -> Result<MqObject, RequestError> {
    let name = args.kernel_name;
    if args.adopt {
        return adopt(args);
    }
    let capacity = params
        .capacity
        .map(u64::from)
        .unwrap_or_else(|| read_proc("msg_default").unwrap_or(10));
    // The default message size never exceeds the daemon's limit; an explicit one may not.
    let msg_size = params.msg_size.map(u64::from).unwrap_or_else(|| {
        read_proc("msgsize_default")
            .unwrap_or(8192)
            .min(args.max_message_size)
    });
    if capacity == 0 || msg_size == 0 {
        return Err(RequestError::InvalidArgument(format!(
            "capacity and message size must be at least 1 (got capacity {capacity}, message size {msg_size})"
        )));
    }
    if msg_size > args.max_message_size {
        return Err(RequestError::TooLarge(format!(
            "message size {msg_size} exceeds the daemon's max_message_size of {} bytes",
            args.max_message_size
        )));
    }
    let attr = MqAttr::new(0, capacity as _, msg_size as _, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
    let mqd = mq_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr))
        .map_err(|e| create_error(name, e, capacity, msg_size))?;
    let queue = MqObject {
        fd: mqd_into_owned(mqd),
    };
    // Only the "other" bits are mirrored on the kernel object: its owner is the
    // daemon's user, so owner and group bits would grant the wrong people.
    let kernel_mode = Mode::from_bits_truncate(0o600 | (args.mode & 0o006));
    if let Err(e) = fchmod(queue.fd.as_fd(), kernel_mode) {
        let _ = mq_unlink(name);
        return Err(RequestError::os(format!("fchmod {name}"), e));
    }
    Ok(queue)
}

fn create_error(name: &str, errno: Errno, capacity: u64, msg_size: u64) -> RequestError {
    match errno {
        Errno::EEXIST => RequestError::AlreadyExists(format!(
            "kernel queue {name} (registered by another program? use adopt to register it)"
        )),
        Errno::EINVAL | Errno::EPERM => {
            let msg_max = read_proc("msg_max").unwrap_or(10);
            let size_max = read_proc("msgsize_max").unwrap_or(8192);
            if capacity > msg_max {
                RequestError::KernelLimit(format!(
                    "capacity {capacity} exceeds /proc/sys/fs/mqueue/msg_max ({msg_max}); raise it with \
                     'sysctl fs.mqueue.msg_max={capacity}' or run ipcd with CAP_SYS_RESOURCE"
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
             limit is used up; raise LimitMSGQUEUE= / LimitNOFILE= or delete unused queues"
        )),
        Errno::ENOSPC => RequestError::KernelLimit(format!(
            "mq_open {name}: the system-wide queue limit /proc/sys/fs/mqueue/queues_max is reached"
        )),
        e => RequestError::os(format!("mq_open {name}"), e),
    }
}

fn adopt(args: &CreateArgs<'_>) -> Result<MqObject, RequestError> {
    let name = args.kernel_name;
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
    Ok(MqObject { fd })
}

/// Re-opens a recorded queue after a restart; `Ok(None)` if it no longer exists.
pub fn reopen(name: &str) -> Result<Option<MqObject>, RequestError> {
    match mq_open(
        name,
        MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC,
        Mode::empty(),
        None,
    ) {
        Ok(mqd) => Ok(Some(MqObject {
            fd: mqd_into_owned(mqd),
        })),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(RequestError::os(format!("mq_open {name}"), e)),
    }
}

/// A fresh descriptor on the queue with exactly `access`, for a client.
pub fn open(name: &str, access: Access) -> Result<OwnedFd, RequestError> {
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
pub fn unlink(name: &str) -> Result<(), RequestError> {
    match mq_unlink(name) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(RequestError::os(format!("mq_unlink {name}"), e)),
    }
}
