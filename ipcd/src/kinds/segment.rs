//! POSIX shared-memory segments (`shm_open(3)` objects in `/dev/shm`), the
//! kernel object under both `shm:` and `ring:`: create, adopt, open, find
//! again, size, owner, unlink, and who has one mapped.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{Mode, fchmod, fstat};
use protocol::Access;

use super::Held;
use crate::error::RequestError;
use crate::peer::Peer;

/// What a segment of `bytes` makes the daemon hold: its descriptor and its bytes.
pub fn held(bytes: u64) -> Held {
    Held {
        fds: 1,
        shm_bytes: bytes,
        subscriptions: 0,
        ..Held::default()
    }
}

/// What creating segment `name` costs: `new_size` bytes for a new one, the
/// existing one's size when adopting.
pub fn cost(
    name: &str,
    adopt: bool,
    new_size: impl FnOnce() -> Result<u64, RequestError>,
) -> Result<Held, RequestError> {
    let bytes = if adopt {
        find(name)?.map_or(Ok(0), |fd| size(&fd))?
    } else {
        new_size()?
    };
    Ok(held(bytes))
}

/// The size of the segment behind `fd`.
pub fn size(fd: &OwnedFd) -> Result<u64, RequestError> {
    fstat(fd.as_fd())
        .map(|st| st.st_size.max(0) as u64)
        .map_err(|e| RequestError::os("fstat of a shared-memory segment", e))
}

/// Bytes the file system holding `/dev/shm` can take at most, if known.
fn shm_fs_size() -> Option<u64> {
    let st = nix::sys::statvfs::statvfs("/dev/shm").ok()?;
    Some(st.blocks() as u64 * st.fragment_size() as u64)
}

/// Creates segment `name` of `size` bytes; the kernel object carries only the
/// "other" bits of `mode` (its owner is the daemon's user).
pub fn create(name: &str, size: u64, mode: u32) -> Result<OwnedFd, RequestError> {
    fits(size)?;
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    let fd = shm_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| match e {
        Errno::EEXIST => RequestError::KernelNameTaken(format!(
            "shared-memory object {name} already exists and is not registered in ipcd (owner uid \
             {}); its owner may adopt it, or remove it",
            owner(name).map_or_else(|| "unknown".into(), |u| u.to_string())
        )),
        Errno::EMFILE | Errno::ENFILE => RequestError::KernelLimit(format!(
            "shm_open {name}: the daemon's open-file limit is used up; raise it (systemd: \
             LimitNOFILE=; shell: 'ulimit -n') or delete unused objects"
        )),
        e => RequestError::os(format!("shm_open {name}"), e),
    })?;
    let undo = |e: RequestError| {
        let _ = shm_unlink(name);
        e
    };
    let kernel_mode = Mode::from_bits_truncate(0o600 | (mode & 0o006));
    fchmod(fd.as_fd(), kernel_mode)
        .map_err(|e| undo(RequestError::os(format!("fchmod {name}"), e)))?;
    grow(&fd, name, size).map_err(undo)?;
    Ok(fd)
}

/// Refuses a size the file system holding `/dev/shm` could never hold.
fn fits(size: u64) -> Result<(), RequestError> {
    match shm_fs_size() {
        Some(fs) if size > fs => Err(RequestError::KernelLimit(format!(
            "{size} bytes is more than /dev/shm can hold ({fs} bytes); ask for less, or grow the \
             tmpfs (mount -o remount,size=… /dev/shm)"
        ))),
        _ => Ok(()),
    }
}

/// Sets the segment's size to `size` bytes (`ftruncate`), if `/dev/shm` could hold it.
pub fn grow(fd: &OwnedFd, name: &str, size: u64) -> Result<(), RequestError> {
    fits(size)?;
    let len = i64::try_from(size)
        .map_err(|_| RequestError::InvalidArgument(format!("size {size} is too large")))?;
    nix::unistd::ftruncate(fd, len).map_err(|e| match e {
        Errno::EFBIG | Errno::ENOSPC | Errno::ENOMEM => RequestError::KernelLimit(format!(
            "ftruncate {name} to {size} bytes: {e} (is /dev/shm full or too small?)"
        )),
        e => RequestError::os(format!("ftruncate {name} to {size} bytes"), e),
    })
}

