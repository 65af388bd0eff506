//! The raw futex ring: the yardstick of the `ring` kinds. The plainest
//! correct single-producer, single-consumer ring one would write by hand in
//! a memfd shared by two processes, doing everything a message ring must do
//! and nothing for crash recovery (no owners, no liveness checks, no timed
//! sleeps): that recovery machinery is what the comparison with
//! `ipc_client::Ring` measures.
//!
//! Layout (little-endian, in a memfd of `4096 + slots × stride` bytes):
//!
//! | offset | field |
//! |---|---|
//! | 0 | `u32` slots (a power of two) |
//! | 4 | `u32` slot size: payload bytes per slot |
//! | 128 | `u64` tail: messages written (the producer's, own cache line pair) |
//! | 256 | `u64` head: messages read (the consumer's, own cache line pair) |
//! | 384 | `u32` futex the consumer sleeps on; `u32` at 388: consumer waiting |
//! | 512 | `u32` futex the producer sleeps on; `u32` at 516: producer waiting |
//! | 4096 | slots: `u32` length, 4 zero bytes, payload; stride round_up(8 + slot size, 64) |
//!
//! The counters sit 128 bytes apart so that the adjacent-line prefetcher
//! does not pair them. Each side keeps its own counter and a cached copy of
//! the other's, and reads the shared one only when the cache says full (or
//! empty). A message is written into slot `tail mod slots`, then `tail` is
//! published (release); the consumer reads `tail` (acquire), copies the
//! message out and publishes `head`. After publishing, a side issues a
//! sequentially consistent fence and reads the other side's waiting flag; only
//! if it is set does it clear it, bump the futex word and call `FUTEX_WAKE`,
//! so the fast path makes no system call. A side that finds the ring empty
//! (full) optionally spins first, then sets its flag, fences, looks again and
//! only then sleeps in `FUTEX_WAIT` on the word it read before setting the
//! flag (a wake in between changes the word, so none is lost).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::sys::{self, Mapping};

/// Offset of the slot count.
const OFF_SLOTS: usize = 0;
/// Offset of the slot size.
const OFF_SLOT_SIZE: usize = 4;
/// Offset of the producer's counter.
const OFF_TAIL: usize = 128;
/// Offset of the consumer's counter.
const OFF_HEAD: usize = 256;
/// Offset of the futex word the consumer sleeps on (its flag follows).
const OFF_NOT_EMPTY: usize = 384;
/// Offset of the futex word the producer sleeps on (its flag follows).
const OFF_NOT_FULL: usize = 512;
/// Bytes before the first slot.
const HEADER: usize = 4096;
/// Bytes before a slot's payload: the `u32` length and 4 zero bytes.
const SLOT_HEADER: usize = 8;
/// Slot strides are multiples of this (one cache line).
const SLOT_ALIGN: usize = 64;
/// Spins between two looks at the clock while spinning.
const SPINS_PER_CLOCK: u32 = 32;

/// Bytes of a ring of `slots` slots of `slot_size` bytes.
pub fn segment_size(slots: u32, slot_size: usize) -> usize {
    HEADER + slots as usize * stride(slot_size)
}

/// Bytes from one slot to the next.
fn stride(slot_size: usize) -> usize {
    (SLOT_HEADER + slot_size).div_ceil(SLOT_ALIGN) * SLOT_ALIGN
}

/// One process's handle on a raw ring: as a producer ([`send`](Self::send))
/// or a consumer ([`recv`](Self::recv)), never both at once; one of each per ring.
pub struct RawRing {
    /// The memfd, mapped.
    map: Mapping,
    /// `slots - 1`.
    mask: u64,
    /// Slots in the ring.
    slots: u64,
    /// Payload bytes per slot.
    slot_size: usize,
    /// Bytes from one slot to the next.
    stride: usize,
    /// How long a blocked side spins before it sleeps.
    spin: Duration,
    /// Producer: the next position to write (the shared tail's only writer).
    tail: u64,
    /// Producer: the head as last read.
    head_seen: u64,
    /// Consumer: the next position to read (the shared head's only writer).
    head: u64,
    /// Consumer: the tail as last read.
    tail_seen: u64,
}

impl RawRing {
    /// Makes a new ring of `slots` slots (a power of two) of `slot_size`
    /// bytes in the zeroed memfd `fd` (of [`segment_size`] bytes at least).
    pub fn create(
        fd: &impl std::os::fd::AsFd,
        slots: u32,
        slot_size: usize,
    ) -> anyhow::Result<Self> {
        if !slots.is_power_of_two() || slots < 2 {
            bail!("a raw ring needs a power of two slots, not {slots}");
        }
        let map = Mapping::map(fd)?;
        if map.len() < segment_size(slots, slot_size) {
            bail!("a raw ring of {slots} × {slot_size} B needs a larger memfd");
        }
        map.u32_at(OFF_SLOTS).store(slots, Ordering::Relaxed);
        let size = u32::try_from(slot_size).context("slot size too large")?;
        map.u32_at(OFF_SLOT_SIZE).store(size, Ordering::Release);
        Self::attach(map)
    }

