//! Shared-memory rings (`ring:`) against the real daemon, through `ipcctl`,
//! `ipc-client` and `ring-worker` processes: messages go between processes
//! through the mapped slots, never through the daemon, each to exactly one
//! consumer; workers killed mid-stream lose only the messages they held.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipc_client::protocol::ring::layout::Geometry;
use ipc_client::{Access, Client, ErrorCode, RingOptions};
use ipcd_tests::{COMMAND_TIMEOUT, TestDaemon, eventually, wait_timeout};
use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use serde_json::Value;

use crate::permissions::{as_nobody, assert_denied};

fn client(d: &TestDaemon) -> Client {
    Client::connect_to(&d.socket).expect("connect")
}

fn stat_json(d: &TestDaemon, address: &str) -> Value {
    serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", address])).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The file of ring `ring:NAME` hosted by `d`: `/dev/shm/<prefix>ring:NAME`.
fn ring_path(d: &TestDaemon, name: &str) -> PathBuf {
    Path::new("/dev/shm").join(format!("{}ring:{name}", d.prefix))
}

/// Checks that `out` failed with exit status `status` and an error line
/// ending in `(code)` that contains `says` (clap's usage errors go on with
/// a hint line).
fn fails(out: std::process::Output, status: i32, code: &str, says: &str) {
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(status), "{e}");
    let first = e.lines().next().unwrap_or_default();
    assert!(first.ends_with(&format!(" ({code})")), "{e}");
    assert!(e.contains(says), "expected {says:?} in: {e}");
}

/// A `ring-worker` process on `address` of `d` (stdout piped: its summary).
fn worker(d: &TestDaemon, address: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ring-worker"))
        .arg(&d.socket)
        .arg(address)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ring-worker")
}

