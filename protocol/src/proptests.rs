//! Property tests: every message survives encode → frame → parse → decode, and
//! no input, valid, cut short, padded or random, makes decoding panic.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::address::Kind;
use crate::codec::{CodecError, decode_client, decode_server, encode_client, encode_server};
use crate::error::{ErrorCode, WireError};
use crate::frame::{FrameHeader, HARD_MAX_FRAME, HEADER_LEN, frame};
use crate::kinds::{KindDetails, KindOp, KindParams, KindReply};
use crate::message::{ClientFrame, CreateSpec, ObjectInfo, Outcome, Reply, Request, ServerFrame};

/// Cases per property: enough to reach every variant, small enough that the
/// whole suite runs in well under a few seconds.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(128)
}

/// Frames `payload`, checks the header the way a receiver would, and returns
/// the payload slice the receiver would hand to the codec.
fn through_frame(payload: &[u8]) -> Vec<u8> {
    let whole = frame(payload, HARD_MAX_FRAME).expect("payload fits in a frame");
    let header: [u8; HEADER_LEN] = whole[..HEADER_LEN].try_into().unwrap();
    let parsed = FrameHeader::parse(header, HARD_MAX_FRAME).expect("header parses");
    assert_eq!(parsed.len as usize, whole.len() - HEADER_LEN);
    whole[HEADER_LEN..].to_vec()
}

/// Encodes, frames and decodes a client frame.
fn client_round_trip(value: &ClientFrame) -> ClientFrame {
    decode_client(&through_frame(&encode_client(value).unwrap())).unwrap()
}

/// Encodes, frames and decodes a server frame.
fn server_round_trip(value: &ServerFrame) -> ServerFrame {
    decode_server(&through_frame(&encode_server(value).unwrap())).unwrap()
}

/// Any `u16` as an error code, including numbers this build does not know.
fn any_code() -> impl Strategy<Value = ErrorCode> {
    any::<u16>().prop_map(ErrorCode::from_u16)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_frames_round_trip(value in any::<ClientFrame>()) {
        let payload = encode_client(&value).unwrap();
        let received = through_frame(&payload);
        prop_assert_eq!(decode_client(&received).unwrap(), value);
    }

    /// Whole frames reach the nested enums only now and then (a `KindDetails`
    /// sits four enums deep), so every request body, reply, set of creation
    /// parameters and object description also gets properties of its own: each
    /// variant, old or new, is then round-tripped in every run.
    #[test]
    fn every_request_body_round_trips(id in any::<u64>(), body in any::<Request>()) {
        let value = ClientFrame::Request { id, body };
        prop_assert_eq!(client_round_trip(&value), value);
    }

    #[test]
    fn every_create_spec_round_trips(address in ".*", spec in any::<CreateSpec>()) {
        let value = ClientFrame::Request { id: 1, body: Request::Create { address, spec } };
        prop_assert_eq!(client_round_trip(&value), value);
    }


    /// Codes travel as bare numbers: unknown ones survive a round trip too.
    #[test]
    fn every_error_code_number_round_trips(code in any_code(), id in any::<u64>(), message in ".*") {
        let value = ServerFrame::Response { id, fds: 0, result: Outcome::Err(WireError { code, message }) };
        let decoded = decode_server(&through_frame(&encode_server(&value).unwrap())).unwrap();
        prop_assert_eq!(&decoded, &value);
        let ServerFrame::Response { result: Outcome::Err(e), .. } = decoded else { unreachable!() };
        prop_assert_eq!(e.code.as_u16(), code.as_u16());
    }

    /// No proper prefix of a valid encoding decodes (the format is prefix-free).
    #[test]
    fn truncated_client_frames_fail(value in any::<ClientFrame>(), cut in any::<Index>()) {
        let payload = encode_client(&value).unwrap();
        // Always try the hardest cut (one byte short) and one random cut.
        for len in [payload.len() - 1, cut.index(payload.len())] {
            prop_assert!(decode_client(&payload[..len]).is_err(), "decoded a {len}-byte prefix of {}", payload.len());
        }
    }

    #[test]
    fn padded_client_frames_fail(value in any::<ClientFrame>(), extra in any::<u8>()) {
        let mut payload = encode_client(&value).unwrap();
        payload.push(extra);
        prop_assert!(matches!(decode_client(&payload), Err(CodecError::TrailingBytes(1))));
    }

    /// Random bytes never panic, and whatever they decode to re-encodes to the
    /// very same bytes (each message has exactly one encoding).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = decode_client(&bytes) {
            prop_assert_eq!(encode_client(&v).unwrap(), bytes.clone());
        }
        if let Ok(v) = decode_server(&bytes) {
            prop_assert_eq!(encode_server(&v).unwrap(), bytes);
        }
    }

    /// A header parses only to a length in 1..=min(max, HARD_MAX_FRAME).
    #[test]
    fn headers_are_bounded(bytes in any::<[u8; HEADER_LEN]>(), max in any::<u32>()) {
        match FrameHeader::parse(bytes, max) {
            Ok(h) => prop_assert!(h.len >= 1 && h.len <= max.min(HARD_MAX_FRAME)),
            Err(_) => {
                let len = u32::from_le_bytes(bytes);
                prop_assert!(len == 0 || len > max.min(HARD_MAX_FRAME));
            }
        }
    }
}

