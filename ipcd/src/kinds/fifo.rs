//! `fifo:NAME` — a named pipe at `<runtime dir>/fifo/<prefix>NAME`.
//!
//! Standard FIFO semantics by default: opening for writing needs a reader. The
//! daemon opens with `O_NONBLOCK` (it never waits), so a writer open without a
//! reader answers `WouldBlock` and the client retries until its timeout. A
//! `buffered` FIFO is held open by the daemon (`O_RDWR`), so writers always get
//! in and their bytes wait in the kernel buffer until a reader comes.
//! FIFOs are files: they survive a daemon restart and are re-adopted; the
//! bytes in a buffered one survive too when a service manager's fd store
//! kept the held end (`stored_fds`, `reopen_stored`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use protocol::{Access, FifoDetails, FifoParams, Kind, KindDetails, KindOp, KindParams, Name};
use serde::{Deserialize, Serialize};

use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;
use crate::sys::fd::bytes_readable;

/// The `fifo` kind.
pub struct Module;

/// What a FIFO saves with its record.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// The daemon holds it open.
    #[serde(default)]
    buffered: bool,
}

impl KindModule for Module {
    fn kernel_name(&self, ns: &Namespace, name: &Name) -> Option<String> {
        Some(
            ns.runtime_dir
                .join("fifo")
                .join(format!("{}{}", ns.prefix, name.as_str()))
                .display()
                .to_string(),
        )
    }

    fn cost(&self, args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        let buffered = matches!(args.params, KindParams::Fifo(p) if p.buffered);
        Ok(Held {
            fds: u64::from(buffered),
            mq_bytes: 0,
            shm_bytes: 0,
            subscriptions: 0,
            queue_bytes: 0,
        })
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let KindParams::Fifo(params) = args.params else {
            return Err(wrong_params(args.params, Kind::Fifo));
        };
        let path = args.kernel_name.expect("a FIFO has a path");
        Ok(Box::new(create(path, args, params)?))
    }

    fn reopen(
        &self,
        kernel_name: Option<&str>,
        state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let path = kernel_name
            .ok_or_else(|| RequestError::InvalidArgument("a FIFO record without a path".into()))?;
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_fifo() => {
                Ok(Reopened::Alive(Box::new(hold(path, saved.buffered)?)))
            }
            Ok(_) => Ok(Reopened::Gone(format!("{path} is no longer a FIFO"))),
            Err(_) => Ok(Reopened::Gone(format!(
                "FIFO {path} vanished while ipcd was down"
            ))),
        }
    }

    fn reopen_stored(
        &self,
        kernel_name: Option<&str>,
        state: &serde_json::Value,
        stored: Vec<(String, OwnedFd)>,
    ) -> Result<Reopened, RequestError> {
        let reopened = self.reopen(kernel_name, state)?;
        let Reopened::Alive(object) = reopened else {
            return Ok(reopened);
        };
        let (Some(path), Some((_, held))) =
            (kernel_name, stored.into_iter().find(|(r, _)| r == "hold"))
        else {
            return Ok(Reopened::Alive(object));
        };
        // The end the fd store kept holds the bytes written before the
        // restart; it replaces the one `reopen` opened, if it is this FIFO's.
        match same_fifo(path, &held) {
            Ok(()) => Ok(Reopened::Alive(Box::new(FifoObject {
                path: path.to_owned(),
                hold: Some(held),
                readers_opened: 0,
                writers_opened: 0,
            }))),
            Err(why) => {
                tracing::warn!(%path, "not using the stored end: {why}");
                Ok(Reopened::Alive(object))
            }
        }
    }

    fn unlink(&self, kernel_name: &str) -> Result<(), RequestError> {
        unlink(kernel_name)
    }

    fn owner(&self, kernel_name: &str) -> Option<u32> {
        std::fs::symlink_metadata(kernel_name).ok().map(|m| m.uid())
    }

    fn op_needs(&self, _op: &KindOp) -> Need {
        // FIFOs have no operations; `operate` refuses whatever comes.
        Need::Owner
    }
}