/// Waits for a worker (at most [`COMMAND_TIMEOUT`]), checks it succeeded and
/// returns its summary line.
fn summary(mut child: Child) -> Value {
    let status = wait_timeout(&mut child, COMMAND_TIMEOUT).expect("ring-worker finished in time");
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "ring-worker {status}: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// The `(producer, seq)` records a worker wrote to `path`, in order.
fn records(path: &Path) -> Vec<(u32, u64)> {
    let bytes = std::fs::read(path).unwrap_or_default();
    assert_eq!(
        bytes.len() % 16,
        0,
        "{} holds a partial record",
        path.display()
    );
    bytes
        .chunks_exact(16)
        .map(|r| {
            (
                u32::from_le_bytes(r[..4].try_into().unwrap()),
                u64::from_le_bytes(r[8..].try_into().unwrap()),
            )
        })
        .collect()
}

/// Checks that each producer's seqs only go up in one consumer's records.
fn assert_in_producer_order(recs: &[(u32, u64)], whose: &str) {
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for &(id, seq) in recs {
        if let Some(before) = last.insert(id, seq) {
            assert!(
                seq > before,
                "{whose}: producer {id} seq {seq} after {before}"
            );
        }
    }
}

#[test]
fn ipcctl_sends_and_receives_in_order_and_stat_shows_the_ring() {
    let d = TestDaemon::start();
    let out = d.ipcctl_ok(&["create", "ring:r", "--slots", "4", "--slot-size", "32"]);
    assert_eq!(
        out,
        format!(
            "created ring:r (/{}ring:r, 4 slots of 32 bytes)\n",
            d.prefix
        )
    );
    assert!(
        ring_path(&d, "r").exists(),
        "the segment is /<prefix>ring:NAME"
    );
    d.ipcctl_ok(&["send", "ring:r", "first"]);
    let mut sender = d.ipcctl();
    sender
        .args(["send", "ring:r", "--lines"])
        .stdin(Stdio::piped());
    let mut sender = sender.spawn().unwrap();
    std::io::Write::write_all(&mut sender.stdin.take().unwrap(), b"second\nthird\n").unwrap();
    assert!(sender.wait().unwrap().success());

    // stat and list: depth, geometry, and the handles attached now.
    let stat = stat_json(&d, "ring:r");
    assert_eq!(
        (
            &stat["kind"],
            &stat["depth"],
            &stat["slots"],
            &stat["slot_size"]
        ),
        (
            &Value::from("ring"),
            &Value::from(3),
            &Value::from(4),
            &Value::from(32)
        ),
        "{stat}"
    );
    assert_eq!(
        stat["attached"], 0,
        "ipcctl detached when it exited: {stat}"
    );
    assert_eq!(stat["segment_size"], 4096 + 4 * 64);
    let mut c = client(&d);
    let held = c.open_ring("r").unwrap();
    assert_eq!((held.slots(), held.slot_size(), held.depth()), (4, 32, 3));
    assert_eq!(stat_json(&d, "ring:r")["attached"], 1);
    let text = d.ipcctl_ok(&["stat", "ring:r"]);
    assert!(text.contains("depth:        3 of 4 slots"), "{text}");
    assert!(text.contains("attached:     1 handle now"), "{text}");
    let list = d.ipcctl_ok(&["list", "ring"]);
    assert!(
        list.contains("ring:r    3 msg  4 × 32 B  1 attached"),
        "{list}"
    );
    drop(held);
    assert_eq!(stat_json(&d, "ring:r")["attached"], 0);

    // Out in order; JSON Lines with --json.
    assert_eq!(d.ipcctl_ok(&["recv", "ring:r"]), "first\n");
    assert_eq!(
        d.ipcctl_ok(&["--json", "recv", "ring:r", "--count", "5", "--nonblock"]),
        "{\"message\":\"second\"}\n{\"message\":\"third\"}\n"
    );

    // Empty: exit 1 at once (--nonblock) or after --timeout; full likewise.
    fails(
        d.run_ipcctl(&["recv", "ring:r", "--nonblock"]),
        1,
        "would-block",
        "ring:r is empty",
    );
    let started = Instant::now();
    fails(
        d.run_ipcctl(&["recv", "ring:r", "--timeout", "200ms"]),
        1,
        "timed-out",
        "no message arrived on ring:r within 200ms",
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    for m in ["a", "b", "c", "d"] {
        d.ipcctl_ok(&["send", "ring:r", m, "--nonblock"]);
    }
    fails(
        d.run_ipcctl(&["send", "ring:r", "e", "--nonblock"]),
        1,
        "would-block",
        "ring:r is full",
    );
    fails(
        d.run_ipcctl(&["send", "ring:r", "e", "--timeout", "100ms"]),
        1,
        "timed-out",
        "ring:r stayed full for 100ms",
    );
    assert_eq!(
        d.ipcctl_ok(&["recv", "ring:r", "-c", "4", "--spin-us", "50"]),
        "a\nb\nc\nd\n"
    );

    // Too large: refused whole, naming the slot size.
    fails(
        d.run_ipcctl(&["send", "ring:r", &"x".repeat(33)]),
        2,
        "too-large",
        "the message is 33 bytes, more than its slot size of 32 bytes",
    );
    assert_eq!(stat_json(&d, "ring:r")["depth"], 0);

    // Flags of other kinds, and verbs of other kinds.
    fails(
        d.run_ipcctl(&["create", "ring:x", "--size", "4096"]),
        64,
        "usage",
        "--size is for shm: only",
    );
    fails(
        d.run_ipcctl(&["create", "mq:x", "--slots", "8"]),
        64,
        "usage",
        "--slots is for ring: only",
    );
    fails(
        d.run_ipcctl(&["send", "ring:r", "x", "--priority", "2"]),
        64,
        "usage",
        "--priority applies to mq: only",
    );
    fails(
        d.run_ipcctl(&["recv", "mq:x", "--spin-us", "10"]),
        64,
        "usage",
        "--spin-us applies to ring: only",
    );
    fails(
        d.run_ipcctl(&["wait-for", "ring:r", "--readable"]),
        2,
        "wrong-kind",
        "recv --timeout waits for a message",
    );
    fails(
        d.run_ipcctl(&["read", "ring:r"]),
        2,
        "wrong-kind",
        "ipcctl send and recv move its messages",
    );

    d.ipcctl_ok(&["delete", "ring:r"]);
    assert!(!ring_path(&d, "r").exists(), "delete unlinks the segment");
}

#[test]
fn a_waiting_receiver_gets_what_another_process_sends() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "ring:wake", "--slots", "8", "--slot-size", "64"]);
    let receiver = d
        .ipcctl()
        .args(["recv", "ring:wake", "--count", "3", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the receiver is attached", || {
        stat_json(&d, "ring:wake")["attached"] == 1
    });
    let mut c = client(&d);
    let ring = c.open_ring("ring:wake").unwrap();
    for m in ["from", "the", "library"] {
        ring.send(m.as_bytes()).unwrap();
    }
    let out = receiver.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "from\nthe\nlibrary\n"
    );

    // ipcctl sends; the library receives.
    d.ipcctl_ok(&["send", "ring:wake", "back"]);
    assert_eq!(ring.recv_timeout(Duration::from_secs(10)).unwrap(), b"back");

    // Worker processes on both sides, one of them spinning.
    let consumer = worker(&d, "ring:wake", &["consume", "--spin-us", "20"]);
    let producer = worker(&d, "ring:wake", &["produce", "7", "5000", "--size", "64"]);
    let p = summary(producer);
    d.ipcctl_ok(&["send", "ring:wake", "stop"]);
    let c = summary(consumer);
    assert_eq!(p["sent"], 5000, "{p}");
    assert_eq!(
        (
            &c["received"],
            &c["per_producer"]["7"],
            &c["corrupt"],
            &c["out_of_order"]
        ),
        (
            &Value::from(5000),
            &Value::from(5000),
            &Value::from(0),
            &Value::from(0)
        ),
        "{c}"
    );
    assert_eq!(c["poisoned"], true);
    drop(ring);
    d.ipcctl_ok(&["delete", "ring:wake"]);
}

