//! The `spawn` kind: the wall time of whole `ipcctl` processes, from
//! `fork`+`exec` to exit status, as a shell script would pay it.
//!
//! Up to four commands, interleaved so they share the VM's drift:
//! - `/bin/true` (if present): the floor, `fork`+`exec` of a tiny C program;
//! - `ipcctl --help`: exec of ipcctl, dynamic loading and argument parsing only;
//! - `ipcctl ping`: plus connecting and the handshake;
//! - `ipcctl send mq:NAME MESSAGE`: plus open (a descriptor over `SCM_RIGHTS`)
//!   and `mq_send`. Target: median ≤ 5 ms.
//!
//! The difference between consecutive rows is the cost of each added step.
//! The queue sent to is created for the bench (lifetime session) and drained
//! after every send, so it never fills up.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use super::mq;
use crate::ctx::Ctx;
use crate::kind::KindBench;
use crate::objects;
use crate::report::{Row, Target};
use crate::stats::{Samples, nanos};

/// The `measure` of this kind's rows.
const MEASURE: &str = "process";

/// Median milliseconds of a whole `ipcctl send` process that meets the target.
const MAX_SEND_PROCESS_MS: f64 = 5.0;

/// Untimed rounds first, so the binary and its libraries are in the page cache.
const WARMUP_ROUNDS: u64 = 3;

/// One command the section times: its label, program and arguments.
type Timed = (&'static str, PathBuf, Vec<OsString>);

/// The `spawn` entry of the kinds table.
pub struct Spawn;

impl KindBench for Spawn {
    fn name(&self) -> &'static str {
        "spawn"
    }

    fn about(&self) -> &'static str {
        "whole ipcctl processes: --help, ping, send"
    }

    /// One row per command.
    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        ctx.progress.inc_length(ctx.opts.spawns);
        ctx.note(format!(
            "`{MEASURE}` rows: p50/p99 of {} processes each, not medians of runs",
            ctx.opts.spawns
        ));
        let exe = std::env::current_exe().context("cannot find the ipcctl executable")?;
        let mut client = ctx.connect()?;
        let name = objects::unique_name();
        let queue = mq::create(&mut client, &name, ctx.opts.capacity, 64)?;
        let commands = commands(ctx, &exe, queue.address());
        let result = ctx.with_daemon(|placement| {
            let samples = time_rounds(ctx, &commands, &queue)?;
            Ok(commands
                .iter()
                .zip(samples)
                .map(|((label, _, _), samples)| Row {
                    placement: placement.to_owned(),
                    ..row(label, samples)
                })
                .collect())
        });
        drop(queue);
        let deleted = objects::delete_all(&mut client, "mq", &[name]);
        let rows = result?;
        deleted?;
        Ok(rows)
    }
}

/// The commands to time: `/bin/true` (if there is one), then `ipcctl --help`,
/// `ping` and a `send` to `address`.
fn commands(ctx: &Ctx<'_>, exe: &Path, address: &str) -> Vec<Timed> {
    let socket: Vec<OsString> = match ctx.socket {
        Some(path) => vec!["--socket".into(), path.into()],
        None => Vec::new(),
    };
    let with_socket = |rest: &[&str]| -> Vec<OsString> {
        socket
            .iter()
            .cloned()
            .chain(rest.iter().map(OsString::from))
            .collect()
    };
    let mut commands: Vec<Timed> = Vec::new();
    if let Some(floor) = ["/bin/true", "/usr/bin/true"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    {
        commands.push(("/bin/true", floor, Vec::new()));
    }
    commands.extend([
        ("ipcctl --help", exe.to_owned(), vec!["--help".into()]),
        ("ipcctl ping", exe.to_owned(), with_socket(&["ping"])),
        (
            "ipcctl send",
            exe.to_owned(),
            with_socket(&["send", address, "hello"]),
        ),
    ]);
    commands
}

/// Runs every command once per round, warm-up rounds first; returns the
/// timings (nanoseconds) of the counted rounds, one list per command.
fn time_rounds(
    ctx: &Ctx<'_>,
    commands: &[Timed],
    queue: &ipc_client::MessageQueue,
) -> anyhow::Result<Vec<Vec<u64>>> {
    let spawns = ctx.opts.spawns;
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); commands.len()];
    let mut buf = vec![0u8; queue.msg_size()];
    for round in 0..WARMUP_ROUNDS + spawns {
        let counted = round >= WARMUP_ROUNDS;
        if counted {
            ctx.step(format!(
                "processes: round {} of {spawns}",
                round - WARMUP_ROUNDS + 1
            ));
        }
        for (i, (label, program, argv)) in commands.iter().enumerate() {
            let t0 = Instant::now();
            let status = Command::new(program)
                .args(argv)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .with_context(|| format!("cannot start {}", program.display()))?;
            let elapsed = t0.elapsed();
            if !status.success() {
                bail!("`{label}` failed ({status}); run it by hand to see why");
            }
            if counted {
                samples[i].push(nanos(elapsed));
            }
        }
        // Drain what `ipcctl send` sent, untimed.
        let (n, _) = queue
            .recv_into(&mut buf)
            .context("draining the send queue")?;
        if &buf[..n] != b"hello" {
            bail!(
                "ipcctl send delivered {:?} instead of \"hello\"",
                String::from_utf8_lossy(&buf[..n])
            );
        }
        if counted {
            ctx.done();
        }
    }
    Ok(samples)
}

/// The row of one command; `ipcctl send` carries the target.
fn row(label: &str, samples: Vec<u64>) -> Row {
    let s = Samples::new(samples);
    let us = |v: Option<u64>| v.map(|ns| ns as f64 / 1e3);
    let p50 = us(s.p50());
    let target = (label == "ipcctl send")
        .then_some(p50)
        .flatten()
        .map(|p50| {
            Target::at_most(
                format!("p50 ≤ {MAX_SEND_PROCESS_MS} ms"),
                "p50_us",
                MAX_SEND_PROCESS_MS * 1e3,
                p50,
            )
        });
    Row {
        measure: MEASURE.into(),
        mechanism: label.into(),
        p50_us: p50,
        p99_us: us(s.p99()),
        per_second: None,
        target,
        runs: 1,
        operations: s.len() as u64,
        ..Row::default()
    }
}
