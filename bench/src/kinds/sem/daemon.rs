//! The `sem` kind's rows through the daemon, on one connection:
//!
//! - acquire + release pipelined: batches of `--batch` requests, half
//!   `Acquire` and half `Release`, alternating, written at once with
//!   [`Client::pipeline`]; pairs per second, for a `sem:` of one permit and
//!   for a `lock:`. Target: ≥ 50 000 pairs/s.
//! - lock round trip vs ping: blocks of [`BLOCK`] `Ping`s and blocks of
//!   [`BLOCK`] uncontended `lock:` acquires (each followed by an untimed
//!   release) alternate in ABBA order; `vs ping` is the median over adjacent
//!   pairs of the ratio of their p50s. Target: ≤ 1.2× a ping.
//!
//! The objects (`sem:`/`lock:ipcbench-<pid>-<n>`, lifetime session) are made
//! for these rows and deleted after them.

use std::time::Instant;

use anyhow::{Context as _, bail};
use ipc_client::protocol::{
    CreateSpec, KindOp, KindParams, Lifetime, LockOp, LockParams, SemOp, SemParams,
};
use ipc_client::{Client, Request};

use crate::abba::{Budget, abba};
use crate::ctx::Ctx;
use crate::objects;
use crate::report::{Row, Target};
use crate::stats::{PairRatios, Samples, median, nanos, per_second};

/// Pipelined pairs per second that meet the target.
const MIN_PAIRS: f64 = 50_000.0;
/// Highest lock acquire / ping p50 ratio that meets the target.
const MAX_VS_PING: f64 = 1.2;
/// Timed requests per block of the lock-vs-ping rows.
const BLOCK: u64 = 500;

/// All the daemon rows; the objects are deleted whatever happens.
pub fn rows(ctx: &Ctx<'_>, client: &mut Client) -> anyhow::Result<Vec<Row>> {
    let sem = objects::unique_name();
    let one = KindParams::Sem(SemParams {
        initial: 1,
        max: Some(1),
    });
    client
        .create(&format!("sem:{sem}"), session(one))
        .with_context(|| format!("cannot create sem:{sem}"))?;
    let lock = objects::unique_name();
    let plain = KindParams::Lock(LockParams { reentrant: false });
    let made = client
        .create(&format!("lock:{lock}"), session(plain))
        .with_context(|| format!("cannot create lock:{lock}"));
    let rows = made.and_then(|_| {
        ctx.with_daemon(|placement| {
            let mut rows = measure(ctx, client, &sem, &lock)?;
            for row in &mut rows {
                row.placement = placement.to_owned();
            }
            Ok(rows)
        })
    });
    let deleted = objects::delete_all(client, "sem", &[sem]).and(objects::delete_all(
        client,
        "lock",
        &[lock],
    ));
    let rows = rows?;
    deleted?;
    Ok(rows)
}

/// What the bench creates: mode 0600, gone with the connection.
pub fn session(params: KindParams) -> CreateSpec {
    CreateSpec {
        mode: None,
        lifetime: Lifetime::Session,
        adopt: false,
        params,
    }
}

fn measure(ctx: &Ctx<'_>, client: &mut Client, sem: &str, lock: &str) -> anyhow::Result<Vec<Row>> {
    ctx.progress.inc_length(3 * ctx.opts.repeat as u64);
    let pairs = |op: fn(bool) -> KindOp, address: String| {
        let requests: Vec<Request> = (0..ctx.opts.batch.max(2))
            .map(|i| Request::Kind {
                address: address.clone(),
                op: op(i % 2 == 0),
            })
            .collect();
        requests
    };
    let sem_batch = pairs(
        |acquire| {
            KindOp::Sem(if acquire {
                SemOp::Acquire { timeout_ms: None }
            } else {
                SemOp::Release
            })
        },
        format!("sem:{sem}"),
    );
    let lock_batch = pairs(
        |acquire| {
            KindOp::Lock(if acquire {
                LockOp::Acquire { timeout_ms: None }
            } else {
                LockOp::Release
            })
        },
        format!("lock:{lock}"),
    );
    let (mut sem_runs, mut lock_runs, mut vs_ping) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ctx.opts.repeat {
        ctx.step(format!("sem: acquire+release pipelined, run {round}"));
        sem_runs.push(pipelined(client, &sem_batch, ctx.throughput_budget())?);
        ctx.done();
        ctx.step(format!("lock: acquire+release pipelined, run {round}"));
        lock_runs.push(pipelined(client, &lock_batch, ctx.throughput_budget())?);
        ctx.done();
        ctx.step(format!("lock: acquire vs ping, run {round}"));
        vs_ping.push(lock_vs_ping(
            client,
            lock,
            ctx.round_trip_budget(),
            ctx.warmup(),
        )?);
        ctx.done();
    }
    let batch = ctx.opts.batch.max(2);
    Ok(vec![
        pipelined_row(
            &format!("acquire+release pipelined ×{batch}"),
            "sem ipcd",
            &sem_runs,
        ),
        pipelined_row(
            &format!("acquire+release pipelined ×{batch}"),
            "lock ipcd",
            &lock_runs,
        ),
        lock_row(&vs_ping),
    ])
}

