//! The data-plane measurements every kind shares: the runs, the ABBA blocks
//! and the rows. A kind only says how one run's channels are set up
//! ([`Channels::start_run`]) and how its runs are cut into blocks
//! ([`Shape`]); everything measured is the same code for every kind.
//!
//! Per message size and round (`--repeat`), two runs, each with one fresh
//! peer process, then (for byte streams) one bulk run per round:
//! - round trip: the bench sends a message on a ping channel and waits for
//!   the peer's echo on a pong channel; each exchange is timed with `Instant`;
//! - one-way throughput: the bench sends as fast as the channel takes
//!   messages; the peer times the stream from its first receive to the end
//!   marker;
//! - bulk: the same with [`BULK_SIZE`] (1 MiB) messages.
//!
//! Within a run both mechanisms alternate in blocks (ABBA order, see
//! [`super::abba`]) in the same two processes. Each pair of adjacent blocks
//! gives one ratio (ipc-client / raw: of the block p50s for round trips, of
//! the block rates for throughput); `vs raw` is the median of all pairs of all
//! runs. Adjacent blocks share CPU placement, cache state and the VM's drift,
//! which is what makes the ratio stable.
//!
//! Targets, unless a kind's [`Shape`] says otherwise ([`RatioTargets`]):
//! ipc-client round-trip p50 ≤ 1.1× raw, throughput (one-way and bulk)
//! ≥ 0.9× raw.

use std::time::Duration;

use anyhow::{Context as _, bail};

use super::abba::{Budget, MECHANISMS, Mechanism, abba, round_trip_blocks};
use super::channel::{Ends, Role};
use super::ctx::Ctx;
use super::peer_process::PeerProcess;
use super::report::{Row, Target};
use super::stats::{PairRatios, Rate, Samples, median};

/// The goals the ipc-client rows of a kind are held to, relative to raw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioTargets {
    /// Highest ipc-client / raw round-trip p50 ratio that meets the target.
    pub max_round_trip: f64,
    /// Lowest ipc-client / raw throughput ratio that meets the target.
    pub min_throughput: f64,
}

impl RatioTargets {
    /// The targets of the kernel-object kinds (`mq`, `pipe`, `fifo`):
    /// round trip ≤ 1.1× raw, throughput ≥ 0.9× raw.
    pub const KERNEL_OBJECTS: RatioTargets = RatioTargets {
        max_round_trip: 1.1,
        min_throughput: 0.9,
    };
}

/// The message size of the bulk rows: 1 MiB writes and reads.
pub const BULK_SIZE: usize = 1 << 20;

/// Timed round trips per block (each mechanism's share of a run is split into these).
const ROUND_TRIP_BLOCK: u64 = 500;
/// Untimed exchanges at the start of every round-trip block, after the
/// command that starts it.
const BLOCK_LEAD_IN: u64 = 4;

/// How a kind's runs are cut into blocks.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Messages per throughput block for messages of `size` bytes.
    pub block: fn(usize) -> u64,
    /// Most bytes one mechanism sends in one throughput run, whatever
    /// `--messages` says (`None`: no cap).
    pub max_run_bytes: Option<u64>,
    /// Whether to add the bulk rows (1 MiB messages).
    pub bulk: bool,
    /// The ratio targets of the ipc-client rows (`None`: shown, not held to one).
    pub targets: Option<RatioTargets>,
}

/// One run: the peer, and this process's ends of both mechanisms (indexed
/// by [`Mechanism::index`]).
pub struct Run {
    /// The peer, with its ends open.
    pub peer: PeerProcess,
    /// Raw, then ipc-client.
    pub ends: [Box<dyn Ends>; 2],
}

/// A data-plane kind: how one run's channels are made and joined.
pub trait Channels {
    /// The kind's name: `mq`, `pipe`, `fifo` (row labels, progress, the
    /// peer's `--kind`).
    fn name(&self) -> &'static str;

    /// How the runs are cut into blocks.
    fn shape(&self) -> Shape;

    /// Starts one run's peer for `role` with fresh raw channels and the
    /// client objects for messages of `size`, and returns the run.
    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run>;
}

/// The mechanism's label in the table, e.g. `pipe ipc-client`.
fn label(kind: &str, m: Mechanism) -> String {
    match m {
        Mechanism::Raw => format!("{kind} raw"),
        Mechanism::Client => format!("{kind} ipc-client"),
    }
}

