//! A POSIX semaphore used in place, through a shared mapping of the file
//! `sem_open(3)` made (`/dev/shm/sem.NAME`): the same `sem_t` glibc maps, so
//! `sem_wait`/`sem_post` here and in any other process meet on one futex.

use std::mem::size_of;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use nix::sys::stat::fstat;

/// A mapped `sem_t`.
#[derive(Debug)]
pub(crate) struct MappedSem {
    map: MmapRaw,
}

/// How a semaphore wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// A permit was taken.
    Yes,
    /// None came before the deadline (or none was free, for a try).
    No,
}

impl MappedSem {
    /// Maps the semaphore file `fd` read-write. Fails with `EINVAL` if the file
    /// is too small to hold a `sem_t` (not a semaphore `sem_open` made).
    pub(crate) fn map(fd: BorrowedFd<'_>) -> Result<MappedSem, Errno> {
        let st = fstat(fd)?;
        if (st.st_size as u64) < size_of::<libc::sem_t>() as u64 {
            return Err(Errno::EINVAL);
        }
        let map = MmapOptions::new()
            .len(size_of::<libc::sem_t>())
            .map_raw(&fd)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(MappedSem { map })
    }

    #[inline]
    fn sem(&self) -> *mut libc::sem_t {
        self.map.as_mut_ptr().cast()
    }

    /// Takes a permit, waiting as long as it takes (signals do not end the wait).
    #[inline]
    pub(crate) fn wait(&self) -> Result<(), Errno> {
        loop {
            // SAFETY: `sem()` points at a live, page-aligned, writable mapping of
            // at least `size_of::<sem_t>()` bytes that `self` owns until drop.
            // Its bytes may be anything another process wrote; the libc calls
            // treat them as a futex word and counters only, which can give wrong
            // counts but never touch memory outside the mapping.
            let rc = unsafe { libc::sem_wait(self.sem()) };
            if rc == 0 {
                return Ok(());
            }
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
    }

    /// Takes a permit if one is free now.
    #[inline]
    pub(crate) fn try_wait(&self) -> Result<Taken, Errno> {
        // SAFETY: as in `wait`: a live mapping of a whole `sem_t`.
        let rc = unsafe { libc::sem_trywait(self.sem()) };
        if rc == 0 {
            return Ok(Taken::Yes);
        }
        match Errno::last() {
            Errno::EAGAIN => Ok(Taken::No),
            e => Err(e),
        }
    }

    /// Takes a permit, waiting up to `limit`.
    pub(crate) fn timed_wait(&self, limit: Duration) -> Result<Taken, Errno> {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)?;
        let deadline = Duration::new(now.tv_sec() as u64, now.tv_nsec() as u32) + limit;
        let ts = libc::timespec {
            tv_sec: deadline.as_secs() as libc::time_t,
            tv_nsec: deadline.subsec_nanos() as libc::c_long,
        };
        loop {
            // SAFETY: as in `wait`; `ts` is a valid timespec on this stack.
            let rc = unsafe { libc::sem_timedwait(self.sem(), &ts) };
            if rc == 0 {
                return Ok(Taken::Yes);
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::ETIMEDOUT => return Ok(Taken::No),
                e => return Err(e),
            }
        }
    }

    /// Gives a permit (`EOVERFLOW` past `SEM_VALUE_MAX`).
    #[inline]
    pub(crate) fn post(&self) -> Result<(), Errno> {
        // SAFETY: as in `wait`: a live mapping of a whole `sem_t`.
        let rc = unsafe { libc::sem_post(self.sem()) };
        if rc == 0 { Ok(()) } else { Err(Errno::last()) }
    }

    /// Permits free now (0 while some wait).
    pub(crate) fn value(&self) -> Result<u32, Errno> {
        let mut v: libc::c_int = 0;
        // SAFETY: as in `wait`; `v` is a valid int to write.
        let rc = unsafe { libc::sem_getvalue(self.sem(), &mut v) };
        if rc == 0 {
            Ok(v.max(0) as u32)
        } else {
            Err(Errno::last())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A file holding a fresh process-shared semaphore, as sem_open leaves one.
    fn sem_file(value: u32) -> std::fs::File {
        let name = format!("/ipc-client-test-sem-{}", std::process::id());
        let c = std::ffi::CString::new(name.clone()).unwrap();
        // SAFETY: a valid C string; with O_CREAT sem_open reads a mode and a value.
        let sem = unsafe {
            libc::sem_open(
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                0o600 as libc::c_uint,
                value,
            )
        };
        assert_ne!(sem, libc::SEM_FAILED);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm/sem.{}", &name[1..]))
            .unwrap();
        // SAFETY: `sem` came from sem_open above and is closed once; `c` is valid.
        unsafe {
            libc::sem_close(sem);
            libc::sem_unlink(c.as_ptr());
        }
        file
    }

    #[test]
    fn two_mappings_share_one_counter() {
        let file = sem_file(1);
        let a = MappedSem::map(file.as_fd()).unwrap();
        let b = MappedSem::map(file.as_fd()).unwrap();
        assert_eq!(a.try_wait().unwrap(), Taken::Yes);
        assert_eq!(b.try_wait().unwrap(), Taken::No);
        assert_eq!(b.timed_wait(Duration::from_millis(5)).unwrap(), Taken::No);
        a.post().unwrap();
        assert_eq!(b.value().unwrap(), 1);
        b.wait().unwrap();
        assert_eq!(a.value().unwrap(), 0);
    }

    #[test]
    fn a_file_too_small_is_refused() {
        let file = tempfile_in_shm();
        assert_eq!(MappedSem::map(file.as_fd()).unwrap_err(), Errno::EINVAL);
    }

    fn tempfile_in_shm() -> std::fs::File {
        let path = format!("/dev/shm/ipc-client-test-small-{}", std::process::id());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
