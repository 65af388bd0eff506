//! The one place that names bincode: message ⇄ payload bytes.
//!
//! Configuration: bincode 2 "standard" with **little-endian fixed-width
//! integers** (enum tags are `u32`, lengths `u64`), which keeps the format easy
//! to implement by hand in other languages. Decoding always runs with a size
//! limit and rejects trailing bytes. The limit is 64 KiB for payloads up to that
//! size and [`HARD_MAX_FRAME`](crate::HARD_MAX_FRAME) otherwise, so a tiny frame
//! claiming a huge string cannot make the decoder allocate more than 64 KiB.
//! Swapping the codec is a change to this file only.

use crate::message::{ClientFrame, ServerFrame};
use thiserror::Error;

const LIMIT: usize = crate::frame::HARD_MAX_FRAME as usize;
const SMALL_LIMIT: usize = 64 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<LIMIT>()
}

fn small_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<SMALL_LIMIT>()
}

/// A payload that could not be turned into a message, or the reverse.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The bytes are not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A string in the message is not valid UTF-8 (the message is otherwise
    /// well framed, so a daemon can answer the request instead of closing).
    #[error("malformed message: a string is not valid UTF-8")]
    InvalidUtf8,
    /// The bytes hold a valid message followed by bytes that belong to none.
    #[error("malformed message: {0} trailing bytes")]
    TrailingBytes(usize),
    /// The message could not be encoded (it is larger than any frame may be).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

fn decode<T: bincode::Decode<()>>(payload: &[u8]) -> Result<T, CodecError> {
    let decoded = if payload.len() <= SMALL_LIMIT {
        bincode::decode_from_slice(payload, small_config())
    } else {
        bincode::decode_from_slice(payload, config())
    };
    let (value, used) = decoded.map_err(|e| match e {
        bincode::error::DecodeError::Utf8 { .. } => CodecError::InvalidUtf8,
        e => CodecError::Malformed(describe(&e)),
    })?;
    if used != payload.len() {
        return Err(CodecError::TrailingBytes(payload.len() - used));
    }
    Ok(value)
}

/// A readable account of a decode error (bincode's own text is its `Debug` form).
fn describe(e: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as E;
    match e {
        E::UnexpectedEnd { .. } => "the payload ends in the middle of a message".into(),
        E::LimitExceeded => "the payload claims more data than the size limit allows".into(),
        E::UnexpectedVariant {
            type_name, found, ..
        } => {
            format!("unknown {type_name} variant {found} (a newer protocol version?)")
        }
        E::Utf8 { .. } => "a string is not valid UTF-8".into(),
        E::InvalidBooleanValue(v) => format!("invalid bool value {v} (must be 0 or 1)"),
        other => format!("{other:?}"),
    }
}

fn encode<T: bincode::Encode>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a client → daemon payload.
pub fn decode_client(payload: &[u8]) -> Result<ClientFrame, CodecError> {
    decode(payload)
}

/// Decodes a daemon → client payload.
pub fn decode_server(payload: &[u8]) -> Result<ServerFrame, CodecError> {
    decode(payload)
}

/// The id of the request a client payload carries, read from its fixed
/// position (tag `1` = `ClientFrame::Request`, then the `u64` id), even when the
/// rest does not decode; `None` for anything else.
pub fn request_id(payload: &[u8]) -> Option<u64> {
    let tag = u32::from_le_bytes(*payload.first_chunk::<4>()?);
    let id = payload.get(4..12)?;
    (tag == 1).then(|| u64::from_le_bytes(id.try_into().expect("8 bytes")))
}

/// Bytes `info` takes when encoded (to fill a page up to a frame limit).
pub fn encoded_len(info: &crate::message::ObjectInfo) -> usize {
    let mut counter = bincode::enc::write::SizeWriter::default();
    let _ = bincode::encode_into_writer(info, &mut counter, config());
    counter.bytes_written
}

/// Encodes a client → daemon payload (without the frame header).
pub fn encode_client(frame: &ClientFrame) -> Result<Vec<u8>, CodecError> {
    encode(frame)
}

/// Encodes a daemon → client payload (without the frame header).
pub fn encode_server(frame: &ServerFrame) -> Result<Vec<u8>, CodecError> {
    encode(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Request;

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode_client(&ClientFrame::Request {
            id: 7,
            body: Request::Ping,
        })
        .unwrap();
        bytes.push(0);
        assert!(matches!(
            decode_client(&bytes),
            Err(CodecError::TrailingBytes(1))
        ));
    }

    #[test]
    fn invalid_utf8_is_told_apart_and_the_id_is_still_readable() {
        let mut bytes = encode_client(&ClientFrame::Request {
            id: 42,
            body: Request::Stat {
                address: "mq:abc".into(),
            },
        })
        .unwrap();
        let last = bytes.len() - 1;
        bytes[last] = 0xff;
        assert!(matches!(
            decode_client(&bytes),
            Err(CodecError::InvalidUtf8)
        ));
        assert_eq!(request_id(&bytes), Some(42));
        assert_eq!(request_id(&[0, 0, 0, 0, 1]), None);
    }

    #[test]
    fn huge_claimed_length_is_an_error_not_an_abort() {
        // Variant 0 (Hello), version 1, then a string claiming 2^60 bytes.
        let mut bytes = vec![0, 0, 0, 0, 1, 0];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode_client(&bytes).is_err());
    }
}
