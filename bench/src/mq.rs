//! The `mq` section: POSIX message queues through `ipc_client` versus raw
//! `mq_send`/`mq_receive`, between this process and a `bench-peer`.
//!
//! Per message size and per round (`--repeat`), two runs, each with one fresh
//! peer process:
//! - round trip: this process sends on a ping queue, the peer echoes on a pong
//!   queue; each exchange is timed with `Instant`;
//! - one-way throughput: this process sends as fast as the queue takes
//!   messages, the peer times the stream from its first message to the end
//!   marker.
//!
//! Within a run both mechanisms alternate in blocks (ABBA order, see
//! [`abba`]) in the same two processes. Each pair of adjacent blocks gives one
//! ratio (ipc-client / raw: of the block p50s for round trips, of the block
//! rates for throughput); `vs raw` is the median of all pairs of all runs.
//! Adjacent blocks share CPU placement, cache state and the VM's drift, which
//! is what makes the ratio stable: on 2 vCPUs a run's placement can flip
//! between "same vCPU" (≈ 8 µs round trips) and "across vCPUs" (≈ 60 µs)
//! mid-run, which whole-run p50s cannot survive. Raw queues are fresh per run and unlinked as soon as
//! the peer has opened them; the client queues (created through ipcd with
//! lifetime session) are created once per size and deleted after it. All have
//! `--capacity` slots of exactly `size` bytes.
//!
//! Targets: ipc-client round trip p50 ≤ 1.1× raw, throughput ≥ 0.9× raw.

use std::time::Duration;

use anyhow::bail;
use ipc_client::{Client, MessageQueue};

use super::Ctx;
use super::client_mq;
use super::loops::{Budget, abba, round_trip, round_trip_blocks, send_stream};
use super::peer::{MECHANISMS, Mechanism, PeerArgs, PeerKind, PeerProcess, Role};
use super::raw::{self, RawQueue};
use super::report::{Row, Target};
use super::stats::{PairRatios, Rate, Samples, median};

/// Highest ipc-client / raw round-trip p50 ratio that meets the target.
const MAX_ROUND_TRIP_RATIO: f64 = 1.1;
/// Lowest ipc-client / raw throughput ratio that meets the target.
const MIN_THROUGHPUT_RATIO: f64 = 0.9;

/// Timed round trips per block (each mechanism's share of a run is split into these).
const ROUND_TRIP_BLOCK: u64 = 500;
/// Messages per throughput block. Single blocks vary by ±30 % on a 2-vCPU VM
/// (scheduling), so a run needs many of them: at the default 200 000 messages
/// per mechanism, a run's ratio is within about ±5 %.
const THROUGHPUT_BLOCK: u64 = 2_000;
/// Untimed exchanges at the start of every round-trip block, after the pipe
/// handshake that starts it.
const BLOCK_LEAD_IN: u64 = 4;

/// Both mechanisms, in the order their results are stored.
/// The mechanism's label in the table.
fn label(m: Mechanism) -> &'static str {
    match m {
        Mechanism::Raw => "mq raw",
        Mechanism::Client => "mq ipc-client",
    }
}

/// Runs the section: four rows per size.
pub fn run(ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
    let args = ctx.args;
    ctx.progress
        .inc_length((args.sizes.len() * args.repeat * 2) as u64);
    let mut client = ctx.connect()?;
    let mut latency_rows = Vec::new();
    let mut throughput_rows = Vec::new();
    for &size in &args.sizes {
        let mut cq = ClientQueues::create(ctx, &mut client, size)?;
        let measured = measure_size(ctx, &mut cq, size);
        let deleted = cq.delete(&mut client);
        let (latency, throughput) = measured?;
        deleted?;
        latency_rows.extend(latency);
        throughput_rows.extend(throughput);
    }
    latency_rows.extend(throughput_rows);
    Ok(latency_rows)
}

/// Every run of one size, per mechanism (indexed by [`Mechanism::index`]).
#[derive(Default)]
struct Measured {
    /// Round-trip samples, one per run.
    rt: [Vec<Samples>; 2],
    /// Throughput, one per run.
    tp: [Vec<Rate>; 2],
    /// Per run: the median of its pair ratios (shown per run).
    rt_runs: Vec<f64>,
    tp_runs: Vec<f64>,
    /// All pair ratios pooled (their median is the row's `vs raw`).
    rt_pairs: Vec<f64>,
    tp_pairs: Vec<f64>,
}

