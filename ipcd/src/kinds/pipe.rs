//! `pipe:NAME` — an anonymous pipe hosted by the daemon.
//!
//! The daemon holds both ends. Opening hands out a *fresh* open file
//! description of the requested end (re-opened through `/proc/self/fd`), so a
//! client's `O_NONBLOCK` never leaks to others. The buffer lives only in the
//! kernel; it dies with the daemon process, unless a service manager's fd
//! store keeps both ends across the restart (`stored_fds`, `reopen_stored`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::Mode;
use protocol::{
    Access, Kind, KindDetails, KindOp, KindParams, KindReply, Name, PipeDetails, PipeOp,
    PipeParams, PipeReply,
};
use tracing::info;

use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;
use crate::sys::fd::bytes_readable;

/// The `pipe` kind.
pub struct Module;

impl KindModule for Module {
    fn kernel_name(&self, _ns: &Namespace, _name: &Name) -> Option<String> {
        None
    }

    fn cost(&self, _args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        Ok(Held {
            fds: 2,
            mq_bytes: 0,
            shm_bytes: 0,
            subscriptions: 0,
            queue_bytes: 0,
        })
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let KindParams::Pipe(params) = args.params else {
            return Err(wrong_params(args.params, Kind::Pipe));
        };
        if args.adopt {
            return Err(RequestError::InvalidArgument(
                "an anonymous pipe has no name outside ipcd, so it cannot be adopted".into(),
            ));
        }
        Ok(Box::new(create(params)?))
    }

    fn reopen(
        &self,
        _kernel_name: Option<&str>,
        _state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        Ok(Reopened::Gone(
            "an anonymous pipe dies with the daemon process".into(),
        ))
    }

    fn reopen_stored(
        &self,
        _kernel_name: Option<&str>,
        _state: &serde_json::Value,
        stored: Vec<(String, OwnedFd)>,
    ) -> Result<Reopened, RequestError> {
        Ok(match from_stored(stored) {
            Ok(pipe) => Reopened::Alive(Box::new(pipe)),
            Err(why) => Reopened::Gone(why),
        })
    }

    fn unlink(&self, _kernel_name: &str) -> Result<(), RequestError> {
        Ok(())
    }

    fn owner(&self, _kernel_name: &str) -> Option<u32> {
        None
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        // Never called with another kind's operation; the strictest answer is safe.
        let KindOp::Pipe(PipeOp::Close) = op else {
            return Need::Owner;
        };
        Need::Write
    }
}

/// Both ends of a hosted pipe, and what was handed out.
#[derive(Debug)]
pub struct PipeObject {
    read: OwnedFd,
    /// `None` once `close` dropped the daemon's write end.
    write: Option<OwnedFd>,
    readers_opened: u64,
    writers_opened: u64,
}

fn read_max_size() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Creates a pipe, sized to `params.capacity` bytes if given.
fn create(params: &PipeParams) -> Result<PipeObject, RequestError> {
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| RequestError::os("pipe2", e))?;
    if let Some(capacity) = params.capacity {
        let max = read_max_size().unwrap_or(1024 * 1024);
        if u64::from(capacity) > max {
            return Err(RequestError::KernelLimit(format!(
                "pipe capacity {capacity} exceeds /proc/sys/fs/pipe-max-size ({max}); raise it with \
                 'sysctl fs.pipe-max-size={capacity}'"
            )));
        }
        if capacity == 0 {
            return Err(RequestError::InvalidArgument(
                "pipe capacity must be at least 1 byte".into(),
            ));
        }
        fcntl(write.as_fd(), FcntlArg::F_SETPIPE_SZ(capacity as i32)).map_err(|e| match e {
            Errno::EPERM | Errno::EBUSY => RequestError::KernelLimit(format!(
                "pipe capacity {capacity}: the user's pipe buffer allowance is used up \
                 (/proc/sys/fs/pipe-user-pages-soft): {e}"
            )),
            e => RequestError::os(format!("F_SETPIPE_SZ {capacity}"), e),
        })?;
    }
    Ok(PipeObject {
        read,
        write: Some(write),
        readers_opened: 0,
        writers_opened: 0,
    })
}

