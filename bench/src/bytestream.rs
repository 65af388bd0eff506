//! What the `pipe` and `fifo` sections share: the runs, the rows, and the
//! peer's side of a byte stream. A [`StreamKind`] only says how one run's
//! streams are set up; everything measured is the same code for both kinds.
//!
//! Per message size and round (`--repeat`), two runs, each with one fresh
//! peer process, then one bulk run per round:
//! - round trip: this process writes a message on a ping stream and reads the
//!   peer's echo from a pong stream (`read_exact`); each exchange is timed;
//! - one-way throughput: this process writes messages of a fixed size as fast
//!   as the stream takes them; the peer reads in chunks of at least 64 KiB
//!   and times the stream from the end of its first read to the end marker;
//! - bulk: the same with [`BULK_SIZE`] (1 MiB) writes and reads.
//!
//! Within a run both mechanisms alternate in blocks (ABBA order), in the same
//! two processes, and `vs raw` is the median of the ratios of adjacent blocks,
//! as for queues (see [`super::mq`]). Targets: ipc-client round-trip p50 ≤ 1.1×
//! raw, throughput (one-way and bulk) ≥ 0.9× raw.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::Ctx;
use super::loops::{Budget, abba, round_trip_blocks};
use super::peer::{Blocks, MECHANISMS, Mechanism, PeerProcess, PeerReport, Role, counted, echoed};
use super::report::{Row, Target};
use super::stats::{PairRatios, Rate, Samples, median};
use super::streams;

/// Highest ipc-client / raw round-trip p50 ratio that meets the target.
const MAX_ROUND_TRIP_RATIO: f64 = 1.1;
/// Lowest ipc-client / raw throughput ratio that meets the target.
const MIN_THROUGHPUT_RATIO: f64 = 0.9;

/// The message size of the bulk rows: 1 MiB writes and reads.
pub const BULK_SIZE: usize = 1 << 20;

/// Timed round trips per block.
const ROUND_TRIP_BLOCK: u64 = 500;
/// Untimed exchanges at the start of every round-trip block.
const BLOCK_LEAD_IN: u64 = 4;
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

/// Both mechanisms, in the order their results are stored.
/// One mechanism's ends in this process for one run.
pub struct Ends<W, R> {
    /// Where this process writes (ping, or the stream).
    pub tx: W,
    /// Where it reads the echoes (role echo only).
    pub rx: Option<R>,
}

/// One run: the peer and this process's ends of both mechanisms.
pub struct Run<K: StreamKind + ?Sized> {
    /// The peer, with its ends open.
    pub peer: PeerProcess,
    /// The raw streams.
    pub raw: Ends<K::RawWriter, K::RawReader>,
    /// The streams through ipc-client.
    pub client: Ends<K::ClientWriter, K::ClientReader>,
}

/// A kind of byte stream: how one run's streams are made and joined.
pub trait StreamKind {
    /// A raw read end.
    type RawReader: Read;
    /// A raw write end.
    type RawWriter: Write;
    /// A read end through ipc-client.
    type ClientReader: Read;
    /// A write end through ipc-client.
    type ClientWriter: Write;

    /// The kind's name in the table and progress bar: `pipe`, `fifo`.
    const NAME: &'static str;

    /// Starts one run's peer for `role` with fresh raw streams and the
    /// client's objects, and returns the run with this process's ends.
    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run<Self>>;
}

/// The mechanism's label in the table, e.g. `pipe ipc-client`.
fn label<K: StreamKind>(m: Mechanism) -> String {
    match m {
        Mechanism::Raw => format!("{} raw", K::NAME),
        Mechanism::Client => format!("{} ipc-client", K::NAME),
    }
}

/// Messages per throughput block for messages of `size` bytes.
fn block_len(size: usize) -> u64 {
    (BLOCK_BYTES / size as u64).clamp(MIN_BLOCK, MAX_BLOCK)
}

/// The throughput budget of one mechanism in one run, for messages of `size` bytes.
fn stream_budget(ctx: &Ctx<'_>, size: usize) -> Budget {
    let b = ctx.throughput_budget();
    Budget {
        count: b.count.min((MAX_RUN_BYTES / size as u64).max(1)),
        time: b.time,
    }
}

/// Runs the measurements of a stream section: round trip and one-way rows per
/// size, then the bulk rows.
pub fn measure<K: StreamKind>(ctx: &Ctx<'_>, kind: &mut K) -> anyhow::Result<Vec<Row>> {
    let args = ctx.args;
    ctx.progress
        .inc_length((args.sizes.len() * args.repeat * 2 + args.repeat) as u64);
    let (mut latency, mut throughput) = (Vec::new(), Vec::new());
    for &size in &args.sizes {
        let mut rt = Collected::default();
        let mut tp = Collected::default();
        for round in 1..=args.repeat {
            ctx.step(format!("{} round trip, {size} B, run {round}", K::NAME));
            let (samples, pairs) = round_trip_run(ctx, kind, size)?;
            rt.add_latency(samples, pairs);
            ctx.done();
            ctx.step(format!("{} throughput, {size} B, run {round}", K::NAME));
            let (rates, pairs) = throughput_run(ctx, kind, size)?;
            tp.add_rates(rates, pairs);
            ctx.done();
        }
        latency.extend(rt.latency_rows::<K>("round trip", size));
        throughput.extend(tp.rate_rows::<K>("one-way", size));
    }
    let mut bulk = Collected::default();
    for round in 1..=args.repeat {
        ctx.step(format!("{} bulk, 1 MiB, run {round}", K::NAME));
        let (rates, pairs) = throughput_run(ctx, kind, BULK_SIZE)?;
        bulk.add_rates(rates, pairs);
        ctx.done();
    }
    latency.extend(throughput);
    latency.extend(bulk.rate_rows::<K>("bulk", BULK_SIZE));
    Ok(latency)
}

