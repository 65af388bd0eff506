//! The measured loops, generic over an [`Endpoint`] so that the raw queues and the
//! client library's queues run exactly the same code (monomorphised, no dynamic
//! dispatch in the hot path).
//!
//! Conventions shared by both processes: every data message is exactly `size`
//! bytes (`size` ≥ 1) and a zero-length message marks the end of a run.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::mqueue::{mq_receive, mq_send};

use super::peer::{MECHANISMS, Mechanism};
use super::raw::RawQueue;
use super::stats::{PairRatios, Rate, Samples, nanos};

/// One direction of a message channel, as the loops need it.
pub trait Endpoint {
    /// Sends one message, blocking while the channel is full.
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()>;
    /// Receives one message into `buf`, blocking while the channel is empty;
    /// returns its length.
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize>;
}

impl Endpoint for RawQueue {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        mq_send(self.mqd(), msg, 0).with_context(|| format!("mq_send on {}", self.name()))
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let mut prio = 0;
        mq_receive(self.mqd(), buf, &mut prio)
            .with_context(|| format!("mq_receive on {}", self.name()))
    }
}

/// When a measured run stops: after `count` operations or after `time`,
/// whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most operations to time.
    pub count: u64,
    /// Longest the run may take, if bounded.
    pub time: Option<Duration>,
}

impl Budget {
    /// Exactly `count` operations, however long they take.
    pub const fn count(count: u64) -> Self {
        Budget { count, time: None }
    }

    /// Whether a run that started at `start` and has done `done` operations is over.
    #[inline]
    pub fn spent(&self, done: u64, start: Instant) -> bool {
        done >= self.count || self.time.is_some_and(|t| start.elapsed() >= t)
    }
}

/// Runs `block(mechanism, n)` for the two mechanisms of `pair` alternately in
/// blocks of at most `block_len` operations, in ABBA order (A B, B A, A B, …) so
/// that a steady drift favours neither. Stops after a whole pair once each
/// mechanism has done `budget.count` operations or, if `budget.time` is set,
/// once the blocks together took twice that (it bounds each mechanism).
pub fn abba<M: Copy>(
    pair: [M; 2],
    budget: Budget,
    block_len: u64,
    mut block: impl FnMut(M, u64) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut done = 0u64;
    let mut round = 0u64;
    while done < budget.count && budget.time.is_none_or(|t| start.elapsed() < 2 * t) {
        let n = block_len.min(budget.count - done);
        let [a, b] = pair;
        let order = if round.is_multiple_of(2) {
            [a, b]
        } else {
            [b, a]
        };
        for m in order {
            block(m, n)?;
        }
        done += n;
        round += 1;
    }
    Ok(())
}

/// Drives round-trip blocks for both mechanisms: one untimed warm-up block of
/// `warmup` exchanges each, then timed blocks of `block_len` in ABBA order (see
/// [`abba`]). `block(mechanism, budget, lead_in)` runs one block and returns its
/// nanoseconds per exchange. Returns those samples per mechanism and, per pair
/// of adjacent blocks, the ratio of their p50s (ipc-client / raw).
pub fn round_trip_blocks(
    warmup: u64,
    budget: Budget,
    block_len: u64,
    lead_in: u64,
    mut block: impl FnMut(Mechanism, Budget, u64) -> anyhow::Result<Vec<u64>>,
) -> anyhow::Result<([Vec<u64>; 2], Vec<f64>)> {
    for m in MECHANISMS {
        block(m, Budget::count(warmup), 0)?;
    }
    let mut samples: [Vec<u64>; 2] = Default::default();
    let mut pairs = PairRatios::default();
    abba(MECHANISMS, budget, block_len, |m, n| {
        let s = block(m, Budget::count(n), lead_in)?;
        let p50 = Samples::new(s.clone()).p50().unwrap_or(0);
        pairs.record(m.index(), p50 as f64);
        samples[m.index()].extend(s);
        Ok(())
    })?;
    Ok((samples, pairs.ratios))
}

/// A recognisable payload of `size` bytes.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// The parent's half of a round-trip run: sends a message on `ping`, waits for
/// the echo on `pong`, and times each exchange. `warmup` untimed exchanges come
/// first. Ends the run with the end marker; returns nanoseconds per exchange.
pub fn round_trip<T: Endpoint, R: Endpoint>(
    ping: &mut T,
    pong: &mut R,
    size: usize,
    warmup: u64,
    budget: Budget,
) -> anyhow::Result<Vec<u64>> {
    let msg = payload(size);
    let mut buf = vec![0u8; size];
    for _ in 0..warmup {
        ping.send(&msg)?;
        expect_len(pong.recv(&mut buf)?, size)?;
    }
    let mut samples = Vec::with_capacity(budget.count.min(1 << 20) as usize);
    let start = Instant::now();
    while !budget.spent(samples.len() as u64, start) {
        let t0 = Instant::now();
        ping.send(&msg)?;
        let n = pong.recv(&mut buf)?;
        let t1 = Instant::now();
        expect_len(n, size)?;
        samples.push(nanos(t1 - t0));
    }
    ping.send(&[])?;
    Ok(samples)
}

