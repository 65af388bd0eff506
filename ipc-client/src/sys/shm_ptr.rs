//! The raw-pointer escape hatch of [`SharedMemory`]: `unsafe` accessors for
//! code that must hand the mapped memory to something taking a pointer. They
//! live in `sys` because `unsafe` lives only here.

use crate::error::{Error, Result};
use crate::shm::SharedMemory;

impl SharedMemory {
    /// The first mapped byte, for code that needs the memory itself (a C
    /// library, a checksum routine over a pointer); null when nothing is mapped.
    /// Prefer [`read_at`](Self::read_at) and the atomics, which are safe.
    ///
    /// # Safety
    ///
    /// Taking the pointer is harmless; what the caller does with it is what
    /// makes this `unsafe`, and the caller promises that:
    ///
    /// - it reads at most [`len`](Self::len) bytes from the pointer, and only
    ///   while `self` lives and has not been [`refresh`](Self::refresh)ed (a
    ///   refresh may map the segment elsewhere and unmap the old place);
    /// - it **never forms `&[u8]`, `&mut [u8]` or any other reference** over
    ///   the memory: other processes write it at any moment, and a reference
    ///   lets the compiler assume the bytes do not change under it, which is
    ///   undefined behaviour. Copy with [`std::ptr::copy_nonoverlapping`] or
    ///   [`read_volatile`](std::ptr::read_volatile), or use atomics
    ///   ([`AtomicU64::from_ptr`](std::sync::atomic::AtomicU64::from_ptr)) for
    ///   words that are shared;
    /// - it never writes through it (the mapping may be read-only: a write
    ///   would kill the process with `SIGSEGV`); see [`as_mut_ptr`](Self::as_mut_ptr).
    ///
    /// ```no_run
    /// # let shm: ipc_client::SharedMemory = unimplemented!();
    /// let mut first = [0u8; 4];
    /// assert!(shm.len() >= 4);
    /// // SAFETY: 4 bytes are mapped, `shm` outlives the copy, and no
    /// // reference to the shared bytes is formed.
    /// unsafe { std::ptr::copy_nonoverlapping(shm.as_ptr(), first.as_mut_ptr(), 4) };
    /// ```
    pub unsafe fn as_ptr(&self) -> *const u8 {
        self.region()
            .map_or(std::ptr::null(), |r| r.as_ptr().cast_const())
    }

    /// The first mapped byte of a writable mapping, for code that writes the
    /// memory through a pointer; null when nothing is mapped. A read-only
    /// mapping is [`Error::AccessDenied`].
    ///
    /// # Safety
    ///
    /// As for [`as_ptr`](Self::as_ptr): stay within [`len`](Self::len) bytes,
    /// use it only while `self` lives and is not refreshed, and never form a
    /// reference (`&mut [u8]` least of all) over memory other processes
    /// write. Writes race with other processes' reads and writes: agree on a
    /// protocol (atomics) with them.
    pub unsafe fn as_mut_ptr(&self) -> Result<*mut u8> {
        if !self.writable() {
            return Err(Error::AccessDenied {
                address: self.address().to_owned(),
                needed: "writing",
            });
        }
        Ok(self.region().map_or(std::ptr::null_mut(), |r| r.as_ptr()))
    }
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::shm::SharedMemory;

    fn segment(len: i64, writable: bool) -> SharedMemory {
        let fd =
            nix::sys::memfd::memfd_create(c"shm-ptr-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .unwrap();
        nix::unistd::ftruncate(&fd, len).unwrap();
        SharedMemory::from_fd(fd, writable).unwrap()
    }

    #[test]
    fn the_raw_pointers_see_the_same_bytes() {
        let shm = segment(4096, true);
        shm.write_at(0, b"abcd").unwrap();
        let mut got = [0u8; 4];
        // SAFETY: 4 of 4096 mapped bytes, copied while `shm` lives; no
        // reference to the shared memory is formed.
        unsafe { std::ptr::copy_nonoverlapping(shm.as_ptr(), got.as_mut_ptr(), 4) };
        assert_eq!(&got, b"abcd");
        // SAFETY: as above, writing 1 byte of a writable mapping.
        unsafe { shm.as_mut_ptr().unwrap().add(1).write_volatile(b'X') };
        assert_eq!(shm.read_vec(0, 4).unwrap(), b"aXcd");
    }

    #[test]
    fn read_only_and_empty_mappings_give_no_pointer_to_write() {
        let ro = segment(4096, false);
        // SAFETY: the pointer is never used; asking for it is the test.
        let e = unsafe { ro.as_mut_ptr() }.unwrap_err();
        assert!(
            matches!(
                e,
                Error::AccessDenied {
                    needed: "writing",
                    ..
                }
            ),
            "{e:?}"
        );
        let empty = segment(0, true);
        // SAFETY: the pointers are only compared with null.
        unsafe {
            assert!(empty.as_ptr().is_null());
            assert!(empty.as_mut_ptr().unwrap().is_null());
        }
    }
}