// ---- the strategies reach every variant -----------------------------------
//
// The matches below have no wildcard arm: a new variant does not compile until
// it is named here, and the test then fails until it is also in the expected
// list, which is what keeps the properties above honest about new variants.

fn request_variant(r: &Request) -> &'static str {
    match r {
        Request::Ping => "Ping",
        Request::Status => "Status",
        Request::List { .. } => "List",
        Request::Stat { .. } => "Stat",
        Request::Create { .. } => "Create",
        Request::Open { .. } => "Open",
        Request::Delete { .. } => "Delete",
        Request::Close { .. } => "Close",
        Request::Kind { .. } => "Kind",
        Request::ListPage { .. } => "ListPage",
        Request::Usage => "Usage",
        Request::Kill { .. } => "Kill",
    }
}

fn reply_variant(r: &Reply) -> &'static str {
    match r {
        Reply::Pong => "Pong",
        Reply::Status(_) => "Status",
        Reply::List(_) => "List",
        Reply::Stat(_) => "Stat",
        Reply::Created(_) => "Created",
        Reply::Opened { .. } => "Opened",
        Reply::Deleted => "Deleted",
        Reply::Closed => "Closed",
        Reply::Kind(_) => "Kind",
        Reply::ListPage { .. } => "ListPage",
        Reply::Usage(_) => "Usage",
        Reply::Killed => "Killed",
    }
}

fn op_variant(o: &KindOp) -> &'static str {
    match o {
        KindOp::Mq(_) => "Mq",
        KindOp::Pipe(_) => "Pipe",
        KindOp::Shm(_) => "Shm",
        KindOp::Sem(_) => "Sem",
        KindOp::Lock(_) => "Lock",
        KindOp::Event(_) => "Event",
        KindOp::Barrier(_) => "Barrier",
        KindOp::Signal(_) => "Signal",
        KindOp::Queue(_) => "Queue",
    }
}

fn kind_reply_variant(r: &KindReply) -> &'static str {
    match r {
        KindReply::Mq(_) => "Mq",
        KindReply::Pipe(_) => "Pipe",
        KindReply::Shm(_) => "Shm",
        KindReply::Sem(_) => "Sem",
        KindReply::Lock(_) => "Lock",
        KindReply::Event(_) => "Event",
        KindReply::Barrier(_) => "Barrier",
        KindReply::Signal(_) => "Signal",
        KindReply::Queue(_) => "Queue",
    }
}

fn params_variant(p: &KindParams) -> &'static str {
    match p {
        KindParams::Mq(_) => "Mq",
        KindParams::Pipe(_) => "Pipe",
        KindParams::Fifo(_) => "Fifo",
        KindParams::Shm(_) => "Shm",
        KindParams::Ring(_) => "Ring",
        KindParams::Sem(_) => "Sem",
        KindParams::Lock(_) => "Lock",
        KindParams::Event(_) => "Event",
        KindParams::Barrier(_) => "Barrier",
        KindParams::Signal(_) => "Signal",
        KindParams::Queue(_) => "Queue",
    }
}

fn details_variant(d: &KindDetails) -> &'static str {
    match d {
        KindDetails::Mq(_) => "Mq",
        KindDetails::Pipe(_) => "Pipe",
        KindDetails::Fifo(_) => "Fifo",
        KindDetails::Shm(_) => "Shm",
        KindDetails::Ring(_) => "Ring",
        KindDetails::Sem(_) => "Sem",
        KindDetails::Lock(_) => "Lock",
        KindDetails::Event(_) => "Event",
        KindDetails::Barrier(_) => "Barrier",
        KindDetails::Signal(_) => "Signal",
        KindDetails::Queue(_) => "Queue",
    }
}

fn kind_variant(k: &Kind) -> &'static str {
    match k {
        Kind::Mq => "Mq",
        Kind::Pipe => "Pipe",
        Kind::Fifo => "Fifo",
        Kind::Shm => "Shm",
        Kind::Ring => "Ring",
        Kind::Sem => "Sem",
        Kind::Lock => "Lock",
        Kind::Event => "Event",
        Kind::Barrier => "Barrier",
        Kind::Signal => "Signal",
        Kind::Queue => "Queue",
    }
}

/// The variant names `any::<T>()` produces in `samples` draws (deterministic seed).
fn variants_drawn<T: Arbitrary>(
    samples: usize,
    name: fn(&T) -> &'static str,
) -> BTreeSet<&'static str> {
    let mut runner = TestRunner::deterministic();
    let strategy = any::<T>();
    (0..samples)
        .map(|_| name(&strategy.new_tree(&mut runner).unwrap().current()))
        .collect()
}