/// A FIFO the daemon hosts.
#[derive(Debug)]
pub struct FifoObject {
    path: String,
    /// The daemon's own `O_RDWR` descriptor when buffered.
    hold: Option<OwnedFd>,
    readers_opened: u64,
    writers_opened: u64,
}

fn open_path(path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        flags | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The FIFO file's mode for an object of `mode` created by `caller` in a
/// daemon running as `daemon`. Root gives the file to the caller, and so
/// does a daemon of the caller's own uid: the object's bits then mean on the
/// file what they mean in ipcd. Otherwise (a service user's ipcd, another
/// user's object) the file is the daemon's, owner and group, and its group
/// is everyone allowed to use the service: only the "other" bits are kept,
/// as for queues and segments, and the object is used through ipcd.
fn file_mode(mode: u32, daemon: u32, caller: u32) -> u32 {
    if daemon == 0 || daemon == caller {
        mode
    } else {
        0o600 | (mode & 0o006)
    }
}

/// Creates the FIFO file with the object's mode, owned by the object's owner.
fn create(
    path: &str,
    args: &CreateArgs<'_>,
    params: &FifoParams,
) -> Result<FifoObject, RequestError> {
    if args.adopt {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|_| RequestError::KernelObjectMissing(format!("no FIFO {path} to adopt")))?;
        if !meta.file_type().is_fifo() {
            return Err(RequestError::WrongKind(format!(
                "{path} exists but is not a FIFO"
            )));
        }
        if !args.peer.is_root() && meta.uid() != args.peer.uid {
            return Err(RequestError::PermissionDenied(format!(
                "FIFO {path} belongs to uid {}, not to uid {}; only its owner or root may adopt it",
                meta.uid(),
                args.peer.uid
            )));
        }
        return hold(path, params.buffered);
    }
    if let Some(dir) = Path::new(path).parent()
        && !dir.is_dir()
    {
        // Everyone may reach a FIFO by path (its own mode decides who may open
        // it), no one but the daemon may add or swap files here.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| RequestError::os(format!("creating {}", dir.display()), io_errno(&e)))?;
    }
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| match e {
        Errno::EEXIST => RequestError::KernelNameTaken(format!(
            "{path} already exists and is not registered in ipcd (owner uid {}); its owner may \
             adopt it, or remove it",
            std::fs::symlink_metadata(path)
                .map_or_else(|_| "unknown".into(), |m| m.uid().to_string())
        )),
        e => RequestError::os(format!("mkfifo {path}"), e),
    })?;
    let finish = || -> Result<FifoObject, RequestError> {
        // The file's mode is the object's mode (mkfifo's is masked by umask), and
        // it belongs to the object's owner so `ipcctl path` works from a shell.
        let daemon = nix::unistd::geteuid();
        let mode = file_mode(args.mode, daemon.as_raw(), args.peer.uid);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| RequestError::os(format!("chmod {path}"), io_errno(&e)))?;
        if daemon.is_root() {
            nix::unistd::chown(
                path,
                Some(nix::unistd::Uid::from_raw(args.peer.uid)),
                Some(nix::unistd::Gid::from_raw(args.peer.gid)),
            )
            .map_err(|e| RequestError::os(format!("chown {path}"), e))?;
        }
        hold(path, params.buffered)
    };
    finish().inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// Whether `fd` is a read-write descriptor of the FIFO at `path`.
fn same_fifo(path: &str, fd: &OwnedFd) -> Result<(), String> {
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| format!("fstat: {e}"))?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{path}: {e}"))?;
    let flags = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| format!("F_GETFL: {e}"))?;
    if st.st_dev != meta.dev() || st.st_ino != meta.ino() {
        return Err("it is not the FIFO at the path (the file was replaced)".into());
    }
    if OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE != OFlag::O_RDWR {
        return Err("it is not open for reading and writing".into());
    }
    Ok(())
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn hold(path: &str, buffered: bool) -> Result<FifoObject, RequestError> {
    let hold = if buffered {
        Some(
            open_path(path, OFlag::O_RDWR)
                .map_err(|e| RequestError::os(format!("open {path}"), e))?,
        )
    } else {
        None
    };
    Ok(FifoObject {
        path: path.to_owned(),
        hold,
        readers_opened: 0,
        writers_opened: 0,
    })
}

