//! `ipcctl bench`: measures ipcd's mechanisms between two processes, each against
//! the raw kernel mechanism in the same run, and checks the project's targets.
//!
//! A *kind* is one module on each side: `kinds/<kind>.rs` implements
//! [`kind::KindBench`] (how the bench runs it, and how its peer process opens
//! the channels) and is one row of the table in [`kinds`]. Targets on the
//! command line are the table's names (`mq`, `pipe`, `fifo`, `control`,
//! `spawn`, `memory`). Everything else is machinery shared by all kinds and
//! never names one:
//!
//! - [`datapath`]: the data-plane runs and rows (round trip, one-way, bulk)
//!   for any kind that provides [`datapath::Channels`];
//! - [`abba`]: raw and ipc-client alternating in blocks, ABBA order, ratios of
//!   adjacent blocks; [`stats`]: percentiles, medians, rates;
//! - [`loops`] (message channels) and [`streams`] (byte streams): the measured
//!   loops, on both sides ([`channel`]: the two halves of a mechanism);
//! - [`peer`] and [`peer_process`]: the second process (`ipcctl bench-peer`),
//!   its line protocol, and the bench's handle and watchdog on it;
//! - [`connect`]: connect + hello + open rows; [`placement`]: pinning the
//!   bench and its peer to one CPU or two; [`load`]: what else the machine did
//!   meanwhile; [`daemon`]: ipcd as `/proc` shows it;
//! - [`report`] and [`output`]: the rows, the table, the JSON document.
//!
//! The second process is this binary again, so a binary that offers [`run`]
//! must also dispatch a hidden `bench-peer` subcommand taking [`PeerArgs`] to
//! [`peer`], and (for `spawn`) answer `--help`, `ping` and `send` as `ipcctl`
//! does: in this workspace that binary is `ipcctl`, which this crate exists for.
//!
//! Only [`fds`] (inherited descriptors) and [`sys`] (the raw baselines' shared
//! memory and futexes) contain `unsafe` code.

#![deny(unsafe_code)]

mod abba;
mod args;
mod channel;
mod cleanup;
mod connect;
mod ctx;
mod daemon;
mod datapath;
#[allow(unsafe_code)]
mod fds;
mod kind;
mod kinds;
mod load;
mod loops;
mod objects;
mod output;
mod peer;
mod peer_process;
mod placement;
mod report;
mod stats;
mod streams;
#[allow(unsafe_code)]
mod sys;
mod tmpdir;

use std::cell::RefCell;
use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use args::BenchArgs;
pub use peer::PeerArgs;
pub use placement::PlacementArg;

use ctx::{Ctx, Options};
use daemon::Daemon;
use kind::KindBench;
use load::Sampler;
use output::{Context, Machine, Part, Settings};
use placement::Placement;
use report::Row;

/// `ipcctl bench`: runs the selected kinds, each once per placement, and
/// prints a table or, with `json`, one JSON document on stdout.
pub fn run(args: &BenchArgs, socket: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let benches = kind::expand(kinds::KINDS, &args.targets)?;
    // Probed before the bench loads the machine itself.
    let machine = Machine::probe();
    let opts = args.options();
    let allowed = placement::allowed_cpus()?;
    let (placements, notes) = placement::plan(args.placement, &allowed);
    let notes = RefCell::new(notes);
    let daemon = locate_daemon(socket, &notes)?;
    let sampler = Sampler::start(daemon)?;
    let progress = progress_bar(args.no_progress);
    let load_before = idle_load(&sampler);
    let env = Env {
        opts: &opts,
        socket,
        progress: &progress,
        allowed: &allowed,
        daemon,
        notes: &notes,
    };
    let (rows, parts) = match measure_all(&env, &benches, &placements, &sampler) {
        Ok(done) => done,
        Err(e) => {
            progress.abandon();
            return Err(e);
        }
    };
    progress.finish_and_clear();
    let context = Context {
        machine,
        settings: Settings::of(&opts),
        placements: if parts.iter().any(|p| !p.placement.is_empty()) {
            output::describe(&placements)
        } else {
            Vec::new()
        },
        load_before,
        parts,
        load_after: idle_load(&sampler),
        notes: notes.into_inner(),
    };
    let missed = rows
        .iter()
        .flat_map(Row::targets)
        .filter(|t| !t.met)
        .count();
    let text = if json {
        output::json(&context, &rows, missed)?
    } else {
        output::text(&context, &rows, missed)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write the results");
        }
        _ => {}
    }
    if args.check && missed > 0 {
        bail!("{missed} benchmark target(s) missed");
    }
    Ok(())
}

