//! The cost a ratio leaves out: before an application sends its first
//! message through ipc-client, it connects to ipcd, shakes hands and opens
//! the object (the daemon passes the descriptor over `SCM_RIGHTS`). A raw
//! mechanism has nothing of the kind, so the `vs raw` ratios never show it.
//!
//! Each run times `--connects` fresh connections one after the other:
//! `Client::connect_to` (connect and hello/welcome), then the kind's open
//! call on that connection, then closes it. Three rows: connect + hello, the
//! open alone, and both. Runs where the bench sits relative to ipcd as the
//! placement says (see [`Ctx::with_daemon`]).

use std::time::Instant;

use ipc_client::Client;

use super::ctx::Ctx;
use super::datapath::median_u64;
use super::report::Row;
use super::stats::{Samples, median, nanos};

/// Untimed connections before each run.
const WARMUP: u64 = 10;

/// The rows for `open_call` (e.g. `open_mq`), which `open` performs on a
/// fresh connection and then drops.
pub fn rows(
    ctx: &Ctx<'_>,
    open_call: &str,
    mut open: impl FnMut(&mut Client) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Row>> {
    let repeat = ctx.opts.repeat;
    ctx.progress.inc_length(repeat as u64);
    ctx.with_daemon(|placement| {
        // Per run: connect + hello, open, both.
        let mut runs: [Vec<Samples>; 3] = Default::default();
        for round in 1..=repeat {
            ctx.step(format!("connect + {open_call}, run {round}"));
            let mut timed: [Vec<u64>; 3] = Default::default();
            for i in 0..WARMUP + ctx.opts.connects {
                let t0 = Instant::now();
                let mut client = ctx.connect()?;
                let t1 = Instant::now();
                open(&mut client)?;
                let t2 = Instant::now();
                drop(client);
                if i >= WARMUP {
                    timed[0].push(nanos(t1 - t0));
                    timed[1].push(nanos(t2 - t1));
                    timed[2].push(nanos(t2 - t0));
                }
            }
            for (run, t) in runs.iter_mut().zip(timed) {
                run.push(Samples::new(t));
            }
            ctx.done();
        }
        let labels = [
            "connect + hello".to_owned(),
            format!("{open_call} (fd passing)"),
            format!("connect + hello + {open_call}"),
        ];
        Ok(labels
            .into_iter()
            .zip(&runs)
            .map(|(mechanism, runs)| row(mechanism, placement, runs))
            .collect())
    })
}

/// One row: medians over the runs of their p50 and p99.
fn row(mechanism: String, placement: &str, runs: &[Samples]) -> Row {
    let us = |f: fn(&Samples) -> Option<u64>| -> Vec<f64> {
        runs.iter()
            .filter_map(|s| f(s).map(|ns| ns as f64 / 1e3))
            .collect()
    };
    Row {
        measure: "setup".into(),
        mechanism,
        placement: placement.to_owned(),
        p50_us: median(&us(Samples::p50)),
        p99_us: median(&us(Samples::p99)),
        runs: runs.len(),
        operations: median_u64(runs.iter().map(|s| s.len() as u64)),
        per_run: us(Samples::p50),
        ..Row::default()
    }
}
