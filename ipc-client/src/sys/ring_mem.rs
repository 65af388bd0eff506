//! A ring's mapped segment with its geometry checked once, so the hot path
//! reaches slot words and payloads by masked index without re-checking bounds;
//! and the two `unsafe fn` escape hatches of the ring's zero-copy views.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use protocol::kinds::ring::layout::{self, Geometry};

use super::region::{Region, Woken};
use crate::ring::{RingMessage, SlotLoan};

/// A header word that is a futex (the other one of its pair counts waiters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Futex {
    /// `not_empty`: consumers sleep on it.
    NotEmpty,
    /// `not_full`: producers sleep on it.
    NotFull,
}

impl Futex {
    fn offset(self) -> usize {
        match self {
            Futex::NotEmpty => layout::OFF_NOT_EMPTY,
            Futex::NotFull => layout::OFF_NOT_FULL,
        }
    }

    fn waiting_offset(self) -> usize {
        match self {
            Futex::NotEmpty => layout::OFF_CONSUMERS_WAITING,
            Futex::NotFull => layout::OFF_PRODUCERS_WAITING,
        }
    }
}

/// A mapped ring segment whose header has been checked: every slot of the
/// geometry lies inside the mapping, which is writable.
#[derive(Debug)]
pub(crate) struct RingMem {
    region: Region,
    geometry: Geometry,
    mask: u32,
    stride: usize,
}

impl RingMem {
    /// Maps `len` bytes of `fd` read-write and checks the ring header in it.
    /// The geometry is read once here and never again: a peer scribbling over
    /// the header later cannot move our accesses out of the mapping.
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize) -> Result<RingMem, MapError> {
        if len < layout::HEADER_SIZE {
            return Err(MapError::Header(format!(
                "segment of {len} bytes is smaller than a ring header ({} bytes)",
                layout::HEADER_SIZE
            )));
        }
        let region = Region::map(fd, len, true).map_err(MapError::Map)?;
        let mut header = [0u8; 36];
        region
            .read(0, &mut header)
            .map_err(|e| MapError::Header(format!("{e:?}")))?;
        let geometry = Geometry::parse(&header, region.len() as u64).map_err(MapError::Header)?;
        Ok(RingMem {
            mask: geometry.slots - 1,
            stride: geometry.stride as usize,
            geometry,
            region,
        })
    }

    /// The checked geometry.
    #[inline]
    pub(crate) fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// `slots - 1`: a position's slot is `position & mask`.
    #[inline]
    pub(crate) fn mask(&self) -> u32 {
        self.mask
    }

    /// Payload bytes per slot.
    #[inline]
    pub(crate) fn slot_size(&self) -> usize {
        self.geometry.slot_size as usize
    }

    #[inline]
    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= self.region.len());
        // SAFETY: every caller passes a fixed header offset or a slot/entry
        // offset derived from a masked index; `map` checked that the mapping
        // (page-aligned) covers the whole geometry and is writable, so the word
        // is in bounds, 8-aligned and lives as long as `&self`. Every process
        // following the layout touches it only atomically.
        unsafe { AtomicU64::from_ptr(self.region.as_ptr().add(offset).cast::<u64>()) }
    }

    #[inline]
    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset.is_multiple_of(4) && offset + 4 <= self.region.len());
        // SAFETY: as in `u64_at`, for a 4-aligned 4-byte word.
        unsafe { AtomicU32::from_ptr(self.region.as_ptr().add(offset).cast::<u32>()) }
    }

    #[inline]
    fn slot_at(&self, slot: u32) -> usize {
        layout::HEADER_SIZE + (slot & self.mask) as usize * self.stride
    }

    /// `enqueue_pos`.
    #[inline]
    pub(crate) fn enqueue_pos(&self) -> &AtomicU64 {
        self.u64_at(layout::OFF_ENQUEUE_POS)
    }

    /// `dequeue_pos`.
    #[inline]
    pub(crate) fn dequeue_pos(&self) -> &AtomicU64 {
        self.u64_at(layout::OFF_DEQUEUE_POS)
    }

    /// The futex word itself.
    #[inline]
    pub(crate) fn futex(&self, f: Futex) -> &AtomicU32 {
        self.u32_at(f.offset())
    }

    /// The waiter count beside a futex word.
    #[inline]
    pub(crate) fn waiting(&self, f: Futex) -> &AtomicU32 {
        self.u32_at(f.waiting_offset())
    }

    /// Participant `index`'s word (pid and generation); `index` is taken mod 128.
    #[inline]
    pub(crate) fn participant_word(&self, index: u32) -> &AtomicU64 {
        let at = layout::PARTICIPANTS_AT
            + (index % layout::PARTICIPANTS_MAX) as usize * layout::PARTICIPANT_SIZE;
        self.u64_at(at)
    }

    /// Participant `index`'s start time; `index` is taken mod 128.
    #[inline]
    pub(crate) fn participant_start(&self, index: u32) -> &AtomicU64 {
        let at = layout::PARTICIPANTS_AT
            + (index % layout::PARTICIPANTS_MAX) as usize * layout::PARTICIPANT_SIZE;
        self.u64_at(at + 8)
    }

    /// Slot `slot`'s ctrl word (`slot` is masked).
    #[inline]
    pub(crate) fn ctrl(&self, slot: u32) -> &AtomicU64 {
        self.u64_at(self.slot_at(slot))
    }

    /// Slot `slot`'s length word (`slot` is masked).
    #[inline]
    pub(crate) fn len(&self, slot: u32) -> &AtomicU32 {
        self.u32_at(self.slot_at(slot) + 8)
    }

    /// The first payload byte of slot `slot` (`slot` is masked); valid for
    /// [`slot_size`](Self::slot_size) bytes while `self` lives.
    #[inline]
    pub(crate) fn payload_ptr(&self, slot: u32) -> *mut u8 {
        self.region
            .as_ptr()
            .wrapping_add(self.slot_at(slot) + layout::SLOT_HEADER)
    }

    /// Copies `data` into slot `slot`'s payload at `offset`; false (and
    /// nothing copied) if it would run past the slot.
    #[inline]
    pub(crate) fn write_payload(&self, slot: u32, offset: usize, data: &[u8]) -> bool {
        if offset > self.slot_size() || data.len() > self.slot_size() - offset {
            return false;
        }
        // SAFETY: offset..offset+len lies inside the slot's payload (checked
        // above), which lies inside the mapping (checked in `map`); `data` is
        // private memory that cannot overlap the shared mapping; no reference
        // to the destination exists.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.payload_ptr(slot).add(offset),
                data.len(),
            );
        }
        true
    }

    /// Copies slot `slot`'s payload from `offset` into `buf`; false (and
    /// nothing copied) if it would run past the slot.
    #[inline]
    pub(crate) fn read_payload(&self, slot: u32, offset: usize, buf: &mut [u8]) -> bool {
        if offset > self.slot_size() || buf.len() > self.slot_size() - offset {
            return false;
        }
        // SAFETY: the source lies inside the slot's payload (checked above)
        // inside the mapping; `buf` is private memory that cannot overlap it;
        // a concurrent writer could only tear the copy, never form a reference.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.payload_ptr(slot).add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
        true
    }

    /// Sleeps on a futex word while it holds `expected`, at most `timeout`.
    pub(crate) fn futex_wait(&self, f: Futex, expected: u32, timeout: Duration) -> Woken {
        self.region
            .futex_wait(f.offset(), expected, Some(timeout))
            .unwrap_or(Woken::Maybe)
    }

    /// Wakes every process sleeping on a futex word.
    pub(crate) fn futex_wake_all(&self, f: Futex) {
        let _ = self.region.futex_wake(f.offset(), i32::MAX);
    }
}

