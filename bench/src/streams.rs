//! The measured loops for byte streams (pipes and FIFOs), generic over
//! [`Read`]/[`Write`] so that raw descriptors and the client library's handles
//! run exactly the same code (monomorphised, no dynamic dispatch in the hot path).
//!
//! A byte stream has no message boundaries and no empty messages, so the
//! conventions differ from [`super::loops`]: every message is exactly `size`
//! bytes (`size` ≥ 1), written with one `write_all`; its first byte is
//! [`DATA`], or [`END`] for the last message of a block, which is full-size too.
//! A round trip reads the echo with `read_exact(size)`. A throughput sink reads
//! whatever is there, in chunks of [`read_chunk`] bytes, and finds the message
//! boundaries by counting bytes, as a stream consumer (`cat`) would.
//!
//! A kind wraps its streams in [`Bytes`] (the bench's ends) and
//! [`StreamSide`] (the peer's).

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::abba::Budget;
use super::channel::{Blocks, Ends, PeerReport, Role};
use super::datapath::{RatioTargets, Shape};
use super::stats::{Rate, nanos};

/// Bytes per throughput block, within [`MIN_BLOCK`]..=[`MAX_BLOCK`] messages:
/// long enough that a block is not just scheduling noise, short enough for
/// many blocks per run.
const BLOCK_BYTES: u64 = 32 << 20;
/// Fewest messages in a throughput block.
const MIN_BLOCK: u64 = 4;
/// Most messages in a throughput block.
const MAX_BLOCK: u64 = 10_000;
/// Most bytes one mechanism streams in one throughput run, whatever
/// `--messages` says: bulk runs would otherwise take minutes.
const MAX_RUN_BYTES: u64 = 1 << 30;

/// Messages per throughput block for messages of `size` bytes.
fn block_len(size: usize) -> u64 {
    (BLOCK_BYTES / size as u64).clamp(MIN_BLOCK, MAX_BLOCK)
}

/// How byte-stream kinds cut their runs: blocks of about 32 MiB, at most
/// 1 GiB per run and mechanism, and bulk rows.
pub fn byte_blocks() -> Shape {
    Shape {
        block: block_len,
        max_run_bytes: Some(MAX_RUN_BYTES),
        bulk: true,
        targets: Some(RatioTargets::KERNEL_OBJECTS),
    }
}

/// One mechanism's streams in the bench: where it writes and, for round
/// trips, where it reads the echoes.
pub struct Bytes<W, R> {
    /// Ping, or the stream.
    pub tx: W,
    /// Pong (round trips only).
    pub rx: Option<R>,
}

impl<W: Write, R: Read> Ends for Bytes<W, R> {
    fn round_trip(
        &mut self,
        size: usize,
        lead_in: u64,
        budget: Budget,
    ) -> anyhow::Result<Vec<u64>> {
        let Some(rx) = self.rx.as_mut() else {
            bail!("a round-trip run needs a stream back from the peer");
        };
        round_trip(&mut self.tx, rx, size, lead_in, budget)
    }

    fn stream(&mut self, size: usize, budget: Budget) -> anyhow::Result<u64> {
        send_stream(&mut self.tx, size, budget)
    }
}

/// One mechanism's streams on the peer's side: where it reads and, for role
/// echo, where it answers.
pub struct StreamSide<R, W> {
    /// The bench's messages.
    pub rx: R,
    /// The echoes (role echo only).
    pub tx: Option<W>,
}

impl<R: Read, W: Write> Blocks for StreamSide<R, W> {
    fn block(&mut self, role: Role, size: usize) -> anyhow::Result<PeerReport> {
        Ok(match (role, &mut self.tx) {
            (Role::Echo, Some(tx)) => PeerReport::echoed(echo(&mut self.rx, tx, size)?),
            (Role::Echo, None) => bail!("role echo needs a stream to echo to"),
            (Role::Relay, _) => bail!("a relay runs no blocks"),
            (Role::Sink, _) => {
                let sunk = sink(&mut self.rx, size)?;
                PeerReport::sunk(sunk.received, sunk.rate)
            }
        })
    }
}

