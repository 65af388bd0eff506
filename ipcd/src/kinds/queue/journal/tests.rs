//! Tests of the journal: round trips in every flush mode, concurrent puts,
//! torn and corrupt tails, compaction, deletion; in `processes`, the ones
//! that run a child process, and the throughput measurement.

mod processes;

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use protocol::Fsync;
use tokio::sync::oneshot;

use super::format::{FILE_HEADER, RECORD_HEADER};
use super::{Journal, Record, Tuning};

const MODES: [Fsync; 3] = [Fsync::Always, Fsync::Batch, Fsync::Never];

/// A unique directory under the system's temp dir, removed on drop.
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ipcd-journal-")
        .tempdir()
        .expect("temp dir")
}

/// A message whose body and priority follow from its seq.
fn message(seq: u64, body_len: usize) -> Record {
    let body = (0..body_len)
        .map(|i| (seq as usize * 31 + i) as u8)
        .collect();
    Record {
        seq,
        priority: (seq % 5) as u32,
        body,
    }
}

fn wait(answer: oneshot::Receiver<std::io::Result<()>>) {
    answer
        .blocking_recv()
        .expect("writer answered")
        .expect("put is durable");
}

/// Returns once every request sent before was written, and the compaction
/// that followed it (if any) is done and counted in the stats.
fn settle(journal: &Journal) {
    wait(journal.put(Vec::new()));
    wait(journal.put(Vec::new()));
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

/// The side files a cut left in `dir`, with their contents.
fn side_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().contains(".cut-"))
        .map(|p| {
            let bytes = fs::read(&p).expect("side file");
            (p, bytes)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn put_remove_reopen_gives_the_live_set_in_seq_order() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let journal = Journal::create(&path, Fsync::Batch).unwrap();
    wait(journal.put((1..=4).map(|s| message(s, 10)).collect()));
    wait(journal.put((5..=10).map(|s| message(s, 0)).collect()));
    journal.remove(vec![2, 5, 10]);
    journal.remove(vec![5]); // already removed: ignored
    drop(journal);

    let (journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
    assert_eq!(seqs(&recovery.messages), [1, 3, 4, 6, 7, 8, 9]);
    assert_eq!(recovery.messages[0], message(1, 10));
    assert_eq!(recovery.messages[3], message(6, 0));
    assert_eq!(recovery.next_seq, 11, "the removed highest seq counts");
    assert_eq!(recovery.cut, None);
    let stats = journal.stats();
    assert_eq!(stats.live, 7);
    assert_eq!(stats.bytes, fs::metadata(&path).unwrap().len());

    wait(journal.put(vec![message(11, 3)]));
    journal.remove(vec![1]);
    drop(journal);
    let (_journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
    assert_eq!(seqs(&recovery.messages), [3, 4, 6, 7, 8, 9, 11]);
    assert_eq!(recovery.next_seq, 12);
}

#[test]
fn a_journal_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Journal>();
}

#[test]
fn an_empty_journal_reopens_empty_and_create_refuses_an_existing_file() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    drop(Journal::create(&path, Fsync::Never).unwrap());
    assert_eq!(fs::metadata(&path).unwrap().len(), FILE_HEADER as u64);
    assert!(Journal::create(&path, Fsync::Never).is_err());
    let (_journal, recovery) = Journal::open(&path, Fsync::Never).unwrap();
    assert!(recovery.messages.is_empty());
    assert_eq!(recovery.next_seq, 1);
    assert_eq!(recovery.cut, None);
}

#[test]
fn every_fsync_mode_keeps_pipelined_puts() {
    for mode in MODES {
        let dir = temp_dir();
        let path = dir.path().join("q");
        let journal = Journal::create(&path, mode).unwrap();
        let answers: Vec<_> = (1..=200)
            .map(|s| journal.put(vec![message(s, 64)]))
            .collect();
        answers.into_iter().for_each(wait);
        journal.remove((1..=200).filter(|s| s % 4 == 0).collect());
        drop(journal);
        let (_journal, recovery) = Journal::open(&path, mode).unwrap();
        let want: Vec<u64> = (1..=200).filter(|s| s % 4 != 0).collect();
        assert_eq!(seqs(&recovery.messages), want, "{mode:?}");
        assert!(recovery.messages.iter().all(|r| *r == message(r.seq, 64)));
        assert_eq!(recovery.next_seq, 201);
    }
}

#[test]
fn concurrent_puts_all_resolve_and_recover_in_seq_order() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let journal = Arc::new(Journal::create(&path, Fsync::Batch).unwrap());
    // As the queue does: a seq is assigned and its put sent under one lock.
    let next_seq = Arc::new(Mutex::new(1u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let journal = Arc::clone(&journal);
            let next_seq = Arc::clone(&next_seq);
            std::thread::spawn(move || {
                let mut in_flight = VecDeque::new();
                for _ in 0..1000 {
                    let answer = {
                        let mut next = next_seq.lock().unwrap();
                        let seq = *next;
                        *next += 1;
                        journal.put(vec![message(seq, 64)])
                    };
                    in_flight.push_back(answer);
                    if in_flight.len() >= 16 {
                        wait(in_flight.pop_front().unwrap());
                    }
                }
                in_flight.into_iter().for_each(wait);
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(journal.stats().live, 4000);
    drop(journal);
    let (_journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
    assert_eq!(seqs(&recovery.messages), (1..=4000).collect::<Vec<_>>());
    assert!(recovery.messages.iter().all(|r| *r == message(r.seq, 64)));
}

/// Writes three records (one per put call) and returns the file's bytes and
/// where each record starts.
fn three_records(path: &Path) -> (Vec<u8>, [usize; 3]) {
    let journal = Journal::create(path, Fsync::Always).unwrap();
    let mut starts = [0; 3];
    for (i, seq) in (1..=3).enumerate() {
        starts[i] = journal.stats().bytes as usize;
        wait(journal.put(vec![message(seq, 40)]));
    }
    drop(journal);
    (fs::read(path).unwrap(), starts)
}

#[test]
fn a_tail_torn_at_any_byte_is_cut_saved_and_reported() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let (bytes, [_, _, last]) = three_records(&path);
    for end in last + 1..bytes.len() {
        fs::write(&path, &bytes[..end]).unwrap();
        let (journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
        assert_eq!(
            recovery.messages,
            [message(1, 40), message(2, 40)],
            "torn at {end}"
        );
        assert_eq!(recovery.next_seq, 3);
        let report = recovery.cut.expect("the cut is reported");
        assert!(report.contains(&format!("at offset {last}")), "{report}");
        assert!(
            report.contains(&format!("cut {} bytes", end - last)),
            "{report}"
        );
        assert_eq!(fs::metadata(&path).unwrap().len(), last as u64);
        let saved = side_files(dir.path());
        assert_eq!(saved.len(), 1);
        assert_eq!(
            saved[0].1,
            bytes[last..end],
            "side file holds the cut bytes"
        );
        assert!(
            report.contains(&saved[0].0.display().to_string()),
            "{report}"
        );
        fs::remove_file(&saved[0].0).unwrap();

        wait(journal.put(vec![message(4, 8)]));
        drop(journal);
        let (_journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
        assert_eq!(seqs(&recovery.messages), [1, 2, 4]);
        assert_eq!(recovery.cut, None);
    }
}

#[test]
fn a_flipped_byte_anywhere_in_a_record_cuts_from_that_record() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let (bytes, [_, middle, last]) = three_records(&path);
    for i in middle..last {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0xff;
        fs::write(&path, &damaged).unwrap();
        let (_journal, recovery) = Journal::open(&path, Fsync::Never).unwrap();
        assert_eq!(recovery.messages, [message(1, 40)], "flipped byte {i}");
        let report = recovery.cut.expect("the damage is reported");
        assert!(report.contains(&format!("at offset {middle}")), "{report}");
        let saved = side_files(dir.path());
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].1, damaged[middle..]);
        fs::remove_file(&saved[0].0).unwrap();
    }
}

#[test]
fn a_foreign_or_short_header_is_an_error_and_the_file_is_left_alone() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    for content in [
        &b""[..],
        b"IPCDQ",
        b"NOTOURS!\x01\0\0\0",
        b"IPCDQJNL\x09\0\0\0",
    ] {
        fs::write(&path, content).unwrap();
        let err = Journal::open(&path, Fsync::Batch).expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), content);
    }
    assert!(side_files(dir.path()).is_empty());
}

