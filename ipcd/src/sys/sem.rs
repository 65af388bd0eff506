//! POSIX named semaphores (`sem_open(3)`): nix has no wrapper, so these are
//! small safe ones over libc. A [`NamedSem`] is the process's mapping of the
//! semaphore; it is closed when dropped.

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::Duration;

use nix::errno::Errno;

/// The largest value a semaphore may hold (`SEM_VALUE_MAX` on Linux).
pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// An open named semaphore.
#[derive(Debug)]
pub struct NamedSem {
    sem: NonNull<libc::sem_t>,
}

// SAFETY: a sem_t is made to be used from many threads and processes at once;
// every operation here is a thread-safe libc call on the mapping.
unsafe impl Send for NamedSem {}
// SAFETY: as above: the libc semaphore calls synchronise themselves.
unsafe impl Sync for NamedSem {}

fn c_name(name: &str) -> Result<CString, Errno> {
    CString::new(name).map_err(|_| Errno::EINVAL)
}

fn opened(sem: *mut libc::sem_t) -> Result<NamedSem, Errno> {
    if sem == libc::SEM_FAILED {
        return Err(Errno::last());
    }
    NonNull::new(sem)
        .map(|sem| NamedSem { sem })
        .ok_or(Errno::EINVAL)
}

/// Creates the semaphore `name` (`/NAME`), failing if it exists, with `mode`
/// (less the umask) and `value` permits.
pub fn create(name: &str, mode: u32, value: u32) -> Result<NamedSem, Errno> {
    let c = c_name(name)?;
    let flags = libc::O_CREAT | libc::O_EXCL;
    // SAFETY: `c` is a valid NUL-terminated string; with O_CREAT sem_open reads
    // exactly two more arguments, a mode_t (promoted to c_uint) and a c_uint.
    let sem = unsafe { libc::sem_open(c.as_ptr(), flags, mode as libc::c_uint, value) };
    opened(sem)
}

/// Opens the existing semaphore `name`.
pub fn open(name: &str) -> Result<NamedSem, Errno> {
    let c = c_name(name)?;
    // SAFETY: `c` is a valid NUL-terminated string; without O_CREAT sem_open
    // reads no further arguments.
    let sem = unsafe { libc::sem_open(c.as_ptr(), 0) };
    opened(sem)
}

/// Removes the name `name`; those who have it open keep it.
pub fn unlink(name: &str) -> Result<(), Errno> {
    let c = c_name(name)?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let rc = unsafe { libc::sem_unlink(c.as_ptr()) };
    if rc == 0 { Ok(()) } else { Err(Errno::last()) }
}