/// Why a segment could not be used as a ring.
#[derive(Debug)]
pub(crate) enum MapError {
    /// `mmap` failed.
    Map(std::io::Error),
    /// The header is not a valid ring header for this segment.
    Header(String),
}

impl SlotLoan<'_> {
    /// The first byte of the slot's payload, [`capacity`](Self::capacity) bytes
    /// long, for writing the message in place (say, serialising into it or
    /// handing it to `read(2)`); set the length with [`set_len`](Self::set_len)
    /// before [`commit`](Self::commit).
    ///
    /// # Safety
    ///
    /// The memory is shared with other processes. Writing through the pointer
    /// is sound only while this loan lives, within `capacity` bytes, and only
    /// if every participant follows the ring protocol (nobody else touches a
    /// slot a live producer has claimed). Never create a `&mut [u8]` over it
    /// that outlives a write, and never read it back expecting your own bytes
    /// if a misbehaving process may write the segment.
    pub unsafe fn as_mut_ptr(&mut self) -> *mut u8 {
        self.payload_ptr()
    }
}

impl RingMessage<'_> {
    /// The message's bytes in the shared segment, without copying.
    ///
    /// # Safety
    ///
    /// The slice points into memory shared with other processes. It is sound
    /// only if every participant follows the ring protocol, so that nobody
    /// writes this slot while this consumer holds it. A process that wrongly
    /// judged this one dead (or a buggy or hostile peer) could change the bytes
    /// under the slice, which Rust assumes never happens. Prefer
    /// [`read_at`](Self::read_at), [`copy_to`](Self::copy_to) or
    /// [`to_vec`](Self::to_vec), which copy.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the pointer is the start of this slot's payload, in bounds
        // for `len() <= slot_size` bytes of the live mapping borrowed by
        // `self`; the caller promises (see above) nobody writes it meanwhile.
        unsafe { std::slice::from_raw_parts(self.payload_ptr(), self.len()) }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use crate::Ring;

    fn ring() -> Ring {
        let g = layout::Geometry::new(2, 16).unwrap();
        let fd =
            nix::sys::memfd::memfd_create(c"ring-mem", nix::sys::memfd::MFdFlags::empty()).unwrap();
        nix::unistd::ftruncate(&fd, g.segment_size() as i64).unwrap();
        nix::sys::uio::pwrite(fd.as_fd(), &g.header(), 0).unwrap();
        Ring::from_fd(fd).unwrap()
    }

    use super::*;

    #[test]
    fn raw_views_see_the_slot_bytes() {
        let ring = ring();
        let mut loan = ring.loan().unwrap();
        let ptr = {
            // SAFETY: this test is the only participant; 5 <= capacity (16).
            unsafe { loan.as_mut_ptr() }
        };
        // SAFETY: as above; the loan is alive and nobody else maps the segment.
        unsafe { std::ptr::copy_nonoverlapping(b"raw!!".as_ptr(), ptr, 5) };
        loan.set_len(5).unwrap();
        loan.commit().unwrap();
        let msg = ring.recv_borrowed().unwrap();
        // SAFETY: the only participant is this test, which does not write the slot.
        assert_eq!(unsafe { msg.as_slice() }, b"raw!!");
    }

    #[test]
    fn tiny_segments_are_refused_before_mapping() {
        let fd =
            nix::sys::memfd::memfd_create(c"ring-mem", nix::sys::memfd::MFdFlags::empty()).unwrap();
        assert!(matches!(
            RingMem::map(fd.as_fd(), 100),
            Err(MapError::Header(_))
        ));
    }
}
