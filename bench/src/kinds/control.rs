//! The `control` kind: the daemon's request path on one connection.
//!
//! - ping round trip: one `Ping` at a time, per-request `Instant` timings;
//! - stat, one at a time: the same for `Stat` of a queue;
//! - stat pipelined: batches of `--batch` `Stat` requests written at once with
//!   [`ipc_client::Client::pipeline`], answers read as they come; operations
//!   per second. Target: ≥ 50 000 per second.
//!
//! The stat'ed queue is created for the bench (lifetime session) and deleted
//! at the end. The bench sits next to ipcd or away from it as the placement
//! says (see [`Ctx::with_daemon`]).

use std::time::Instant;

use anyhow::{Context as _, bail};
use ipc_client::{Client, Request};

use super::mq;
use crate::abba::Budget;
use crate::ctx::Ctx;
use crate::kind::KindBench;
use crate::objects;
use crate::report::{Row, Target};
use crate::stats::{Samples, median, nanos, per_second};

/// Pipelined stat operations per second that meet the target.
const MIN_PIPELINED_STATS: f64 = 50_000.0;

/// The `control` entry of the kinds table.
pub struct Control;

impl KindBench for Control {
    fn name(&self) -> &'static str {
        "control"
    }

    fn about(&self) -> &'static str {
        "the control plane: ping and stat on one connection"
    }

    /// Ping, stat one at a time, stat pipelined.
    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        ctx.progress.inc_length(3 * ctx.opts.repeat as u64);
        let mut client = ctx.connect()?;
        let name = objects::unique_name();
        let queue = mq::create(&mut client, &name, ctx.opts.capacity, 64)?;
        let result = ctx.with_daemon(|placement| {
            let mut rows = measure(ctx, &mut client, queue.address())?;
            for row in &mut rows {
                row.placement = placement.to_owned();
            }
            Ok(rows)
        });
        drop(queue);
        let deleted = objects::delete_all(&mut client, "mq", &[name]);
        let rows = result?;
        deleted?;
        Ok(rows)
    }
}

/// The measurements proper, against the queue at `address`.
fn measure(ctx: &Ctx<'_>, client: &mut Client, address: &str) -> anyhow::Result<Vec<Row>> {
    let (budget, warmup) = (ctx.round_trip_budget(), ctx.warmup());
    let mut pings: Vec<(Samples, f64)> = Vec::new();
    let mut stats: Vec<(Samples, f64)> = Vec::new();
    let mut pipelined: Vec<(u64, f64)> = Vec::new();
    for round in 1..=ctx.opts.repeat {
        ctx.step(format!("control: ping, run {round}"));
        pings.push(one_at_a_time(budget, warmup, || {
            client.ping().context("ping")
        })?);
        ctx.done();
        ctx.step(format!("control: stat, run {round}"));
        stats.push(one_at_a_time(budget, warmup, || {
            client
                .stat(address)
                .map(drop)
                .with_context(|| format!("stat {address}"))
        })?);
        ctx.done();
        ctx.step(format!("control: stat pipelined, run {round}"));
        pipelined.push(pipelined_stats(
            client,
            address,
            ctx.opts.batch,
            ctx.throughput_budget(),
        )?);
        ctx.done();
    }
    let latency_row = |measure: &str, runs: &[(Samples, f64)]| {
        let pick = |f: fn(&Samples) -> Option<u64>| {
            median(
                &runs
                    .iter()
                    .filter_map(|(s, _)| f(s).map(|ns| ns as f64 / 1e3))
                    .collect::<Vec<_>>(),
            )
        };
        Row {
            measure: measure.into(),
            mechanism: "ipc-client".into(),
            p50_us: pick(Samples::p50),
            p99_us: pick(Samples::p99),
            per_second: median(&runs.iter().map(|(_, r)| *r).collect::<Vec<_>>()),
            runs: runs.len(),
            operations: median(&runs.iter().map(|(s, _)| s.len() as f64).collect::<Vec<_>>())
                .unwrap_or(0.0) as u64,
            per_run: runs
                .iter()
                .filter_map(|(s, _)| s.p50().map(|ns| ns as f64 / 1e3))
                .collect(),
            ..Row::default()
        }
    };
    let rate = median(&pipelined.iter().map(|(_, r)| *r).collect::<Vec<_>>());
    let pipelined_row = Row {
        measure: format!("stat pipelined ×{}", ctx.opts.batch),
        mechanism: "ipc-client".into(),
        per_second: rate,
        target: rate
            .map(|r| Target::at_least("≥ 50 k ops/s", "per_second", MIN_PIPELINED_STATS, r)),
        runs: pipelined.len(),
        operations: median(&pipelined.iter().map(|(n, _)| *n as f64).collect::<Vec<_>>())
            .unwrap_or(0.0) as u64,
        per_run: pipelined.iter().map(|(_, r)| *r).collect(),
        ..Row::default()
    };
    Ok(vec![
        latency_row("ping", &pings),
        latency_row("stat", &stats),
        pipelined_row,
    ])
}

/// Times `op` one call at a time, after `warmup` untimed calls; returns the
/// per-call nanoseconds and the calls per second over the timed loop.
fn one_at_a_time(
    budget: Budget,
    warmup: u64,
    mut op: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(Samples, f64)> {
    for _ in 0..warmup {
        op()?;
    }
    let mut samples = Vec::with_capacity(budget.count.min(1 << 20) as usize);
    let start = Instant::now();
    loop {
        let t0 = Instant::now();
        if samples.len() as u64 >= budget.count || budget.time.is_some_and(|t| t0 - start >= t) {
            break;
        }
        op()?;
        samples.push(nanos(t0.elapsed()));
    }
    let rate = per_second(samples.len() as u64, start.elapsed());
    Ok((Samples::new(samples), rate))
}

/// Sends `Stat` requests in pipelined batches of `batch` until the budget is
/// spent (rounded up to whole batches); returns operations and operations per second.
fn pipelined_stats(
    client: &mut Client,
    address: &str,
    batch: usize,
    budget: Budget,
) -> anyhow::Result<(u64, f64)> {
    let requests = vec![
        Request::Stat {
            address: address.to_owned()
        };
        batch
    ];
    // One untimed batch, so connection buffers are warm.
    check_answers(
        client.pipeline(&requests).context("pipelined stat")?,
        address,
    )?;
    let start = Instant::now();
    let mut done = 0u64;
    while done < budget.count && budget.time.is_none_or(|t| start.elapsed() < t) {
        check_answers(
            client.pipeline(&requests).context("pipelined stat")?,
            address,
        )?;
        done += batch as u64;
    }
    Ok((done, per_second(done, start.elapsed())))
}

/// Fails on the first refused request of a batch.
fn check_answers(
    answers: Vec<ipc_client::Result<ipc_client::Reply>>,
    address: &str,
) -> anyhow::Result<()> {
    for answer in answers {
        if let Err(e) = answer {
            bail!("stat {address} in a pipeline failed: {e}");
        }
    }
    Ok(())
}