/// What the runs of one row pair produced.
#[derive(Default)]
struct Collected {
    /// Latency runs, by mechanism.
    samples: [Vec<Samples>; 2],
    /// Throughput runs, by mechanism.
    rates: [Vec<Rate>; 2],
    /// The median pair ratio of each run.
    run_ratios: Vec<f64>,
    /// All pair ratios of all runs.
    pairs: Vec<f64>,
}

impl Collected {
    /// Adds a round-trip run.
    fn add_latency(&mut self, samples: [Vec<u64>; 2], pairs: Vec<f64>) {
        let [raw, client] = samples.map(Samples::new);
        self.samples[0].push(raw);
        self.samples[1].push(client);
        self.add_pairs(pairs);
    }

    /// Adds a throughput run.
    fn add_rates(&mut self, [raw, client]: [Rate; 2], pairs: Vec<f64>) {
        self.rates[0].push(raw);
        self.rates[1].push(client);
        self.add_pairs(pairs);
    }

    fn add_pairs(&mut self, pairs: Vec<f64>) {
        self.run_ratios.extend(median(&pairs));
        self.pairs.extend(pairs);
    }

    /// The raw and ipc-client rows of round-trip runs.
    fn latency_rows<K: StreamKind>(&self, measure: &str, size: usize) -> Vec<Row> {
        MECHANISMS
            .map(|m| {
                let client = m == Mechanism::Client;
                let runs = &self.samples[m.index()];
                let us = |f: fn(&Samples) -> Option<u64>| -> Vec<f64> {
                    runs.iter()
                        .filter_map(|s| f(s).map(|ns| ns as f64 / 1e3))
                        .collect()
                };
                let vs_raw = client.then(|| median(&self.pairs)).flatten();
                Row {
                    measure: measure.into(),
                    mechanism: label::<K>(m),
                    size: Some(size),
                    p50_us: median(&us(Samples::p50)),
                    p99_us: median(&us(Samples::p99)),
                    vs_raw,
                    target: vs_raw.map(|r| {
                        Target::at_most(
                            format!("≤ {MAX_ROUND_TRIP_RATIO:.2}× raw"),
                            "vs_raw",
                            MAX_ROUND_TRIP_RATIO,
                            r,
                        )
                    }),
                    runs: runs.len(),
                    operations: median_u64(runs.iter().map(|s| s.len() as u64)),
                    per_run: us(Samples::p50),
                    per_run_vs_raw: if client {
                        self.run_ratios.clone()
                    } else {
                        Vec::new()
                    },
                    ..Row::default()
                }
            })
            .into()
    }

    /// The raw and ipc-client rows of throughput runs.
    fn rate_rows<K: StreamKind>(&self, measure: &str, size: usize) -> Vec<Row> {
        MECHANISMS
            .map(|m| {
                let client = m == Mechanism::Client;
                let runs = &self.rates[m.index()];
                let vs_raw = client.then(|| median(&self.pairs)).flatten();
                Row {
                    measure: measure.into(),
                    mechanism: label::<K>(m),
                    size: Some(size),
                    per_second: median(&runs.iter().map(Rate::per_second).collect::<Vec<_>>()),
                    mb_per_second: median(
                        &runs.iter().map(Rate::mb_per_second).collect::<Vec<_>>(),
                    ),
                    vs_raw,
                    target: vs_raw.map(|r| {
                        Target::at_least(
                            format!("≥ {MIN_THROUGHPUT_RATIO:.2}× raw"),
                            "vs_raw",
                            MIN_THROUGHPUT_RATIO,
                            r,
                        )
                    }),
                    runs: runs.len(),
                    operations: median_u64(runs.iter().map(|r| r.messages)),
                    per_run: runs.iter().map(Rate::per_second).collect(),
                    per_run_vs_raw: if client {
                        self.run_ratios.clone()
                    } else {
                        Vec::new()
                    },
                    ..Row::default()
                }
            })
            .into()
    }
}

/// The median of some counts (rounded down), 0 if there are none.
fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    median(&values.map(|v| v as f64).collect::<Vec<_>>()).unwrap_or(0.0) as u64
}