/// The parent's half of a throughput run: sends messages as fast as the channel
/// takes them, then the end marker. Returns how many data messages it sent.
pub fn send_stream<T: Endpoint>(tx: &mut T, size: usize, budget: Budget) -> anyhow::Result<u64> {
    let msg = payload(size);
    let start = Instant::now();
    let mut sent = 0u64;
    // Checking the clock every 64 messages keeps it out of the per-message cost.
    while sent < budget.count && (!sent.is_multiple_of(64) || !budget.spent(sent, start)) {
        tx.send(&msg)?;
        sent += 1;
    }
    tx.send(&[])?;
    Ok(sent)
}

/// The peer's half of a round-trip run: echoes every message from `rx` back on
/// `tx` until the end marker. Returns how many it echoed.
pub fn echo<R: Endpoint, T: Endpoint>(rx: &mut R, tx: &mut T, size: usize) -> anyhow::Result<u64> {
    let mut buf = vec![0u8; size];
    let mut echoed = 0u64;
    loop {
        let n = rx.recv(&mut buf)?;
        if n == 0 {
            return Ok(echoed);
        }
        tx.send(&buf[..n])?;
        echoed += 1;
    }
}

/// The peer's half of a throughput run: receives until the end marker and
/// measures from the first message to the end marker. The first message only
/// starts the clock, so the rate counts the messages after it.
pub fn sink<R: Endpoint>(rx: &mut R, size: usize) -> anyhow::Result<Rate> {
    let mut buf = vec![0u8; size];
    let n = rx.recv(&mut buf)?;
    let first = Instant::now();
    if n == 0 {
        return Ok(Rate {
            messages: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
        });
    }
    expect_len(n, size)?;
    let mut messages = 0u64;
    loop {
        let n = rx.recv(&mut buf)?;
        if n == 0 {
            break;
        }
        expect_len(n, size)?;
        messages += 1;
    }
    Ok(Rate {
        messages,
        bytes: messages * size as u64,
        elapsed: first.elapsed(),
    })
}

/// Fails unless a received message has the expected length.
#[inline]
fn expect_len(got: usize, want: usize) -> anyhow::Result<()> {
    if got != want {
        bail!("received a {got}-byte message where {want} bytes were expected");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::raw::unique_name;
    use super::*;

    /// Creates a queue and a second descriptor for it (as the peer would hold).
    fn pair(size: usize) -> (RawQueue, RawQueue) {
        let name = unique_name();
        let mut a = RawQueue::create(&name, 10, size).unwrap();
        let b = RawQueue::open(&name).unwrap();
        a.unlink().unwrap();
        (a, b)
    }

    #[test]
    fn round_trip_against_an_echo_thread() {
        let (mut ping, mut ping_peer) = pair(64);
        let (mut pong, mut pong_peer) = pair(64);
        let peer = std::thread::spawn(move || echo(&mut ping_peer, &mut pong_peer, 64).unwrap());
        let budget = Budget {
            count: 200,
            time: None,
        };
        let samples = round_trip(&mut ping, &mut pong, 64, 10, budget).unwrap();
        assert_eq!(samples.len(), 200);
        assert_eq!(peer.join().unwrap(), 210);
    }

    #[test]
    fn stream_into_a_sink_thread() {
        let (mut tx, mut rx) = pair(4096);
        let peer = std::thread::spawn(move || sink(&mut rx, 4096).unwrap());
        let budget = Budget {
            count: 1000,
            time: None,
        };
        assert_eq!(send_stream(&mut tx, 4096, budget).unwrap(), 1000);
        let rate = peer.join().unwrap();
        assert_eq!((rate.messages, rate.bytes), (999, 999 * 4096));
        assert!(rate.per_second() > 0.0);
    }

    #[test]
    fn time_budget_stops_a_stream() {
        let (mut tx, mut rx) = pair(64);
        let peer = std::thread::spawn(move || sink(&mut rx, 64).unwrap());
        let budget = Budget {
            count: u64::MAX,
            time: Some(Duration::from_millis(50)),
        };
        let sent = send_stream(&mut tx, 64, budget).unwrap();
        assert!(sent > 0 && sent.is_multiple_of(64), "{sent}");
        assert_eq!(peer.join().unwrap().messages, sent - 1);
    }

    #[test]
    fn abba_alternates_and_splits_the_count() {
        let mut calls = Vec::new();
        let budget = Budget {
            count: 25,
            time: None,
        };
        abba(['a', 'b'], budget, 10, |m, n| {
            calls.push((m, n));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            calls,
            [
                ('a', 10),
                ('b', 10),
                ('b', 10),
                ('a', 10),
                ('a', 5),
                ('b', 5)
            ]
        );
    }

    #[test]
    fn abba_stops_on_time_after_a_whole_pair() {
        let mut calls = 0;
        let budget = Budget {
            count: u64::MAX,
            time: Some(Duration::from_millis(10)),
        };
        abba([1, 2], budget, 1, |_, _| {
            calls += 1;
            std::thread::sleep(Duration::from_millis(3));
            Ok(())
        })
        .unwrap();
        assert!(calls % 2 == 0 && (6..=10).contains(&calls), "{calls}");
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let (mut tx, mut rx) = pair(64);
        tx.send(&[1, 2, 3]).unwrap();
        let err = sink(&mut rx, 64).unwrap_err();
        assert!(err.to_string().contains("3-byte"), "{err}");
    }
}
