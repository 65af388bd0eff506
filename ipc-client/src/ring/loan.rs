//! Zero-copy views of a ring slot: [`SlotLoan`] (a claimed slot a producer
//! writes in place) and [`RingMessage`] (a message a consumer reads in place).
//! Both copy through bounds-checked calls; neither hands out a slice over
//! shared memory from safe code.

use std::io;

use protocol::kinds::ring::layout::LEN_SKIPPED;

use super::engine::{Claim, Engine};
use crate::error::{Error, Result};

/// A slot claimed for writing one message in place, from
/// [`Ring::loan`](crate::Ring::loan).
///
/// Write the message with [`std::io::Write`] (appending), [`write_at`](Self::write_at)
/// or, unsafely, through [`as_mut_ptr`](Self::as_mut_ptr) plus
/// [`set_len`](Self::set_len); then [`commit`](Self::commit) publishes it.
/// The message is [`len`](Self::len) bytes: the furthest byte written, or what
/// `set_len` said. Dropping the loan without committing publishes a *skipped*
/// slot, which consumers pass over: its position in the ring is used up.
///
/// While a loan lives, the messages claimed after it wait behind it (FIFO by
/// claim order), so keep loans short.
#[derive(Debug)]
pub struct SlotLoan<'a> {
    engine: &'a Engine,
    claim: Claim,
    len: usize,
    cursor: usize,
    done: bool,
}

impl<'a> SlotLoan<'a> {
    pub(crate) fn new(engine: &'a Engine, claim: Claim) -> Self {
        SlotLoan {
            engine,
            claim,
            len: 0,
            cursor: 0,
            done: false,
        }
    }

    /// The most bytes the message may have: the ring's slot size.
    pub fn capacity(&self) -> usize {
        self.engine.mem.slot_size()
    }

    /// The message's length so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` into the slot at `offset`, extending the message to
    /// cover it. [`Error::ExceedsSlotSize`] if it would run past the slot.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        if !self.engine.mem.write_payload(self.claim.slot, offset, data) {
            return Err(self.too_large(offset.saturating_add(data.len())));
        }
        self.len = self.len.max(offset + data.len());
        Ok(())
    }

    /// Sets the message's length, for bytes written through
    /// [`as_mut_ptr`](Self::as_mut_ptr). Bytes never written in this loan hold
    /// whatever the slot held before (an older message), never uninitialised memory.
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        if len > self.capacity() {
            return Err(self.too_large(len));
        }
        self.len = len;
        Ok(())
    }

    /// Publishes the message to the consumers.
    ///
    /// [`Error::RingMessageLost`] if another process judged this one dead
    /// meanwhile and reclaimed the slot (only after the slot stayed claimed
    /// for a long time while this process looked dead).
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        // `len <= capacity <= 64 MiB`: it fits a u32 below LEN_SKIPPED.
        self.engine.commit(self.claim, self.len as u32)
    }

    /// The payload's first byte (for the `unsafe` `as_mut_ptr`).
    pub(crate) fn payload_ptr(&self) -> *mut u8 {
        self.engine.mem.payload_ptr(self.claim.slot)
    }

    #[cold]
    fn too_large(&self, len: usize) -> Error {
        Error::ExceedsSlotSize {
            address: self.engine.address().to_owned(),
            len,
            slot_size: self.capacity(),
        }
    }
}

impl io::Write for SlotLoan<'_> {
    /// Appends as much of `buf` as still fits in the slot; an error of kind
    /// [`WriteZero`](io::ErrorKind::WriteZero) once the slot is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.capacity() - self.cursor);
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                self.too_large(self.cursor + buf.len()),
            ));
        }
        self.write_at(self.cursor, &buf[..n])
            .map_err(io::Error::other)?;
        self.cursor += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SlotLoan<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.engine.commit(self.claim, LEN_SKIPPED);
        }
    }
}

/// A message read in place, from [`Ring::recv_borrowed`](crate::Ring::recv_borrowed).
///
/// The slot stays this consumer's until the view is dropped (or
/// [`release`](Self::release)d): copy out what you need with
/// [`read_at`](Self::read_at), [`copy_to`](Self::copy_to), [`to_vec`](Self::to_vec)
/// or [`std::io::Read`], then let it go. Producers that lap the ring wait for
/// it, so keep it short. If this process dies holding it, the message is lost
/// (at-most-once delivery).
#[derive(Debug)]
pub struct RingMessage<'a> {
    engine: &'a Engine,
    claim: Claim,
    cursor: usize,
    released: bool,
}

impl<'a> RingMessage<'a> {
    pub(crate) fn new(engine: &'a Engine, claim: Claim) -> Self {
        RingMessage {
            engine,
            claim,
            cursor: 0,
            released: false,
        }
    }

    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.claim.len
    }

    /// Whether the message is empty (zero bytes).
    pub fn is_empty(&self) -> bool {
        self.claim.len == 0
    }

    /// Copies bytes from `offset` into `buf`, as many as both have; returns
    /// how many (0 at or past the end).
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len().saturating_sub(offset));
        if n > 0 {
            // In bounds: offset + n <= len <= slot_size.
            self.engine
                .mem
                .read_payload(self.claim.slot, offset, &mut buf[..n]);
        }
        n
    }

    /// Copies the whole message to the start of `buf` and returns its length;
    /// [`Error::RingBufferTooSmall`] if `buf` is shorter than the message.
    pub fn copy_to(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.len() < self.len() {
            return Err(Error::RingBufferTooSmall {
                address: self.engine.address().to_owned(),
                len: buf.len(),
                needed: self.len(),
            });
        }
        Ok(self.read_at(0, buf))
    }

    /// The message's bytes, copied.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.read_at(0, &mut v);
        v
    }

    /// Gives the slot back now, reporting [`Error::RingMessageLost`] if
    /// another process had judged this one dead and taken the slot meanwhile
    /// (then the bytes read may be torn). Dropping the view does the same,
    /// ignoring that error.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.engine.release(self.claim)
    }

    /// The payload's first byte (for the `unsafe` `as_slice`).
    pub(crate) fn payload_ptr(&self) -> *const u8 {
        self.engine.mem.payload_ptr(self.claim.slot)
    }
}

impl io::Read for RingMessage<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(self.cursor, buf);
        self.cursor += n;
        Ok(n)
    }
}

impl Drop for RingMessage<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.engine.release(self.claim);
        }
    }
}
