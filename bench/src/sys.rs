//! The shared memory of the raw baselines (`shm`, `ring`, `sem`): a memfd mapped
//! `MAP_SHARED` ([`Mapping`]), its words as atomics at aligned offsets, bytes
//! copied in and out, and futex wait and wake on its words (shared futexes,
//! not private: the other process waits on the same word), and
//! process-shared semaphores (`sem_init`, `sem_wait`, `sem_post`) in it.
//!
//! Another process writes this memory at any time, so, as in ipc-client,
//! nothing here forms `&[u8]` or `&mut [u8]` over it: bytes are copied with
//! [`std::ptr::copy_nonoverlapping`], and words two processes share are only
//! used through atomics. Every access is bounds-checked and panics outside
//! the mapping (a bug in the bench, never in what it measures). With
//! [`super::fds`], the only `unsafe` in the bench.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use anyhow::Context as _;
use memmap2::MmapRaw;
use nix::sys::memfd::{MFdFlags, memfd_create};

/// A new anonymous shared-memory file (`memfd_create`, close-on-exec) of
/// `len` zero bytes, named `ipcbench-<what>` in `/proc/<pid>/fd`.
pub fn memfd(what: &str, len: usize) -> anyhow::Result<OwnedFd> {
    let name = format!("ipcbench-{what}");
    let fd = memfd_create(name.as_str(), MFdFlags::MFD_CLOEXEC).context("memfd_create")?;
    let size = i64::try_from(len).context("memfd too large")?;
    nix::unistd::ftruncate(&fd, size).context("ftruncate of a memfd")?;
    Ok(fd)
}

/// A whole file mapped read-write and shared (`MAP_SHARED`); unmapped on drop.
/// The descriptor may be closed once it is mapped.
#[derive(Debug)]
pub struct Mapping {
    map: MmapRaw,
}

impl Mapping {
    /// Maps all of `fd` (its size now), which must be open read-write.
    pub fn map(fd: impl AsFd) -> anyhow::Result<Self> {
        let map = MmapRaw::map_raw(&fd.as_fd()).context("mmap of shared memory")?;
        Ok(Mapping { map })
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Panics unless `offset..offset + len` is mapped.
    #[inline]
    #[track_caller]
    fn check(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len);
        assert!(
            end.is_some_and(|end| end <= self.len()),
            "{len} bytes at {offset} run past a {}-byte mapping",
            self.len()
        );
    }

    /// Panics unless a word of `size` bytes at `offset` is mapped and aligned.
    #[inline]
    #[track_caller]
    fn check_word(&self, offset: usize, size: usize) {
        self.check(offset, size);
        assert!(
            offset.is_multiple_of(size),
            "a {size}-byte word at {offset} is misaligned"
        );
    }

    /// The `u32` at `offset` (a multiple of 4), shared with every process
    /// that maps the file. Keep it apart from bytes written by [`write`](Self::write).
    #[inline]
    #[track_caller]
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        self.check_word(offset, 4);
        // SAFETY: in bounds and 4-aligned (checked; the mapping is page-aligned),
        // valid for as long as `self` borrows the mapping; other processes touch
        // this word only atomically (the bench's protocol), so it is never a
        // data race.
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(offset).cast()) }
    }

    /// The `u64` at `offset` (a multiple of 8), as [`u32_at`](Self::u32_at).
    #[inline]
    #[track_caller]
    pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
        self.check_word(offset, 8);
        // SAFETY: as in `u32_at`, for an 8-byte word at an 8-aligned offset.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast()) }
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    #[inline]
    #[track_caller]
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        self.check(offset, buf.len());
        // SAFETY: the source range is mapped (checked); `buf` is private memory,
        // so the two cannot overlap; no reference to the shared bytes is formed
        // (a concurrent writer can tear the copy, never make it undefined).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
    }

    /// Copies `data` into the mapping at `offset`.
    #[inline]
    #[track_caller]
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len());
        // SAFETY: the destination range is mapped read-write (checked); `data` is
        // private memory and cannot overlap it; no reference to it is formed.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_mut_ptr().add(offset),
                data.len(),
            );
        }
    }
}

