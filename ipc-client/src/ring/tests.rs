//! Ring tests on memfd segments laid out as the daemon would (no daemon
//! needed); crash tests run this test binary again as a child process that
//! attaches, takes a slot and is killed with SIGKILL.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::memfd::{MFdFlags, memfd_create};
use protocol::ErrorCode;
use protocol::kinds::ring::layout::{self, Geometry};

use super::participants::parse_stat;
use super::*;

const LONG: Duration = Duration::from_secs(5);

/// A fresh segment holding an empty ring.
fn segment(slots: u32, slot_size: u32) -> OwnedFd {
    let g = Geometry::new(slots, slot_size).unwrap();
    let fd = memfd_create(c"ring-test", MFdFlags::MFD_CLOEXEC).unwrap();
    nix::unistd::ftruncate(&fd, g.segment_size() as i64).unwrap();
    assert_eq!(nix::sys::uio::pwrite(&fd, &g.header(), 0).unwrap(), 36);
    fd
}

/// A new handle (a new participant) on the segment.
fn attach(fd: &OwnedFd) -> Ring {
    Ring::from_fd(fd.try_clone().unwrap()).unwrap()
}

/// The state in slot `slot`'s ctrl word.
fn state(ring: &Ring, slot: u32) -> u32 {
    layout::ctrl_state(ring.engine.mem.ctrl(slot).load(Ordering::SeqCst))
}

fn code(e: Error) -> Option<ErrorCode> {
    e.code()
}

#[test]
fn messages_arrive_in_order_through_every_receive_call() {
    let fd = segment(4, 32);
    let (tx, rx) = (attach(&fd), attach(&fd));
    assert_eq!((rx.slots(), rx.slot_size(), rx.depth()), (4, 32, 0));
    tx.send(b"one").unwrap();
    tx.try_send(b"").unwrap();
    tx.send_timeout(b"three", LONG).unwrap();
    tx.send(&[7; 32]).unwrap();
    assert_eq!(rx.depth(), 4);
    assert_eq!(rx.recv().unwrap(), b"one");
    let mut buf = [0u8; 32];
    assert_eq!(rx.try_recv_into(&mut buf).unwrap(), 0);
    assert_eq!(rx.recv_timeout(LONG).unwrap(), b"three");
    assert_eq!(rx.recv_into(&mut buf).unwrap(), 32);
    assert_eq!(buf, [7; 32]);
    assert_eq!(rx.depth(), 0);
    assert_eq!(
        code(rx.try_recv().unwrap_err()),
        Some(ErrorCode::WouldBlock)
    );
}