/// First byte of a data message.
pub const DATA: u8 = 0x00;
/// First byte of the message that ends a block.
pub const END: u8 = 0xFF;

/// The smallest buffer a throughput sink reads into: the default pipe capacity,
/// so that one read can take everything a pipe holds.
const MIN_READ_CHUNK: usize = 64 * 1024;

/// How many bytes a throughput sink asks for per `read`: one message, or the
/// default pipe capacity if that is more.
pub fn read_chunk(size: usize) -> usize {
    size.max(MIN_READ_CHUNK)
}

/// A data message of `size` bytes: [`DATA`] then a recognisable pattern that
/// never contains [`END`].
fn payload(size: usize) -> Vec<u8> {
    let mut msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    msg[0] = DATA;
    msg
}

/// The message that ends a block: `size` bytes starting with [`END`].
fn end_marker(size: usize) -> Vec<u8> {
    let mut msg = vec![0u8; size];
    msg[0] = END;
    msg
}

/// Reads exactly `buf.len()` bytes; end of file is an error that says so.
#[inline]
fn read_message<R: Read>(rx: &mut R, buf: &mut [u8]) -> anyhow::Result<()> {
    match rx.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            bail!("the stream ended in the middle of a block (the other side closed it)")
        }
        Err(e) => Err(e).context("read"),
    }
}

/// Writes one whole message.
#[inline]
fn write_message<W: Write>(tx: &mut W, msg: &[u8]) -> anyhow::Result<()> {
    tx.write_all(msg).context("write")
}

/// The parent's half of a round-trip block: writes a message on `ping`, reads
/// the echo from `pong`, and times each exchange. `warmup` untimed exchanges
/// come first. Ends the block with the end marker; returns nanoseconds per
/// exchange.
pub fn round_trip<W: Write, R: Read>(
    ping: &mut W,
    pong: &mut R,
    size: usize,
    warmup: u64,
    budget: Budget,
) -> anyhow::Result<Vec<u64>> {
    let msg = payload(size);
    let mut buf = vec![0u8; size];
    for _ in 0..warmup {
        write_message(ping, &msg)?;
        read_message(pong, &mut buf)?;
    }
    let mut samples = Vec::with_capacity(budget.count.min(1 << 20) as usize);
    let start = Instant::now();
    while !budget.spent(samples.len() as u64, start) {
        let t0 = Instant::now();
        write_message(ping, &msg)?;
        read_message(pong, &mut buf)?;
        let t1 = Instant::now();
        samples.push(nanos(t1 - t0));
    }
    if (warmup > 0 || !samples.is_empty()) && buf != msg {
        bail!("the echo differs from the message sent");
    }
    write_message(ping, &end_marker(size))?;
    Ok(samples)
}

/// The peer's half of a round-trip block: echoes every message from `rx` back
/// on `tx` until the end marker (not echoed). Returns how many it echoed.
pub fn echo<R: Read, W: Write>(rx: &mut R, tx: &mut W, size: usize) -> anyhow::Result<u64> {
    let mut buf = vec![0u8; size];
    let mut echoed = 0u64;
    loop {
        read_message(rx, &mut buf)?;
        match buf[0] {
            DATA => {}
            END => return Ok(echoed),
            other => bail!("message {echoed} starts with {other:#04x}: the stream is out of step"),
        }
        write_message(tx, &buf)?;
        echoed += 1;
    }
}

/// The parent's half of a throughput block: writes data messages as fast as
/// the stream takes them, then the end marker. Returns how many data messages
/// it wrote.
pub fn send_stream<W: Write>(tx: &mut W, size: usize, budget: Budget) -> anyhow::Result<u64> {
    let msg = payload(size);
    let start = Instant::now();
    let mut sent = 0u64;
    // Checking the clock every 64 messages keeps it out of the per-message cost.
    while sent < budget.count && (!sent.is_multiple_of(64) || !budget.spent(sent, start)) {
        write_message(tx, &msg)?;
        sent += 1;
    }
    write_message(tx, &end_marker(size))?;
    Ok(sent)
}

