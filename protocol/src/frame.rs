//! Length framing: a little-endian `u32` payload length, then the payload.
//!
//! The length is checked against the maximum in force *before* any buffer is
//! allocated for the payload, so a header announcing 4 GiB costs nothing.

use thiserror::Error;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// The largest payload any peer may ever send, whatever the configuration says.
pub const HARD_MAX_FRAME: u32 = 16 * 1024 * 1024;

/// The smallest maximum a daemon may be configured with (room for any control message).
pub const MIN_MAX_FRAME: u32 = 4096;

/// A parsed frame header: the length of the payload that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes, not counting the header.
    pub len: u32,
}

/// What can be wrong with a frame header.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The header announces a payload larger than the limit in force.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced payload length.
        len: u32,
        /// The limit in force.
        max: u32,
    },
    /// The header announces an empty payload, which no message encodes to.
    #[error("empty frame")]
    Empty,
}

impl FrameHeader {
    /// Parses a header and checks the announced length against `max`.
    pub fn parse(bytes: [u8; HEADER_LEN], max: u32) -> Result<Self, FrameError> {
        let len = u32::from_le_bytes(bytes);
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > max.min(HARD_MAX_FRAME) {
            return Err(FrameError::TooLarge {
                len,
                max: max.min(HARD_MAX_FRAME),
            });
        }
        Ok(FrameHeader { len })
    }
}

/// Prepends a header to `payload`, producing a whole frame.
///
/// Fails if the payload is longer than `max` (the receiver would refuse it).
pub fn frame(payload: &[u8], max: u32) -> Result<Vec<u8>, FrameError> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    if len > max.min(HARD_MAX_FRAME) {
        return Err(FrameError::TooLarge {
            len,
            max: max.min(HARD_MAX_FRAME),
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let f = frame(b"abc", 100).unwrap();
        assert_eq!(&f[..4], &[3, 0, 0, 0]);
        let h = FrameHeader::parse(f[..4].try_into().unwrap(), 100).unwrap();
        assert_eq!(h.len, 3);
    }

    #[test]
    fn huge_header_is_refused_before_allocation() {
        let err = FrameHeader::parse(u32::MAX.to_le_bytes(), 1 << 20).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLarge {
                len: u32::MAX,
                max: 1 << 20
            }
        );
        assert_eq!(FrameHeader::parse([0; 4], 10), Err(FrameError::Empty));
    }

    #[test]
    fn oversized_payload_is_not_framed() {
        assert!(frame(&[0; 11], 10).is_err());
    }
}