/// Sends `batch` pipelined until the budget is spent; returns the pairs done
/// and pairs per second.
fn pipelined(client: &mut Client, batch: &[Request], budget: Budget) -> anyhow::Result<(u64, f64)> {
    let per_batch = (batch.len() / 2) as u64;
    check(
        client
            .pipeline(batch)
            .context("pipelined acquire+release")?,
    )?;
    let start = Instant::now();
    let mut done = 0u64;
    while done < budget.count && budget.time.is_none_or(|t| start.elapsed() < t) {
        check(
            client
                .pipeline(batch)
                .context("pipelined acquire+release")?,
        )?;
        done += per_batch;
    }
    Ok((done, per_second(done, start.elapsed())))
}

/// Fails on the first refused request of a batch.
fn check(answers: Vec<ipc_client::Result<ipc_client::Reply>>) -> anyhow::Result<()> {
    for answer in answers {
        if let Err(e) = answer {
            bail!("a pipelined acquire or release failed: {e}");
        }
    }
    Ok(())
}

/// One run of alternating ping and lock-acquire blocks: the acquire samples,
/// the ping samples and the pair ratios.
fn lock_vs_ping(
    client: &mut Client,
    lock: &str,
    budget: Budget,
    warmup: u64,
) -> anyhow::Result<(Samples, Samples, Vec<f64>)> {
    #[derive(Clone, Copy)]
    enum Op {
        Ping,
        Lock,
    }
    let mut one = |op: Op, n: u64| -> anyhow::Result<Vec<u64>> {
        let mut samples = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let t0 = Instant::now();
            match op {
                Op::Ping => client.ping().context("ping")?,
                Op::Lock => {
                    client.lock_acquire(lock, None).context("lock acquire")?;
                    samples.push(nanos(t0.elapsed()));
                    client.lock_release(lock).context("lock release")?;
                    continue;
                }
            }
            samples.push(nanos(t0.elapsed()));
        }
        Ok(samples)
    };
    one(Op::Ping, warmup)?;
    one(Op::Lock, warmup)?;
    let (mut locks, mut pings) = (Vec::new(), Vec::new());
    let mut pairs = PairRatios::default();
    abba([Op::Ping, Op::Lock], budget, BLOCK, |op, n| {
        let s = one(op, n)?;
        let p50 = Samples::new(s.clone()).p50().unwrap_or(0) as f64;
        match op {
            // Index 0 is the yardstick, 1 what is held to it.
            Op::Ping => {
                pairs.record(0, p50);
                pings.extend(s);
            }
            Op::Lock => {
                pairs.record(1, p50);
                locks.extend(s);
            }
        }
        Ok(())
    })?;
    Ok((Samples::new(locks), Samples::new(pings), pairs.ratios))
}

fn pipelined_row(measure: &str, mechanism: &str, runs: &[(u64, f64)]) -> Row {
    let rate = median(&runs.iter().map(|(_, r)| *r).collect::<Vec<_>>());
    Row {
        measure: measure.into(),
        mechanism: mechanism.into(),
        per_second: rate,
        target: rate.map(|r| Target::at_least("≥ 50 k pairs/s", "per_second", MIN_PAIRS, r)),
        runs: runs.len(),
        operations: median(&runs.iter().map(|(n, _)| *n as f64).collect::<Vec<_>>()).unwrap_or(0.0)
            as u64,
        per_run: runs.iter().map(|(_, r)| *r).collect(),
        ..Row::default()
    }
}

fn lock_row(runs: &[(Samples, Samples, Vec<f64>)]) -> Row {
    let us = |f: fn(&Samples) -> Option<u64>,
              which: fn(&(Samples, Samples, Vec<f64>)) -> &Samples| {
        median(
            &runs
                .iter()
                .filter_map(|r| f(which(r)).map(|ns| ns as f64 / 1e3))
                .collect::<Vec<_>>(),
        )
    };
    let all: Vec<f64> = runs.iter().flat_map(|r| r.2.iter().copied()).collect();
    let ratio = median(&all);
    Row {
        measure: "lock acquire vs ping".into(),
        mechanism: "lock ipcd".into(),
        p50_us: us(Samples::p50, |r| &r.0),
        p99_us: us(Samples::p99, |r| &r.0),
        vs_raw: ratio,
        target: ratio.map(|r| Target::at_most("≤ 1.2× ping", "vs_raw", MAX_VS_PING, r)),
        runs: runs.len(),
        operations: median(&runs.iter().map(|r| r.0.len() as f64).collect::<Vec<_>>())
            .unwrap_or(0.0) as u64,
        per_run: runs
            .iter()
            .filter_map(|r| r.0.p50().map(|ns| ns as f64 / 1e3))
            .collect(),
        per_run_vs_raw: runs.iter().filter_map(|r| median(&r.2)).collect(),
        ..Row::default()
    }
}