/// All rounds for one size: its two round-trip rows and its two throughput rows.
fn measure_size(
    ctx: &Ctx<'_>,
    cq: &mut ClientQueues,
    size: usize,
) -> anyhow::Result<(Vec<Row>, Vec<Row>)> {
    let mut m = Measured::default();
    for round in 1..=ctx.args.repeat {
        ctx.step(format!("mq round trip, {size} B, run {round}"));
        let (samples, pairs) = round_trip_run(ctx, cq, size)?;
        let [raw, client] = samples.map(Samples::new);
        m.rt_runs.extend(median(&pairs));
        m.rt_pairs.extend(pairs);
        m.rt[0].push(raw);
        m.rt[1].push(client);
        ctx.done();

        ctx.step(format!("mq throughput, {size} B, run {round}"));
        let ([raw, client], pairs) = throughput_run(ctx, cq, size)?;
        m.tp_runs.extend(median(&pairs));
        m.tp_pairs.extend(pairs);
        m.tp[0].push(raw);
        m.tp[1].push(client);
        ctx.done();
    }
    Ok((
        MECHANISMS.map(|mech| m.latency_row(mech, size)).into(),
        MECHANISMS.map(|mech| m.throughput_row(mech, size)).into(),
    ))
}

impl Measured {
    /// The round-trip row of mechanism `m`.
    fn latency_row(&self, m: Mechanism, size: usize) -> Row {
        let client = m == Mechanism::Client;
        let runs = &self.rt[m.index()];
        let pick = |f: fn(&Samples) -> Option<u64>| {
            median(
                &runs
                    .iter()
                    .filter_map(|s| f(s).map(|ns| ns as f64 / 1e3))
                    .collect::<Vec<_>>(),
            )
        };
        let vs_raw = client.then(|| median(&self.rt_pairs)).flatten();
        Row {
            measure: "round trip".into(),
            mechanism: label(m).into(),
            size: Some(size),
            p50_us: pick(Samples::p50),
            p99_us: pick(Samples::p99),
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
            per_run: runs
                .iter()
                .filter_map(|s| s.p50().map(|ns| ns as f64 / 1e3))
                .collect(),
            per_run_vs_raw: if client {
                self.rt_runs.clone()
            } else {
                Vec::new()
            },
            ..Row::default()
        }
    }

    /// The one-way throughput row of mechanism `m`.
    fn throughput_row(&self, m: Mechanism, size: usize) -> Row {
        let client = m == Mechanism::Client;
        let runs = &self.tp[m.index()];
        let vs_raw = client.then(|| median(&self.tp_pairs)).flatten();
        Row {
            measure: "one-way".into(),
            mechanism: label(m).into(),
            size: Some(size),
            per_second: median(&runs.iter().map(Rate::per_second).collect::<Vec<_>>()),
            mb_per_second: median(&runs.iter().map(Rate::mb_per_second).collect::<Vec<_>>()),
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
                self.tp_runs.clone()
            } else {
                Vec::new()
            },
            ..Row::default()
        }
    }
}

/// The median of some counts (rounded down), 0 if there are none.
fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    median(&values.map(|v| v as f64).collect::<Vec<_>>()).unwrap_or(0.0) as u64
}

/// The queues the ipc-client runs of one size use. Created once per size
/// (through ipcd, lifetime session) and reused by every run: each run's peer
/// opens them afresh, and every block leaves them empty.
struct ClientQueues {
    /// Object names: ping, pong, stream.
    names: [String; 3],
    /// This process's handles (read-write), in the same order.
    queues: [MessageQueue; 3],
}

impl ClientQueues {
    /// Creates the three queues for messages of `size` bytes.
    fn create(ctx: &Ctx<'_>, client: &mut Client, size: usize) -> anyhow::Result<Self> {
        let names = [(); 3].map(|()| client_mq::unique_name());
        let mut queues = Vec::with_capacity(3);
        for name in &names {
            match client_mq::create(client, name, ctx.args.capacity, size) {
                Ok(q) => queues.push(q),
                Err(e) => {
                    drop(queues);
                    let _ = client_mq::delete_all(client, &names);
                    return Err(e);
                }
            }
        }
        let Ok(queues) = <[MessageQueue; 3]>::try_from(queues) else {
            unreachable!("three queues were pushed")
        };
        Ok(ClientQueues { names, queues })
    }

    /// Closes this process's handles and deletes the queues.
    fn delete(self, client: &mut Client) -> anyhow::Result<()> {
        let ClientQueues { names, queues } = self;
        drop(queues);
        client_mq::delete_all(client, &names)
    }
}