#[test]
fn a_million_messages_from_three_producers_reach_three_consumers_exactly_once() {
    const PRODUCERS: u32 = 3;
    const CONSUMERS: usize = 3;
    const EACH: u64 = 333_334;
    let d = TestDaemon::start();
    d.ipcctl_ok(&[
        "create",
        "ring:million",
        "--slots",
        "1024",
        "--slot-size",
        "32",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let rec = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let started = Instant::now();
    let consumers: Vec<(Child, String)> = (0..CONSUMERS)
        .map(|i| {
            let file = rec(&format!("c{i}"));
            (
                worker(&d, "ring:million", &["consume", "--record", &file]),
                file,
            )
        })
        .collect();
    let producers: Vec<Child> = (0..PRODUCERS)
        .map(|id| {
            let (id, each) = (id.to_string(), EACH.to_string());
            worker(&d, "ring:million", &["produce", &id, &each])
        })
        .collect();
    for p in producers {
        assert_eq!(summary(p)["sent"], EACH);
    }
    // Behind every message: one stop for each consumer.
    let mut c = client(&d);
    let ring = c.open_ring("million").unwrap();
    for _ in 0..CONSUMERS {
        ring.send_timeout(b"stop", Duration::from_secs(20)).unwrap();
    }
    let mut seen: Vec<Vec<u8>> = vec![vec![0; EACH as usize]; PRODUCERS as usize];
    let mut total = 0;
    for (child, file) in consumers {
        let s = summary(child);
        assert_eq!(
            (&s["corrupt"], &s["out_of_order"]),
            (&Value::from(0), &Value::from(0)),
            "{s}"
        );
        let recs = records(Path::new(&file));
        assert_eq!(s["received"], recs.len() as u64, "{s}");
        assert_in_producer_order(&recs, &file);
        for (id, seq) in recs {
            seen[id as usize][seq as usize] += 1;
        }
        total += s["received"].as_u64().unwrap();
    }
    let elapsed = started.elapsed();
    println!("1 M ring messages, 3 producers × 3 consumers (processes): {elapsed:.2?}");
    assert_eq!(total, u64::from(PRODUCERS) * EACH);
    for (id, counts) in seen.iter().enumerate() {
        if let Some(seq) = counts.iter().position(|&n| n != 1) {
            panic!("producer {id} seq {seq} received {} times", counts[seq]);
        }
    }
    assert_eq!(ring.depth(), 0);
    drop(ring);
    d.ipcctl_ok(&["delete", "ring:million"]);
}

/// A small deterministic PRNG (xorshift64*), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn workers_killed_at_random_moments_lose_only_the_messages_they_held() {
    const ROUNDS: u32 = 40;
    let seed = std::env::var("IPCD_RING_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("kill loop seed {seed} (IPCD_RING_KILL_SEED={seed} repeats it)");
    let mut rng = Rng(seed);
    let d = TestDaemon::start();
    // Small, so producers fill it and wait, and get killed waiting or writing.
    d.ipcctl_ok(&["create", "ring:kills", "--slots", "16", "--slot-size", "64"]);
    let dir = tempfile::tempdir().unwrap();
    let rec = |name: String| dir.path().join(name).to_str().unwrap().to_owned();
    let started = Instant::now();
    let mut consumer_files = Vec::new();
    let mut consumers_killed = 0;
    for round in 0..ROUNDS {
        let mut children = Vec::new();
        for k in 0..2 {
            let id = (round * 2 + k).to_string();
            let file = rec(format!("p{id}"));
            let spin = if rng.below(2) == 0 { "0" } else { "20" };
            let args = [
                "produce",
                &id,
                "1000000",
                "--size",
                "40",
                "--record",
                &file,
                "--record-each",
                "--spin-us",
                spin,
            ];
            children.push((worker(&d, "ring:kills", &args), false));
            let file = rec(format!("c{round}-{k}"));
            let args = ["consume", "--record", &file, "--record-each"];
            children.push((worker(&d, "ring:kills", &args), true));
            consumer_files.push(file);
        }
        // Each dies at its own moment, from at once to 60 ms in.
        let mut at: Vec<(u64, usize)> = (0..children.len()).map(|i| (rng.below(60), i)).collect();
        at.sort();
        let round_start = Instant::now();
        for (ms, i) in at {
            let when = round_start + Duration::from_millis(ms);
            std::thread::sleep(when.saturating_duration_since(Instant::now()));
            let pid = Pid::from_raw(children[i].0.id() as i32);
            kill(pid, Signal::SIGKILL).expect("kill -9");
        }
        for (mut child, consumer) in children {
            let status = wait_timeout(&mut child, COMMAND_TIMEOUT).expect("reaped");
            assert_eq!(
                status.signal(),
                Some(Signal::SIGKILL as i32),
                "a worker of round {round} ended by itself: {status}"
            );
            consumers_killed += u64::from(consumer);
        }
    }
    let kills_done = started.elapsed();

    // Dead owners are noticed: what is left drains to a fresh consumer, and
    // a fresh pair moves messages in order.
    let drain_file = rec("drain".into());
    let drain = worker(
        &d,
        "ring:kills",
        &["consume", "--idle-ms", "500", "--record", &drain_file],
    );
    let drained = summary(drain);
    consumer_files.push(drain_file);
    let consumer = worker(&d, "ring:kills", &["consume"]);
    let producer = worker(
        &d,
        "ring:kills",
        &["produce", "9999", "10000", "--size", "64"],
    );
    assert_eq!(summary(producer)["sent"], 10_000);
    d.ipcctl_ok(&["send", "ring:kills", "stop", "--timeout", "10s"]);
    let fresh = summary(consumer);
    assert_eq!(
        (
            &fresh["received"],
            &fresh["corrupt"],
            &fresh["out_of_order"]
        ),
        (&Value::from(10_000), &Value::from(0), &Value::from(0)),
        "{fresh}"
    );

    // Accounting: nothing corrupt, nothing twice, each producer in order per
    // consumer, nothing received that was never sent, and every
    // acknowledged send received except at most one per killed consumer.
    let mut received: BTreeSet<(u32, u64)> = BTreeSet::new();
    for file in &consumer_files {
        let recs = records(Path::new(file));
        assert_in_producer_order(&recs, file);
        for r in recs {
            assert_ne!(r.0, u32::MAX, "{file} received a corrupt message");
            assert!(received.insert(r), "{r:?} received twice (again in {file})");
        }
    }
    let mut acked: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut next_seq: BTreeMap<u32, u64> = BTreeMap::new();
    for id in 0..ROUNDS * 2 {
        let recs = records(Path::new(&rec(format!("p{id}"))));
        for (n, &(rid, seq)) in recs.iter().enumerate() {
            assert_eq!((rid, seq), (id, n as u64), "producer {id}'s record");
        }
        next_seq.insert(id, recs.len() as u64);
        acked.extend(recs);
    }
    for &(id, seq) in &received {
        // One more than recorded: sent, and killed before recording it.
        let limit = next_seq.get(&id).copied().unwrap_or(0);
        assert!(seq <= limit, "({id}, {seq}) received, never sent");
    }
    let lost: Vec<_> = acked.difference(&received).collect();
    println!(
        "kill loop: {ROUNDS} rounds, {} workers killed ({consumers_killed} consumers) in \
         {kills_done:.2?}; {} messages acknowledged, {} received, {} lost with killed \
         consumers, {} left for the drain; total {:.2?}",
        ROUNDS * 4,
        acked.len(),
        received.len(),
        lost.len(),
        drained["received"],
        started.elapsed()
    );
    assert!(
        lost.len() as u64 <= consumers_killed,
        "{} acknowledged messages lost, more than the {consumers_killed} consumers killed \
         could hold: {lost:?}",
        lost.len()
    );
    eventually("the killed workers no longer count as attached", || {
        stat_json(&d, "ring:kills")["attached"] == 0
    });
    assert_eq!(stat_json(&d, "ring:kills")["depth"], 0);
    d.ipcctl_ok(&["delete", "ring:kills"]);
}

#[test]
fn using_a_ring_takes_both_the_read_and_the_write_bit() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "ring:rw"]);
    let mut c = client(&d);
    for access in [Access::Read, Access::Write] {
        let e = c.open("ring:rw", access).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{e}");
        assert!(e.to_string().contains("open a ring read-write"), "{e}");
    }
    if !nix::unistd::geteuid().is_root() {
        println!("note: not root; skipping the part that runs ipcctl as uid 65534");
        d.ipcctl_ok(&["delete", "ring:rw"]);
        return;
    }
    d.ipcctl_ok(&["send", "ring:rw", "secret"]);
    assert_denied(&as_nobody(&d, &["recv", "ring:rw", "--nonblock"]), "recv");
    assert_denied(&as_nobody(&d, &["send", "ring:rw", "x"]), "send");
    assert_denied(&as_nobody(&d, &["delete", "ring:rw"]), "delete");
    // Read alone (0644) or write alone (0622) is not enough for a ring.
    d.ipcctl_ok(&["create", "ring:ro", "--mode", "0644"]);
    d.ipcctl_ok(&["create", "ring:wo", "--mode", "0622"]);
    assert_denied(
        &as_nobody(&d, &["recv", "ring:ro", "--nonblock"]),
        "recv 0644",
    );
    assert_denied(&as_nobody(&d, &["send", "ring:wo", "x"]), "send 0622");
    // Both (0666): others send and receive.
    d.ipcctl_ok(&["create", "ring:shared", "--mode", "0666"]);
    let out = as_nobody(&d, &["send", "ring:shared", "from nobody"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.ipcctl_ok(&["recv", "ring:shared"]), "from nobody\n");
    assert_eq!(
        d.ipcctl_ok(&["recv", "ring:rw", "--nonblock"]),
        "secret\n",
        "nothing was taken"
    );
    d.ipcctl_ok(&["delete", "ring:rw", "ring:ro", "ring:wo", "ring:shared"]);
}