#[test]
fn full_and_empty_rings_would_block_or_time_out() {
    let fd = segment(2, 8);
    let ring = attach(&fd);
    assert!(matches!(ring.try_recv(), Err(Error::WouldBlock)));
    assert!(matches!(ring.try_recv_borrowed(), Err(Error::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(
        ring.recv_timeout(Duration::from_millis(30)),
        Err(Error::TimedOut)
    ));
    assert!(t.elapsed() >= Duration::from_millis(30));
    ring.send(b"a").unwrap();
    ring.send(b"b").unwrap();
    let e = ring.try_send(b"c").unwrap_err();
    assert!(e.is_timeout_or_would_block() && matches!(e, Error::WouldBlock));
    assert!(matches!(ring.try_loan(), Err(Error::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(
        ring.send_timeout(b"c", Duration::from_millis(30)),
        Err(Error::TimedOut)
    ));
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert!(matches!(
        ring.loan_timeout(Duration::ZERO),
        Err(Error::TimedOut)
    ));
    assert_eq!(ring.recv().unwrap(), b"a");
    ring.try_send(b"c").unwrap();
}

#[test]
fn sizes_are_checked_and_too_long_messages_stay() {
    let fd = segment(2, 8);
    let ring = attach(&fd);
    let e = ring.send(&[0; 9]).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TooLarge));
    assert!(e.to_string().contains("slot size"), "{e}");
    assert!(e.to_string().contains("8 bytes"), "{e}");
    ring.send(b"12345678").unwrap();
    let mut small = [0u8; 4];
    let e = ring.try_recv_into(&mut small).unwrap_err();
    assert!(
        matches!(
            e,
            Error::RingBufferTooSmall {
                len: 4,
                needed: 8,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(ring.depth(), 1, "the message stays");
    assert_eq!(ring.recv().unwrap(), b"12345678");
}

#[test]
fn a_loan_writes_in_place_and_a_dropped_loan_is_skipped() {
    let fd = segment(4, 16);
    let (tx, rx) = (attach(&fd), attach(&fd));
    let mut loan = tx.loan().unwrap();
    assert_eq!(
        (loan.capacity(), loan.len(), loan.is_empty()),
        (16, 0, true)
    );
    loan.write_all(b"hello").unwrap();
    loan.write_at(10, b"!!").unwrap();
    loan.write_at(5, b" wor").unwrap();
    assert_eq!(loan.len(), 12);
    assert!(matches!(
        loan.write_at(15, b"xy"),
        Err(Error::ExceedsSlotSize { len: 17, .. })
    ));
    loan.commit().unwrap();

    drop(tx.try_loan().unwrap()); // skipped: consumers never see it
    let mut full = tx.loan_timeout(LONG).unwrap();
    assert_eq!(full.write(&[1; 20]).unwrap(), 16);
    let e = full.write(b"x").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WriteZero);
    assert!(full.set_len(17).is_err());
    full.set_len(3).unwrap();
    full.commit().unwrap();

    let mut buf = [0u8; 16];
    let n = rx.recv_into(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello wor\0!!");
    assert_eq!(
        rx.recv().unwrap(),
        [1, 1, 1],
        "the skipped slot is passed over"
    );
    assert!(matches!(rx.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn a_borrowed_message_holds_its_slot_until_dropped() {
    let fd = segment(2, 16);
    let (tx, rx) = (attach(&fd), attach(&fd));
    tx.send(b"borrowed bytes").unwrap();
    tx.send(b"next").unwrap();
    let mut msg = rx.recv_borrowed().unwrap();
    assert_eq!((msg.len(), msg.is_empty()), (14, false));
    let mut part = [0u8; 5];
    assert_eq!(msg.read_at(9, &mut part), 5);
    assert_eq!(&part, b"bytes");
    assert_eq!(msg.read_at(14, &mut part), 0);
    assert_eq!(msg.read_at(99, &mut part), 0);
    assert!(matches!(
        msg.copy_to(&mut part),
        Err(Error::RingBufferTooSmall { .. })
    ));
    let mut all = [0u8; 16];
    assert_eq!(msg.copy_to(&mut all).unwrap(), 14);
    assert_eq!(msg.to_vec(), b"borrowed bytes");
    let mut read = Vec::new();
    msg.read_to_end(&mut read).unwrap();
    assert_eq!(read, b"borrowed bytes");
    // Its slot is the one the next send needs.
    assert!(matches!(tx.try_send(b"third"), Err(Error::WouldBlock)));
    drop(msg);
    tx.try_send(b"third").unwrap();
    let next = rx.try_recv_borrowed().unwrap();
    assert_eq!(next.to_vec(), b"next");
    next.release().unwrap();
    assert_eq!(rx.recv_borrowed_timeout(LONG).unwrap().to_vec(), b"third");
}

#[test]
fn two_slots_wrap_around_many_laps() {
    let fd = segment(2, 8);
    let ring = attach(&fd);
    for i in 0u64..5_000 {
        ring.try_send(&i.to_le_bytes()).unwrap();
        if i % 2 == 1 {
            assert_eq!(ring.try_recv().unwrap(), (i - 1).to_le_bytes());
            assert_eq!(ring.try_recv().unwrap(), i.to_le_bytes());
        }
    }
    const N: u64 = 50_000;
    let (tx, rx) = (attach(&fd), attach(&fd));
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                tx.send(&i.to_le_bytes()).unwrap();
            }
        });
        let mut buf = [0u8; 8];
        for i in 0..N {
            assert_eq!(rx.recv_into(&mut buf).unwrap(), 8);
            assert_eq!(u64::from_le_bytes(buf), i);
        }
    });
    assert_eq!(ring.depth(), 0);
}

#[test]
fn blocked_senders_and_receivers_are_woken() {
    let fd = segment(2, 8);
    let (tx, rx) = (attach(&fd), attach(&fd));
    std::thread::scope(|s| {
        let t = s.spawn(|| rx.recv_timeout(LONG).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        tx.send(b"wake").unwrap();
        assert_eq!(t.join().unwrap(), b"wake");

        tx.send(b"1").unwrap();
        tx.send(b"2").unwrap();
        let t = s.spawn(|| {
            let start = Instant::now();
            tx.send_timeout(b"3", LONG).unwrap();
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rx.recv().unwrap(), b"1");
        let waited = t.join().unwrap();
        assert!(
            waited < Duration::from_millis(45),
            "woken, not timed out: {waited:?}"
        );
    });
    assert_eq!(rx.recv().unwrap(), b"2");
    assert_eq!(rx.recv().unwrap(), b"3");
}

#[test]
fn spinning_is_off_by_default_and_settable() {
    let fd = segment(4, 8);
    let (a, b) = (attach(&fd), attach(&fd));
    assert_eq!(a.spin(), Duration::ZERO);
    a.set_spin(Duration::from_micros(200));
    b.set_spin(Duration::from_micros(200));
    assert_eq!(a.spin(), Duration::from_micros(200));
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0u32..2_000 {
                a.send(&i.to_le_bytes()).unwrap();
            }
        });
        for i in 0u32..2_000 {
            assert_eq!(b.recv().unwrap(), i.to_le_bytes());
        }
    });
}

#[test]
fn many_producers_and_consumers_deliver_each_message_once_in_producer_order() {
    const PRODUCERS: u32 = 4;
    const CONSUMERS: usize = 4;
    const PER_PRODUCER: u64 = 50_000;
    let total = PRODUCERS as usize * PER_PRODUCER as usize;
    let fd = segment(64, 16);
    let received = AtomicUsize::new(0);
    let shared = attach(&fd); // one handle used by two consumer threads
    let got: Vec<Vec<(u32, u64)>> = std::thread::scope(|s| {
        for id in 0..PRODUCERS {
            let tx = attach(&fd);
            s.spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let mut m = [0u8; 12];
                    m[..4].copy_from_slice(&id.to_le_bytes());
                    m[4..].copy_from_slice(&seq.to_le_bytes());
                    tx.send(&m).unwrap();
                }
            });
        }
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|c| {
                let own = (c >= 2).then(|| attach(&fd));
                let (received, shared) = (&received, &shared);
                s.spawn(move || {
                    let rx = own.as_ref().unwrap_or(shared);
                    let mut last = [None::<u64>; PRODUCERS as usize];
                    let mut mine = Vec::new();
                    let mut buf = [0u8; 16];
                    while received.load(Ordering::Relaxed) < total {
                        let n = match rx.recv_into_timeout(&mut buf, Duration::from_millis(10)) {
                            Ok(n) => n,
                            Err(Error::TimedOut) => continue,
                            Err(e) => panic!("{e}"),
                        };
                        assert_eq!(n, 12);
                        let id = u32::from_le_bytes(buf[..4].try_into().unwrap());
                        let seq = u64::from_le_bytes(buf[4..12].try_into().unwrap());
                        let prev = last[id as usize].replace(seq);
                        assert!(prev < Some(seq), "producer {id}: {seq} after {prev:?}");
                        mine.push((id, seq));
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    mine
                })
            })
            .collect();
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut seen = HashSet::with_capacity(total);
    for (id, seq) in got.into_iter().flatten() {
        assert!(seen.insert((id, seq)), "({id}, {seq}) received twice");
    }
    assert_eq!(seen.len(), total, "every message received");
}