    /// The ring another process made in the memfd now mapped as `map`.
    pub fn attach(map: Mapping) -> anyhow::Result<Self> {
        let slots = map.u32_at(OFF_SLOTS).load(Ordering::Acquire);
        let slot_size = map.u32_at(OFF_SLOT_SIZE).load(Ordering::Acquire) as usize;
        if !slots.is_power_of_two() || slots < 2 || map.len() < segment_size(slots, slot_size) {
            bail!(
                "not a raw ring: {slots} slots of {slot_size} B in {} bytes",
                map.len()
            );
        }
        let (tail, head) = (
            map.u64_at(OFF_TAIL).load(Ordering::Acquire),
            map.u64_at(OFF_HEAD).load(Ordering::Acquire),
        );
        Ok(RawRing {
            map,
            mask: u64::from(slots) - 1,
            slots: u64::from(slots),
            slot_size,
            stride: stride(slot_size),
            spin: Duration::ZERO,
            tail,
            head_seen: head,
            head,
            tail_seen: tail,
        })
    }

    /// Spins up to `spin` before sleeping when the ring is empty or full
    /// (zero, the default: sleep at once).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// Offset of the slot of position `pos`.
    #[inline]
    fn slot(&self, pos: u64) -> usize {
        HEADER + (pos & self.mask) as usize * self.stride
    }

