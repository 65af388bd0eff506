//! Golden byte fixtures: whole frames (header included) that must keep their bytes.
//!
//! Each fixture in `tests/fixtures/NAME.hex` holds one frame as hex text
//! (whitespace is ignored). A test checks both directions: the current encoder
//! produces exactly those bytes, and those bytes decode to the expected value.
//! The second half is the one that matters over time: frames written by old
//! peers must keep decoding. `PROTOCOL.md` quotes some of these fixtures, so
//! these tests also keep its hex dumps true.
//!
//! To add a fixture, add a case below and run
//! `IPCD_BLESS=1 cargo test -p ipcd-protocol --test golden`: it writes the
//! fixtures that are missing from the current encoder and never touches
//! existing ones. An existing fixture that stops matching means the wire format
//! changed incompatibly; fix the code, not the fixture.

use std::fmt::Debug;
use std::fs;
use std::path::PathBuf;

use protocol::frame::frame;
use protocol::{
    Access, BarrierOp, BarrierReply, ClientFrame, CodecError, Counters, CreateSpec, Credentials,
    ErrorCode, Event, EventOp, FifoDetails, FifoParams, FrameHeader, HARD_MAX_FRAME, HEADER_LEN,
    Hello, Holder, Kind, KindDetails, KindOp, KindParams, KindReply, Lifetime, Limits, LockDetails,
    LockOp, LockReply, MqDetails, MqOp, MqParams, MqReply, ObjectInfo, Outcome, PipeDetails,
    PipeOp, PipeParams, PipeReply, Readiness, Reply, Request, RingDetails, RingParams, SemOp,
    SemParams, SemReply, ServerFrame, ShmDetails, ShmOp, ShmParams, ShmReply, StatusInfo,
    UsageInfo, Welcome, WireError,
};
use protocol::{Delivery, SignalDetails, SignalEvent, SignalOp, SignalParams, SignalReply};
use protocol::{
    Fsync, QueueConsumer, QueueDelivery, QueueDetails, QueueItem, QueueJournal, QueueOp,
    QueueOrder, QueueParams, QueueReply,
};

/// Either direction's frame type.
trait Wire: Sized + Debug + PartialEq {
    fn encode(&self) -> Vec<u8>;
    fn decode(payload: &[u8]) -> Result<Self, CodecError>;
}

impl Wire for ClientFrame {
    fn encode(&self) -> Vec<u8> {
        protocol::encode_client(self).unwrap()
    }
    fn decode(payload: &[u8]) -> Result<Self, CodecError> {
        protocol::decode_client(payload)
    }
}

impl Wire for ServerFrame {
    fn encode(&self) -> Vec<u8> {
        protocol::encode_server(self).unwrap()
    }
    fn decode(payload: &[u8]) -> Result<Self, CodecError> {
        protocol::decode_server(payload)
    }
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn blessing() -> bool {
    std::env::var_os("IPCD_BLESS").is_some_and(|v| v == "1")
}

/// The fixture layout: the 4-byte header on the first line, then the payload
/// 16 bytes per line.
fn to_hex(bytes: &[u8]) -> String {
    let line = |chunk: &[u8]| {
        chunk
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (header, payload) = bytes.split_at(HEADER_LEN.min(bytes.len()));
    let mut out = line(header);
    out.push('\n');
    for chunk in payload.chunks(16) {
        out.push_str(&line(chunk));
        out.push('\n');
    }
    out
}

fn from_hex(name: &str, text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len().is_multiple_of(2),
        "{name}.hex: odd number of hex digits"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).unwrap_or("??");
            u8::from_str_radix(pair, 16)
                .unwrap_or_else(|_| panic!("{name}.hex: '{pair}' is not hex"))
        })
        .collect()
}

/// Checks one fixture; returns a description of what is wrong, if anything.
fn check<T: Wire>(name: &str, value: &T) -> Option<String> {
    let path = fixtures_dir().join(format!("{name}.hex"));
    let encoded = frame(&value.encode(), HARD_MAX_FRAME).unwrap();
    if blessing() && !path.exists() {
        fs::write(&path, to_hex(&encoded)).unwrap();
    }
    let Ok(text) = fs::read_to_string(&path) else {
        return Some(format!(
            "{name}: no fixture at {} (IPCD_BLESS=1 writes it)",
            path.display()
        ));
    };
    let fixture = from_hex(name, &text);

    if fixture.len() < HEADER_LEN {
        return Some(format!("{name}: fixture shorter than a frame header"));
    }
    let (header, payload) = fixture.split_at(HEADER_LEN);
    match FrameHeader::parse(header.try_into().unwrap(), HARD_MAX_FRAME) {
        Ok(h) if h.len as usize == payload.len() => {}
        Ok(h) => {
            return Some(format!(
                "{name}: header says {} bytes, fixture has {}",
                h.len,
                payload.len()
            ));
        }
        Err(e) => return Some(format!("{name}: bad header: {e}")),
    }
    match T::decode(payload) {
        Ok(decoded) if decoded == *value => {}
        Ok(decoded) => {
            return Some(format!(
                "{name}: fixture decodes to\n{decoded:#?}\nexpected\n{value:#?}"
            ));
        }
        Err(e) => return Some(format!("{name}: fixture no longer decodes: {e}")),
    }
    if encoded != fixture {
        return Some(format!(
            "{name}: encoder output changed\n--- fixture\n{}--- now\n{}",
            to_hex(&fixture),
            to_hex(&encoded)
        ));
    }
    None
}