/// The peer's arguments for one run.
fn peer_args(
    ctx: &Ctx<'_>,
    role: Role,
    raw: [Option<&str>; 2],
    client: [Option<&str>; 2],
    size: usize,
) -> PeerArgs {
    let own = |s: Option<&str>| s.map(str::to_owned);
    PeerArgs {
        kind: PeerKind::Mq,
        role,
        raw_rx: own(raw[0]),
        raw_tx: own(raw[1]),
        client_rx: own(client[0]),
        client_tx: own(client[1]),
        size,
        socket: ctx.socket.map(|p| p.to_path_buf()),
        parent: Some(std::process::id()),
    }
}

/// One round-trip run: one peer, both mechanisms in alternating blocks.
/// Returns nanoseconds per exchange (raw, ipc-client) and, per pair of
/// adjacent blocks, the ratio of their p50s (ipc-client / raw).
fn round_trip_run(
    ctx: &Ctx<'_>,
    cq: &mut ClientQueues,
    size: usize,
) -> anyhow::Result<([Vec<u64>; 2], Vec<f64>)> {
    let capacity = ctx.args.capacity;
    let (ping_name, pong_name) = (raw::unique_name(), raw::unique_name());
    let mut ping = RawQueue::create(&ping_name, capacity, size)?;
    let mut pong = RawQueue::create(&pong_name, capacity, size)?;
    let args = peer_args(
        ctx,
        Role::Echo,
        [Some(&ping_name), Some(&pong_name)],
        [Some(&cq.names[0]), Some(&cq.names[1])],
        size,
    );
    let mut peer = PeerProcess::spawn(&args)?;
    ping.unlink()?;
    pong.unlink()?;
    let [client_ping, client_pong, _] = &mut cq.queues;

    let mut block = |m: Mechanism, budget: Budget, lead_in: u64| -> anyhow::Result<Vec<u64>> {
        peer.start(m)?;
        let s = match m {
            Mechanism::Raw => round_trip(&mut ping, &mut pong, size, lead_in, budget)?,
            Mechanism::Client => round_trip(client_ping, client_pong, size, lead_in, budget)?,
        };
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
/// process sends, the peer counts. Returns the rates over all timed blocks
/// (raw, ipc-client) and, per pair of adjacent blocks, the ratio of their
/// rates (ipc-client / raw).
fn throughput_run(
    ctx: &Ctx<'_>,
    cq: &mut ClientQueues,
    size: usize,
) -> anyhow::Result<([Rate; 2], Vec<f64>)> {
    let name = raw::unique_name();
    let mut q = RawQueue::create(&name, ctx.args.capacity, size)?;
    let args = peer_args(
        ctx,
        Role::Sink,
        [Some(&name), None],
        [Some(&cq.names[2]), None],
        size,
    );
    let mut peer = PeerProcess::spawn(&args)?;
    q.unlink()?;
    let client_q = &mut cq.queues[2];

    let mut totals = [Rate {
        messages: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    }; 2];
    let mut pairs = PairRatios::default();
    let mut block = |m: Mechanism, n: u64, keep: bool| -> anyhow::Result<()> {
        peer.start(m)?;
        let sent = match m {
            Mechanism::Raw => send_stream(&mut q, size, Budget::count(n))?,
            Mechanism::Client => send_stream(client_q, size, Budget::count(n))?,
        };
        let got = peer.report()?.rate();
        // The peer counts the messages after the first one (the first starts its clock).
        if got.messages + 1 != sent {
            bail!(
                "bench peer counted {} messages, {sent} were sent",
                got.messages + 1
            );
        }
        if keep {
            pairs.record(m.index(), got.per_second());
            let total = &mut totals[m.index()];
            total.messages += got.messages;
            total.bytes += got.bytes;
            total.elapsed += got.elapsed;
        }
        Ok(())
    };
    // One untimed block each first (the very first block is often much slower).
    for m in MECHANISMS {
        block(m, THROUGHPUT_BLOCK, false)?;
    }
    abba(
        MECHANISMS,
        ctx.throughput_budget(),
        THROUGHPUT_BLOCK,
        |m, n| block(m, n, true),
    )?;
    peer.finish()?;
    if totals.iter().any(|t| t.elapsed.is_zero()) {
        bail!("throughput run too short to time; raise --messages or --duration");
    }
    Ok((totals, pairs.ratios))
}
