//! Many producers and consumers on one work queue, one consumer a separate
//! process killed with -9 while it holds deliveries: every message put is
//! acknowledged in the end, none lost (at least once: some twice).
//! The consumer process is this test binary run again on its one ignored
//! test, [`queue_consumer_child`], which does nothing unless started so.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ipc_client::{Client, QueueOptions, QueueReceiver, QueueSender};
use ipcd_tests::{TestDaemon, eventually, wait_timeout};

use crate::queue::details;

const PRODUCERS: u32 = 4;
/// Consumer threads besides the consumer process.
const CONSUMER_THREADS: usize = 3;
/// What the consumer process takes before it stops acknowledging.
const CHILD_HOLDS_AFTER: u64 = 2_000;

/// The child's settings, from its environment.
const CHILD_SOCKET: &str = "IPCD_TEST_QUEUE_CHILD_SOCKET";
const CHILD_QUEUE: &str = "IPCD_TEST_QUEUE_CHILD_QUEUE";
const CHILD_RECORD: &str = "IPCD_TEST_QUEUE_CHILD_RECORD";

/// A message: its producer and its number.
type Tag = (u32, u64);

fn body(tag: Tag) -> Vec<u8> {
    let mut b = tag.0.to_le_bytes().to_vec();
    b.extend_from_slice(&tag.1.to_le_bytes());
    b
}

fn tag(body: &[u8]) -> Tag {
    assert_eq!(body.len(), 12, "a message of this test: {body:?}");
    let p = u32::from_le_bytes(body[..4].try_into().unwrap());
    let n = u64::from_le_bytes(body[4..].try_into().unwrap());
    (p, n)
}

/// Runs as the consumer process when started by [`many_to_many`]: records
/// each message (a line `P N`) *before* acknowledging it, so that what it
/// acknowledged is always recorded; after [`CHILD_HOLDS_AFTER`] messages it
/// writes `hold` and keeps what it has (prefetched too) unacknowledged until
/// it is killed.
#[test]
#[ignore = "the consumer process of queue_load's tests; does nothing when run by hand"]
fn queue_consumer_child() {
    let (Ok(socket), Ok(queue), Ok(record)) = (
        std::env::var(CHILD_SOCKET),
        std::env::var(CHILD_QUEUE),
        std::env::var(CHILD_RECORD),
    ) else {
        return;
    };
    let mut record = std::fs::OpenOptions::new()
        .append(true)
        .open(record)
        .unwrap();
    let client = Client::connect_to(socket).unwrap();
    let mut rx = QueueReceiver::new(client, &queue).prefetch(32);
    for _ in 0..CHILD_HOLDS_AFTER {
        let d = rx.recv().unwrap();
        let (p, n) = tag(&d.body);
        record.write_all(format!("{p} {n}\n").as_bytes()).unwrap();
        rx.ack(d.id).unwrap();
    }
    rx.flush().unwrap();
    // Some more, got and never acknowledged.
    let _held = rx.recv().unwrap();
    record.write_all(b"hold\n").unwrap();
    loop {
        thread::sleep(Duration::from_secs(60));
    }
}

/// The messages the consumer process recorded, and whether it reached `hold`.
fn child_record(path: &Path) -> (Vec<Tag>, bool) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut tags = Vec::new();
    let mut held = false;
    for line in text.lines() {
        if line == "hold" {
            held = true;
        } else if let Some((p, n)) = line.split_once(' ') {
            tags.push((p.parse().unwrap(), n.parse().unwrap()));
        }
    }
    (tags, held)
}

/// `PRODUCERS` producers put `per_producer` messages each (in batches of
/// 1, 4, 16 and 64 messages per request) into a queue of capacity 1000;
/// three consumer threads and one consumer process take them; the process
/// is killed with -9 holding deliveries. Every message is acknowledged.
fn many_to_many(per_producer: u64) {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("work", &QueueOptions::new().capacity(1000))
        .unwrap();

    let record = d.dir().join("child-record");
    std::fs::write(&record, b"").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "queue_load::queue_consumer_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_SOCKET, &d.socket)
        .env(CHILD_QUEUE, "queue:work")
        .env(CHILD_RECORD, &record)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..CONSUMER_THREADS)
        .map(|i| {
            let client = Client::connect_to(&d.socket).unwrap();
            let done = done.clone();
            thread::spawn(move || {
                let mut rx = QueueReceiver::new(client, "work").prefetch(8 << i);
                let mut acked = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    if let Some(d) = rx.recv_timeout(Duration::from_millis(50)).unwrap() {
                        acked.push(tag(&d.body));
                        rx.ack(d.id).unwrap();
                    }
                }
                rx.flush().unwrap();
                acked
            })
        })
        .collect();
    let confirmed = Arc::new(Mutex::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let client = Client::connect_to(&d.socket).unwrap();
            let confirmed = confirmed.clone();
            thread::spawn(move || {
                let mut tx = QueueSender::new(client, "work").batch(1 << (2 * p));
                for n in 0..per_producer {
                    tx.send(&body((p, n))).unwrap();
                }
                tx.flush().unwrap();
                *confirmed.lock().unwrap() += tx.confirmed();
            })
        })
        .collect();

    eventually("the consumer process to hold deliveries", || {
        child_record(&record).1
    });
    let held = details(&mut c, "queue:work")
        .consumers
        .iter()
        .find(|h| h.pid == child.id() as i32)
        .map_or(0, |h| h.in_flight);
    assert!(held > 0, "the consumer process holds nothing");
    child.kill().unwrap();
    wait_timeout(&mut child, Duration::from_secs(10)).expect("the killed consumer is reaped");

    for p in producers {
        p.join().unwrap();
    }
    let total = u64::from(PRODUCERS) * per_producer;
    assert_eq!(*confirmed.lock().unwrap(), total);
    c.queue_join("work", Some(Duration::from_secs(120)))
        .unwrap();
    done.store(true, Ordering::Relaxed);
    let mut acked_by_threads = Vec::new();
    for t in consumers {
        acked_by_threads.extend(t.join().unwrap());
    }
    let (recorded_by_child, _) = child_record(&record);

    let unique: HashSet<Tag> = acked_by_threads.iter().copied().collect();
    assert_eq!(
        unique.len(),
        acked_by_threads.len(),
        "a thread acknowledged twice"
    );
    let all: HashSet<Tag> = unique.iter().chain(&recorded_by_child).copied().collect();
    let missing = (0..PRODUCERS)
        .flat_map(|p| (0..per_producer).map(move |n| (p, n)))
        .filter(|t| !all.contains(t))
        .take(10)
        .collect::<Vec<_>>();
    assert!(missing.is_empty(), "never acknowledged: {missing:?}…");
    assert!(recorded_by_child.len() as u64 >= CHILD_HOLDS_AFTER);
    let q = details(&mut c, "queue:work");
    assert_eq!((q.put, q.acked, q.depth), (total, total, 0));
    assert!(q.consumers.is_empty(), "{:?}", q.consumers);
    assert!(
        q.redelivered >= held,
        "{} redelivered, {held} held by the killed consumer",
        q.redelivered
    );
    c.delete("queue:work").unwrap();
}