#[test]
fn a_garbage_tail_of_zeros_is_cut() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let (mut bytes, _) = three_records(&path);
    let valid = bytes.len();
    bytes.extend_from_slice(&[0; 4096]);
    fs::write(&path, &bytes).unwrap();
    let (_journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
    assert_eq!(seqs(&recovery.messages), [1, 2, 3]);
    let report = recovery.cut.unwrap();
    assert!(report.contains("impossible record length 0"), "{report}");
    assert_eq!(fs::metadata(&path).unwrap().len(), valid as u64);
}

#[test]
fn compaction_shrinks_the_file_and_keeps_the_live_set() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let tuning = Tuning {
        compact_min_bytes: 4096,
    };
    let journal = Journal::create_tuned(&path, Fsync::Batch, tuning).unwrap();
    let mut live = BTreeSet::new();
    let mut written = 0;
    for seq in 1..=500u64 {
        wait(journal.put(vec![message(seq, 100)]));
        written += RECORD_HEADER + 1 + 12 + 100;
        live.insert(seq);
        if seq % 10 != 0 {
            journal.remove(vec![seq]);
            live.remove(&seq);
        }
    }
    settle(&journal);
    let stats = journal.stats();
    assert!(stats.compactions >= 5, "{stats:?}");
    assert!(stats.bytes < written as u64 / 4, "{stats:?}");
    assert_eq!(stats.bytes, fs::metadata(&path).unwrap().len());
    assert_eq!(stats.live, live.len() as u64);
    assert_eq!(stats.last_error, None);
    drop(journal);

    // A compaction the crash interrupted leaves a copy that open ignores.
    let leftover = super::compact_path(&path);
    fs::write(&leftover, b"half a compaction").unwrap();
    let (journal, recovery) = Journal::open_tuned(&path, Fsync::Batch, tuning).unwrap();
    assert!(!leftover.exists());
    assert_eq!(
        seqs(&recovery.messages),
        live.iter().copied().collect::<Vec<_>>()
    );
    assert!(recovery.messages.iter().all(|r| *r == message(r.seq, 100)));
    assert_eq!(recovery.next_seq, 501, "{:?}", recovery.cut);

    // Remove every message, highest seq included: a compaction keeps the
    // seq floor so seqs are not reused.
    journal.remove(live.iter().copied().collect());
    for seq in 501..=560u64 {
        wait(journal.put(vec![message(seq, 100)]));
        journal.remove(vec![seq]);
    }
    settle(&journal);
    assert!(journal.stats().compactions >= 1);
    assert_eq!(journal.stats().live, 0);
    drop(journal);
    let (_journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
    assert!(recovery.messages.is_empty());
    assert_eq!(recovery.next_seq, 561);
}

#[test]
fn delete_removes_the_file_and_drop_keeps_it() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let journal = Journal::create(&path, Fsync::Never).unwrap();
    let answer = journal.put(vec![message(1, 1)]);
    drop(journal);
    wait(answer);
    assert!(path.exists());
    let (journal, recovery) = Journal::open(&path, Fsync::Never).unwrap();
    assert_eq!(seqs(&recovery.messages), [1]);
    journal.delete().unwrap();
    assert!(!path.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_body_too_large_fails_its_put_and_writes_nothing() {
    let dir = temp_dir();
    let path = dir.path().join("q");
    let journal = Journal::create(&path, Fsync::Batch).unwrap();
    let mut big = message(1, 0);
    big.body = vec![0; super::MAX_BODY + 1];
    let err = journal
        .put(vec![message(1, 1), big])
        .blocking_recv()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    wait(journal.put(vec![message(2, 1)]));
    drop(journal);
    let (_journal, recovery) = Journal::open(&path, Fsync::Batch).unwrap();
    assert_eq!(seqs(&recovery.messages), [2]);
}