/// Bytes of one `sem_t` (a multiple of its alignment, 8).
pub const SEM_SIZE: usize = std::mem::size_of::<libc::sem_t>();

impl Mapping {
    /// The `sem_t` at `offset` (a multiple of 8) as a pointer, checked.
    #[inline]
    #[track_caller]
    fn sem_at(&self, offset: usize) -> *mut libc::sem_t {
        self.check(offset, SEM_SIZE);
        assert!(
            offset.is_multiple_of(8),
            "a sem_t at {offset} is misaligned"
        );
        // SAFETY: in bounds of the mapping (checked above).
        unsafe { self.map.as_mut_ptr().add(offset).cast() }
    }

    /// Makes the bytes at `offset` a process-shared semaphore holding
    /// `value` (`sem_init` with `pshared` = 1), for the processes that map
    /// this file. Only before any process uses it.
    #[track_caller]
    pub fn sem_init(&self, offset: usize, value: u32) -> anyhow::Result<()> {
        // SAFETY: `sem_at` checked the `sem_t` lies in the mapping and is aligned;
        // pshared = 1 because other processes map the same file.
        let rc = unsafe { libc::sem_init(self.sem_at(offset), 1, value) };
        nix::errno::Errno::result(rc).context("sem_init")?;
        Ok(())
    }

    /// `sem_wait` on the semaphore at `offset` (made by [`sem_init`](Self::sem_init)),
    /// retried after a signal.
    #[inline]
    #[track_caller]
    pub fn sem_wait(&self, offset: usize) -> anyhow::Result<()> {
        let sem = self.sem_at(offset);
        loop {
            // SAFETY: a checked, aligned `sem_t` in the live mapping; its bytes
            // are only ever changed by the semaphore calls of the processes
            // sharing it.
            let rc = unsafe { libc::sem_wait(sem) };
            match nix::errno::Errno::result(rc) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("sem_wait"),
            }
        }
    }

    /// `sem_post` on the semaphore at `offset`.
    #[inline]
    #[track_caller]
    pub fn sem_post(&self, offset: usize) -> anyhow::Result<()> {
        // SAFETY: as in `sem_wait`.
        let rc = unsafe { libc::sem_post(self.sem_at(offset)) };
        nix::errno::Errno::result(rc).context("sem_post")?;
        Ok(())
    }
}

/// Sleeps while `word` holds `expected`, until a [`futex_wake`] on it (in any
/// process mapping it), a signal, or `timeout` (`None`: no limit). Returns
/// at once if the word holds something else. Spurious returns happen: the
/// caller looks again.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 for the whole call; FUTEX_WAIT (shared)
    // only reads it; `ts_ptr` is null or points at `ts`, alive until the call
    // returns; the unused arguments are ignored by FUTEX_WAIT.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes up to `count` waiters on `word`, in any process mapping it.
