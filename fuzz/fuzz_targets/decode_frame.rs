//! Fuzz target: arbitrary bytes through the frame header and both decoders.
//!
//! The input is read twice: as a stream of frames (header, payload, header,
//! payload, …) as a socket would deliver it, and as one bare payload, so the
//! fuzzer reaches the decoders without first having to guess a valid length.
//! Whatever decodes must re-encode to the very same bytes and decode again to
//! the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::frame::frame;
use protocol::{
    FrameHeader, HARD_MAX_FRAME, HEADER_LEN, decode_client, decode_server, encode_client,
    encode_server,
};

fn check_payload(payload: &[u8]) {
    if let Ok(value) = decode_client(payload) {
        let again = encode_client(&value).expect("a decoded message re-encodes");
        assert_eq!(again, payload, "client message has a second encoding: {value:?}");
        assert_eq!(decode_client(&again).expect("re-encoding decodes"), value);
        check_framing(&again);
    }
    if let Ok(value) = decode_server(payload) {
        let again = encode_server(&value).expect("a decoded message re-encodes");
        assert_eq!(again, payload, "server message has a second encoding: {value:?}");
        assert_eq!(decode_server(&again).expect("re-encoding decodes"), value);
        check_framing(&again);
    }
}

fn check_framing(payload: &[u8]) {
    let whole = frame(payload, HARD_MAX_FRAME).expect("a decoded payload fits a frame");
    let header = FrameHeader::parse(whole[..HEADER_LEN].try_into().unwrap(), HARD_MAX_FRAME)
        .expect("our own header parses");
    assert_eq!(header.len as usize, payload.len());
}

fuzz_target!(|data: &[u8]| {
    // As a stream of frames.
    let mut rest = data;
    while rest.len() >= HEADER_LEN {
        let (header, after) = rest.split_at(HEADER_LEN);
        let Ok(h) = FrameHeader::parse(header.try_into().unwrap(), HARD_MAX_FRAME) else {
            break;
        };
        assert!(h.len >= 1 && h.len <= HARD_MAX_FRAME);
        let Some(payload) = after.get(..h.len as usize) else {
            break;
        };
        check_payload(payload);
        rest = &after[h.len as usize..];
    }
    // As one bare payload.
    check_payload(data);
});