#[test]
fn the_participant_table_holds_128_handles_and_frees_dropped_ones() {
    let fd = segment(2, 8);
    let mut handles: Vec<Ring> = (0..128).map(|_| attach(&fd)).collect();
    let e = Ring::from_fd(fd.try_clone().unwrap()).unwrap_err();
    assert!(
        matches!(e, Error::RingAttachLimit { max: 128, .. }),
        "{e:?}"
    );
    assert_eq!(e.code(), Some(ErrorCode::LimitExceeded));
    handles.swap_remove(17);
    let again = attach(&fd);
    assert_eq!(again.engine.me.index, 17);
    assert_eq!(again.engine.me.generation, 2, "second owner of entry 17");
    again.send(b"ok").unwrap();
    assert_eq!(handles[5].recv().unwrap(), b"ok");
}

#[test]
fn bad_segments_are_refused() {
    let fd = memfd_create(c"ring-test", MFdFlags::MFD_CLOEXEC).unwrap();
    nix::unistd::ftruncate(&fd, 8192).unwrap();
    let e = Ring::from_fd(fd.try_clone().unwrap()).unwrap_err();
    assert!(e.to_string().contains("magic"), "{e}");
    nix::unistd::ftruncate(&fd, 100).unwrap();
    assert!(matches!(Ring::from_fd(fd), Err(Error::BadRing { .. })));
    let g = Geometry::new(8, 64).unwrap();
    let short = segment(8, 64);
    nix::unistd::ftruncate(&short, g.segment_size() as i64 - 1).unwrap();
    assert!(matches!(Ring::from_fd(short), Err(Error::BadRing { .. })));
}