/// Runs the data-plane measurements of `kind`: round trip rows per size,
/// then one-way rows per size, then the bulk rows if the kind has them.
pub fn measure(ctx: &Ctx<'_>, kind: &mut dyn Channels) -> anyhow::Result<Vec<Row>> {
    let (opts, name, shape) = (ctx.opts, kind.name(), kind.shape());
    let bulk_runs = if shape.bulk { opts.repeat } else { 0 };
    ctx.progress
        .inc_length((opts.sizes.len() * opts.repeat * 2 + bulk_runs) as u64);
    let (mut latency, mut throughput) = (Vec::new(), Vec::new());
    for &size in &opts.sizes {
        let mut rt = Collected::default();
        let mut tp = Collected::default();
        let mut reordered = [0u64; 2];
        for round in 1..=opts.repeat {
            ctx.step(format!("{name} round trip, {size} B, run {round}"));
            let (samples, pairs) = round_trip_run(ctx, kind, size)?;
            rt.add_latency(samples, pairs);
            ctx.done();
            ctx.step(format!("{name} throughput, {size} B, run {round}"));
            let run = throughput_run(ctx, kind, size)?;
            for (all, n) in reordered.iter_mut().zip(run.reordered) {
                *all += n;
            }
            tp.add_rates(run.rates, run.pairs);
            ctx.done();
        }
        note_reordered(ctx, name, size, reordered);
        latency.extend(rt.latency_rows(name, size, shape.targets));
        throughput.extend(tp.rate_rows(name, "one-way", size, shape.targets));
    }
    let mut bulk = Collected::default();
    for round in 1..=bulk_runs {
        ctx.step(format!("{name} bulk, 1 MiB, run {round}"));
        let run = throughput_run(ctx, kind, BULK_SIZE)?;
        note_reordered(ctx, name, BULK_SIZE, run.reordered);
        bulk.add_rates(run.rates, run.pairs);
        ctx.done();
    }
    latency.extend(throughput);
    if shape.bulk {
        latency.extend(bulk.rate_rows(name, "bulk", BULK_SIZE, shape.targets));
    }
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

    /// The fields every row of mechanism `m` shares.
    fn base(&self, kind: &str, measure: &str, m: Mechanism, size: usize) -> Row {
        let client = m == Mechanism::Client;
        Row {
            measure: measure.into(),
            mechanism: label(kind, m),
            size: Some(size),
            vs_raw: client.then(|| median(&self.pairs)).flatten(),
            per_run_vs_raw: if client {
                self.run_ratios.clone()
            } else {
                Vec::new()
            },
            ..Row::default()
        }
    }

    /// The raw and ipc-client rows of round-trip runs.
    fn latency_rows(&self, kind: &str, size: usize, targets: Option<RatioTargets>) -> Vec<Row> {
        MECHANISMS
            .map(|m| {
                let runs = &self.samples[m.index()];
                let us = |f: fn(&Samples) -> Option<u64>| -> Vec<f64> {
                    runs.iter()
                        .filter_map(|s| f(s).map(|ns| ns as f64 / 1e3))
                        .collect()
                };
                let row = self.base(kind, "round trip", m, size);
                Row {
                    p50_us: median(&us(Samples::p50)),
                    p99_us: median(&us(Samples::p99)),
                    target: row.vs_raw.zip(targets).map(|(r, t)| {
                        let goal = format!("≤ {:.2}× raw", t.max_round_trip);
                        Target::at_most(goal, "vs_raw", t.max_round_trip, r)
                    }),
                    runs: runs.len(),
                    operations: median_u64(runs.iter().map(|s| s.len() as u64)),
                    per_run: us(Samples::p50),
                    ..row
                }
            })
            .into()
    }

    /// The raw and ipc-client rows of throughput runs.
    fn rate_rows(
        &self,
        kind: &str,
        measure: &str,
        size: usize,
        targets: Option<RatioTargets>,
    ) -> Vec<Row> {
        MECHANISMS
            .map(|m| {
                let runs = &self.rates[m.index()];
                let of = |f: fn(&Rate) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
                let row = self.base(kind, measure, m, size);
                Row {
                    per_second: of(Rate::per_second),
                    mb_per_second: of(Rate::mb_per_second),
                    target: row.vs_raw.zip(targets).map(|(r, t)| {
                        let goal = format!("≥ {:.2}× raw", t.min_throughput);
                        Target::at_least(goal, "vs_raw", t.min_throughput, r)
                    }),
                    runs: runs.len(),
                    operations: median_u64(runs.iter().map(|r| r.messages)),
                    per_run: runs.iter().map(Rate::per_second).collect(),
                    ..row
                }
            })
            .into()
    }
}

/// The median of some counts (rounded down), 0 if there are none.
pub fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    median(&values.map(|v| v as f64).collect::<Vec<_>>()).unwrap_or(0.0) as u64
}