#[test]
fn bad_geometry_is_a_clear_error() {
    let d = TestDaemon::start();
    for (args, status, code, says) in [
        (
            &["--slots", "3"][..],
            2,
            "invalid-argument",
            "slots must be a power of two from 2 to 1048576, not 3",
        ),
        (&["--slots", "1"], 2, "invalid-argument", "not 1"),
        (
            &["--slots", "2097152"],
            2,
            "invalid-argument",
            "power of two from 2 to 1048576",
        ),
        (
            &["--slot-size", "0"],
            2,
            "invalid-argument",
            "slot size must be 1 to 67108864 bytes (64 MiB), not 0",
        ),
        (
            &["--slot-size", "1GiB"],
            2,
            "invalid-argument",
            "not 1073741824",
        ),
        (&["--slot-size", "8GiB"], 64, "usage", "too large"),
        (&["--slots", "lots"], 64, "usage", "not a number"),
    ] {
        let mut all = vec!["create", "ring:bad"];
        all.extend_from_slice(args);
        fails(d.run_ipcctl(&all), status, code, says);
    }
    // A valid but huge geometry (64 TiB) is more than /dev/shm holds.
    let out = d.run_ipcctl(&[
        "create",
        "ring:bad",
        "--slots",
        "1048576",
        "--slot-size",
        "64MiB",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).ends_with(" (kernel-limit)\n")
            || stderr(&out).ends_with(" (limit-exceeded)\n"),
        "{}",
        stderr(&out)
    );
    let e = client(&d)
        .create_ring("bad", &RingOptions::new().slots(6))
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{e}");
    assert!(!ring_path(&d, "bad").exists(), "nothing was left behind");
    assert!(d.ipcctl_ok(&["list"]).contains("no objects"));
}

