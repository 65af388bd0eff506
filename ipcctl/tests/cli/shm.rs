//! `ipcctl write`, `read` and `resize` as processes, against a fake daemon
//! that hands out a real POSIX shared-memory segment as `shm:s`.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use ipc_client::testing::{self, FakePeer};
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;
use protocol::{
    Access, ErrorCode, Kind, KindDetails, KindOp, KindReply, Lifetime, ObjectInfo, Outcome, Reply,
    Request, ServerFrame, ShmDetails, ShmOp, ShmReply, WireError,
};

use super::{ipcctl, json_err, json_out, stderr};

/// A fake ipcd serving one real segment of `size` bytes as `shm:s` (stat,
/// open, resize, create); everything else is not found.
struct FakeShm {
    socket: PathBuf,
    segment: String,
}

impl FakeShm {
    fn start(tag: &str, size: i64) -> Self {
        let segment = format!("/ipcctl-test-shm-{tag}-{}", std::process::id());
        let _ = shm_unlink(segment.as_str());
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let fd = shm_open(segment.as_str(), flags, Mode::from_bits_truncate(0o600)).unwrap();
        nix::unistd::ftruncate(&fd, size).unwrap();
        let name = Arc::new(Mutex::new(segment.clone()));
        let socket = testing::fake_daemon_each("ipcctl-shm", move |mut peer| {
            let name = name.lock().unwrap().clone();
            if peer.handshake().is_some() {
                peer.serve(|peer, id, body| answer(peer, id, body, &name));
            }
        });
        FakeShm { socket, segment }
    }

    /// The segment's bytes now, seen through a mapping of the test's own.
    fn bytes(&self) -> Vec<u8> {
        let fd = shm_open(self.segment.as_str(), OFlag::O_RDONLY, Mode::empty()).unwrap();
        let shm = ipc_client::SharedMemory::from_fd(fd, false).unwrap();
        shm.read_vec(0, shm.len()).unwrap()
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> std::process::Output {
        ipcctl(&self.socket, args, stdin)
    }
}

impl Drop for FakeShm {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = shm_unlink(self.segment.as_str());
    }
}

fn info(segment: &str, size: u64) -> ObjectInfo {
    ObjectInfo {
        address: "shm:s".into(),
        kind: Kind::Shm,
        kernel_name: segment.into(),
        owner_uid: 0,
        owner_gid: 0,
        mode: 0o640,
        creator_pid: 1,
        created_at_ms: 0,
        lifetime: Lifetime::Persistent,
        opens: 3,
        details: KindDetails::Shm(ShmDetails {
            size,
            mapped_by: Some(2),
        }),
    }
}

/// The fake daemon's answer to one request about the segment `segment`.
fn answer(peer: &mut FakePeer, id: u64, body: Request, segment: &str) {
    let size = || {
        let fd = shm_open(segment, OFlag::O_RDONLY, Mode::empty()).unwrap();
        nix::sys::stat::fstat(&fd).unwrap().st_size as u64
    };
    let err = |code, message: &str| Outcome::Err(WireError::new(code, message));
    let result = match body {
        Request::Open { address, access } if address == "shm:s" => {
            let flags = match access {
                Access::Read => OFlag::O_RDONLY,
                Access::Write | Access::ReadWrite => OFlag::O_RDWR,
            };
            let fd = shm_open(segment, flags, Mode::empty()).unwrap();
            let info = info(segment, size());
            let result = Outcome::Ok(Reply::Opened { info, access });
            let frame = ServerFrame::Response { id, fds: 1, result };
            peer.write_with_fds(&frame, &[fd.as_raw_fd()]);
            return;
        }
        Request::Stat { address } if address == "shm:s" => {
            Outcome::Ok(Reply::Stat(info(segment, size())))
        }
        Request::Create { address, spec } if address == "shm:new" => {
            let mut i = info(segment, 0);
            i.address = address;
            if let protocol::KindParams::Shm(p) = spec.params {
                i.details = KindDetails::Shm(ShmDetails {
                    size: p.size.unwrap_or(0),
                    mapped_by: Some(0),
                });
            }
            Outcome::Ok(Reply::Created(i))
        }
        Request::Kind {
            address,
            op: KindOp::Shm(ShmOp::Resize { size: new }),
        } if address == "shm:s" => {
            if new < size() {
                err(ErrorCode::InvalidArgument, "segments only grow")
            } else {
                let fd = shm_open(segment, OFlag::O_RDWR, Mode::empty()).unwrap();
                nix::unistd::ftruncate(&fd, new as i64).unwrap();
                Outcome::Ok(Reply::Kind(KindReply::Shm(ShmReply::Resized { size: new })))
            }
        }
        other => err(ErrorCode::NotFound, &format!("no object for {other:?}")),
    };
    peer.write(&testing::respond(id, result));
}