/// The `ipcctl bench-peer` subcommand: the second process of one run, for
/// the kind `args` names.
pub fn peer(args: &PeerArgs) -> anyhow::Result<()> {
    let kind = kind::find(kinds::KINDS, &args.kind)?;
    peer::serve(args, |args, client| kind.open_peer(args, client))
}

/// What every [`Ctx`] of one bench shares.
struct Env<'a> {
    opts: &'a Options,
    socket: Option<&'a Path>,
    progress: &'a ProgressBar,
    allowed: &'a [usize],
    daemon: Option<Daemon>,
    notes: &'a RefCell<Vec<String>>,
}

/// Runs every kind under every placement (once, unpinned, for kinds whose
/// figures do not depend on placement); labels the rows with their
/// placement and load.
fn measure_all(
    env: &Env<'_>,
    benches: &[&dyn KindBench],
    placements: &[Placement],
    sampler: &Sampler,
) -> anyhow::Result<(Vec<Row>, Vec<Part>)> {
    let (mut rows, mut parts) = (Vec::new(), Vec::new());
    for bench in benches {
        let unpinned = [Placement::ANY];
        let places = if bench.placed() {
            placements
        } else {
            &unpinned
        };
        for &p in places {
            let ctx = Ctx {
                opts: env.opts,
                socket: env.socket,
                progress: env.progress,
                placement: p,
                allowed: env.allowed,
                daemon: env.daemon,
                notes: env.notes,
            };
            placement::pin(p.bench, env.allowed)?;
            let window = sampler.open();
            let result = bench.run(&ctx);
            let load = sampler.close(window);
            placement::pin(None, env.allowed)?;
            for mut row in result? {
                if row.placement.is_empty() && bench.placed() {
                    row.placement = p.name.to_owned();
                }
                row.load = Some(load.clone());
                rows.push(row);
            }
            let placement = if bench.placed() { p.name } else { "" };
            parts.push(Part {
                kind: bench.name(),
                placement,
                load,
            });
        }
    }
    Ok((rows, parts))
}

/// Asks ipcd for its pid, so that its CPU time, affinity and memory can be
/// read; notes when this process cannot see it.
fn locate_daemon(
    socket: Option<&Path>,
    notes: &RefCell<Vec<String>>,
) -> anyhow::Result<Option<Daemon>> {
    let pid = objects::connect(socket)?.status().context("status")?.pid;
    let daemon = Daemon::at(pid);
    if daemon.is_none() {
        notes.borrow_mut().push(format!(
            "ipcd reports pid {pid}, which is not an ipcd process here (another pid \
             namespace?): its CPU time counts as others', its placement is unknown and \
             `memory` has no rows"
        ));
    }
    Ok(daemon)
}

/// The load over two sampling intervals while the bench does nothing.
fn idle_load(sampler: &Sampler) -> load::Load {
    let window = sampler.open();
    std::thread::sleep(2 * load::INTERVAL);
    sampler.close(window)
}

/// A progress bar on stderr if it is a terminal (and not `--no-progress`),
/// otherwise a hidden one. It is redrawn only between runs, never during one.
fn progress_bar(disabled: bool) -> ProgressBar {
    if disabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("bench [{bar:30}] {pos}/{len} {wide_msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