#[test]
fn an_existing_ring_segment_can_be_adopted_and_garbage_cannot() {
    let d = TestDaemon::start();
    let make = |name: &str, bytes: &[u8], size: u64| {
        let posix = format!("/{}ring:{name}", d.prefix);
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let fd = shm_open(posix.as_str(), flags, Mode::from_bits_truncate(0o600)).unwrap();
        nix::unistd::ftruncate(&fd, size as i64).unwrap();
        nix::sys::uio::pwrite(&fd, bytes, 0).unwrap();
    };
    let g = Geometry::new(8, 100).unwrap();
    make("found", &g.header(), g.segment_size());
    make("junk", b"not a ring at all", 8192);
    fails(
        d.run_ipcctl(&["create", "ring:found", "--adopt", "--slots", "8"]),
        64,
        "usage",
        "an adopted ring keeps its own",
    );
    let out = d.ipcctl_ok(&["create", "ring:found", "--adopt"]);
    assert!(out.starts_with("adopted ring:found"), "{out}");
    assert!(out.ends_with(", 8 slots of 100 bytes)\n"), "{out}");
    d.ipcctl_ok(&["send", "ring:found", "in an adopted ring"]);
    assert_eq!(d.ipcctl_ok(&["recv", "ring:found"]), "in an adopted ring\n");
    fails(
        d.run_ipcctl(&["create", "ring:junk", "--adopt"]),
        2,
        "invalid-argument",
        "bad magic",
    );
    d.ipcctl_ok(&["delete", "ring:found"]);
    assert!(!ring_path(&d, "found").exists());
    std::fs::remove_file(ring_path(&d, "junk")).unwrap();
}