#[test]
fn impossible_slot_states_are_reported_not_hung_on() {
    let fd = segment(4, 8);
    let ring = attach(&fd);
    let slot0 = ring.engine.mem.ctrl(0);
    slot0.store(layout::ctrl(7, layout::STATE_FULL, 0), Ordering::SeqCst);
    for e in [
        ring.try_recv().unwrap_err(),
        ring.try_send(b"x").unwrap_err(),
    ] {
        assert!(matches!(e, Error::RingCorrupted { .. }), "{e:?}");
        assert!(e.to_string().starts_with("ring corrupted: "), "{e}");
    }
    slot0.store(layout::ctrl(0, layout::STATE_FULL, 0), Ordering::SeqCst);
    ring.engine.mem.len(0).store(9, Ordering::SeqCst);
    let e = ring.recv_timeout(LONG).unwrap_err();
    assert!(e.to_string().contains("longer than the slot"), "{e}");
}

#[test]
fn proc_stat_is_parsed_after_the_last_parenthesis() {
    let mut line = b"4242 (a) b) (c d) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 ".to_vec();
    line.extend_from_slice(b"987654 19 20\n");
    let stat = parse_stat(&line).unwrap();
    assert_eq!((stat.start, stat.gone), (987654, false));
    let zombie = b"7 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 55 0";
    assert!(parse_stat(zombie).unwrap().gone);
    assert_eq!(parse_stat(b"7 (x) S 1 2"), None);
    assert_eq!(parse_stat(b"garbage"), None);
    let own = std::fs::read("/proc/self/stat").unwrap();
    assert!(parse_stat(&own).unwrap().start > 0);
}

// ---------------------------------------------------------------- crashes

const CHILD_ROLE: &str = "IPC_CLIENT_RING_CHILD_ROLE";
const CHILD_SEGMENT: &str = "IPC_CLIENT_RING_CHILD_SEGMENT";
const READY: &str = "RING-CHILD-READY";

/// A child process running [`child_role`], killed (SIGKILL) and reaped when dropped.
struct ChildProc(Child);

