//! `ipcctl send` and `recv` on a ring as processes, against a fake daemon
//! that hands out a real ring segment (a POSIX shared-memory object with the
//! header ipcd writes) as `ring:r`.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use ipc_client::testing::{self, FakePeer};
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;
use protocol::ring::layout::Geometry;
use protocol::{
    ErrorCode, Kind, KindDetails, Lifetime, ObjectInfo, Outcome, Reply, Request, RingDetails,
    ServerFrame, WireError,
};

use super::{finish, ipcctl, json_err, json_out, stderr};

/// A fake ipcd serving one real ring of 4 slots of 16 bytes as `ring:r`.
struct FakeRing {
    socket: PathBuf,
    segment: String,
}

impl FakeRing {
    fn start(tag: &str) -> Self {
        let segment = format!("/ipcctl-test-ring-{tag}-{}", std::process::id());
        let _ = shm_unlink(segment.as_str());
        let g = Geometry::new(4, 16).unwrap();
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let fd = shm_open(segment.as_str(), flags, Mode::from_bits_truncate(0o600)).unwrap();
        nix::unistd::ftruncate(&fd, g.segment_size() as i64).unwrap();
        nix::sys::uio::pwrite(&fd, &g.header(), 0).unwrap();
        let name = Arc::new(segment.clone());
        let socket = testing::fake_daemon_each("ipcctl-ring", move |mut peer| {
            if peer.handshake().is_some() {
                peer.serve(|peer, id, body| answer(peer, id, body, &name));
            }
        });
        FakeRing { socket, segment }
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> std::process::Output {
        ipcctl(&self.socket, args, stdin)
    }
}

impl Drop for FakeRing {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = shm_unlink(self.segment.as_str());
    }
}

fn info(segment: &str) -> ObjectInfo {
    ObjectInfo {
        address: "ring:r".into(),
        kind: Kind::Ring,
        kernel_name: segment.into(),
        owner_uid: 0,
        owner_gid: 0,
        mode: 0o600,
        creator_pid: 1,
        created_at_ms: 0,
        lifetime: Lifetime::Persistent,
        opens: 2,
        details: KindDetails::Ring(RingDetails {
            slots: 4,
            slot_size: 16,
            segment_size: 4096 + 4 * 64,
            depth: 3,
            attached: 1,
        }),
    }
}

/// The fake daemon's answer to one request about the ring in `segment`.
fn answer(peer: &mut FakePeer, id: u64, body: Request, segment: &str) {
    let result = match body {
        Request::Open { address, access } if address == "ring:r" => {
            let fd = shm_open(segment, OFlag::O_RDWR, Mode::empty()).unwrap();
            let result = Outcome::Ok(Reply::Opened {
                info: info(segment),
                access,
            });
            let frame = ServerFrame::Response { id, fds: 1, result };
            peer.write_with_fds(&frame, &[fd.as_raw_fd()]);
            return;
        }
        Request::Stat { address } if address == "ring:r" => Outcome::Ok(Reply::Stat(info(segment))),
        other => Outcome::Err(WireError::new(
            ErrorCode::NotFound,
            format!("no object for {other:?}"),
        )),
    };
    peer.write(&testing::respond(id, result));
}

