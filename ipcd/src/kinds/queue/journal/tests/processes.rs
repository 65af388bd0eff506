//! Journal tests that run this test binary again as a child process: one
//! killed with `kill -9` while it writes, one whose writes fail (a file size
//! limit); and the throughput measurement.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use protocol::Fsync;

use super::{MODES, message, seqs, temp_dir, wait};
use crate::kinds::queue::journal::Journal;

/// Set for the child process of the `kill -9` test: the journal it writes.
const CHILD_JOURNAL: &str = "IPCD_JOURNAL_TEST_KILL_CHILD";

#[test]
#[ignore = "the child process of kill_9_keeps_every_acknowledged_put"]
fn kill_9_child() {
    let Some(path) = std::env::var_os(CHILD_JOURNAL) else {
        return;
    };
    let journal = Journal::create(Path::new(&path), Fsync::Batch).unwrap();
    let mut in_flight = VecDeque::new();
    // Bounded, in case the parent dies without killing it.
    for seq in 1..=2_000_000u64 {
        in_flight.push_back((seq, journal.put(vec![message(seq, 64)])));
        while in_flight.len() >= 64 {
            let (acked, answer) = in_flight.pop_front().unwrap();
            wait(answer);
            println!("acked {acked}");
            if acked % 3 == 0 {
                println!("removed {acked}");
                journal.remove(vec![acked]);
            }
        }
    }
}

#[test]
fn kill_9_keeps_every_acknowledged_put() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let module = module_path!().split_once("::").unwrap().1;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("{module}::kill_9_child")])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_JOURNAL, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, incoming) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let (mut acked, mut removed) = (Vec::new(), BTreeSet::new());
    let mut note = |line: String| {
        if let Some(seq) = line.strip_prefix("acked ") {
            acked.push(seq.parse::<u64>().unwrap());
        } else if let Some(seq) = line.strip_prefix("removed ") {
            removed.insert(seq.parse::<u64>().unwrap());
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while seen < 5000 && Instant::now() < deadline {
        match incoming.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                seen += usize::from(line.starts_with("acked "));
                note(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    // Lines the child printed before it died are still in the pipe.
    incoming.try_iter().for_each(&mut note);
    assert!(
        acked.len() >= 5000,
        "the child acknowledged {} puts",
        acked.len()
    );

    let (_journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
    let found: BTreeSet<u64> = recovery.messages.iter().map(|r| r.seq).collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|s| !removed.contains(s) && !found.contains(s))
        .collect();
    assert!(lost.is_empty(), "acknowledged puts lost: {lost:?}");
    assert!(recovery.messages.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(recovery.messages.iter().all(|r| *r == message(r.seq, 64)));
    let last_acked = acked.iter().max().copied().unwrap_or(0);
    // Puts in flight at the kill may be there too, at most 64 past the last answered.
    assert!(
        recovery.next_seq <= last_acked + 65 + 1,
        "{}",
        recovery.next_seq
    );
}

/// Set for the child process of the write failure test: the journal it writes.
const FULL_CHILD_JOURNAL: &str = "IPCD_JOURNAL_TEST_FULL_CHILD";

/// What the child prints once every check passed.
const FULL_CHILD_DONE: &str = "write failure handled";

#[test]
#[ignore = "the child process of a_failed_write_is_answered_and_undone"]
fn full_disk_child() {
    let Some(path) = std::env::var_os(FULL_CHILD_JOURNAL) else {
        return;
    };
    let path = PathBuf::from(path);
    let journal = Journal::create(&path, Fsync::Batch).unwrap();
    let mut acked = Vec::new();
    let failure = loop {
        let seq = acked.len() as u64 + 1;
        assert!(seq < 10_000, "no file size limit in force");
        match journal
            .put(vec![message(seq, 1000)])
            .blocking_recv()
            .unwrap()
        {
            Ok(()) => acked.push(seq),
            Err(e) => break e,
        }
    };
    assert!(failure.to_string().contains("write failed"), "{failure}");
    let stats = journal.stats();
    assert!(stats.last_error.is_some(), "{stats:?}");
    assert_eq!(stats.live, acked.len() as u64);
    assert_eq!(stats.bytes, fs::metadata(&path).unwrap().len(), "undone");
    // A removal is kept, whether written alone or with the failing put
    // (then it is written again with the next batch).
    journal.remove(vec![1]);
    let next = acked.len() as u64 + 1;
    assert!(
        journal
            .put(vec![message(next, 1000)])
            .blocking_recv()
            .unwrap()
            .is_err()
    );
    // A smaller put still fits below the limit.
    wait(journal.put(vec![message(next + 1, 10)]));
    drop(journal);
    let (_journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
    assert_eq!(recovery.cut, None);
    let mut want: Vec<u64> = acked[1..].to_vec();
    want.push(next + 1);
    assert_eq!(seqs(&recovery.messages), want);
    println!("{FULL_CHILD_DONE}");
}

#[test]
fn a_failed_write_is_answered_and_undone() {
    let dir = temp_dir();
    let module = module_path!().split_once("::").unwrap().1;
    // A file size limit makes writes past it fail with EFBIG (SIGXFSZ ignored).
    let mut child = Command::new("/bin/sh")
        .args(["-c", "trap '' XFSZ; ulimit -f 64 && exec \"$0\" \"$@\""])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &format!("{module}::full_disk_child")])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(FULL_CHILD_JOURNAL, dir.path().join("q"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the child did not finish: {:?}", child.wait());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        status.success() && out.contains(FULL_CHILD_DONE),
        "{status}: {out}"
    );
}

/// Puts of 64 bytes for `secs`, 64 in flight, acknowledging (removing)
/// each once 64 later ones were sent if `remove`; returns puts per second.
fn measure(mode: Fsync, secs: u64, remove: bool) -> (f64, u64) {
    let dir = temp_dir();
    let journal = Journal::create(&dir.path().join("q"), mode).unwrap();
    let started = Instant::now();
    let mut in_flight = VecDeque::new();
    let mut seq = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        seq += 1;
        in_flight.push_back(journal.put(vec![message(seq, 64)]));
        if in_flight.len() >= 64 {
            wait(in_flight.pop_front().unwrap());
        }
        if remove && seq > 64 {
            journal.remove(vec![seq - 64]);
        }
    }
    in_flight.into_iter().for_each(wait);
    let rate = seq as f64 / started.elapsed().as_secs_f64();
    (rate, journal.stats().compactions)
}

#[test]
#[ignore = "a measurement: cargo test --release -p ipcd --lib journal::tests::throughput -- --ignored --nocapture"]
fn throughput() {
    for mode in MODES {
        for remove in [false, true] {
            let (rate, compactions) = measure(mode, 3, remove);
            let acks = if remove { ", each removed" } else { "" };
            println!(
                "{mode:?}: {rate:.0} puts/s of 64 bytes, 64 in flight{acks} ({compactions} compactions)"
            );
        }
    }
}