impl NamedSem {
    /// Takes a permit if one is free now; `false` if none is.
    pub fn try_wait(&self) -> Result<bool, Errno> {
        // SAFETY: `self.sem` is a live mapping from sem_open, closed only in Drop.
        let rc = unsafe { libc::sem_trywait(self.sem.as_ptr()) };
        match rc {
            0 => Ok(true),
            _ => match Errno::last() {
                Errno::EAGAIN | Errno::EINTR => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Takes a permit, waiting up to `limit`; `false` if none came.
    pub fn timed_wait(&self, limit: Duration) -> Result<bool, Errno> {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)?;
        let deadline = Duration::new(now.tv_sec() as u64, now.tv_nsec() as u32) + limit;
        let ts = libc::timespec {
            tv_sec: deadline.as_secs() as libc::time_t,
            tv_nsec: deadline.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `self.sem` is a live mapping; `ts` is a valid timespec on our stack.
        let rc = unsafe { libc::sem_timedwait(self.sem.as_ptr(), &ts) };
        match rc {
            0 => Ok(true),
            _ => match Errno::last() {
                Errno::ETIMEDOUT | Errno::EINTR => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Gives a permit back (`EOVERFLOW` above `SEM_VALUE_MAX`).
    pub fn post(&self) -> Result<(), Errno> {
        // SAFETY: `self.sem` is a live mapping from sem_open.
        let rc = unsafe { libc::sem_post(self.sem.as_ptr()) };
        if rc == 0 { Ok(()) } else { Err(Errno::last()) }
    }

    /// Permits free now (0 when some wait).
    pub fn value(&self) -> Result<u32, Errno> {
        let mut v: libc::c_int = 0;
        // SAFETY: `self.sem` is a live mapping; `v` is a valid int to write.
        let rc = unsafe { libc::sem_getvalue(self.sem.as_ptr(), &mut v) };
        if rc == 0 {
            Ok(v.max(0) as u32)
        } else {
            Err(Errno::last())
        }
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: the mapping came from sem_open and is closed once, here.
        unsafe {
            libc::sem_close(self.sem.as_ptr());
        }
    }
}

/// Where the daemon keeps, beside the `sem_t` in the semaphore's own file,
/// how many permits connections hold through it: past the 32 bytes
/// `sem_open(3)` maps, so programs using the semaphore never see it.
const LEDGER_OFFSET: usize = 64;
/// The semaphore file's size once it carries the ledger (one page).
const LEDGER_FILE_LEN: usize = 4096;

/// The held-permits word in a semaphore's file, mapped shared, so that it
/// survives a `kill -9` of the daemon with the file: the next daemon posts
/// back what the dead one's connections held.
#[derive(Debug)]
pub struct HeldLedger {
    map: memmap2::MmapRaw,
}

impl HeldLedger {
    /// Opens the ledger in the semaphore file `path` (`/dev/shm/sem.NAME`),
    /// growing the file to hold it if it is the bare `sem_t`.
    pub fn open(path: &std::path::Path) -> Result<HeldLedger, Errno> {
        use nix::fcntl::{OFlag, open};
        use nix::sys::stat::{Mode, fstat};
        let fd = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
        if (fstat(&fd)?.st_size as u64) < LEDGER_FILE_LEN as u64 {
            nix::unistd::ftruncate(&fd, LEDGER_FILE_LEN as i64)?;
        }
        let map = memmap2::MmapOptions::new()
            .len(LEDGER_FILE_LEN)
            .map_raw(&fd)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(HeldLedger { map })
    }

    fn word(&self) -> &std::sync::atomic::AtomicU64 {
        // SAFETY: LEDGER_OFFSET + 8 <= LEDGER_FILE_LEN, the mapping is
        // page-aligned so the word is 8-aligned, and it lives as long as `&self`;
        // processes that could write this file share it only through atomics
        // or not at all (sem_open maps the first 32 bytes only).
        unsafe {
            std::sync::atomic::AtomicU64::from_ptr(self.map.as_mut_ptr().add(LEDGER_OFFSET).cast())
        }
    }

    /// Permits recorded as held.
    pub fn get(&self) -> u64 {
        self.word().load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records `held` permits as held.
    pub fn set(&self, held: u64) {
        self.word()
            .store(held, std::sync::atomic::Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_wait_post_value_unlink() {
        let name = format!("/ipcd-test-sys-sem-{}", std::process::id());
        let s = create(&name, 0o600, 2).unwrap();
        assert_eq!(create(&name, 0o600, 1).unwrap_err(), Errno::EEXIST);
        assert!(s.try_wait().unwrap());
        assert!(s.try_wait().unwrap());
        assert!(!s.try_wait().unwrap());
        assert!(!s.timed_wait(Duration::from_millis(10)).unwrap());
        s.post().unwrap();
        let again = open(&name).unwrap();
        assert_eq!(again.value().unwrap(), 1);
        unlink(&name).unwrap();
        assert_eq!(open(&name).unwrap_err(), Errno::ENOENT);
    }

    #[test]
    fn the_ledger_lives_in_the_semaphore_file_beside_a_working_sem_t() {
        let name = format!("/ipcd-test-sys-ledger-{}", std::process::id());
        let s = create(&name, 0o600, 1).unwrap();
        let path = std::path::PathBuf::from(format!("/dev/shm/sem.{}", &name[1..]));
        let ledger = HeldLedger::open(&path).unwrap();
        assert_eq!(ledger.get(), 0);
        ledger.set(3);
        // Another mapping (a restarted daemon) reads it; the semaphore still works.
        assert_eq!(HeldLedger::open(&path).unwrap().get(), 3);
        assert!(s.try_wait().unwrap());
        s.post().unwrap();
        assert_eq!(open(&name).unwrap().value().unwrap(), 1);
        unlink(&name).unwrap();
    }
}