#[test]
fn a_ring_survives_a_daemon_kill_with_its_messages() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&["create", "ring:durable", "--slots", "8", "--mode", "0640"]);
    for m in ["one", "two"] {
        d.ipcctl_ok(&["send", "ring:durable", m]);
    }
    let mut c = client(&d);
    let ring = c.open_ring("durable").unwrap();
    let before = stat_json(&d, "ring:durable");
    d.kill9();
    // No daemon: the mapped ring works on, between the processes that have it.
    ring.send(b"sent while ipcd was down").unwrap();
    drop(c);
    d.restart();
    let after = stat_json(&d, "ring:durable");
    for key in [
        "slots",
        "slot_size",
        "mode",
        "owner_uid",
        "kernel_name",
        "created_at_ms",
    ] {
        assert_eq!(before[key], after[key], "{key} changed across the restart");
    }
    assert_eq!(
        (&after["depth"], &after["attached"]),
        (&Value::from(3), &Value::from(1))
    );
    assert_eq!(
        d.ipcctl_ok(&["recv", "ring:durable", "--count", "3", "--nonblock"]),
        "one\ntwo\nsent while ipcd was down\n"
    );
    drop(ring);
    d.ipcctl_ok(&["delete", "ring:durable"]);
    assert!(!ring_path(&d, "durable").exists());
}

#[test]
fn a_session_ring_goes_away_with_its_connection() {
    let d = TestDaemon::start();
    let mut c = client(&d);
    c.create_ring("brief", &RingOptions::new().slots(8).session())
        .unwrap();
    let ring = c.open_ring("brief").unwrap();
    ring.send(b"kept while mapped").unwrap();
    assert!(ring_path(&d, "brief").exists());
    assert_eq!(stat_json(&d, "ring:brief")["lifetime"], "session");
    drop(c);
    eventually("the session ring is gone", || {
        !d.run_ipcctl(&["stat", "ring:brief"]).status.success()
    });
    assert!(!ring_path(&d, "brief").exists(), "its segment is unlinked");
    // A mapping made before stays usable until dropped.
    assert_eq!(ring.try_recv().unwrap(), b"kept while mapped");
    drop(ring);

    // ipcctl create --session: the ring lives as long as that ipcctl.
    let mut holder = d
        .ipcctl()
        .args(["create", "ring:held", "--session"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("ipcctl created the ring", || ring_path(&d, "held").exists());
    d.ipcctl_ok(&["send", "ring:held", "x"]);
    kill(Pid::from_raw(holder.id() as i32), Signal::SIGTERM).unwrap();
    holder.wait().unwrap();
    eventually("the ring went with its ipcctl", || {
        !ring_path(&d, "held").exists()
    });
}

#[test]
fn a_receiver_waiting_on_a_deleted_ring_is_told() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "ring:gone", "--slots", "4", "--slot-size", "64"]);
    let receiver = d
        .ipcctl()
        .args(["recv", "ring:gone", "--timeout", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the receiver is attached", || {
        stat_json(&d, "ring:gone")["attached"] == 1
    });
    let mut c = client(&d);
    let ring = c.open_ring("ring:gone").unwrap();
    d.ipcctl_ok(&["delete", "ring:gone"]);
    let started = std::time::Instant::now();
    let out = receiver.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "told at once, not after its timeout"
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ring:gone was deleted while waiting"), "{err}");
    let e = ring.recv_timeout(Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.code(), Some(ipc_client::ErrorCode::NotFound), "{e}");
}