pub fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE (shared) only uses its
    // address to find waiters; the unused arguments are ignored.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            count,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use super::*;

    #[test]
    fn two_mappings_of_one_memfd_share_bytes_and_words() {
        let fd = memfd("sys-test", 8192).unwrap();
        let (a, b) = (Mapping::map(&fd).unwrap(), Mapping::map(&fd).unwrap());
        assert_eq!(a.len(), 8192);
        a.write(4000, b"hello");
        let mut got = [0u8; 5];
        b.read(4000, &mut got);
        assert_eq!(&got, b"hello");
        a.u64_at(8).store(7, Ordering::Release);
        assert_eq!(b.u64_at(8).load(Ordering::Acquire), 7);
        b.u32_at(4).fetch_add(3, Ordering::AcqRel);
        assert_eq!(a.u32_at(4).load(Ordering::Acquire), 3);
    }

    #[test]
    #[should_panic(expected = "run past")]
    fn out_of_bounds_panics() {
        let m = Mapping::map(memfd("sys-test", 4096).unwrap()).unwrap();
        m.write(4095, b"ab");
    }

    #[test]
    #[should_panic(expected = "misaligned")]
    fn misaligned_words_panic() {
        let m = Mapping::map(memfd("sys-test", 4096).unwrap()).unwrap();
        m.u32_at(2);
    }

    #[test]
    fn futex_wait_returns_on_a_changed_word_a_wake_or_the_timeout() {
        let m = std::sync::Arc::new(Mapping::map(memfd("sys-test", 4096).unwrap()).unwrap());
        let word = m.u32_at(64);
        futex_wait(word, 1, None); // holds 0: returns at once
        let t = Instant::now();
        futex_wait(word, 0, Some(Duration::from_millis(20)));
        assert!(t.elapsed() >= Duration::from_millis(15));
        let waker = {
            let m = std::sync::Arc::clone(&m);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                m.u32_at(64).store(1, Ordering::Release);
                futex_wake(m.u32_at(64), 1);
            })
        };
        while word.load(Ordering::Acquire) == 0 {
            futex_wait(word, 0, Some(Duration::from_secs(5)));
        }
        waker.join().unwrap();
    }
}

/// Queues the real-time signal `signal` to `thread` of this process
/// (`pthread_sigqueue(3)`): the raw baseline of the `signal` bench. A
/// thread-directed signal is taken only by that thread, whatever the masks
/// of the process's other threads.
pub fn thread_sigqueue(thread: libc::pthread_t, signal: i32) -> nix::Result<()> {
    let value = libc::sigval {
        sival_ptr: std::ptr::null_mut(),
    };
    // SAFETY: the caller keeps `thread` running (it joins it only after its
    // last signal was taken), so the id names a live thread; the value is
    // passed by copy and never dereferenced.
    let rc = unsafe { libc::pthread_sigqueue(thread, signal, value) };
    match rc {
        0 => Ok(()),
        errno => Err(nix::errno::Errno::from_raw(errno)),
    }
}

/// A set of raw signal numbers, real-time ones included (nix's `Signal`
/// has none of them): what the `signal` bench's ping-pong blocks and waits for.
#[derive(Clone, Copy)]
pub struct RawSigSet(libc::sigset_t);

impl RawSigSet {
    /// The set of `signals`.
    pub fn of(signals: &[i32]) -> nix::Result<Self> {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set the pointer points to, a
        // live local; it is read only after that succeeded.
        let rc = unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        nix::errno::Errno::result(rc)?;
        // SAFETY: initialised by the successful sigemptyset above.
        let mut set = unsafe { set.assume_init() };
        for &signal in signals {
            // SAFETY: `set` is an initialised sigset_t owned here.
            let rc = unsafe { libc::sigaddset(&mut set, signal) };
            nix::errno::Errno::result(rc)?;
        }
        Ok(RawSigSet(set))
    }

    fn mask(&self, how: libc::c_int) -> nix::Result<()> {
        // SAFETY: the set is initialised; the old mask is not asked for (null).
        let rc = unsafe { libc::pthread_sigmask(how, &self.0, std::ptr::null_mut()) };
        match rc {
            0 => Ok(()),
            errno => Err(nix::errno::Errno::from_raw(errno)),
        }
    }

    /// Blocks the set in the calling thread (threads it starts inherit it).
    pub fn block_thread(&self) -> nix::Result<()> {
        self.mask(libc::SIG_BLOCK)
    }

    /// Unblocks the set in the calling thread.
    pub fn unblock_thread(&self) -> nix::Result<()> {
        self.mask(libc::SIG_UNBLOCK)
    }

    /// Waits for a signal of the set (blocked in this thread) and takes it.
    pub fn wait(&self) -> nix::Result<i32> {
        let mut signal: libc::c_int = 0;
        // SAFETY: the set is initialised and `signal` is a live local the
        // call writes one int to.
        let rc = unsafe { libc::sigwait(&self.0, &mut signal) };
        match rc {
            0 => Ok(signal),
            errno => Err(nix::errno::Errno::from_raw(errno)),
        }
    }
}