#[test]
fn bytes_written_are_read_back_raw_hex_and_json() {
    let d = FakeShm::start("rw", 64);
    let o = d.run(&["write", "shm:s", "hello"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"wrote 5 bytes to shm:s at offset 0\n");
    let o = d.run(
        &["write", "shm:s", "--offset", "16", "-"],
        b"from\nstdin\x00",
    );
    assert_eq!(o.stdout, b"wrote 11 bytes to shm:s at offset 16\n");
    // No DATA: standard input too, kept exactly (no newline dropped).
    let o = d.run(&["--json", "write", "shm:s", "-o", "60"], b"end\n");
    assert_eq!(
        json_out(&o),
        serde_json::json!({"written": "shm:s", "offset": 60, "bytes": 4})
    );
    let bytes = d.bytes();
    assert_eq!(&bytes[..5], b"hello");
    assert_eq!(&bytes[16..27], b"from\nstdin\x00");
    assert_eq!(&bytes[60..], b"end\n");

    let o = d.run(&["read", "shm:s", "--len", "5"], b"");
    assert_eq!(o.stdout, b"hello");
    let o = d.run(&["read", "shm:s"], b"");
    assert_eq!(o.stdout, bytes, "the whole segment by default");
    let o = d.run(&["read", "shm:s", "--offset", "60"], b"");
    assert_eq!(o.stdout, b"end\n", "from the offset to the end");
    let o = d.run(&["read", "shm:s", "--hex"], b"");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "\
00000000  68 65 6c 6c 6f 00 00 00  00 00 00 00 00 00 00 00  |hello...........|
00000010  66 72 6f 6d 0a 73 74 64  69 6e 00 00 00 00 00 00  |from.stdin......|
00000020  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00000030  00 00 00 00 00 00 00 00  00 00 00 00 65 6e 64 0a  |............end.|
00000040
"
    );
    // Lines equal to the one before show as one "*"; offsets are the segment's.
    let o = d.run(&["read", "shm:s", "-x", "-o", "27", "-l", "36"], b"");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "\
0000001b  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
*
0000003b  00 65 6e 64                                       |.end|
0000003f
"
    );
    let o = d.run(&["--json", "read", "shm:s", "--len", "5"], b"");
    assert_eq!(
        json_out(&o),
        serde_json::json!({"address": "shm:s", "offset": 0, "bytes": 5, "data": "hello"})
    );
    let o = d.run(&["--json", "read", "shm:s", "-o", "16", "-l", "11"], b"");
    assert_eq!(json_out(&o)["data"], "from\nstdin\u{0}");
    let o = d.run(&["--json", "read", "shm:s", "-o", "4", "-l", "2"], b"");
    assert_eq!(json_out(&o)["data"], "o\u{0}");
}