impl KindObject for FifoObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        let buffered_bytes = match &self.hold {
            Some(fd) => bytes_readable(fd.as_fd()).map_err(|e| RequestError::os("FIONREAD", e))?,
            None => 0,
        };
        Ok(KindDetails::Fifo(FifoDetails {
            path: self.path.clone(),
            buffered: self.hold.is_some(),
            buffered_bytes,
            readers_opened: self.readers_opened,
            writers_opened: self.writers_opened,
        }))
    }

    fn open(&mut self, access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        let path = &self.path;
        let flags = match access {
            Access::Read => OFlag::O_RDONLY,
            Access::Write => OFlag::O_WRONLY,
            Access::ReadWrite => {
                return Err(RequestError::InvalidArgument(
                    "a FIFO is opened either for reading or for writing".into(),
                ));
            }
        };
        let fd = open_path(path, flags).map_err(|e| match e {
            Errno::ENXIO => RequestError::WouldBlock(format!("no reader has {path} open yet")),
            Errno::ENOENT => RequestError::KernelObjectMissing(format!(
                "FIFO {path} vanished (removed outside ipcd?); delete the object to forget it"
            )),
            e => RequestError::os(format!("open {path}"), e),
        })?;
        match access {
            Access::Read => self.readers_opened += 1,
            _ => self.writers_opened += 1,
        }
        Ok(vec![fd])
    }

    fn operate(&mut self, op: KindOp, _who: &Asker) -> Result<OpAnswer, RequestError> {
        Err(wrong_op(&op, Kind::Fifo))
    }

    fn held(&self) -> Held {
        Held {
            fds: u64::from(self.hold.is_some()),
            mq_bytes: 0,
            shm_bytes: 0,
            subscriptions: 0,
            queue_bytes: 0,
        }
    }

    fn stored_fds(&self) -> Vec<(&'static str, BorrowedFd<'_>)> {
        self.hold.iter().map(|fd| ("hold", fd.as_fd())).collect()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(Saved {
            buffered: self.hold.is_some(),
        })
        .unwrap_or_default()
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        let path = self.path.clone();
        let waker = reader_waker(&path);
        drop(self);
        let unlinked = unlink(&path);
        drop(waker);
        unlinked
    }
}

/// Opens the FIFO for writing, if anyone reads it, so that closing this
/// descriptor later wakes readers with end-of-file.
///
/// A reader blocked in `poll` sees POLLHUP only once a writer has come and gone
/// after it opened; without this, deleting a FIFO would leave it waiting forever
/// for a writer that can no longer come.
fn reader_waker(path: &str) -> Option<OwnedFd> {
    // ENXIO: no reader has it open, nothing to wake.
    open_path(path, OFlag::O_WRONLY).ok()
}

/// Removes the FIFO file; one already gone is not an error.
fn unlink(path: &str) -> Result<(), RequestError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RequestError::os(format!("unlink {path}"), io_errno(&e))),
    }
}

#[cfg(test)]
mod file_mode_tests {
    use super::file_mode;

    #[test]
    fn a_service_users_fifo_keeps_only_the_other_bits() {
        assert_eq!(file_mode(0o660, 0, 1000), 0o660);
        assert_eq!(file_mode(0o660, 1000, 1000), 0o660);
        assert_eq!(file_mode(0o660, 999, 1000), 0o600);
        assert_eq!(file_mode(0o666, 999, 1000), 0o606);
        assert_eq!(file_mode(0o640, 999, 1000), 0o600);
    }
}