/// One round-trip run: one peer, both mechanisms in alternating blocks.
/// Returns nanoseconds per exchange (raw, ipc-client) and, per pair of
/// adjacent blocks, the ratio of their p50s (ipc-client / raw).
fn round_trip_run(
    ctx: &Ctx<'_>,
    kind: &mut dyn Channels,
    size: usize,
) -> anyhow::Result<([Vec<u64>; 2], Vec<f64>)> {
    let name = kind.name();
    let Run { mut peer, mut ends } = kind.start_run(ctx, Role::Echo, size)?;
    let mut block = |m: Mechanism, budget: Budget, lead_in: u64| -> anyhow::Result<Vec<u64>> {
        peer.start(m)?;
        let s = ends[m.index()]
            .round_trip(size, lead_in, budget)
            .with_context(|| format!("{} round trip, {size} B", label(name, m)))?;
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

/// The throughput budget of one mechanism in one run, for messages of `size` bytes.
fn stream_budget(ctx: &Ctx<'_>, shape: &Shape, size: usize) -> Budget {
    let b = ctx.throughput_budget();
    let cap = shape
        .max_run_bytes
        .map_or(u64::MAX, |bytes| (bytes / size as u64).max(1));
    Budget {
        count: b.count.min(cap),
        time: b.time,
    }
}

/// What one throughput run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// The rates over all timed blocks: raw, ipc-client.
    pub rates: [Rate; 2],
    /// Per pair of adjacent blocks, the ratio of their rates (ipc-client / raw).
    pub pairs: Vec<f64>,
    /// Messages the peer saw arrive out of order, timed blocks or not, by
    /// mechanism (kinds whose messages carry sequence numbers; else 0).
    pub reordered: [u64; 2],
}

/// One throughput run: one peer, both mechanisms in alternating blocks; this
/// process sends, the peer receives and times. Public for kinds that build
/// their own rows from one-way runs (`queue`).
pub fn throughput_run(
    ctx: &Ctx<'_>,
    kind: &mut dyn Channels,
    size: usize,
) -> anyhow::Result<Throughput> {
    let (name, shape) = (kind.name(), kind.shape());
    let Run { mut peer, mut ends } = kind.start_run(ctx, Role::Sink, size)?;
    let mut totals = [Rate {
        messages: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    }; 2];
    let mut pairs = PairRatios::default();
    let mut reordered = [0u64; 2];
    let mut block = |m: Mechanism, n: u64, keep: bool| -> anyhow::Result<()> {
        peer.start(m)?;
        let sent = ends[m.index()]
            .stream(size, Budget::count(n))
            .with_context(|| format!("{} stream, {size} B", label(name, m)))?;
        let report = peer.report()?;
        reordered[m.index()] += report.reordered;
        // Every data message and the end marker.
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
    let block_len = (shape.block)(size);
    // One untimed block each first (the very first block is often much slower).
    for m in MECHANISMS {
        block(m, block_len, false)?;
    }
    let budget = stream_budget(ctx, &shape, size);
    abba(MECHANISMS, budget, block_len, |m, n| block(m, n, true))?;
    peer.finish()?;
    if totals.iter().any(|t| t.elapsed.is_zero()) {
        bail!("throughput run too short to time; raise --messages or --duration");
    }
    Ok(Throughput {
        rates: totals,
        pairs: pairs.ratios,
        reordered,
    })
}

/// Notes how many messages of `kind`'s one-way runs of `size` bytes (both
/// mechanisms, in the order of [`MECHANISMS`]) arrived out of order.
pub fn note_reordered(ctx: &Ctx<'_>, kind: &str, size: usize, reordered: [u64; 2]) {
    for m in MECHANISMS {
        let n = reordered[m.index()];
        if n > 0 {
            ctx.note(format!(
                "{} ({}): {n} messages arrived out of order in the one-way runs of {size} B \
                 (their sequence numbers showed none lost or repeated)",
                label(kind, m),
                ctx.placement.name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pair_raw_with_client_and_hold_the_targets() {
        let mut c = Collected::default();
        c.add_latency([vec![10_000; 9], vec![12_000; 9]], vec![1.2, 1.2]);
        let rows = c.latency_rows("shm", 64, Some(RatioTargets::KERNEL_OBJECTS));
        assert_eq!(rows[0].mechanism, "shm raw");
        assert_eq!((rows[0].vs_raw, rows[0].target.as_ref()), (None, None));
        assert_eq!(rows[1].p50_us, Some(12.0));
        assert!(!rows[1].target.as_ref().unwrap().met);
        let mut t = Collected::default();
        let rate = |messages| Rate {
            messages,
            bytes: messages * 64,
            elapsed: Duration::from_secs(1),
        };
        t.add_rates([rate(100), rate(95)], vec![0.95]);
        let rows = t.rate_rows("shm", "one-way", 64, Some(RatioTargets::KERNEL_OBJECTS));
        assert_eq!(rows[1].per_second, Some(95.0));
        assert!(rows[1].target.as_ref().unwrap().met);
        assert_eq!(rows[1].per_run_vs_raw, [0.95]);
        let untargeted = t.rate_rows("ring", "one-way", 64, None);
        assert_eq!(
            (untargeted[1].vs_raw, untargeted[1].target.as_ref()),
            (Some(0.95), None)
        );
    }
}