#[test]
fn nothing_runs_past_the_end() {
    let d = FakeShm::start("end", 64);
    // Too much data: refused whole, before anything is written.
    let o = d.run(&["write", "shm:s", "--offset", "60", "hello"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "ipcctl: cannot write to shm:s: 5 bytes are more than the 4 bytes from offset 60 to \
         its end (64 bytes); nothing was written (too-large)\n"
    );
    let o = d.run(&["write", "shm:s"], &[b'x'; 65]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("standard input holds more than the 64 bytes"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.bytes(), [0; 64], "nothing was written");
    // Exactly enough fits.
    assert!(d.run(&["write", "shm:s"], &[b'x'; 64]).status.success());

    let o = d.run(&["read", "shm:s", "--offset", "60", "--len", "5"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "ipcctl: 5 bytes at offset 60 run past the end of shm:s (64 bytes; 4 from offset 60) \
         (invalid-argument)\n"
    );
    assert!(o.stdout.is_empty());
    for args in [
        &["read", "shm:s", "--offset", "1KiB"][..],
        &["write", "shm:s", "--offset", "65", "x"],
    ] {
        let o = d.run(args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("is past the end of shm:s (64 bytes) (invalid-argument)"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // Reading nothing at the end is fine.
    let o = d.run(&["read", "shm:s", "--offset", "64"], b"");
    assert!(o.status.success() && o.stdout.is_empty(), "{o:?}");
    let o = d.run(&["--json", "write", "shm:s", "-o", "70", "x"], b"");
    assert_eq!(json_err(&o)["error"]["code"], "invalid-argument");
}

#[test]
fn resize_grows_and_a_smaller_size_is_the_daemon_s_refusal() {
    let d = FakeShm::start("resize", 4096);
    d.run(&["write", "shm:s", "--offset", "4095", "!"], b"");
    let o = d.run(&["resize", "shm:s", "--size", "8KiB"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"resized shm:s to 8192 bytes (8 KiB)\n");
    let bytes = d.bytes();
    assert_eq!((bytes.len(), bytes[4095]), (8192, b'!'));
    assert!(bytes[4096..].iter().all(|&b| b == 0));
    // A fresh ipcctl maps the new size.
    let o = d.run(&["write", "shm:s", "--offset", "8191", "z"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.run(&["--json", "resize", "shm:s", "--size", "16384"], b"");
    assert_eq!(
        json_out(&o),
        serde_json::json!({"resized": "shm:s", "size": 16384})
    );
    let o = d.run(&["resize", "shm:s", "--size", "4096"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "ipcctl: cannot resize shm:s to 4096 bytes: segments only grow (invalid-argument)\n"
    );
}

#[test]
fn stat_list_and_create_show_size_and_mappings() {
    let d = FakeShm::start("stat", 1 << 20);
    let text = String::from_utf8(d.run(&["stat", "shm:s"], b"").stdout).unwrap();
    let rows: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for row in [
        "kind: shm",
        "size: 1048576 bytes (1 MiB)",
        "mapped by: 2 processes now",
        "opens: 3 (descriptors handed out since ipcd started)",
    ] {
        assert!(rows.iter().any(|r| r == row), "{row:?} in:\n{text}");
    }
    let j = json_out(&d.run(&["--json", "stat", "shm:s"], b""));
    assert_eq!(
        (&j["size"], &j["mapped_by"], &j["opens"], &j["kind"]),
        (
            &serde_json::json!(1 << 20),
            &serde_json::json!(2),
            &serde_json::json!(3),
            &serde_json::json!("shm")
        )
    );
    let o = d.run(&["create", "shm:new", "--size", "1MiB"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.starts_with("created shm:new (/ipcctl-test-shm-stat-")
            && out.ends_with(", 1048576 bytes)\n"),
        "{out}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_read_quietly() {
    let d = FakeShm::start("head", 8 << 20);
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    for args in [&["read", "shm:s"][..], &["read", "shm:s", "--hex"]] {
        let writer = writer.try_clone().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ipcctl"))
            .args(args)
            .env("IPCD_SOCKET", &d.socket)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    }
}

#[test]
fn segments_have_their_own_verbs_and_flags() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for (args, says) in [
        (
            &["send", "shm:s", "hi"][..],
            "send takes mq: or pipe: or fifo: or ring: or signal: or queue: only; shm:s is a shared-memory segment \
             (ipcctl write puts bytes into it)",
        ),
        (
            &["recv", "shm:s"],
            "recv takes mq: or pipe: or fifo: or ring: or queue: only; shm:s is a shared-memory segment \
             (ipcctl read prints its bytes)",
        ),
        (
            &["write", "mq:q", "x"],
            "write takes shm: only; mq:q is a message queue",
        ),
        (
            &["read", "pipe:p"],
            "read takes shm: only; pipe:p is a pipe",
        ),
        (
            &["resize", "fifo:f", "--size", "1"],
            "resize takes shm: only; fifo:f is a FIFO",
        ),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!("ipcctl: {says} (wrong-kind)\n"),
            "{args:?}"
        );
    }
    for (args, says) in [
        (&["create", "shm:b"][..], "creating shm:b needs --size"),
        (
            &["create", "shm:b", "--adopt", "--size", "1"],
            "an adopted segment keeps its own size",
        ),
        (
            &["create", "mq:q", "--size", "1"],
            "--size is for shm: only",
        ),
        (
            &["create", "pipe:p", "--size", "1"],
            "--size is for shm: only",
        ),
        (
            &["create", "shm:b", "--size", "1", "--capacity", "1"],
            "--capacity is for mq: and pipe: only",
        ),
        (&["resize", "shm:b"], "--size"),
        (&["--json", "read", "shm:b", "--hex"], "--hex"),
        (
            &["read", "shm:b", "--len", "lots"],
            "not a number or a size",
        ),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    // The help teaches: the POSIX name for other programs, and growth only.
    let o = ipcctl(nowhere, &["create", "--help"], b"");
    let help = String::from_utf8(o.stdout).unwrap();
    assert!(help.contains("SharedMemory(name=\"ipcd.NAME\")"), "{help}");
    let o = ipcctl(nowhere, &["resize", "--help"], b"");
    assert!(String::from_utf8(o.stdout).unwrap().contains("only grow"));
}