fn set(names: &[&'static str]) -> BTreeSet<&'static str> {
    names.iter().copied().collect()
}

#[test]
fn strategies_reach_every_variant() {
    assert_eq!(
        variants_drawn(512, request_variant),
        set(&[
            "Ping", "Status", "List", "Stat", "Create", "Open", "Delete", "Close", "Kind",
            "ListPage", "Usage", "Kill"
        ])
    );
    assert_eq!(
        variants_drawn(512, reply_variant),
        set(&[
            "Pong", "Status", "List", "Stat", "Created", "Opened", "Deleted", "Closed", "Kind",
            "ListPage", "Usage", "Killed"
        ])
    );
    assert_eq!(
        variants_drawn(256, op_variant),
        set(&[
            "Mq", "Pipe", "Shm", "Sem", "Lock", "Event", "Barrier", "Signal", "Queue"
        ])
    );
    assert_eq!(
        variants_drawn(256, kind_reply_variant),
        set(&[
            "Mq", "Pipe", "Shm", "Sem", "Lock", "Event", "Barrier", "Signal", "Queue"
        ])
    );
    let all_kinds = set(&[
        "Mq", "Pipe", "Fifo", "Shm", "Ring", "Sem", "Lock", "Event", "Barrier", "Signal", "Queue",
    ]);
    assert_eq!(variants_drawn(256, params_variant), all_kinds);
    assert_eq!(variants_drawn(256, details_variant), all_kinds);
    assert_eq!(variants_drawn(256, kind_variant), all_kinds);
    // Every kind the crate knows has a since-version the crate speaks.
    for kind in Kind::ALL {
        assert!(
            (1..=crate::PROTOCOL_VERSION).contains(&kind.since_version()),
            "{kind}"
        );
    }
}

/// Runs `f` on a thread with a 16 MiB stack: the strategies for whole server
/// frames nest deeper than a test thread's 2 MiB holds in a debug build.
fn on_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn server_frames_round_trip() {
    on_big_stack(|| {
        proptest!(config(), |(value in any::<ServerFrame>())| {
                let payload = encode_server(&value).unwrap();
                let received = through_frame(&payload);
                prop_assert_eq!(decode_server(&received).unwrap(), value);
        });
    });
}

#[test]
fn every_reply_round_trips() {
    on_big_stack(|| {
        proptest!(config(), |(id in any::<u64>(), fds in any::<u8>(), reply in any::<Reply>())| {
                let value = ServerFrame::Response { id, fds, result: Outcome::Ok(reply) };
                prop_assert_eq!(server_round_trip(&value), value);
        });
    });
}

#[test]
fn every_object_info_round_trips() {
    on_big_stack(|| {
        proptest!(config(), |(info in any::<ObjectInfo>())| {
                let value = ServerFrame::Response { id: 1, fds: 0, result: Outcome::Ok(Reply::Stat(info)) };
                prop_assert_eq!(server_round_trip(&value), value);
        });
    });
}

#[test]
fn truncated_server_frames_fail() {
    on_big_stack(|| {
        proptest!(config(), |(value in any::<ServerFrame>(), cut in any::<Index>())| {
                let payload = encode_server(&value).unwrap();
                for len in [payload.len() - 1, cut.index(payload.len())] {
                    prop_assert!(decode_server(&payload[..len]).is_err(), "decoded a {len}-byte prefix of {}", payload.len());
                }
        });
    });
}

#[test]
fn padded_server_frames_fail() {
    on_big_stack(|| {
        proptest!(config(), |(value in any::<ServerFrame>(), extra in any::<u8>())| {
                let mut payload = encode_server(&value).unwrap();
                payload.push(extra);
                prop_assert!(matches!(decode_server(&payload), Err(CodecError::TrailingBytes(1))));
        });
    });
}

/// Random bytes rarely get past the first tag; corrupting one byte of a
/// valid encoding reaches much deeper into the decoder. The strategies
/// for two whole frames nest deeply, more than a test thread's 2 MiB stack
/// holds in a debug build, so the cases run on a thread with a bigger one.
#[test]
fn corrupted_encodings_never_panic() {
    let run = || {
        proptest!(config(), |(
            value in any::<ServerFrame>(),
            request in any::<ClientFrame>(),
            at in any::<Index>(),
            byte in any::<u8>(),
        )| {
            let mut payload = encode_server(&value).unwrap();
            let i = at.index(payload.len());
            payload[i] = byte;
            if let Ok(v) = decode_server(&payload) {
                prop_assert_eq!(encode_server(&v).unwrap(), payload);
            }
            let mut payload = encode_client(&request).unwrap();
            let i = at.index(payload.len());
            payload[i] = byte;
            if let Ok(v) = decode_client(&payload) {
                prop_assert_eq!(encode_client(&v).unwrap(), payload);
            }
        });
    };
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}