    /// Writes `msg` (at most the slot size; empty is fine) into the next slot,
    /// waiting while the ring is full.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        if msg.len() > self.slot_size {
            bail!(
                "a {}-byte message does not fit a {}-byte slot",
                msg.len(),
                self.slot_size
            );
        }
        let pos = self.tail;
        if pos - self.head_seen >= self.slots {
            self.head_seen = self.map.u64_at(OFF_HEAD).load(Ordering::Acquire);
            if pos - self.head_seen >= self.slots {
                let slots = self.slots;
                self.head_seen = self.wait(OFF_HEAD, OFF_NOT_FULL, |head| pos - head < slots);
            }
        }
        let at = self.slot(pos);
        self.map.write(at, &(msg.len() as u32).to_le_bytes());
        self.map.write(at + SLOT_HEADER, msg);
        self.tail = pos + 1;
        self.map.u64_at(OFF_TAIL).store(pos + 1, Ordering::Release);
        self.wake(OFF_NOT_EMPTY);
        Ok(())
    }

    /// Copies the next message into `buf`, waiting while the ring is empty;
    /// returns its length.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let pos = self.head;
        if pos == self.tail_seen {
            self.tail_seen = self.map.u64_at(OFF_TAIL).load(Ordering::Acquire);
            if pos == self.tail_seen {
                self.tail_seen = self.wait(OFF_TAIL, OFF_NOT_EMPTY, |tail| tail != pos);
            }
        }
        let at = self.slot(pos);
        let mut len = [0u8; 4];
        self.map.read(at, &mut len);
        let len = u32::from_le_bytes(len) as usize;
        let Some(dst) = buf.get_mut(..len) else {
            bail!(
                "a {len}-byte message does not fit a {}-byte buffer",
                buf.len()
            );
        };
        self.map.read(at + SLOT_HEADER, dst);
        self.head = pos + 1;
        self.map.u64_at(OFF_HEAD).store(pos + 1, Ordering::Release);
        self.wake(OFF_NOT_FULL);
        Ok(len)
    }

    /// After publishing a counter: wakes the other side if its flag says it
    /// sleeps (or is about to) on the futex word at `futex`. The waker clears
    /// the flag, so a sleeper is woken once, not once per message until it
    /// runs again.
    #[inline]
    fn wake(&self, futex: usize) {
        // Pairs with the fence in `wait`: either the sleeper sees the new
        // counter, or this sees its flag.
        fence(Ordering::SeqCst);
        let flag = self.waiting(futex);
        if flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::Relaxed) != 0 {
            let word = self.map.u32_at(futex);
            word.fetch_add(1, Ordering::Release);
            sys::futex_wake(word, 1);
        }
    }

    /// The waiting flag next to the futex word at `futex`.
    #[inline]
    fn waiting(&self, futex: usize) -> &AtomicU32 {
        self.map.u32_at(futex + 4)
    }

    /// Waits until `ready` holds for the other side's counter at `counter`:
    /// spins for the spin budget, then sleeps on the futex word at `futex`.
    /// Returns the counter's value.
    #[cold]
    fn wait(&self, counter: usize, futex: usize, ready: impl Fn(u64) -> bool) -> u64 {
        let other: &AtomicU64 = self.map.u64_at(counter);
        if !self.spin.is_zero() {
            let start = Instant::now();
            let mut spins = 0u32;
            loop {
                let v = other.load(Ordering::Acquire);
                if ready(v) {
                    return v;
                }
                std::hint::spin_loop();
                spins += 1;
                if spins.is_multiple_of(SPINS_PER_CLOCK) && start.elapsed() >= self.spin {
                    break;
                }
            }
        }
        let (word, flag) = (self.map.u32_at(futex), self.waiting(futex));
        loop {
            let seen = word.load(Ordering::Acquire);
            flag.store(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let v = other.load(Ordering::Acquire);
            if ready(v) {
                // Not sleeping after all: take the flag back (a waker may
                // have taken it already; then it only wakes nobody).
                flag.store(0, Ordering::Relaxed);
                return v;
            }
            sys::futex_wait(word, seen, None);
            let v = other.load(Ordering::Acquire);
            if ready(v) {
                return v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A producer and a consumer handle on one fresh ring.
    fn pair(slots: u32, slot_size: usize) -> (RawRing, RawRing) {
        let fd = sys::memfd("raw-ring-test", segment_size(slots, slot_size)).unwrap();
        let a = RawRing::create(&fd, slots, slot_size).unwrap();
        let b = RawRing::attach(Mapping::map(&fd).unwrap()).unwrap();
        (a, b)
    }

    /// Sends `n` messages of varying length (and content) through a ring of
    /// `slots` slots from one thread to another; both sides spin for `spin`.
    fn stream(slots: u32, n: u32, spin: Duration) {
        let (mut tx, mut rx) = pair(slots, 64);
        tx.set_spin(spin);
        rx.set_spin(spin);
        let consumer = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            for i in 0..n {
                let len = rx.recv(&mut buf).unwrap();
                assert_eq!(len, (i % 65) as usize, "message {i}");
                assert!(buf[..len].iter().all(|&b| b == i as u8), "message {i}");
            }
            // The end marker.
            assert_eq!(rx.recv(&mut buf).unwrap(), 0);
        });
        for i in 0..n {
            tx.send(&vec![i as u8; (i % 65) as usize]).unwrap();
        }
        tx.send(&[]).unwrap();
        consumer.join().unwrap();
    }

    #[test]
    fn messages_arrive_whole_and_in_order_through_a_small_ring() {
        // 2 slots: both sides block on almost every message.
        stream(2, 20_000, Duration::ZERO);
    }

    #[test]
    fn a_larger_ring_with_spinning() {
        stream(64, 100_000, Duration::from_micros(50));
    }

    #[test]
    fn ping_pong_through_two_rings() {
        let (mut ping_tx, mut ping_rx) = pair(4, 128);
        let (mut pong_tx, mut pong_rx) = pair(4, 128);
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 128];
            loop {
                let n = ping_rx.recv(&mut buf).unwrap();
                pong_tx.send(&buf[..n]).unwrap();
                if n == 0 {
                    return;
                }
            }
        });
        let mut buf = [0u8; 128];
        for i in 0..5_000u32 {
            let msg = i.to_le_bytes().repeat(32);
            ping_tx.send(&msg).unwrap();
            assert_eq!(pong_rx.recv(&mut buf).unwrap(), 128);
            assert_eq!(&buf[..], &msg[..]);
        }
        ping_tx.send(&[]).unwrap();
        assert_eq!(pong_rx.recv(&mut buf).unwrap(), 0);
        echo.join().unwrap();
    }

    #[test]
    fn sizes_are_checked() {
        let (mut tx, mut rx) = pair(2, 16);
        assert!(tx.send(&[0; 17]).is_err());
        tx.send(&[1; 16]).unwrap();
        let err = rx.recv(&mut [0u8; 8]).unwrap_err();
        assert!(err.to_string().contains("16-byte message"), "{err}");
        let fd = sys::memfd("raw-ring-test", 4096).unwrap();
        assert!(RawRing::create(&fd, 3, 16).is_err());
        assert!(RawRing::create(&fd, 4, 1024).is_err(), "memfd too small");
        assert!(
            RawRing::attach(Mapping::map(&fd).unwrap()).is_err(),
            "zeroed memfd"
        );
    }

    #[test]
    fn layout() {
        assert_eq!(stride(64), 128);
        assert_eq!(stride(56), 64);
        assert_eq!(segment_size(256, 64), 4096 + 256 * 128);
        // Counters and flags on lines of their own.
        for (a, b) in [
            (OFF_TAIL, OFF_HEAD),
            (OFF_HEAD, OFF_NOT_EMPTY),
            (OFF_NOT_EMPTY, OFF_NOT_FULL),
        ] {
            assert!(b - a >= 128);
        }
    }
}