/// What a throughput sink saw in one block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sunk {
    /// Messages received in all, the end marker included.
    pub received: u64,
    /// The timed part: from the end of the first `read` to the end marker.
    /// Its messages are those completed after the first read; its bytes are
    /// all bytes after the first read (the end marker's included: it crossed
    /// the stream like any other message).
    pub rate: Rate,
}

/// The peer's half of a throughput block: reads in chunks of
/// [`read_chunk`]`(size)` bytes until the end marker has fully arrived. The
/// clock starts when the first read returns, so what that read brought is not
/// counted. Each message's first byte is checked at its boundary.
pub fn sink<R: Read>(rx: &mut R, size: usize) -> anyhow::Result<Sunk> {
    let mut buf = vec![0u8; read_chunk(size)];
    // Bytes received in all, and the offset of the next message start in the stream.
    let mut total = 0u64;
    let mut next_start = 0u64;
    let size64 = size as u64;
    let mut first: Option<(Instant, u64)> = None;
    let mut ended = false;
    while !ended || total < next_start {
        let n = match rx.read(&mut buf) {
            Ok(0) => bail!("the stream ended before the end marker (the other side closed it)"),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("read"),
        };
        let chunk_end = total + n as u64;
        while !ended && next_start < chunk_end {
            match buf[(next_start - total) as usize] {
                DATA => {}
                END => ended = true,
                other => bail!(
                    "message {} starts with {other:#04x}: the stream is out of step",
                    next_start / size64
                ),
            }
            next_start += size64;
        }
        total = chunk_end;
        if first.is_none() {
            first = Some((Instant::now(), total));
        }
    }
    if total != next_start {
        bail!("{} bytes arrived after the end marker", total - next_start);
    }
    let elapsed = first.map_or(Duration::ZERO, |(t0, _)| t0.elapsed());
    let before = first.map_or(0, |(_, bytes)| bytes);
    let received = total / size64;
    Ok(Sunk {
        received,
        rate: Rate {
            messages: received - before / size64,
            bytes: total - before,
            elapsed,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::BULK_SIZE;

    /// A reader that hands out `data` in pieces of at most `piece` bytes.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        piece: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.piece).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn stream_of(size: usize, messages: u64) -> Vec<u8> {
        let mut out = Vec::new();
        send_stream(&mut out, size, Budget::count(messages)).unwrap();
        out
    }

    #[test]
    fn round_trip_and_echo_over_real_pipes() {
        let (mut ping_rx, mut ping_tx) = std::io::pipe().unwrap();
        let (mut pong_rx, mut pong_tx) = std::io::pipe().unwrap();
        let peer = std::thread::spawn(move || echo(&mut ping_rx, &mut pong_tx, 4096).unwrap());
        let samples = round_trip(&mut ping_tx, &mut pong_rx, 4096, 10, Budget::count(200)).unwrap();
        assert_eq!(samples.len(), 200);
        assert_eq!(peer.join().unwrap(), 210);
    }

    #[test]
    fn throughput_over_a_real_pipe() {
        for size in [64, 4096, 1 << 20] {
            let (mut rx, mut tx) = std::io::pipe().unwrap();
            let peer = std::thread::spawn(move || sink(&mut rx, size).unwrap());
            let n = if size > 4096 { 20 } else { 5000 };
            assert_eq!(send_stream(&mut tx, size, Budget::count(n)).unwrap(), n);
            let sunk = peer.join().unwrap();
            assert_eq!(sunk.received, n + 1, "size {size}");
            assert!(sunk.rate.messages <= n + 1 && sunk.rate.messages > 0);
            assert!(sunk.rate.bytes <= (n + 1) * size as u64);
            assert!(sunk.rate.per_second() > 0.0);
        }
    }

    #[test]
    fn sink_counts_messages_split_across_reads() {
        for (size, piece) in [(64, 1), (64, 100), (100, 64), (4096, 65536), (3, 7)] {
            let data = stream_of(size, 50);
            let total = data.len() as u64;
            let mut rx = Trickle {
                data,
                pos: 0,
                piece,
            };
            let sunk = sink(&mut rx, size).unwrap();
            assert_eq!(sunk.received, 51, "size {size}, piece {piece}");
            let first = piece.min(read_chunk(size)) as u64;
            assert_eq!(sunk.rate.bytes, total - first);
            assert_eq!(sunk.rate.messages, 51 - first / size as u64);
        }
    }

    #[test]
    fn time_budget_stops_a_stream() {
        let (mut rx, mut tx) = std::io::pipe().unwrap();
        let peer = std::thread::spawn(move || sink(&mut rx, 64).unwrap());
        let budget = Budget {
            count: u64::MAX,
            time: Some(Duration::from_millis(50)),
        };
        let sent = send_stream(&mut tx, 64, budget).unwrap();
        assert!(sent > 0 && sent.is_multiple_of(64), "{sent}");
        assert_eq!(peer.join().unwrap().received, sent + 1);
    }

    #[test]
    fn a_stream_out_of_step_is_an_error() {
        let mut data = stream_of(64, 3);
        data.insert(10, 7);
        let err = sink(&mut data.as_slice(), 64).unwrap_err();
        assert!(err.to_string().contains("out of step"), "{err}");
        let err = echo(&mut &data[64..], &mut Vec::new(), 64).unwrap_err();
        assert!(err.to_string().contains("out of step"), "{err}");
    }

    #[test]
    fn early_end_of_file_is_an_error() {
        let data = stream_of(64, 3);
        let err = sink(&mut &data[..100], 64).unwrap_err();
        assert!(err.to_string().contains("before the end marker"), "{err}");
        let err = echo(&mut &data[..100], &mut Vec::new(), 64).unwrap_err();
        assert!(err.to_string().contains("middle of a block"), "{err}");
        let mut extra = data.clone();
        extra.extend([DATA; 64]);
        let err = sink(&mut extra.as_slice(), 64).unwrap_err();
        assert!(err.to_string().contains("after the end marker"), "{err}");
    }

    #[test]
    fn blocks_are_about_32_mib_within_bounds() {
        assert_eq!(block_len(64), MAX_BLOCK);
        assert_eq!(block_len(4096), 8192);
        assert_eq!(block_len(BULK_SIZE), 32);
        assert_eq!(block_len(64 << 20), MIN_BLOCK);
    }

    #[test]
    fn stream_sides_run_blocks() {
        let out = stream_of(64, 10);
        let mut side = StreamSide {
            rx: out.as_slice(),
            tx: Some(Vec::new()),
        };
        assert_eq!(side.block(Role::Sink, 64).unwrap().received, 11);
        let mut side = StreamSide {
            rx: out.as_slice(),
            tx: Some(Vec::new()),
        };
        assert_eq!(side.block(Role::Echo, 64).unwrap().messages, 10);
        assert_eq!(side.tx.unwrap().len(), 640);
        let mut side = StreamSide::<_, Vec<u8>> {
            rx: out.as_slice(),
            tx: None,
        };
        assert!(side.block(Role::Echo, 64).is_err());
        let mut ends = Bytes::<Vec<u8>, &[u8]> {
            tx: Vec::new(),
            rx: None,
        };
        assert_eq!(ends.stream(64, Budget::count(10)).unwrap(), 10);
        assert_eq!(ends.tx, out);
        assert!(ends.round_trip(64, 0, Budget::count(1)).is_err());
    }

    #[test]
    fn echo_stops_at_the_end_marker() {
        let data = stream_of(16, 4);
        let mut out = Vec::new();
        assert_eq!(echo(&mut data.as_slice(), &mut out, 16).unwrap(), 4);
        assert_eq!(out, data[..64]);
    }
}
