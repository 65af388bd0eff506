//! A sans-IO frame assembler shared by the daemon's sessions and the client's
//! connection: bytes go in through [`FrameBuffer::spare`] + [`FrameBuffer::commit`],
//! whole frame payloads come out of [`FrameBuffer::next_frame`].
//!
//! Memory follows the traffic: an idle buffer holds nothing
//! ([`FrameBuffer::release_if_idle`]), a read offers [`MIN_READ`] bytes, a large
//! frame grows the buffer to its announced size (checked against the limit
//! first), and the buffer shrinks back once that frame is consumed.

use crate::frame::{FrameError, FrameHeader, HARD_MAX_FRAME, HEADER_LEN};

/// Free space offered to each read, unless the frame being assembled needs more.
pub const MIN_READ: usize = 8 * 1024;

/// Bytes read from a socket and not yet parsed into frames.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameBuffer {
    /// An empty buffer; it allocates on the first [`spare`](Self::spare).
    pub fn new() -> Self {
        FrameBuffer::default()
    }

    /// The payload of the next complete frame, or `None` if more bytes are needed.
    /// The header is checked against `max` as soon as it is complete, before the
    /// rest of the frame is waited for.
    pub fn next_frame(&mut self, max: u32) -> Result<Option<&[u8]>, FrameError> {
        let avail = &self.buf[self.start..self.end];
        let Some(header) = avail.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = FrameHeader::parse(*header, max)?.len as usize;
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = self.start + HEADER_LEN;
        self.start = payload + len;
        Ok(Some(&self.buf[payload..self.start]))
    }

    /// Free space to read into: at least [`MIN_READ`] bytes, and at least what the
    /// frame being assembled still lacks (its header was already checked by
    /// [`next_frame`](Self::next_frame); the hard limit caps it regardless).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > 2 * MIN_READ {
                // A big frame is gone: give its memory back.
                self.buf = Vec::new();
            }
        }
        let pending = self.end - self.start;
        let frame_len = match self.buf[self.start..self.end].first_chunk::<HEADER_LEN>() {
            Some(h) => HEADER_LEN + (u32::from_le_bytes(*h).min(HARD_MAX_FRAME) as usize),
            None => HEADER_LEN,
        };
        let want = frame_len.saturating_sub(pending).max(MIN_READ);
        if self.buf.len() - self.end < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = pending;
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
                self.buf.shrink_to_fit();
            }
        }
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes of [`spare`](Self::spare) as filled.
    pub fn commit(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.buf.len());
    }

    /// Whether no bytes of an incomplete frame are waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Frees the buffer's memory if no partial frame is waiting; call before a
    /// long wait for the next frame, so an idle connection holds no buffer.
    pub fn release_if_idle(&mut self) {
        if self.is_empty() {
            *self = FrameBuffer::default();
        }
    }

    /// Bytes of memory the buffer holds now.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::frame;

    fn framed(payload: &[u8]) -> Vec<u8> {
        frame(payload, HARD_MAX_FRAME).unwrap()
    }

    fn feed(fb: &mut FrameBuffer, bytes: &[u8]) {
        let spare = fb.spare();
        spare[..bytes.len()].copy_from_slice(bytes);
        fb.commit(bytes.len());
    }

    #[test]
    fn several_frames_in_one_read() {
        let mut fb = FrameBuffer::new();
        let mut bytes = framed(b"one");
        bytes.extend(framed(b"two"));
        feed(&mut fb, &bytes);
        assert_eq!(fb.next_frame(100).unwrap(), Some(&b"one"[..]));
        assert_eq!(fb.next_frame(100).unwrap(), Some(&b"two"[..]));
        assert_eq!(fb.next_frame(100).unwrap(), None);
        assert!(fb.is_empty());
    }

    #[test]
    fn a_frame_split_across_reads() {
        let mut fb = FrameBuffer::new();
        let bytes = framed(b"hello world");
        for chunk in bytes.chunks(3) {
            assert_eq!(fb.next_frame(100).unwrap(), None);
            feed(&mut fb, chunk);
        }
        assert_eq!(fb.next_frame(100).unwrap(), Some(&b"hello world"[..]));
    }

    #[test]
    fn a_frame_bigger_than_the_buffer_grows_it_and_shrinks_back() {
        let mut fb = FrameBuffer::new();
        let big = vec![7u8; 200_000];
        let bytes = framed(&big);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            assert_eq!(fb.next_frame(HARD_MAX_FRAME).unwrap(), None);
            let spare = fb.spare();
            let n = spare.len().min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            fb.commit(n);
            rest = &rest[n..];
        }
        assert_eq!(
            fb.next_frame(HARD_MAX_FRAME).unwrap().map(<[u8]>::len),
            Some(big.len())
        );
        feed(&mut fb, &framed(b"small"));
        assert!(fb.capacity() <= 2 * MIN_READ, "{}", fb.capacity());
    }

    #[test]
    fn consumed_bytes_are_reclaimed() {
        let mut fb = FrameBuffer::new();
        let frame = framed(&[1; 1000]);
        feed(&mut fb, &frame);
        let cap = fb.capacity();
        assert!(fb.next_frame(4096).unwrap().is_some());
        for _ in 0..1000 {
            feed(&mut fb, &frame);
            assert!(fb.next_frame(4096).unwrap().is_some());
        }
        assert_eq!(fb.capacity(), cap);
    }

    #[test]
    fn an_idle_buffer_holds_no_memory() {
        let mut fb = FrameBuffer::new();
        assert_eq!(fb.capacity(), 0);
        feed(&mut fb, &framed(b"x"));
        fb.release_if_idle();
        assert!(fb.capacity() > 0, "a whole frame is still waiting");
        assert!(fb.next_frame(100).unwrap().is_some());
        fb.release_if_idle();
        assert_eq!(fb.capacity(), 0);
        feed(&mut fb, &framed(b"abc")[..2]);
        fb.release_if_idle();
        assert!(fb.capacity() > 0, "a partial frame is kept");
    }

    #[test]
    fn an_oversized_header_is_refused_before_waiting() {
        let mut fb = FrameBuffer::new();
        feed(&mut fb, &5000u32.to_le_bytes());
        assert!(matches!(
            fb.next_frame(4096),
            Err(FrameError::TooLarge { len: 5000, .. })
        ));
        let mut empty = FrameBuffer::new();
        feed(&mut empty, &[0, 0, 0, 0]);
        assert_eq!(empty.next_frame(4096), Err(FrameError::Empty));
    }
}