impl ChildProc {
    /// Starts this test binary as a child playing `role` on `fd`'s segment
    /// and waits until it has done its part.
    fn start(role: &str, fd: &OwnedFd) -> ChildProc {
        let segment = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ring::tests::child_role", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ROLE, role)
            .env(CHILD_SEGMENT, segment)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut child = ChildProc(child);
        let out = BufReader::new(child.0.stdout.take().unwrap());
        for line in out.lines() {
            if line.unwrap().contains(READY) {
                return child;
            }
        }
        panic!("child {role} ended without getting ready");
    }

    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Not a test of its own: the part a child process plays in the crash tests.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let path = std::env::var(CHILD_SEGMENT).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let ring = Ring::from_fd(file.into()).unwrap();
    let _held = match role.as_str() {
        "attach" => None,
        "loan" => {
            let mut loan = ring.loan().unwrap();
            loan.write_all(b"never committed").unwrap();
            Some(Ok(loan))
        }
        "borrow" => Some(Err(ring.recv_borrowed().unwrap())),
        other => panic!("unknown role {other}"),
    };
    println!("{READY}");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn a_producer_killed_while_writing_loses_only_its_message() {
    let fd = segment(4, 32);
    let (tx, rx) = (attach(&fd), attach(&fd));
    tx.send(b"first").unwrap();
    ChildProc::start("loan", &fd).kill(); // it claimed position 1
    assert_eq!(state(&tx, 1), layout::STATE_WRITING);
    tx.send(b"second").unwrap();
    tx.send(b"third").unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), b"first");
    let t = Instant::now();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), b"second");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(rx.recv_timeout(LONG).unwrap(), b"third");
    for i in 0u32..20 {
        tx.send_timeout(&i.to_le_bytes(), LONG).unwrap();
        assert_eq!(rx.recv_timeout(LONG).unwrap(), i.to_le_bytes());
    }
}

#[test]
fn producers_lapping_a_killed_producer_take_its_slot_back() {
    let fd = segment(4, 32);
    let (tx, rx) = (attach(&fd), attach(&fd));
    ChildProc::start("loan", &fd).kill(); // position 0, slot 0
    assert_eq!(state(&tx, 0), layout::STATE_WRITING);
    for m in [b"m1", b"m2", b"m3"] {
        tx.send(m).unwrap();
    }
    // Position 4 is slot 0 again, still WRITING by the dead producer.
    tx.send_timeout(b"m4", LONG).unwrap();
    for m in [b"m1", b"m2", b"m3", b"m4"] {
        assert_eq!(rx.recv_timeout(LONG).unwrap(), m);
    }
    assert!(matches!(rx.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn a_consumer_killed_holding_a_message_blocks_nobody() {
    let fd = segment(2, 32);
    let (tx, rx) = (attach(&fd), attach(&fd));
    tx.send(b"taken by the child").unwrap();
    tx.send(b"b").unwrap();
    ChildProc::start("borrow", &fd).kill();
    assert_eq!(state(&tx, 0), layout::STATE_READING);
    assert_eq!(rx.recv_timeout(LONG).unwrap(), b"b");
    // Slot 0 is still READING by the dead consumer; the next lap needs it.
    tx.send_timeout(b"c", LONG).unwrap();
    tx.send_timeout(b"d", LONG).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), b"c");
    assert_eq!(rx.recv_timeout(LONG).unwrap(), b"d");
}

#[test]
fn a_killed_process_entry_is_reclaimed() {
    let fd = segment(2, 8);
    let handles: Vec<Ring> = (0..127).map(|_| attach(&fd)).collect();
    let child = ChildProc::start("attach", &fd);
    assert!(matches!(
        Ring::from_fd(fd.try_clone().unwrap()),
        Err(Error::RingAttachLimit { .. })
    ));
    child.kill();
    let ring = attach(&fd);
    assert_eq!(ring.engine.me.generation, 2);
    drop(handles);
}

/// Rough numbers for a release build (`cargo test --release -p ipc-client
/// ring::tests::speed -- --ignored --nocapture`); the bench crate measures properly.
#[test]
#[ignore]
fn speed() {
    const N: u64 = 2_000_000;
    for spin in [Duration::ZERO, Duration::from_micros(50)] {
        let fd = segment(256, 64);
        let (tx, rx) = (attach(&fd), attach(&fd));
        tx.set_spin(spin);
        rx.set_spin(spin);
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                let msg = [1u8; 64];
                for _ in 0..N {
                    tx.send(&msg).unwrap();
                }
            });
            let mut buf = [0u8; 64];
            for _ in 0..N {
                rx.recv_into(&mut buf).unwrap();
            }
        });
        let rate = N as f64 / t.elapsed().as_secs_f64();
        println!("spin {spin:?}: one-way {:.2} M msgs/s", rate / 1e6);

        let back = segment(256, 64);
        let (btx, brx) = (attach(&back), attach(&back));
        btx.set_spin(spin);
        brx.set_spin(spin);
        let rounds = 200_000;
        let mut times = Vec::with_capacity(rounds);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut buf = [0u8; 64];
                for _ in 0..rounds {
                    let n = rx.recv_into(&mut buf).unwrap();
                    btx.send(&buf[..n]).unwrap();
                }
            });
            let mut buf = [0u8; 64];
            for _ in 0..rounds {
                let t = Instant::now();
                tx.send(&[2u8; 64]).unwrap();
                brx.recv_into(&mut buf).unwrap();
                times.push(t.elapsed());
            }
        });
        times.sort();
        println!(
            "spin {spin:?}: round trip p50 {:?} p99 {:?}",
            times[rounds / 2],
            times[rounds * 99 / 100]
        );
    }
}