/// The pipe whose ends the fd store kept: role `r` (the read end, needed) and
/// `w` (the write end, absent once the pipe was closed for writing), checked
/// to be the two ends of one pipe.
fn from_stored(stored: Vec<(String, OwnedFd)>) -> Result<PipeObject, String> {
    let (mut read, mut write) = (None, None);
    for (role, fd) in stored {
        match role.as_str() {
            "r" => read = Some(fd),
            "w" => write = Some(fd),
            other => return Err(format!("the fd store passed an unknown pipe end '{other}'")),
        }
    }
    let read = read.ok_or(
        "an anonymous pipe dies with the daemon process, and the fd store kept no read end",
    )?;
    let inode = pipe_end(&read, OFlag::O_RDONLY)?;
    if let Some(write) = &write
        && pipe_end(write, OFlag::O_WRONLY)? != inode
    {
        return Err("the fd store passed ends of two different pipes".into());
    }
    Ok(PipeObject {
        read,
        write,
        readers_opened: 0,
        writers_opened: 0,
    })
}

/// The pipe `fd` is an end of (device and inode), if it is one opened `access`.
fn pipe_end(fd: &OwnedFd, access: OFlag) -> Result<(u64, u64), String> {
    let st =
        nix::sys::stat::fstat(fd.as_fd()).map_err(|e| format!("fstat of a stored end: {e}"))?;
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(|e| format!("F_GETFL: {e}"))?;
    let is_fifo = st.st_mode & libc::S_IFMT == libc::S_IFIFO;
    if !is_fifo || OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE != access {
        return Err("a stored descriptor is not the pipe end it is named for".into());
    }
    Ok((st.st_dev, st.st_ino))
}

/// A fresh open file description of `fd`'s pipe, opened with `flags`, blocking.
fn reopen(fd: &OwnedFd, flags: OFlag) -> Result<OwnedFd, RequestError> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let new = nix::fcntl::open(
        path.as_str(),
        flags | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RequestError::os(format!("reopening pipe through {path}"), e))?;
    fcntl(new.as_fd(), FcntlArg::F_SETFL(flags & !OFlag::O_ACCMODE))
        .map_err(|e| RequestError::os("clearing O_NONBLOCK", e))?;
    Ok(new)
}

impl KindObject for PipeObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        let capacity = fcntl(self.read.as_fd(), FcntlArg::F_GETPIPE_SZ)
            .map_err(|e| RequestError::os("F_GETPIPE_SZ", e))?;
        let buffered_bytes =
            bytes_readable(self.read.as_fd()).map_err(|e| RequestError::os("FIONREAD", e))?;
        Ok(KindDetails::Pipe(PipeDetails {
            capacity: capacity as u64,
            buffered_bytes,
            readers_opened: self.readers_opened,
            writers_opened: self.writers_opened,
            closed: self.write.is_none(),
        }))
    }

    fn open(&mut self, access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        match access {
            Access::Read => {
                let fd = reopen(&self.read, OFlag::O_RDONLY)?;
                self.readers_opened += 1;
                Ok(vec![fd])
            }
            Access::Write => {
                let Some(write) = &self.write else {
                    return Err(RequestError::InvalidArgument(
                        "the pipe was closed for writing; delete and create it again".into(),
                    ));
                };
                let fd = reopen(write, OFlag::O_WRONLY)?;
                self.writers_opened += 1;
                Ok(vec![fd])
            }
            Access::ReadWrite => Err(RequestError::InvalidArgument(
                "a pipe end is either for reading or for writing; open it twice for both".into(),
            )),
        }
    }

    fn operate(&mut self, op: KindOp, _who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Pipe(PipeOp::Close) = op else {
            return Err(wrong_op(&op, Kind::Pipe));
        };
        if self.write.take().is_some() {
            info!("pipe closed for writing");
        }
        Ok(OpAnswer::Now(KindReply::Pipe(PipeReply::Closed)))
    }

    fn held(&self) -> Held {
        Held {
            fds: 1 + u64::from(self.write.is_some()),
            mq_bytes: 0,
            shm_bytes: 0,
            subscriptions: 0,
            queue_bytes: 0,
        }
    }

    fn stored_fds(&self) -> Vec<(&'static str, BorrowedFd<'_>)> {
        let mut fds = vec![("r", self.read.as_fd())];
        fds.extend(self.write.as_ref().map(|w| ("w", w.as_fd())));
        fds
    }

    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        Ok(())
    }
}