fn check_all<T: Wire>(cases: &[(&str, T)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, value)| check(name, value))
        .collect();
    assert!(
        failures.is_empty(),
        "{} golden fixture(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---- realistic values ----------------------------------------------------

/// `mq:jobs` as the daemon describes it right after creating it.
fn jobs_info(opens: u64, depth: u64) -> ObjectInfo {
    ObjectInfo {
        address: "mq:jobs".into(),
        kind: Kind::Mq,
        kernel_name: "/ipcd.jobs".into(),
        owner_uid: 1000,
        owner_gid: 1000,
        mode: 0o660,
        creator_pid: 4242,
        created_at_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
        lifetime: Lifetime::Persistent,
        opens,
        details: KindDetails::Mq(MqDetails {
            capacity: 10,
            msg_size: 8192,
            depth,
        }),
    }
}

/// `mq:mail` (version 3 listings): a second queue, sorted after `mq:jobs`.
fn mail_info() -> ObjectInfo {
    ObjectInfo {
        address: "mq:mail".into(),
        kernel_name: "/ipcd.mail".into(),
        created_at_ms: 1_767_225_780_000, // 2026-01-01T00:03:00Z
        ..jobs_info(0, 0)
    }
}

/// `pipe:chunks` (version 2): a session pipe with a 256 KiB buffer.
fn chunks_info(opens: u64, details: PipeDetails) -> ObjectInfo {
    ObjectInfo {
        address: "pipe:chunks".into(),
        kind: Kind::Pipe,
        kernel_name: "(anonymous pipe)".into(),
        owner_uid: 1000,
        owner_gid: 1000,
        mode: 0o660,
        creator_pid: 4242,
        created_at_ms: 1_767_225_660_000, // 2026-01-01T00:01:00Z
        lifetime: Lifetime::Session,
        opens,
        details: KindDetails::Pipe(details),
    }
}

fn chunks_details(readers_opened: u64, buffered: u64, closed: bool) -> PipeDetails {
    PipeDetails {
        capacity: 262_144,
        buffered_bytes: buffered,
        readers_opened,
        writers_opened: 0,
        closed,
    }
}

/// `fifo:logs` (version 2): a buffered FIFO under the system daemon's runtime directory.
fn logs_info(opens: u64, writers_opened: u64, buffered_bytes: u64) -> ObjectInfo {
    ObjectInfo {
        address: "fifo:logs".into(),
        kind: Kind::Fifo,
        kernel_name: "/run/ipcd/fifo/ipcd.logs".into(),
        owner_uid: 1000,
        owner_gid: 1000,
        mode: 0o620,
        creator_pid: 4242,
        created_at_ms: 1_767_225_720_000, // 2026-01-01T00:02:00Z
        lifetime: Lifetime::Persistent,
        opens,
        details: KindDetails::Fifo(FifoDetails {
            path: "/run/ipcd/fifo/ipcd.logs".into(),
            buffered: true,
            buffered_bytes,
            readers_opened: 0,
            writers_opened,
        }),
    }
}

fn frame_info() -> ObjectInfo {
    ObjectInfo {
        address: "shm:frame".into(),
        kind: Kind::Shm,
        kernel_name: "/ipcd.frame".into(),
        owner_uid: 1000,
        owner_gid: 1000,
        mode: 0o640,
        creator_pid: 4242,
        created_at_ms: 1_700_000_000_000,
        lifetime: Lifetime::Persistent,
        opens: 0,
        details: KindDetails::Shm(ShmDetails {
            size: 1 << 20,
            mapped_by: Some(0),
        }),
    }
}

fn ticks_info() -> ObjectInfo {
    ObjectInfo {
        address: "ring:ticks".into(),
        kind: Kind::Ring,
        kernel_name: "/ipcd.ring:ticks".into(),
        owner_uid: 1000,
        owner_gid: 1000,
        mode: 0o600,
        creator_pid: 4242,
        created_at_ms: 1_700_000_000_000,
        lifetime: Lifetime::Session,
        opens: 0,
        details: KindDetails::Ring(RingDetails {
            slots: 1024,
            slot_size: 1024,
            segment_size: 4096 + 1024 * 1088,
            depth: 0,
            attached: 0,
        }),
    }
}

fn limits() -> Limits {
    Limits {
        max_frame: 1_048_576,
        max_message_size: 1_048_576,
        max_objects_per_uid: 1024,
        max_connections: 1024,
    }
}

fn request(id: u64, body: Request) -> ClientFrame {
    ClientFrame::Request { id, body }
}

fn ok(id: u64, fds: u8, reply: Reply) -> ServerFrame {
    ServerFrame::Response {
        id,
        fds,
        result: Outcome::Ok(reply),
    }
}

fn client_cases() -> Vec<(&'static str, ClientFrame)> {
    vec![
        (
            "hello",
            ClientFrame::Hello(Hello {
                version: 1,
                client_name: "ipcctl".into(),
            }),
        ),
        (
            "request_create_mq_jobs",
            request(
                1,
                Request::Create {
                    address: "mq:jobs".into(),
                    spec: CreateSpec {
                        mode: Some(0o660),
                        lifetime: Lifetime::Persistent,
                        adopt: false,
                        params: KindParams::Mq(MqParams {
                            capacity: Some(10),
                            msg_size: Some(8192),
                        }),
                    },
                },
            ),
        ),
        ("request_ping", request(2, Request::Ping)),
        (
            "request_open_mq_jobs",
            request(
                3,
                Request::Open {
                    address: "mq:jobs".into(),
                    access: Access::Write,
                },
            ),
        ),
        (
            "request_delete_mq_jobs",
            request(
                4,
                Request::Delete {
                    address: "mq:jobs".into(),
                },
            ),
        ),
        ("request_status", request(5, Request::Status)),
        (
            "request_list_mq",
            request(
                6,
                Request::List {
                    kind: Some(Kind::Mq),
                },
            ),
        ),
        ("request_list_all", request(7, Request::List { kind: None })),
        (
            "request_stat_mq_jobs",
            request(
                8,
                Request::Stat {
                    address: "mq:jobs".into(),
                },
            ),
        ),
        (
            "request_create_session_defaults",
            request(
                9,
                Request::Create {
                    address: "mq:scratch".into(),
                    spec: CreateSpec {
                        mode: None,
                        lifetime: Lifetime::Session,
                        adopt: true,
                        params: KindParams::Mq(MqParams::default()),
                    },
                },
            ),
        ),
        // ---- version 2 ----
        (
            "hello_v2",
            ClientFrame::Hello(Hello {
                version: 2,
                client_name: "ipcctl".into(),
            }),
        ),
        (
            "request_create_pipe_chunks",
            request(
                11,
                Request::Create {
                    address: "pipe:chunks".into(),
                    spec: CreateSpec {
                        mode: Some(0o660),
                        lifetime: Lifetime::Session,
                        adopt: false,
                        params: KindParams::Pipe(PipeParams {
                            capacity: Some(262_144),
                        }),
                    },
                },
            ),
        ),
        (
            "request_create_fifo_logs",
            request(
                12,
                Request::Create {
                    address: "fifo:logs".into(),
                    spec: CreateSpec {
                        mode: Some(0o620),
                        lifetime: Lifetime::Persistent,
                        adopt: false,
                        params: KindParams::Fifo(FifoParams { buffered: true }),
                    },
                },
            ),
        ),
        (
            "request_open_pipe_read",
            request(
                13,
                Request::Open {
                    address: "pipe:chunks".into(),
                    access: Access::Read,
                },
            ),
        ),
        (
            "request_close_pipe_chunks",
            request(
                14,
                Request::Close {
                    address: "pipe:chunks".into(),
                },
            ),
        ),
        (
            "request_open_fifo_write",
            request(
                15,
                Request::Open {
                    address: "fifo:logs".into(),
                    access: Access::Write,
                },
            ),
        ),
        (
            "request_list_pipe",
            request(
                16,
                Request::List {
                    kind: Some(Kind::Pipe),
                },
            ),
        ),
        (
            "request_list_fifo",
            request(
                17,
                Request::List {
                    kind: Some(Kind::Fifo),
                },
            ),
        ),
        // ---- version 3 ----
        (
            "hello_v3",
            ClientFrame::Hello(Hello {
                version: 3,
                client_name: "ipcctl".into(),
            }),
        ),
        (
            "request_kind_mq_wait_readable",
            request(
                21,
                Request::Kind {
                    address: "mq:jobs".into(),
                    op: KindOp::Mq(MqOp::WaitFor {
                        ready: Readiness::Readable,
                        timeout_ms: Some(5000),
                    }),
                },
            ),
        ),
        (
            "request_kind_mq_wait_writable_forever",
            request(
                22,
                Request::Kind {
                    address: "mq:jobs".into(),
                    op: KindOp::Mq(MqOp::WaitFor {
                        ready: Readiness::Writable,
                        timeout_ms: None,
                    }),
                },
            ),
        ),
        (
            "request_kind_pipe_close",
            request(
                23,
                Request::Kind {
                    address: "pipe:chunks".into(),
                    op: KindOp::Pipe(PipeOp::Close),
                },
            ),
        ),
        (
            "request_list_page_first",
            request(
                24,
                Request::ListPage {
                    kind: None,
                    after: None,
                    limit: 0,
                },
            ),
        ),
        (
            "request_list_page_after",
            request(
                25,
                Request::ListPage {
                    kind: Some(Kind::Mq),
                    after: Some("mq:jobs".into()),
                    limit: 100,
                },
            ),
        ),
        ("request_usage", request(27, Request::Usage)),
        (
            "request_create_shm",
            request(
                28,
                Request::Create {
                    address: "shm:frame".into(),
                    spec: CreateSpec {
                        mode: Some(0o640),
                        lifetime: Lifetime::Persistent,
                        adopt: false,
                        params: KindParams::Shm(ShmParams {
                            size: Some(1 << 20),
                        }),
                    },
                },
            ),
        ),
        (
            "request_create_ring",
            request(
                29,
                Request::Create {
                    address: "ring:ticks".into(),
                    spec: CreateSpec {
                        mode: None,
                        lifetime: Lifetime::Session,
                        adopt: false,
                        params: KindParams::Ring(RingParams {
                            slots: Some(1024),
                            slot_size: None,
                        }),
                    },
                },
            ),
        ),
        (
            "request_kind_shm_resize",
            request(
                30,
                Request::Kind {
                    address: "shm:frame".into(),
                    op: KindOp::Shm(ShmOp::Resize { size: 2 << 20 }),
                },
            ),
        ),
        (
            "request_create_sem",
            request(
                31,
                Request::Create {
                    address: "sem:slots".into(),
                    spec: CreateSpec {
                        mode: Some(0o660),
                        lifetime: Lifetime::Persistent,
                        adopt: false,
                        params: KindParams::Sem(SemParams {
                            initial: 4,
                            max: Some(4),
                        }),
                    },
                },
            ),
        ),
        (
            "request_kind_sem_acquire",
            request(
                32,
                Request::Kind {
                    address: "sem:slots".into(),
                    op: KindOp::Sem(SemOp::Acquire {
                        timeout_ms: Some(5000),
                    }),
                },
            ),
        ),
        (
            "request_kind_lock_release",
            request(
                33,
                Request::Kind {
                    address: "lock:deploy".into(),
                    op: KindOp::Lock(LockOp::Release),
                },
            ),
        ),
        (
            "request_kind_event_wait_forever",
            request(
                34,
                Request::Kind {
                    address: "event:ready".into(),
                    op: KindOp::Event(EventOp::Wait { timeout_ms: None }),
                },
            ),
        ),
        (
            "request_kind_barrier_wait",
            request(
                35,
                Request::Kind {
                    address: "barrier:start".into(),
                    op: KindOp::Barrier(BarrierOp::Wait {
                        timeout_ms: Some(30_000),
                    }),
                },
            ),
        ),
        // ---- version 6 ----
        (
            "request_create_signal_bound",
            request(
                37,
                Request::Create {
                    address: "signal:usr2".into(),
                    spec: CreateSpec {
                        mode: Some(0o660),
                        lifetime: Lifetime::Persistent,
                        adopt: false,
                        params: KindParams::Signal(SignalParams { bind: Some(12) }),
                    },
                },
            ),
        ),
        (
            "request_kind_signal_raise",
            request(
                38,
                Request::Kind {
                    address: "signal:reload".into(),
                    op: KindOp::Signal(SignalOp::Raise {
                        payload: b"v2".to_vec(),
                    }),
                },
            ),
        ),
        (
            "request_kind_signal_next",
            request(
                39,
                Request::Kind {
                    address: "signal:reload".into(),
                    op: KindOp::Signal(SignalOp::Next {
                        max: 16,
                        timeout_ms: None,
                    }),
                },
            ),
        ),
        (
            "request_kind_signal_deliver",
            request(
                40,
                Request::Kind {
                    address: "signal:reload".into(),
                    op: KindOp::Signal(SignalOp::Deliver {
                        pid: 4242,
                        signal: 1,
                    }),
                },
            ),
        ),
        (
            "request_kill",
            request(
                41,
                Request::Kill {
                    pid: 4242,
                    signal: 15,
                },
            ),
        ),
        // ---- version 7 ----
        (
            "request_create_queue_jobs",
            request(
                42,
                Request::Create {
                    address: "queue:jobs".into(),
                    spec: CreateSpec {
                        mode: Some(0o660),
                        lifetime: Lifetime::Persistent,
                        adopt: false,
                        params: KindParams::Queue(QueueParams {
                            capacity: 1000,
                            max_bytes: 1 << 20,
                            order: QueueOrder::Priority,
                            max_deliveries: 5,
                            durable: Some(Fsync::Batch),
                        }),
                    },
                },
            ),
        ),
        (
            "request_kind_queue_put",
            queue_op(
                43,
                QueueOp::Put {
                    items: vec![
                        QueueItem {
                            priority: 1,
                            body: b"a.jpg".to_vec(),
                        },
                        QueueItem {
                            priority: 9,
                            body: b"b.jpg".to_vec(),
                        },
                    ],
                    timeout_ms: Some(5000),
                },
            ),
        ),
        (
            "request_kind_queue_get",
            queue_op(
                44,
                QueueOp::Get {
                    max: 2,
                    timeout_ms: None,
                },
            ),
        ),
        (
            "request_kind_queue_ack",
            queue_op(45, QueueOp::Ack { ids: vec![18, 17] }),
        ),
        (
            "request_kind_queue_join",
            queue_op(
                46,
                QueueOp::Join {
                    timeout_ms: Some(60_000),
                },
            ),
        ),
        (
            "request_kind_queue_ack_get",
            queue_op(
                47,
                QueueOp::AckGet {
                    ack: vec![19],
                    max: 1,
                    timeout_ms: Some(5_000),
                },
            ),
        ),
    ]
}

/// A kind operation on `queue:jobs`.
fn queue_op(id: u64, op: QueueOp) -> ClientFrame {
    request(
        id,
        Request::Kind {
            address: "queue:jobs".into(),
            op: KindOp::Queue(op),
        },
    )
}

fn server_cases() -> Vec<(&'static str, ServerFrame)> {
    vec![
        (
            "welcome",
            ServerFrame::Welcome(Welcome {
                version: 1,
                min_version: 1,
                max_version: 1,
                server: "ipcd 0.1.0".into(),
                limits: limits(),
                peer: Credentials {
                    pid: 4242,
                    uid: 1000,
                    gid: 1000,
                },
            }),
        ),
        (
            "response_created_mq_jobs",
            ok(1, 0, Reply::Created(jobs_info(0, 0))),
        ),
        ("response_pong", ok(2, 0, Reply::Pong)),
        (
            "response_opened_mq_jobs",
            ok(
                3,
                1,
                Reply::Opened {
                    info: jobs_info(1, 0),
                    access: Access::Write,
                },
            ),
        ),
        (
            "response_permission_denied",
            ServerFrame::Response {
                id: 4,
                fds: 0,
                result: Outcome::Err(WireError::new(
                    ErrorCode::PermissionDenied,
                    "permission denied: uid 1001 may not delete mq:jobs (owner uid 1000)",
                )),
            },
        ),
        (
            "response_status",
            ok(
                5,
                0,
                Reply::Status(StatusInfo {
                    server: "ipcd 0.1.0".into(),
                    pid: 321,
                    uptime_ms: 90_061_000,
                    socket: "/run/ipcd/ipcd.sock".into(),
                    prefix: "ipcd.".into(),
                    objects: 1,
                    sessions: 2,
                    counters: Counters {
                        connections: 17,
                        requests: 120,
                        errors: 3,
                        created: 4,
                        deleted: 3,
                        capabilities: 9,
                    },
                    limits: limits(),
                }),
            ),
        ),
        (
            "response_list",
            ok(6, 0, Reply::List(vec![jobs_info(1, 3)])),
        ),
        ("response_list_empty", ok(7, 0, Reply::List(vec![]))),
        (
            "response_stat_mq_jobs",
            ok(8, 0, Reply::Stat(jobs_info(1, 3))),
        ),
        ("response_deleted", ok(9, 0, Reply::Deleted)),
        (
            // A code from a newer daemon: decodes as Unknown and keeps its number.
            "response_unknown_error_code",
            ServerFrame::Response {
                id: 10,
                fds: 0,
                result: Outcome::Err(WireError::new(ErrorCode::from_u16(1000), "something new")),
            },
        ),
        (
            "event_shutting_down",
            ServerFrame::Event(Event::ShuttingDown),
        ),
        (
            "fatal_unsupported_version",
            ServerFrame::Fatal(WireError::new(
                ErrorCode::UnsupportedVersion,
                "unsupported protocol version 2: this daemon speaks versions 1 to 1",
            )),
        ),
        // ---- version 2 ----
        (
            "welcome_v2",
            ServerFrame::Welcome(Welcome {
                version: 2,
                min_version: 1,
                max_version: 2,
                server: "ipcd 0.1.0".into(),
                limits: limits(),
                peer: Credentials {
                    pid: 4242,
                    uid: 1000,
                    gid: 1000,
                },
            }),
        ),
        (
            "response_created_pipe_chunks",
            ok(
                11,
                0,
                Reply::Created(chunks_info(0, chunks_details(0, 0, false))),
            ),
        ),
        (
            "response_created_fifo_logs",
            ok(12, 0, Reply::Created(logs_info(0, 0, 0))),
        ),
        (
            "response_opened_pipe_read",
            ok(
                13,
                1,
                Reply::Opened {
                    info: chunks_info(1, chunks_details(1, 0, false)),
                    access: Access::Read,
                },
            ),
        ),
        ("response_closed", ok(14, 0, Reply::Closed)),
        (
            "response_opened_fifo_write",
            ok(
                15,
                1,
                Reply::Opened {
                    info: logs_info(1, 1, 0),
                    access: Access::Write,
                },
            ),
        ),
        (
            "response_list_pipe",
            ok(
                16,
                0,
                Reply::List(vec![chunks_info(1, chunks_details(1, 4096, true))]),
            ),
        ),
        (
            "response_list_fifo",
            ok(17, 0, Reply::List(vec![logs_info(3, 3, 1200)])),
        ),
        (
            "response_stat_pipe_closed",
            ok(
                18,
                0,
                Reply::Stat(chunks_info(1, chunks_details(1, 4096, true))),
            ),
        ),
        (
            // An unbuffered FIFO that nobody reads: the client retries the open.
            "response_would_block_fifo",
            ServerFrame::Response {
                id: 19,
                fds: 0,
                result: Outcome::Err(WireError::new(
                    ErrorCode::WouldBlock,
                    "no reader has /run/ipcd/fifo/ipcd.tail open yet",
                )),
            },
        ),
        (
            // What a version 1 connection gets for an address of a version 2 kind
            // (a frame version 1 peers decode).
            "response_kind_needs_v2",
            ServerFrame::Response {
                id: 20,
                fds: 0,
                result: Outcome::Err(WireError::new(
                    ErrorCode::UnknownKind,
                    "kind 'pipe' needs protocol version 2; this connection speaks version 1",
                )),
            },
        ),
        (
            "fatal_unsupported_version_3",
            ServerFrame::Fatal(WireError::new(
                ErrorCode::UnsupportedVersion,
                "protocol version 3 is not supported; this ipcd speaks versions 1 to 2",
            )),
        ),
        // ---- version 3 ----
        (
            "welcome_v3",
            ServerFrame::Welcome(Welcome {
                version: 3,
                min_version: 1,
                max_version: 3,
                server: "ipcd 0.1.0".into(),
                limits: limits(),
                peer: Credentials {
                    pid: 4242,
                    uid: 1000,
                    gid: 1000,
                },
            }),
        ),
        (
            // Request 21 (wait for mq:jobs to be readable), answered once a message came.
            "response_kind_mq_ready",
            ok(
                21,
                0,
                Reply::Kind(KindReply::Mq(MqReply::Ready { depth: 1 })),
            ),
        ),
        (
            "response_kind_pipe_closed",
            ok(23, 0, Reply::Kind(KindReply::Pipe(PipeReply::Closed))),
        ),
        (
            // A page shortened to one object to keep the dump short.
            "response_list_page_more",
            ok(
                24,
                0,
                Reply::ListPage {
                    objects: vec![jobs_info(1, 3)],
                    next: Some("mq:jobs".into()),
                },
            ),
        ),
        (
            "response_list_page_last",
            ok(
                25,
                0,
                Reply::ListPage {
                    objects: vec![mail_info()],
                    next: None,
                },
            ),
        ),
        (
            // Request 21 again, had no message arrived within its 5000 ms.
            "response_timed_out",
            ServerFrame::Response {
                id: 21,
                fds: 0,
                result: Outcome::Err(WireError::new(
                    ErrorCode::TimedOut,
                    "timed out: 'mq:jobs' did not become ready within 5000 ms",
                )),
            },
        ),
        (
            // A request whose address bytes are not UTF-8: answered, the connection stays.
            "response_invalid_utf8",
            ServerFrame::Response {
                id: 26,
                fds: 0,
                result: Outcome::Err(WireError::new(
                    ErrorCode::InvalidAddress,
                    "a string in the request (an address?) is not valid UTF-8",
                )),
            },
        ),
        (
            "response_usage",
            ok(
                27,
                0,
                Reply::Usage(UsageInfo {
                    uid: 1000,
                    privileged: false,
                    connections: 2,
                    max_connections: 256,
                    objects: 3,
                    max_objects: 1024,
                    fds: 4,
                    max_fds: 2340,
                    waits: 1,
                    max_waits: 256,
                    mq_bytes: 1856,
                    max_mq_bytes: 204_800,
                    mq_budget_bytes: 819_200,
                    nofile: 20_000,
                }),
            ),
        ),
        (
            "response_created_shm",
            ok(28, 0, Reply::Created(frame_info())),
        ),
        (
            "response_created_ring",
            ok(29, 0, Reply::Created(ticks_info())),
        ),
        (
            "response_kind_shm_resized",
            ok(
                30,
                0,
                Reply::Kind(KindReply::Shm(ShmReply::Resized { size: 2 << 20 })),
            ),
        ),
        (
            "response_kind_sem_acquired",
            ok(
                32,
                0,
                Reply::Kind(KindReply::Sem(SemReply::Acquired { value: 3 })),
            ),
        ),
        (
            "response_kind_lock_released",
            ok(
                33,
                0,
                Reply::Kind(KindReply::Lock(LockReply::Released { depth: 0 })),
            ),
        ),
        (
            "response_kind_barrier_passed",
            ok(
                35,
                0,
                Reply::Kind(KindReply::Barrier(BarrierReply::Passed { index: 2 })),
            ),
        ),
        (
            "response_broken",
            ServerFrame::Response {
                id: 35,
                fds: 0,
                result: Outcome::Err(WireError::new(
                    ErrorCode::Broken,
                    "the barrier is broken (a party left or timed out); reset it",
                )),
            },
        ),
        (
            "response_stat_lock_held",
            ok(36, 0, Reply::Stat(deploy_info())),
        ),
        // ---- version 6 ----
        (
            "response_kind_signal_raised",
            ok(
                38,
                0,
                Reply::Kind(KindReply::Signal(SignalReply::Raised {
                    seq: 7,
                    subscribers: 3,
                    delivered: 1,
                })),
            ),
        ),
        (
            "response_kind_signal_events",
            ok(
                39,
                0,
                Reply::Kind(KindReply::Signal(SignalReply::Events {
                    events: vec![SignalEvent {
                        seq: 7,
                        time_ms: 1_700_000_002_000,
                        pid: 4243,
                        uid: 1000,
                        signal: None,
                        payload: b"v2".to_vec(),
                    }],
                    missed: 2,
                })),
            ),
        ),
        (
            "response_stat_signal",
            ok(40, 0, Reply::Stat(reload_info())),
        ),
        ("response_killed", ok(41, 0, Reply::Killed)),
        // ---- version 7 ----
        (
            "response_kind_queue_put",
            ok(
                43,
                0,
                Reply::Kind(KindReply::Queue(QueueReply::Put { count: 2 })),
            ),
        ),
        (
            // The put's two messages (sequence numbers 17 and 18), highest priority first.
            "response_kind_queue_got",
            ok(
                44,
                0,
                Reply::Kind(KindReply::Queue(QueueReply::Got(vec![
                    QueueDelivery {
                        id: 18,
                        priority: 9,
                        deliveries: 1,
                        body: b"b.jpg".to_vec(),
                    },
                    QueueDelivery {
                        id: 17,
                        priority: 1,
                        deliveries: 1,
                        body: b"a.jpg".to_vec(),
                    },
                ]))),
            ),
        ),
        (
            "response_kind_queue_acked",
            ok(
                45,
                0,
                Reply::Kind(KindReply::Queue(QueueReply::Acked { count: 2 })),
            ),
        ),
        (
            "response_kind_queue_joined",
            ok(46, 0, Reply::Kind(KindReply::Queue(QueueReply::Joined))),
        ),
        (
            "response_stat_queue",
            ok(47, 0, Reply::Stat(jobs_queue_info())),
        ),
        (
            // What a version 6 connection gets for a `queue:` address.
            "response_kind_needs_v7",
            ServerFrame::Response {
                id: 48,
                fds: 0,
                result: Outcome::Err(WireError::new(
                    ErrorCode::UnknownKind,
                    "kind 'queue' needs protocol version 7; this connection speaks version 6",
                )),
            },
        ),
    ]
}

/// `queue:jobs`, durable: 6 messages of 5 bytes held (120 put − 113 acked −
/// 1 dead), 3 ready and 3 delivered to two consumers; a join waiting.
fn jobs_queue_info() -> ObjectInfo {
    ObjectInfo {
        address: "queue:jobs".into(),
        kind: Kind::Queue,
        kernel_name: "/var/lib/ipcd/queue/jobs.journal".into(),
        owner_uid: 1000,
        owner_gid: 1000,
        mode: 0o660,
        creator_pid: 4242,
        created_at_ms: 1_700_000_000_000,
        lifetime: Lifetime::Persistent,
        opens: 0,
        details: KindDetails::Queue(Box::new(QueueDetails {
            order: QueueOrder::Priority,
            capacity: 1000,
            max_bytes: 1 << 20,
            max_deliveries: 5,
            depth: 3,
            bytes: 6 * 64 + 6 * 5,
            consumers: vec![
                QueueConsumer {
                    pid: 4243,
                    uid: 1000,
                    in_flight: 2,
                },
                QueueConsumer {
                    pid: 4250,
                    uid: 1001,
                    in_flight: 1,
                },
            ],
            put: 120,
            acked: 113,
            redelivered: 2,
            dead: 1,
            put_rate: 4,
            ack_rate: 3,
            getters: 0,
            putters: 0,
            joiners: 1,
            journal: Some(QueueJournal {
                fsync: Fsync::Batch,
                bytes: 8192,
                compactions: 1,
                recovery: None,
            }),
        })),
    }
}

/// `signal:reload`, bound to SIGUSR2, with a process signalled SIGHUP.
fn reload_info() -> ObjectInfo {
    ObjectInfo {
        address: "signal:reload".into(),
        kind: Kind::Signal,
        kernel_name: String::new(),
        owner_uid: 1000,
        owner_gid: 1000,
        mode: 0o660,
        creator_pid: 4242,
        created_at_ms: 1_700_000_000_000,
        lifetime: Lifetime::Persistent,
        opens: 0,
        details: KindDetails::Signal(SignalDetails {
            bind: Some(12),
            seq: 7,
            subscribers: 3,
            deliveries: vec![Delivery {
                pid: 4242,
                uid: 1000,
                signal: 1,
                sent: 7,
            }],
        }),
    }
}

/// `lock:deploy`, held by pid 4242 (uid 1000) once.
fn deploy_info() -> ObjectInfo {
    ObjectInfo {
        address: "lock:deploy".into(),
        kind: Kind::Lock,
        kernel_name: String::new(),
        owner_uid: 1000,
        owner_gid: 1000,
        mode: 0o660,
        creator_pid: 4242,
        created_at_ms: 1_700_000_000_000,
        lifetime: Lifetime::Persistent,
        opens: 0,
        details: KindDetails::Lock(LockDetails {
            reentrant: false,
            owner: Some(Holder {
                pid: 4242,
                uid: 1000,
                since_ms: 1_700_000_001_000,
                count: 1,
            }),
            waiters: 2,
        }),
    }
}

#[test]
fn client_frames_match_fixtures() {
    check_all(&client_cases());
}

#[test]
fn server_frames_match_fixtures() {
    check_all(&server_cases());
}

#[test]
fn every_fixture_is_checked() {
    let mut known: Vec<&str> = client_cases().iter().map(|(n, _)| *n).collect();
    known.extend(server_cases().iter().map(|(n, _)| *n));
    let mut stray = Vec::new();
    for entry in fs::read_dir(fixtures_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let name = file.strip_suffix(".hex").unwrap_or(&file);
        if !known.contains(&name) {
            stray.push(file);
        }
    }
    assert!(
        stray.is_empty(),
        "fixtures no test checks (old frames must stay checked): {stray:?}"
    );
}

#[test]
fn unknown_error_code_keeps_its_number() {
    let code = ErrorCode::from_u16(1000);
    assert_eq!(code, ErrorCode::Unknown(1000));
    assert_eq!(code.as_u16(), 1000);
}

/// The annotated dumps in `PROTOCOL.md` (each a code block after a
/// `<!-- fixture: NAME -->` marker) must be the fixtures' bytes.
#[test]
fn protocol_md_dumps_match_fixtures() {
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../PROTOCOL.md");
    let Ok(text) = fs::read_to_string(&doc) else {
        // The crate was built outside the repository (e.g. packaged): nothing to check.
        return;
    };
    let mut lines = text.lines();
    let mut checked = 0;
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- fixture:")
            .and_then(|r| r.strip_suffix("-->"))
        else {
            continue;
        };
        let name = name.trim();
        assert!(
            lines.next().is_some_and(|l| l.starts_with("```")),
            "PROTOCOL.md: no code block after the {name} marker"
        );
        let hex: String = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(|l| l.split('#').next().unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        let dump = from_hex(name, &hex);
        let fixture = from_hex(
            name,
            &fs::read_to_string(fixtures_dir().join(format!("{name}.hex"))).unwrap(),
        );
        assert_eq!(
            to_hex(&dump),
            to_hex(&fixture),
            "PROTOCOL.md's dump of {name} differs from its fixture"
        );
        checked += 1;
    }
    assert!(
        checked >= 4,
        "PROTOCOL.md: expected the handshake and create dumps, found {checked}"
    );
}