// ---------------------------------------------------------------- through a daemon

fn ring_info(address: &str) -> ObjectInfo {
    ObjectInfo {
        kind: protocol::Kind::Ring,
        details: protocol::KindDetails::Ring(protocol::RingDetails {
            slots: 4,
            slot_size: 16,
            segment_size: 4096 + 4 * 64,
            depth: 0,
            attached: 0,
        }),
        ..crate::testing::mq_info(address, "/ipcd.ring:r", 0, 0)
    }
}

#[test]
fn create_and_open_go_through_the_daemon() {
    use crate::testing::{fake_daemon, respond};
    use protocol::{Outcome, ServerFrame};
    let (path, daemon) = fake_daemon(|mut peer| {
        peer.handshake();
        let fd = segment(4, 16);
        peer.serve(|peer, id, body| match body {
            Request::Create { address, spec } => {
                assert_eq!(address, "ring:r");
                assert_eq!(
                    spec,
                    RingOptions::new()
                        .slots(4)
                        .slot_size(16)
                        .session()
                        .to_spec()
                );
                let created = Outcome::Ok(Reply::Created(ring_info(&address)));
                peer.write(&respond(id, created));
            }
            Request::Open { address, access } => {
                assert_eq!((address.as_str(), access), ("ring:r", Access::ReadWrite));
                let frame = ServerFrame::Response {
                    id,
                    fds: 1,
                    result: Outcome::Ok(Reply::Opened {
                        info: ring_info(&address),
                        access,
                    }),
                };
                peer.write_with_fds(&frame, &[fd.as_raw_fd()]);
            }
            other => panic!("unexpected {other:?}"),
        });
    });
    let mut client = Client::connect_to(&path).unwrap();
    let opts = RingOptions::new().slots(4).slot_size(16).session();
    assert_eq!(client.create_ring("r", &opts).unwrap().address, "ring:r");
    let a = client.open_ring("r").unwrap();
    let b = client.open_ring("ring:r").unwrap();
    assert_eq!(a.address(), "ring:r");
    assert_eq!(a.info().unwrap().kind, protocol::Kind::Ring);
    a.send(b"through shared memory").unwrap_err(); // 21 > 16 bytes
    a.send(b"shared").unwrap();
    assert_eq!(b.recv().unwrap(), b"shared");
    assert_eq!(ring_address("x"), "ring:x");
    drop(client);
    daemon.join().unwrap();
    std::fs::remove_file(path).unwrap();
}
