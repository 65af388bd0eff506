//! A mapped shared-memory region and the only ways to touch it: bounds-checked
//! copies, atomics at aligned offsets, and futex waits and wakes on its words.
//!
//! Other processes write this memory at any time, so the region never hands
//! out `&[u8]` or `&mut [u8]` over it (the compiler would assume the bytes
//! cannot change); bytes are copied in and out through raw pointers, and words
//! shared between processes are used through atomics only.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;

/// A `MAP_SHARED` mapping of a whole segment.
#[derive(Debug)]
pub(crate) struct Region {
    map: MmapRaw,
    writable: bool,
}

/// A range outside the region, or an access the mapping does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegionError {
    /// `offset + len` runs past the end.
    OutOfBounds {
        /// Where the access starts.
        offset: u64,
        /// How many bytes it covers.
        len: u64,
        /// The region's size.
        size: u64,
    },
    /// An atomic word at an offset that is not a multiple of its size.
    Misaligned {
        /// The offset asked for.
        offset: u64,
        /// The word's size.
        align: u64,
    },
    /// A write to a read-only mapping.
    ReadOnly,
}

/// How a futex wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// Woken, or the word no longer held the expected value, or a signal came.
    Maybe,
    /// The timeout passed.
    TimedOut,
}

impl Region {
    /// Maps the first `len` bytes of `fd` (read-write if `writable`).
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize, writable: bool) -> std::io::Result<Region> {
        let mut opts = MmapOptions::new();
        opts.len(len);
        let map = if writable {
            opts.map_raw(&fd)?
        } else {
            opts.map_raw_read_only(&fd)?
        };
        Ok(Region { map, writable })
    }

    /// Bytes mapped.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The first mapped byte (valid for [`len`](Self::len) bytes while `self` lives).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    #[inline]
    fn check(&self, offset: usize, len: usize) -> Result<(), RegionError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(RegionError::OutOfBounds {
                offset: offset as u64,
                len: len as u64,
                size: self.len() as u64,
            }),
        }
    }

    fn check_word(&self, offset: usize, size: usize) -> Result<(), RegionError> {
        self.check(offset, size)?;
        if !offset.is_multiple_of(size) {
            return Err(RegionError::Misaligned {
                offset: offset as u64,
                align: size as u64,
            });
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    #[inline]
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError> {
        self.check(offset, buf.len())?;
        // SAFETY: `check` proved offset..offset+len lies inside the live mapping;
        // `buf` is private memory that cannot overlap a shared mapping. Another
        // process may write the source meanwhile: the copy may then be torn,
        // which is the documented contract, and no reference to it is formed.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len());
        }
        Ok(())
    }

    /// Copies `data` into the region at `offset`.
    #[inline]
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        if !self.writable {
            return Err(RegionError::ReadOnly);
        }
        self.check(offset, data.len())?;
        // SAFETY: in bounds of a live, writable mapping (checked above); `data`
        // is private memory that cannot overlap it; no reference to the
        // destination exists, so concurrent readers see bytes, never UB in us.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(offset), data.len());
        }
        Ok(())
    }

    /// The `u64` word at `offset` (8-aligned), shared with other processes.
    pub(crate) fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64, RegionError> {
        if !self.writable {
            return Err(RegionError::ReadOnly);
        }
        self.check_word(offset, 8)?;
        // SAFETY: the word is in bounds and 8-aligned (checked; the mapping is
        // page-aligned), writable, and lives as long as `&self`. Every process
        // following the layout touches it only atomically.
        Ok(unsafe { AtomicU64::from_ptr(self.as_ptr().add(offset).cast::<u64>()) })
    }

    /// The `u32` word at `offset` (4-aligned), shared with other processes.
    pub(crate) fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32, RegionError> {
        if !self.writable {
            return Err(RegionError::ReadOnly);
        }
        self.check_word(offset, 4)?;
        // SAFETY: as for `atomic_u64`, with 4-byte size and alignment.
        Ok(unsafe { AtomicU32::from_ptr(self.as_ptr().add(offset).cast::<u32>()) })
    }

    /// Sleeps while the `u32` word at `offset` holds `expected`, at most
    /// `timeout` (`None`: until woken). A shared (not private) futex, so
    /// wakes from other processes mapping the same segment reach it.
    pub(crate) fn futex_wait(
        &self,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<Woken, RegionError> {
        let word = self.atomic_u32(offset)?;
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: FUTEX_WAIT reads the aligned u32 at `word` (valid while the
        // borrow lives) and the optional relative timespec, a live local; it
        // writes nothing of ours.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        if rc == -1 && Errno::last() == Errno::ETIMEDOUT {
            return Ok(Woken::TimedOut);
        }
        Ok(Woken::Maybe)
    }

    /// Wakes up to `count` processes sleeping on the `u32` word at `offset`.
    pub(crate) fn futex_wake(&self, offset: usize, count: i32) -> Result<(), RegionError> {
        let word = self.atomic_u32(offset)?;
        // SAFETY: FUTEX_WAKE only uses the address as a key; it is an aligned
        // word of a live mapping.
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::sync::atomic::Ordering;

    use super::*;

    fn segment(len: usize) -> std::os::fd::OwnedFd {
        let fd =
            nix::sys::memfd::memfd_create(c"region-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .unwrap();
        nix::unistd::ftruncate(&fd, len as i64).unwrap();
        fd
    }

    #[test]
    fn two_mappings_see_each_others_bytes_and_words() {
        let fd = segment(4096);
        let a = Region::map(fd.as_fd(), 4096, true).unwrap();
        let b = Region::map(fd.as_fd(), 4096, true).unwrap();
        a.write(100, b"hello").unwrap();
        let mut got = [0u8; 5];
        b.read(100, &mut got).unwrap();
        assert_eq!(&got, b"hello");
        a.atomic_u64(64).unwrap().fetch_add(7, Ordering::SeqCst);
        assert_eq!(b.atomic_u64(64).unwrap().load(Ordering::SeqCst), 7);
    }

    #[test]
    fn bounds_alignment_and_read_only_are_checked() {
        let fd = segment(4096);
        let r = Region::map(fd.as_fd(), 4096, false).unwrap();
        assert_eq!(r.write(0, b"x"), Err(RegionError::ReadOnly));
        assert!(r.atomic_u32(0).is_err());
        let mut buf = [0u8; 8];
        assert!(matches!(
            r.read(4090, &mut buf),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert!(matches!(
            r.read(usize::MAX, &mut buf),
            Err(RegionError::OutOfBounds { .. })
        ));
        let w = Region::map(fd.as_fd(), 4096, true).unwrap();
        assert_eq!(
            w.atomic_u64(4).unwrap_err(),
            RegionError::Misaligned {
                offset: 4,
                align: 8
            }
        );
        assert!(w.atomic_u64(4096).is_err());
    }

    #[test]
    fn futex_wait_times_out_and_is_woken() {
        let fd = segment(4096);
        let r = Region::map(fd.as_fd(), 4096, true).unwrap();
        let t = Some(Duration::from_millis(20));
        assert_eq!(r.futex_wait(0, 0, t).unwrap(), Woken::TimedOut);
        assert_eq!(
            r.futex_wait(0, 1, t).unwrap(),
            Woken::Maybe,
            "value differs: no sleep"
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                while r.atomic_u32(0).unwrap().load(Ordering::SeqCst) == 0 {
                    r.futex_wait(0, 0, Some(Duration::from_secs(5))).unwrap();
                }
            });
            std::thread::sleep(Duration::from_millis(10));
            r.atomic_u32(0).unwrap().store(1, Ordering::SeqCst);
            r.futex_wake(0, i32::MAX).unwrap();
        });
    }
}
