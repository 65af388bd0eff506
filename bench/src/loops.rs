//! The measured loops for message channels (POSIX queues, and any kind that
//! keeps message boundaries), generic over an [`Endpoint`] so that the raw
//! channels and the client library's handles run exactly the same code
//! (monomorphised, no dynamic dispatch in the hot path).
//!
//! Conventions shared by both processes: every data message is exactly `size`
//! bytes (`size` ≥ 1) and a zero-length message marks the end of a block.
//! A kind wraps its channels in [`Messages`] (the bench's ends) and
//! [`MessageSide`] (the peer's).

use std::time::{Duration, Instant};

use anyhow::bail;

use super::abba::Budget;
use super::channel::{Blocks, Ends, PeerReport, Role};
use super::stats::{Rate, nanos};

/// One direction of a message channel, as the loops need it.
pub trait Endpoint {
    /// Sends one message, blocking while the channel is full.
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()>;
    /// Receives one message into `buf`, blocking while the channel is empty;
    /// returns its length.
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize>;
}

/// One mechanism's message channels in the bench: where it sends and, for
/// round trips, where the echoes come back.
pub struct Messages<T, R> {
    /// Ping, or the stream.
    pub tx: T,
    /// Pong (round trips only).
    pub rx: Option<R>,
}

impl<T: Endpoint, R: Endpoint> Ends for Messages<T, R> {
    fn round_trip(
        &mut self,
        size: usize,
        lead_in: u64,
        budget: Budget,
    ) -> anyhow::Result<Vec<u64>> {
        let Some(rx) = self.rx.as_mut() else {
            bail!("a round-trip run needs a channel back from the peer");
        };
        round_trip(&mut self.tx, rx, size, lead_in, budget)
    }

    fn stream(&mut self, size: usize, budget: Budget) -> anyhow::Result<u64> {
        send_stream(&mut self.tx, size, budget)
    }
}

/// One mechanism's message channels on the peer's side: where it receives
/// and, for role echo, where it answers.
pub struct MessageSide<E> {
    /// Receives the bench's messages.
    pub rx: E,
    /// Carries the echoes back (role echo only).
    pub tx: Option<E>,
}

impl<E: Endpoint> Blocks for MessageSide<E> {
    fn block(&mut self, role: Role, size: usize) -> anyhow::Result<PeerReport> {
        Ok(match (role, &mut self.tx) {
            (Role::Echo, Some(tx)) => PeerReport::echoed(echo(&mut self.rx, tx, size)?),
            (Role::Echo, None) => bail!("role echo needs a channel to echo to"),
            (Role::Relay, _) => bail!("a relay runs no blocks"),
            (Role::Sink, _) => {
                let (received, rate) = sink(&mut self.rx, size)?;
                PeerReport::sunk(received, rate)
            }
        })
    }
}

/// A recognisable payload of `size` bytes.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// The bench's half of a round-trip block: sends a message on `ping`, waits
/// for the echo on `pong`, and times each exchange. `warmup` untimed exchanges
/// come first. Ends the block with the end marker; returns nanoseconds per exchange.
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

/// The bench's half of a throughput block: sends messages as fast as the
/// channel takes them, then the end marker. Returns how many data messages it sent.
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

/// The peer's half of a round-trip block: echoes every message from `rx` back
/// on `tx` until the end marker. Returns how many it echoed.
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

/// The peer's half of a throughput block: receives until the end marker and
/// measures from the first message to the end marker. The first message only
/// starts the clock, so the rate counts the messages after it. Returns the
/// messages received in all (the end marker included) and the rate.
pub fn sink<R: Endpoint>(rx: &mut R, size: usize) -> anyhow::Result<(u64, Rate)> {
    let mut buf = vec![0u8; size];
    let n = rx.recv(&mut buf)?;
    let first = Instant::now();
    if n == 0 {
        let none = Rate {
            messages: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
        };
        return Ok((1, none));
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
    let rate = Rate {
        messages,
        bytes: messages * size as u64,
        elapsed: first.elapsed(),
    };
    // The first message, the timed ones and the end marker.
    Ok((messages + 2, rate))
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
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

    use super::*;

    /// One end of a bounded in-process channel, as a queue of capacity 10 is.
    enum Chan {
        Tx(SyncSender<Vec<u8>>),
        Rx(Receiver<Vec<u8>>),
    }

    impl Endpoint for Chan {
        fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
            let Chan::Tx(tx) = self else {
                bail!("not a sender")
            };
            Ok(tx.send(msg.to_vec())?)
        }

        fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
            let Chan::Rx(rx) = self else {
                bail!("not a receiver")
            };
            let msg = rx.recv()?;
            buf[..msg.len()].copy_from_slice(&msg);
            Ok(msg.len())
        }
    }

    fn pair() -> (Chan, Chan) {
        let (tx, rx) = sync_channel(10);
        (Chan::Tx(tx), Chan::Rx(rx))
    }

    #[test]
    fn round_trip_against_an_echo_side() {
        let (ping, ping_peer) = pair();
        let (pong_peer, pong) = pair();
        let mut side = MessageSide {
            rx: ping_peer,
            tx: Some(pong_peer),
        };
        let peer = std::thread::spawn(move || side.block(Role::Echo, 64).unwrap());
        let mut ends = Messages {
            tx: ping,
            rx: Some(pong),
        };
        let samples = ends.round_trip(64, 10, Budget::count(200)).unwrap();
        assert_eq!(samples.len(), 200);
        assert_eq!(peer.join().unwrap().messages, 210);
    }

    #[test]
    fn stream_into_a_sink_side() {
        let (tx, rx) = pair();
        let mut side = MessageSide::<Chan> { rx, tx: None };
        let peer = std::thread::spawn(move || side.block(Role::Sink, 4096).unwrap());
        let mut ends = Messages::<Chan, Chan> { tx, rx: None };
        assert_eq!(ends.stream(4096, Budget::count(1000)).unwrap(), 1000);
        let report = peer.join().unwrap();
        assert_eq!((report.messages, report.bytes), (999, 999 * 4096));
        // Every data message and the end marker.
        assert_eq!(report.received, 1001);
        assert!(report.rate().per_second() > 0.0);
        assert!(ends.round_trip(64, 0, Budget::count(1)).is_err());
    }

    #[test]
    fn time_budget_stops_a_stream() {
        let (mut tx, mut rx) = pair();
        let peer = std::thread::spawn(move || sink(&mut rx, 64).unwrap());
        let budget = Budget {
            count: u64::MAX,
            time: Some(Duration::from_millis(50)),
        };
        let sent = send_stream(&mut tx, 64, budget).unwrap();
        assert!(sent > 0 && sent.is_multiple_of(64), "{sent}");
        let (received, rate) = peer.join().unwrap();
        assert_eq!((received, rate.messages), (sent + 1, sent - 1));
    }

    #[test]
    fn an_empty_block_is_one_end_marker() {
        let (mut tx, mut rx) = pair();
        send_stream(&mut tx, 64, Budget::count(0)).unwrap();
        assert_eq!(sink(&mut rx, 64).unwrap().0, 1);
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let (mut tx, mut rx) = pair();
        tx.send(&[1, 2, 3]).unwrap();
        let err = sink(&mut rx, 64).unwrap_err();
        assert!(err.to_string().contains("3-byte"), "{err}");
    }
}