#[test]
fn many_producers_and_consumers_lose_nothing_when_a_consumer_is_killed() {
    // About 4 s in a debug build on 2 vCPUs.
    many_to_many(100_000);
}

/// Messages per second from a producer thread to a consumer thread through
/// a relay thread and two Unix socket pairs, one `write` per 64-byte message:
/// the raw mechanism a daemon-hosted queue adds a hop of.
fn raw_relay_rate(n: u64) -> f64 {
    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixStream;
    let (mut tx, mut relay_in) = UnixStream::pair().unwrap();
    let (mut relay_out, mut rx) = UnixStream::pair().unwrap();
    let started = std::time::Instant::now();
    let relay = thread::spawn(move || {
        let mut buf = vec![0; 64 << 10];
        loop {
            match relay_in.read(&mut buf).unwrap() {
                0 => return,
                k => relay_out.write_all(&buf[..k]).unwrap(),
            }
        }
    });
    let consumer = thread::spawn(move || {
        let mut buf = vec![0; 64 << 10];
        let mut left = n * 64;
        while left > 0 {
            left -= rx.read(&mut buf).unwrap() as u64;
        }
    });
    let msg = [7u8; 64];
    for _ in 0..n {
        tx.write_all(&msg).unwrap();
    }
    consumer.join().unwrap();
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(tx);
    relay.join().unwrap();
    rate
}

/// Messages per second through `queue:NAME` from a `QueueSender` set up by
/// `sender` to a `QueueReceiver` prefetching 64, 64-byte messages.
fn queue_rate(d: &TestDaemon, n: u64, sender: impl FnOnce(QueueSender) -> QueueSender) -> f64 {
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("rate", &QueueOptions::new().max_bytes(64 << 20))
        .unwrap();
    let mut tx = sender(QueueSender::new(
        Client::connect_to(&d.socket).unwrap(),
        "rate",
    ));
    let mut rx = QueueReceiver::new(Client::connect_to(&d.socket).unwrap(), "rate").prefetch(256);
    let started = std::time::Instant::now();
    let consumer = thread::spawn(move || {
        for _ in 0..n {
            let d = rx.recv().unwrap();
            rx.ack(d.id).unwrap();
        }
        rx.flush().unwrap();
    });
    let msg = [7u8; 64];
    for _ in 0..n {
        tx.send(&msg).unwrap();
    }
    tx.flush().unwrap();
    consumer.join().unwrap();
    let rate = n as f64 / started.elapsed().as_secs_f64();
    c.delete("queue:rate").unwrap();
    rate
}

/// One-way throughput of 64-byte messages through a queue against a raw
/// socket relay measured in the same run; meaningful in a release build
/// (`cargo test --release -- --ignored queue_throughput --nocapture`),
/// where a sender sending one message at a time, gathered into Puts of up
/// to 64 while Puts are in flight, must reach 0.8× the relay and a million
/// messages a second. One message per Put shows ipcd's cost per request.
#[test]
#[ignore = "a measurement: run it in a release build"]
fn queue_throughput_against_a_raw_socket_relay() {
    const N: u64 = 1_000_000;
    let d = TestDaemon::start();
    let relay = raw_relay_rate(N);
    let single = queue_rate(&d, N, |tx| tx);
    let corked = queue_rate(&d, N, |tx| tx.cork(16));
    let batched = queue_rate(&d, N, |tx| tx.batch(64));
    println!(
        "64-byte messages/s: raw relay {relay:.0}; queue, one message a Put {single:.0} \
         ({:.2}×), corked 16 {corked:.0} ({:.2}×), batches of up to 64 {batched:.0} ({:.2}×)",
        single / relay,
        corked / relay,
        batched / relay
    );
    if cfg!(not(debug_assertions)) {
        assert!(
            batched >= 0.8 * relay,
            "batched {batched:.0} vs relay {relay:.0}"
        );
        assert!(batched >= 1e6, "batches of 64: {batched:.0}/s");
    }
}
