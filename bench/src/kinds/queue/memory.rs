//! What queued messages cost the daemon in resident memory: ipcd's `VmRSS`
//! (`/proc/<pid>/status`) before and after one producer puts [`MESSAGES`]
//! messages of 64 B into one queue (batches of 64, nobody taking them), and
//! again once the queue is deleted. Target: the messages add at most
//! [`MAX_ADDED_MIB`] MiB.
//!
//! The queue's `max_bytes` is 256 MiB (each message counts its 64 bytes
//! plus 64 of bookkeeping: 128 MB in all), more than an unprivileged uid's
//! default share of queue memory; the bench run by root is not held to a
//! share. If ipcd refuses the queue, the rows say why.
//!
//! Measured once per bench, in the first placement: the allocator keeps
//! what the first million freed, so a second fill would grow RSS by
//! little and say nothing about the cost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use ipc_client::protocol::KindDetails;
use ipc_client::{QueueOptions, QueueSender};

use super::SIZE;
use super::sequenced::SEQUENCE_BYTES;
use crate::ctx::Ctx;
use crate::daemon::Daemon;
use crate::objects;
use crate::report::{Row, Target};

/// Messages put.
pub const MESSAGES: u64 = 1_000_000;
/// Messages per Put.
const BATCH: usize = 64;
/// The queue's byte limit.
const MAX_BYTES: u64 = 256 << 20;
/// The most ipcd's RSS may grow by, MiB.
pub const MAX_ADDED_MIB: f64 = 200.0;
/// How long to wait after the delete before the last reading: ipcd looks at
/// whether to give memory back every 2 s.
const SETTLE: Duration = Duration::from_millis(2500);

/// Whether this bench has measured it already.
static MEASURED: AtomicBool = AtomicBool::new(false);

/// ipcd's RSS at each step, KiB.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Readings {
    before: u64,
    full: u64,
    deleted: u64,
}

/// The memory rows (none after the first call, or if ipcd's process is not
/// visible; a skipped row if ipcd refuses the queue).
pub fn rows(ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
    if MEASURED.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let Some(daemon) = ctx.daemon else {
        ctx.note("queue: ipcd's process is not visible from here (/proc/<pid>); no memory rows");
        return Ok(Vec::new());
    };
    ctx.progress.inc_length(1);
    ctx.step("queue: memory of 1 M queued messages");
    let mut client = ctx.connect()?;
    let name = objects::unique_name();
    let opts = QueueOptions::new().session().max_bytes(MAX_BYTES);
    if let Err(e) = client.create_queue(&name, &opts) {
        let why = format!("ipcd refused a queue of max-bytes 256 MiB: {e}");
        ctx.note(format!(
            "queue memory: {why}{}",
            if nix::unistd::geteuid().is_root() {
                ""
            } else {
                " (not run as root: the uid's queue_bytes_per_uid share applies)"
            }
        ));
        ctx.done();
        return Ok(super::rows::skipped(
            "memory",
            &["ipcd VmRSS added by 1 M queued messages"],
            "ipcd refused the queue",
        ));
    }
    let readings = fill(ctx, daemon, &mut client, &name);
    let deleted = objects::delete_all(&mut client, "queue", std::slice::from_ref(&name));
    let readings = readings.and_then(|(before, full)| {
        deleted?;
        std::thread::sleep(SETTLE);
        Ok(Readings {
            before,
            full,
            deleted: rss(daemon)?,
        })
    })?;
    ctx.done();
    Ok(memory_rows(readings))
}

/// Reads RSS, puts the messages, checks the queue holds them all, reads RSS.
fn fill(
    ctx: &Ctx<'_>,
    daemon: Daemon,
    client: &mut ipc_client::Client,
    name: &str,
) -> anyhow::Result<(u64, u64)> {
    let before = rss(daemon)?;
    let mut tx = QueueSender::new(ctx.connect()?, name).batch(BATCH);
    let mut body = vec![0u8; SIZE];
    for n in 0..MESSAGES {
        body[..SEQUENCE_BYTES].copy_from_slice(&n.to_le_bytes());
        tx.send(&body).context("put")?;
    }
    tx.flush().context("put")?;
    if tx.confirmed() != MESSAGES {
        bail!("ipcd confirmed {} of {MESSAGES} puts", tx.confirmed());
    }
    let info = client.stat(&format!("queue:{name}")).context("stat")?;
    let KindDetails::Queue(details) = info.details else {
        bail!("queue:{name} has no queue details");
    };
    if details.depth != MESSAGES {
        bail!(
            "queue:{name} holds {} of {MESSAGES} messages",
            details.depth
        );
    }
    Ok((before, rss(daemon)?))
}

/// ipcd's resident memory now, KiB.
fn rss(daemon: Daemon) -> anyhow::Result<u64> {
    daemon
        .rss_kib()
        .with_context(|| format!("cannot read VmRSS of ipcd (pid {})", daemon.pid))
}

fn memory_rows(r: Readings) -> Vec<Row> {
    let row = |mechanism: &str, kib: u64| Row {
        measure: "memory".into(),
        mechanism: mechanism.into(),
        size: Some(SIZE),
        kib: Some(kib as f64),
        runs: 1,
        operations: MESSAGES,
        per_run: vec![kib as f64],
        ..Row::default()
    };
    let added = r.full.saturating_sub(r.before);
    let mut grown = row("ipcd VmRSS added by 1 M queued messages", added);
    grown.hold_to(Target::at_most(
        format!("≤ {MAX_ADDED_MIB} MiB"),
        "kib",
        MAX_ADDED_MIB * 1024.0,
        added as f64,
    ));
    vec![
        row("ipcd VmRSS before", r.before),
        row("ipcd VmRSS with 1 M queued messages", r.full),
        grown,
        row("ipcd VmRSS after deleting the queue", r.deleted),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_growth_is_held_to_200_mib() {
        let rows = memory_rows(Readings {
            before: 10_000,
            full: 150_000,
            deleted: 140_000,
        });
        assert_eq!(rows[2].kib, Some(140_000.0));
        assert!(rows[2].target.as_ref().unwrap().met);
        let over = memory_rows(Readings {
            before: 0,
            full: 205 * 1024,
            deleted: 0,
        });
        assert!(!over[2].target.as_ref().unwrap().met);
    }
}