#[test]
fn messages_go_through_the_ring_in_order() {
    let d = FakeRing::start("order");
    assert!(d.run(&["send", "ring:r", "one"], b"").status.success());
    // Standard input is one message, less one trailing newline.
    let o = d.run(&["--json", "send", "ring:r"], b"two\n");
    assert_eq!(
        json_out(&o),
        serde_json::json!({"sent": "ring:r", "messages": 1, "bytes": 3})
    );
    let o = d.run(&["send", "ring:r", "--raw"], b"3\n");
    assert!(o.status.success(), "{}", stderr(&o));
    // The ring holds 4: the fifth line finds it full at once.
    let o = d.run(
        &["send", "ring:r", "--lines", "--nonblock"],
        b"four\nfive\n",
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "ipcctl: stopped at line 2 of standard input, after sending 1 line: ring:r is full \
         (would-block)\n"
    );
    let o = d.run(&["send", "ring:r", "x", "--timeout", "50ms"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).ends_with("ring:r stayed full for 50ms (timed-out)\n"));

    let o = d.run(&["recv", "ring:r"], b"");
    assert_eq!(o.stdout, b"one\n");
    let o = d.run(&["--json", "recv", "ring:r", "--count", "2"], b"");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "{\"message\":\"two\"}\n{\"message\":\"3\\n\"}\n"
    );
    let o = d.run(&["recv", "ring:r", "--follow", "--nonblock", "--raw"], b"");
    assert_eq!((o.status.code(), o.stdout), (Some(0), b"four".to_vec()));

    let o = d.run(&["recv", "ring:r", "--nonblock"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "ipcctl: ring:r is empty (would-block)\n");
    let started = std::time::Instant::now();
    let o = d.run(&["--json", "recv", "ring:r", "--timeout", "100ms"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
    assert_eq!(json_err(&o)["error"]["code"], "timed-out");
}

#[test]
fn a_message_longer_than_a_slot_is_refused_naming_the_slot_size() {
    let d = FakeRing::start("large");
    let o = d.run(&["send", "ring:r", "seventeen bytes!!"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "ipcctl: cannot send to ring:r: the message is 17 bytes, more than its slot size of \
         16 bytes (a ring's messages are at most one slot; create it with a larger \
         --slot-size) (too-large)\n"
    );
    let o = d.run(&["send", "ring:r"], &[b'x'; 17]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("standard input holds a longer message, more than its slot size of 16")
    );
    // Exactly a slot fits, and a dropped newline does not count.
    let o = d.run(&["send", "ring:r"], b"sixteen bytes!!!\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.run(&["recv", "ring:r", "--raw", "--spin-us", "20"], b"");
    assert_eq!(o.stdout, b"sixteen bytes!!!");
}

#[test]
fn a_waiting_receiver_gets_a_message_sent_later() {
    let d = FakeRing::start("wake");
    let receiver = std::process::Command::new(env!("CARGO_BIN_EXE_ipcctl"))
        .args(["recv", "ring:r", "--timeout", "20s"])
        .env("IPCD_SOCKET", &d.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(d.run(&["send", "ring:r", "wake up"], b"").status.success());
    let o = finish(receiver, &["recv"]);
    assert_eq!(
        (o.status.code(), o.stdout),
        (Some(0), b"wake up\n".to_vec())
    );
}

#[test]
fn stat_and_list_show_slots_depth_and_attached() {
    let d = FakeRing::start("stat");
    let text = String::from_utf8(d.run(&["stat", "ring:r"], b"").stdout).unwrap();
    let rows: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for row in [
        "kind: ring",
        "depth: 3 of 4 slots",
        "slots: 4",
        "slot size: 16 bytes (the largest message)",
        "segment size: 4352 bytes",
        "attached: 1 handle now",
    ] {
        assert!(rows.iter().any(|r| r == row), "{row:?} in:\n{text}");
    }
    let j = json_out(&d.run(&["--json", "stat", "ring:r"], b""));
    for (key, want) in [
        ("depth", 3),
        ("slots", 4),
        ("slot_size", 16),
        ("segment_size", 4352),
        ("attached", 1),
    ] {
        assert_eq!(j[key], want, "{key}: {j}");
    }
}

#[test]
fn ring_flags_and_verbs_are_checked_before_connecting() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for (args, says) in [
        (
            &["create", "mq:q", "--slots", "8"][..],
            "--slots is for ring: only",
        ),
        (
            &["create", "shm:s", "--size", "1", "--slot-size", "8"],
            "--slot-size is for ring: only",
        ),
        (
            &["create", "ring:r", "--size", "1"],
            "--size is for shm: only",
        ),
        (
            &["create", "ring:r", "--capacity", "1"],
            "--capacity is for mq: and pipe: only (a ring has --slots and --slot-size)",
        ),
        (
            &["create", "ring:r", "--adopt", "--slots", "8"],
            "an adopted ring keeps its own",
        ),
        (&["create", "ring:r", "--slots", "8GiB"], "too large"),
        (
            &["send", "ring:r", "x", "--priority", "1"],
            "--priority applies to mq: only",
        ),
        (
            &["recv", "mq:q", "--spin-us", "5"],
            "--spin-us applies to ring: only; mq:q is a message queue",
        ),
        (
            &["send", "pipe:p", "x", "--spin-us", "5"],
            "--spin-us applies to ring: only",
        ),
        (&["recv", "ring:r", "--spin-us", "5s"], "whole microseconds"),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    for (args, says) in [
        (
            &["wait-for", "ring:r", "--readable"][..],
            "wait-for takes mq: only; ring:r is a shared-memory ring (its waits happen in \
             shared memory",
        ),
        (
            &["write", "ring:r", "x"],
            "ipcctl send and recv move its messages",
        ),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).ends_with(" (wrong-kind)\n"), "{}", stderr(&o));
    }
    // The help teaches what a ring is.
    let o = ipcctl(nowhere, &["recv", "--help"], b"");
    let help = String::from_utf8(o.stdout).unwrap();
    for says in ["MPMC", "at most once", "2 vCPUs", "never pass through ipcd"] {
        assert!(help.contains(says), "recv --help: {says:?}");
    }
    let o = ipcctl(nowhere, &["create", "--help"], b"");
    let help = String::from_utf8(o.stdout).unwrap();
    for says in ["--slot-size", "power of two", "both the read and the write"] {
        assert!(help.contains(says), "create --help: {says:?}");
    }
}