/// Opens an existing segment the caller owns (root: any), to register it.
pub fn adopt(name: &str, peer: &Peer) -> Result<OwnedFd, RequestError> {
    let fd =
        shm_open(name, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| match e {
            Errno::ENOENT => RequestError::KernelObjectMissing(format!(
                "no shared-memory object {name} to adopt"
            )),
            e => RequestError::os(format!("shm_open {name}"), e),
        })?;
    let st = fstat(fd.as_fd()).map_err(|e| RequestError::os(format!("fstat {name}"), e))?;
    if !peer.is_root() && peer.uid != st.st_uid {
        return Err(RequestError::PermissionDenied(format!(
            "shared-memory object {name} belongs to uid {}, not to uid {}",
            st.st_uid, peer.uid
        )));
    }
    Ok(fd)
}

/// A fresh descriptor on the segment: read-only for `Read`, read-write otherwise.
pub fn open(name: &str, access: Access) -> Result<OwnedFd, RequestError> {
    let mode = match access {
        Access::Read => OFlag::O_RDONLY,
        Access::Write | Access::ReadWrite => OFlag::O_RDWR,
    };
    shm_open(name, mode | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| match e {
        Errno::ENOENT => RequestError::KernelObjectMissing(format!(
            "shared-memory object {name} vanished (removed outside ipcd?); delete the object to \
             forget it"
        )),
        e => RequestError::os(format!("shm_open {name}"), e),
    })
}

/// The segment after a restart: `None` if it is gone.
pub fn find(name: &str) -> Result<Option<OwnedFd>, RequestError> {
    match shm_open(name, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(RequestError::os(format!("shm_open {name}"), e)),
    }
}

/// The uid owning segment `name`, if it exists.
pub fn owner(name: &str) -> Option<u32> {
    let fd = shm_open(name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    fstat(fd.as_fd()).ok().map(|st| st.st_uid)
}

/// Unlinks segment `name`; one already gone is not an error. Processes that
/// have it mapped keep their memory until they unmap it.
pub fn unlink(name: &str) -> Result<(), RequestError> {
    match shm_unlink(name) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(RequestError::os(format!("shm_unlink {name}"), e)),
    }
}

/// How long one scan of `/proc/*/maps` answers for.
const MAPS_FRESH_FOR: Duration = Duration::from_millis(100);

/// The last scan: when, and processes per `/dev/shm` file name.
static MAPPED: Mutex<Option<(Instant, HashMap<String, u32>)>> = Mutex::new(None);

/// Processes that have segment `name` mapped, counted from the `/proc/*/maps`
/// the daemon may read (its own user's processes; all of them as root).
/// One scan serves every question for 100 ms, so listing many segments
/// costs one walk of `/proc`.
pub fn mapped_by(name: &str) -> Option<u32> {
    let mut cache = MAPPED.lock().unwrap_or_else(|e| e.into_inner());
    let stale = cache
        .as_ref()
        .is_none_or(|(at, _)| at.elapsed() > MAPS_FRESH_FOR);
    if stale {
        *cache = Some((Instant::now(), scan_maps()?));
    }
    let file = name.trim_start_matches('/');
    cache
        .as_ref()
        .map(|(_, m)| m.get(file).copied().unwrap_or(0))
}

/// Counts, per file in `/dev/shm`, the processes with a mapping of it.
fn scan_maps() -> Option<HashMap<String, u32>> {
    let mut counts = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        let Ok(maps) = std::fs::read_to_string(entry.path().join("maps")) else {
            continue;
        };
        let mut seen: Vec<&str> = Vec::new();
        for line in maps.lines() {
            if let Some(at) = line.find("/dev/shm/") {
                let file = line[at + "/dev/shm/".len()..].trim_end_matches(" (deleted)");
                if !seen.contains(&file) {
                    seen.push(file);
                }
            }
        }
        for file in seen {
            *counts.entry(file.to_owned()).or_insert(0) += 1;
        }
    }
    Some(counts)
}
