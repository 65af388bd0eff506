//! The `memory` kind: what an idle connection costs the daemon in resident
//! memory, a cost no ratio shows.
//!
//! Each run opens `--connections` connections (each one connected and past
//! its hello, then left idle), reads ipcd's `VmRSS` from `/proc/<pid>/status`
//! (the pid from `Client::status`), closes them all, waits until ipcd has
//! seen them go, and reads `VmRSS` again. The rows: ipcd's RSS before the
//! first run, with the connections open, after closing them, and the growth
//! per connection over the first reading. Kernel memory (socket buffers) is
//! not in `VmRSS` and not counted.
//!
//! The daemon's `max_connections` (1024 by default) bounds how many it
//! takes, less the connections already open and, for a bench not run by
//! root, the 32 kept for root; unprivileged uids also meet
//! `max_connections_per_uid` (256 by default). The bench opens what fits and
//! says so in a note. It raises its own open-file soft limit to the hard one
//! if it needs to.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipc_client::Client;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::ctx::Ctx;
use crate::daemon::Daemon;
use crate::datapath::median_u64;
use crate::kind::KindBench;
use crate::report::Row;
use crate::stats::median;

/// Connections of `max_connections` ipcd keeps for root (its default).
const RESERVED_FOR_ROOT: u32 = 32;
/// How long to wait for ipcd to notice closed connections.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `memory` entry of the kinds table.
pub struct Memory;

impl KindBench for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn about(&self) -> &'static str {
        "ipcd's resident memory per idle connection (opens --connections connections)"
    }

    fn placed(&self) -> bool {
        false
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        let Some(daemon) = ctx.daemon else {
            ctx.note("memory: ipcd's process is not visible from here (/proc/<pid>); no rows");
            return Ok(Vec::new());
        };
        let mut probe = ctx.connect()?;
        let wanted = ctx.opts.connections;
        let n = room(ctx, &mut probe, wanted)?;
        raise_nofile(n + 256)?;
        ctx.progress.inc_length(ctx.opts.repeat as u64);
        let base = rss(daemon)?;
        ctx.note(
            "memory: `per connection` is the growth over ipcd's VmRSS before the first run; \
             ipcd keeps what it allocated (`after closing`), so a daemon that held as many \
             connections before shows less: use a fresh ipcd",
        );
        let mut runs: Vec<Reading> = Vec::new();
        for round in 1..=ctx.opts.repeat {
            ctx.step(format!("memory: {n} connections, run {round}"));
            runs.push(one_run(ctx, daemon, &mut probe, n)?);
            ctx.done();
        }
        Ok(rows(base, &runs))
    }
}

/// ipcd's RSS with the connections open and after they closed, and how many
/// were open.
struct Reading {
    /// Connections open at the first reading.
    open: u64,
    /// RSS with them open, KiB.
    with: u64,
    /// RSS once they closed, KiB.
    after: u64,
}

/// ipcd's resident memory now, KiB.
fn rss(daemon: Daemon) -> anyhow::Result<u64> {
    daemon
        .rss_kib()
        .with_context(|| format!("cannot read VmRSS of ipcd (pid {})", daemon.pid))
}

/// How many of `wanted` connections ipcd will take now, by its status; notes
/// when that is fewer.
fn room(ctx: &Ctx<'_>, probe: &mut Client, wanted: u64) -> anyhow::Result<u64> {
    let status = probe.status().context("status")?;
    let reserved = if nix::unistd::geteuid().is_root() {
        0
    } else {
        RESERVED_FOR_ROOT
    };
    let free = status
        .limits
        .max_connections
        .saturating_sub(status.sessions + reserved);
    let n = wanted.min(u64::from(free));
    if n < wanted {
        ctx.note(format!(
            "memory: ipcd's max_connections is {} with {} open, so the bench held {n} \
             connections, not {wanted}; raise max_connections in ipcd's config for more",
            status.limits.max_connections, status.sessions
        ));
    }
    Ok(n)
}

/// Raises this process's open-file soft limit to at least `needed`, up to the hard limit.
fn raise_nofile(needed: u64) -> anyhow::Result<()> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    if soft < needed {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("cannot raise RLIMIT_NOFILE")?;
    }
    Ok(())
}

/// Opens `n` connections, reads ipcd's RSS, closes them, waits until ipcd
/// has let them go, and reads it again.
fn one_run(ctx: &Ctx<'_>, daemon: Daemon, probe: &mut Client, n: u64) -> anyhow::Result<Reading> {
    let before = probe.status().context("status")?.sessions;
    let mut held = Vec::with_capacity(n as usize);
    for i in 0..n {
        match ctx.connect() {
            Ok(c) => held.push(c),
            Err(e) => {
                ctx.note(format!(
                    "memory: ipcd refused connection {} of {n}: {e:#}",
                    i + 1
                ));
                break;
            }
        }
    }
    let open = held.len() as u64;
    let with = rss(daemon)?;
    drop(held);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while probe.status().context("status")?.sessions > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Reading {
        open,
        with,
        after: rss(daemon)?,
    })
}

/// The rows: RSS before, with the connections, per connection, after.
fn rows(base: u64, runs: &[Reading]) -> Vec<Row> {
    let kib = |f: &dyn Fn(&Reading) -> f64| -> (Option<f64>, Vec<f64>) {
        let per_run: Vec<f64> = runs.iter().map(f).collect();
        (median(&per_run), per_run)
    };
    let open = median_u64(runs.iter().map(|r| r.open));
    let row = |mechanism: String, (kib, per_run): (Option<f64>, Vec<f64>)| Row {
        measure: "memory".into(),
        mechanism,
        kib,
        runs: per_run.len(),
        operations: open,
        per_run,
        ..Row::default()
    };
    let growth = |r: &Reading| r.with.saturating_sub(base) as f64 / r.open.max(1) as f64;
    vec![
        Row {
            runs: 1,
            per_run: vec![base as f64],
            ..row("ipcd VmRSS before".into(), (Some(base as f64), Vec::new()))
        },
        row(
            format!("ipcd VmRSS, {open} connections"),
            kib(&|r| r.with as f64),
        ),
        row("ipcd VmRSS per connection".into(), kib(&growth)),
        row("ipcd VmRSS after closing".into(), kib(&|r| r.after as f64)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_over_the_first_reading() {
        let runs = [
            Reading {
                open: 1000,
                with: 20_000,
                after: 19_000,
            },
            Reading {
                open: 1000,
                with: 20_500,
                after: 19_500,
            },
        ];
        let rows = rows(10_000, &runs);
        assert_eq!(rows[0].kib, Some(10_000.0));
        assert_eq!(rows[1].mechanism, "ipcd VmRSS, 1000 connections");
        assert_eq!(rows[2].kib, Some(10.25));
        assert_eq!(rows[2].per_run, [10.0, 10.5]);
        assert_eq!(rows[3].kib, Some(19_250.0));
    }
}