/// One round-trip run: one peer, both mechanisms in alternating blocks.
/// Returns nanoseconds per exchange (raw, ipc-client) and, per pair of
/// adjacent blocks, the ratio of their p50s (ipc-client / raw).
fn round_trip_run<K: StreamKind>(
    ctx: &Ctx<'_>,
    kind: &mut K,
    size: usize,
) -> anyhow::Result<([Vec<u64>; 2], Vec<f64>)> {
    let Run {
        mut peer,
        mut raw,
        mut client,
    } = kind.start_run(ctx, Role::Echo, size)?;
    let (Some(raw_rx), Some(client_rx)) = (raw.rx.as_mut(), client.rx.as_mut()) else {
        bail!("a round-trip run needs a stream back from the peer");
    };
    let mut block = |m: Mechanism, budget: Budget, lead_in: u64| -> anyhow::Result<Vec<u64>> {
        peer.start(m)?;
        let s = match m {
            Mechanism::Raw => streams::round_trip(&mut raw.tx, raw_rx, size, lead_in, budget),
            Mechanism::Client => {
                streams::round_trip(&mut client.tx, client_rx, size, lead_in, budget)
            }
        }
        .with_context(|| format!("{} round trip, {size} B", label::<K>(m)))?;
        let echoed = peer.report()?.messages;
        let sent = lead_in + s.len() as u64;
        if echoed != sent {
            bail!("bench peer echoed {echoed} messages, {sent} were sent");
        }
        Ok(s)
    };
    let result = round_trip_blocks(
        ctx.warmup(),
        ctx.round_trip_budget(),
        ROUND_TRIP_BLOCK,
        BLOCK_LEAD_IN,
        &mut block,
    )?;
    peer.finish()?;
    Ok(result)
}

/// One throughput run: one peer, both mechanisms in alternating blocks; this
/// process writes, the peer reads and times. Returns the rates over all timed
/// blocks (raw, ipc-client) and, per pair of adjacent blocks, the ratio of
/// their rates (ipc-client / raw).
fn throughput_run<K: StreamKind>(
    ctx: &Ctx<'_>,
    kind: &mut K,
    size: usize,
) -> anyhow::Result<([Rate; 2], Vec<f64>)> {
    let Run {
        mut peer,
        mut raw,
        mut client,
    } = kind.start_run(ctx, Role::Sink, size)?;
    let mut totals = [Rate {
        messages: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    }; 2];
    let mut pairs = PairRatios::default();
    let mut block = |m: Mechanism, n: u64, keep: bool| -> anyhow::Result<()> {
        peer.start(m)?;
        let sent = match m {
            Mechanism::Raw => streams::send_stream(&mut raw.tx, size, Budget::count(n)),
            Mechanism::Client => streams::send_stream(&mut client.tx, size, Budget::count(n)),
        }
        .with_context(|| format!("{} stream, {size} B", label::<K>(m)))?;
        let report = peer.report()?;
        // The end marker is a whole message on a byte stream.
        if report.received != sent + 1 {
            bail!(
                "bench peer received {} messages, {} were sent",
                report.received,
                sent + 1
            );
        }
        if keep {
            let got = report.rate();
            pairs.record(m.index(), got.per_second());
            let total = &mut totals[m.index()];
            total.messages += got.messages;
            total.bytes += got.bytes;
            total.elapsed += got.elapsed;
        }
        Ok(())
    };
    let block_len = block_len(size);
    // One untimed block each first (the very first block is often much slower).
    for m in MECHANISMS {
        block(m, block_len, false)?;
    }
    abba(MECHANISMS, stream_budget(ctx, size), block_len, |m, n| {
        block(m, n, true)
    })?;
    peer.finish()?;
    if totals.iter().any(|t| t.elapsed.is_zero()) {
        bail!("throughput run too short to time; raise --messages or --duration");
    }
    Ok((totals, pairs.ratios))
}

/// One mechanism's streams on the peer's side: where it reads and, for role
/// echo, where it answers.
pub struct StreamSide<R, W> {
    /// The parent's messages.
    pub rx: R,
    /// The echoes (role echo only).
    pub tx: Option<W>,
}

impl<R: Read, W: Write> Blocks for StreamSide<R, W> {
    fn block(&mut self, role: Role, size: usize) -> anyhow::Result<PeerReport> {
        Ok(match (role, &mut self.tx) {
            (Role::Echo, Some(tx)) => echoed(streams::echo(&mut self.rx, tx, size)?),
            (Role::Echo, None) => bail!("role echo needs a stream to echo to"),
            (Role::Sink, _) => {
                let sunk = streams::sink(&mut self.rx, size)?;
                PeerReport {
                    received: sunk.received,
                    ..counted(sunk.rate)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_about_32_mib_within_bounds() {
        assert_eq!(block_len(64), MAX_BLOCK);
        assert_eq!(block_len(4096), 8192);
        assert_eq!(block_len(BULK_SIZE), 32);
        assert_eq!(block_len(64 << 20), MIN_BLOCK);
    }

    #[test]
    fn stream_sides_run_blocks() {
        let mut out = Vec::new();
        streams::send_stream(&mut out, 64, Budget::count(10)).unwrap();
        let mut side = StreamSide {
            rx: out.as_slice(),
            tx: Some(Vec::new()),
        };
        let r = side.block(Role::Sink, 64).unwrap();
        assert_eq!(r.received, 11);
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
    }
}
