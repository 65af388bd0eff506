//! `ipcctl bench`: measures ipcd's mechanisms between two processes, each against
//! the raw kernel mechanism in the same run, and checks the project's targets.
//!
//! A *target* on the command line (`mq`, `pipe`, `fifo`, `control`, `spawn`)
//! selects one or more *sections*; each section is one module with a
//! `run(&Ctx) -> Vec<Row>` function. Adding a mechanism means adding a module,
//! a [`Section`] and a [`BenchTarget`] variant.
//!
//! - [`mq`]: round trip (p50/p99) and one-way throughput of POSIX message queues
//!   used through `ipc_client` versus raw `mq_send`/`mq_receive`, interleaved
//!   block by block in the same processes so the ratio survives this VM's drift.
//! - [`pipe`], [`fifo`]: the same for byte streams, plus 1 MiB bulk
//!   throughput: pipes hosted by ipcd versus raw `pipe2` pipes, and FIFOs
//!   created by ipcd versus raw `mkfifo` ones (shared code: [`bytestream`],
//!   [`streams`]).
//! - [`control`]: ping round trip and stat operations per second on one
//!   connection, one at a time and pipelined.
//! - [`spawn`]: the wall time of whole `ipcctl` processes (`--help`, `ping`,
//!   `send`).
//!
//! The second process is this binary again (`ipcctl bench-peer`, see [`peer`]).
//! So a binary that offers [`run`] must also dispatch a hidden `bench-peer`
//! subcommand taking [`PeerArgs`] to [`peer`], and (for the `spawn` section)
//! answer `--help`, `ping` and `send` as `ipcctl` does: in this workspace that
//! binary is `ipcctl`, which this crate exists for.
//!
//! Only [`fds`] contains `unsafe` code.

#![deny(unsafe_code)]

mod bytestream;
mod client_mq;
mod client_stream;
mod control;
#[allow(unsafe_code)]
mod fds;
mod fifo;
mod loops;
mod mq;
mod peer;
mod pipe;
mod raw;
mod report;
mod spawn;
mod stats;
mod streams;
mod tmpdir;

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::builder::TypedValueParser as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

pub use peer::{PeerArgs, peer};

/// Exit status of a bench whose peer died (ipcctl's status for "any other error").
const EXIT_ERROR: i32 = 2;

use loops::Budget;
use report::Row;

/// Round trips per run when neither `--iterations` nor `--duration` is given.
const DEFAULT_ITERATIONS: u64 = 5_000;
/// Messages per throughput run when neither `--messages` nor `--duration` is given.
const DEFAULT_MESSAGES: u64 = 200_000;

/// The arguments of `ipcctl bench`: measure ipcd against the raw kernel
/// mechanisms, between two processes.
///
/// Every figure is the median of `--repeat` runs. Inside a run, raw and
/// ipc-client alternate block by block in the same two processes, and the ratio
/// is taken between adjacent blocks, because absolute times on a VM drift by
/// tens of percent between (and within) runs.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  ipcctl bench                          # mq, control and spawn: about 15 s
  ipcctl bench pipe fifo                # pipes and FIFOs, about 15 s each
  ipcctl bench control --repeat 5
  ipcctl bench mq --size 64,4096 --duration 200ms --json > bench.json
  ipcctl bench --check                  # exit 2 if a target is missed

Figures: p50/p99 from per-operation timings; msgs/s and MB/s (10^6 bytes) one way;
`vs raw`: the raw mechanism (mq_send/mq_receive, pipe2, mkfifo) and ipc-client
alternate in blocks inside each run; it is the median, over adjacent pairs of
blocks, of ipc-client / raw. Pipes and FIFOs add `bulk`: 1 MiB writes and reads.

Exit status: 0 done (a missed target too, unless --check), 2 error or (with --check)
a target missed, 64 usage error.")]
pub struct BenchArgs {
    /// What to measure: `mq` (queues through ipc-client vs raw, plus the
    /// `control` and `spawn` sections), `pipe` (pipes hosted by ipcd vs raw
    /// pipe2), `fifo` (FIFOs created by ipcd vs raw mkfifo), `control` (ping
    /// and stat on one connection) or `spawn` (whole ipcctl processes).
    #[arg(value_enum, default_values_t = [BenchTarget::Mq])]
    pub targets: Vec<BenchTarget>,
    /// Timed round trips per run (also pings and one-at-a-time stats)
    /// [default: 5000, or unbounded with --duration].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
    /// Messages per throughput run and mechanism (also pipelined stats; pipe
    /// and fifo runs stop at 1 GiB per mechanism)
    /// [default: 200000, or unbounded with --duration].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: Option<u64>,
    /// Time each run instead of (or, with --iterations/--messages, as well as)
    /// counting: a run stops at whichever limit comes first. E.g. `300ms`.
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Message sizes in bytes, comma-separated or repeated (pipe and fifo
    /// add a 1 MiB bulk run).
    #[arg(long = "size", value_name = "BYTES", value_delimiter = ',',
          default_values_t = [64usize, 4096],
          value_parser = clap::value_parser!(u64).range(1..=(1 << 20)).map(|v| v as usize))]
    pub sizes: Vec<usize>,
    /// Runs of each measurement; figures are their medians.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=1000).map(|v| v as usize))]
    pub repeat: usize,
    /// Queue capacity in messages (the kernel's msg_max, 10 by default, caps it
    /// for processes without CAP_SYS_RESOURCE).
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub capacity: u32,
    /// Processes started per command in the `spawn` section.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub spawns: u64,
    /// Requests per pipelined batch in the `control` section.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=65536).map(|v| v as usize))]
    pub batch: usize,
    /// Never draw a progress bar (it is drawn only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Exit with an error if a target is missed (by default targets are only
    /// reported: this is a benchmark, not a test).
    #[arg(long)]
    pub check: bool,
}

/// What `ipcctl bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchTarget {
    /// POSIX message queues: data plane, then the control and spawn sections.
    Mq,
    /// Anonymous pipes hosted by ipcd vs raw `pipe2` pipes.
    Pipe,
    /// FIFOs created by ipcd vs raw `mkfifo` FIFOs.
    Fifo,
    /// The control plane: ping and stat on one connection.
    Control,
    /// Whole `ipcctl` processes: `--help`, `ping`, `send`.
    Spawn,
}

/// One independently runnable part of the bench (one module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// [`mq`].
    Mq,
    /// [`pipe`].
    Pipe,
    /// [`fifo`].
    Fifo,
    /// [`control`].
    Control,
    /// [`spawn`].
    Spawn,
}

impl BenchTarget {
    /// The sections this target runs, in order.
    fn sections(self) -> &'static [Section] {
        match self {
            BenchTarget::Mq => &[Section::Mq, Section::Control, Section::Spawn],
            BenchTarget::Pipe => &[Section::Pipe],
            BenchTarget::Fifo => &[Section::Fifo],
            BenchTarget::Control => &[Section::Control],
            BenchTarget::Spawn => &[Section::Spawn],
        }
    }
}

/// What every section gets: the arguments, where the daemon is, and the progress bar.
pub(crate) struct Ctx<'a> {
    /// The command line.
    pub args: &'a BenchArgs,
    /// `--socket`, passed on to peers and spawned processes.
    pub socket: Option<&'a Path>,
    /// The progress bar (hidden unless stderr is a terminal).
    pub progress: ProgressBar,
}

impl Ctx<'_> {
    /// A new connection to the daemon.
    pub fn connect(&self) -> anyhow::Result<ipc_client::Client> {
        connect(self.socket)
    }

    /// When a round-trip run (or ping/stat one-at-a-time run) stops.
    pub fn round_trip_budget(&self) -> Budget {
        budget(self.args.iterations, DEFAULT_ITERATIONS, self.args.duration)
    }

    /// When a throughput run (or pipelined stat run) stops.
    pub fn throughput_budget(&self) -> Budget {
        budget(self.args.messages, DEFAULT_MESSAGES, self.args.duration)
    }

    /// Untimed round trips before a timed run: a tenth of it, at most 500.
    pub fn warmup(&self) -> u64 {
        (self.round_trip_budget().count / 10).min(500)
    }

    /// Shows what runs now on the progress bar.
    pub fn step(&self, what: impl Into<String>) {
        self.progress.set_message(what.into());
    }

    /// Marks one step done.
    pub fn done(&self) {
        self.progress.inc(1);
    }
}

/// A count limit with its default, combined with `--duration`.
fn budget(count: Option<u64>, default: u64, duration: Option<Duration>) -> Budget {
    Budget {
        count: count.unwrap_or(if duration.is_some() {
            u64::MAX
        } else {
            default
        }),
        time: duration,
    }
}

/// Connects to the daemon at `socket`, or where the client library looks by default.
pub(crate) fn connect(socket: Option<&Path>) -> anyhow::Result<ipc_client::Client> {
    let client = match socket {
        Some(path) => ipc_client::Client::connect_to(path),
        None => ipc_client::Client::connect(),
    };
    Ok(client?)
}

/// `ipcctl bench`: runs the selected sections and prints a table or, with
/// `json`, one JSON document on stdout.
pub fn run(args: &BenchArgs, socket: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let mut sections: Vec<Section> = Vec::new();
    for target in &args.targets {
        for &s in target.sections() {
            if !sections.contains(&s) {
                sections.push(s);
            }
        }
    }
    // Probed before the bench loads the machine itself.
    let machine = Machine::probe();
    let ctx = Ctx {
        args,
        socket,
        progress: progress_bar(args.no_progress),
    };
    let mut rows: Vec<Row> = Vec::new();
    for section in sections {
        let result = match section {
            Section::Mq => mq::run(&ctx),
            Section::Pipe => pipe::run(&ctx),
            Section::Fifo => fifo::run(&ctx),
            Section::Control => control::run(&ctx),
            Section::Spawn => spawn::run(&ctx),
        };
        match result {
            Ok(r) => rows.extend(r),
            Err(e) => {
                ctx.progress.abandon();
                return Err(e);
            }
        }
    }
    ctx.progress.finish_and_clear();

    let missed = rows
        .iter()
        .filter(|r| r.target.as_ref().is_some_and(|t| !t.met))
        .count();
    let text = if json {
        let doc = Document {
            tool: concat!("ipcctl ", env!("CARGO_PKG_VERSION")),
            machine,
            settings: Settings::of(&ctx),
            results: &rows,
            targets_met: missed == 0,
        };
        serde_json::to_string(&doc)? + "\n"
    } else {
        text_report(args, &machine, &rows, missed)
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

/// The results as a table, with what they are medians of and where they ran.
fn text_report(args: &BenchArgs, m: &Machine, rows: &[Row], missed: usize) -> String {
    let mut runs = match args.repeat {
        1 => "1 run".to_owned(),
        n => format!("{n} runs"),
    };
    if rows.iter().any(|r| r.measure == spawn::MEASURE) {
        runs.push_str(&format!(" (processes: of {} each)", args.spawns));
    }
    let load = m
        .load_average
        .map_or_else(String::new, |l| format!(" · load average {l:.2}"));
    format!(
        "{}\n{missed} target(s) missed · figures are medians of {runs}; `vs raw` is the median \
         ratio of adjacent raw/ipc-client blocks\n{} CPUs · {} · Linux {}{load} at the start\n",
        report::table(rows),
        m.cpus,
        m.cpu_model,
        m.kernel
    )
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

/// The JSON document printed by `ipcctl bench --json`.
#[derive(Serialize)]
struct Document<'a> {
    /// `ipcctl <version>`.
    tool: &'static str,
    /// Where it ran.
    machine: Machine,
    /// How it ran.
    settings: Settings,
    /// One entry per table row.
    results: &'a [Row],
    /// Whether every target was met.
    targets_met: bool,
}

/// The settings of a bench, as recorded in its JSON document.
#[derive(Serialize)]
struct Settings {
    /// Round trips per run (`null`: bounded by time only).
    iterations: Option<u64>,
    /// Messages per throughput run (`null`: bounded by time only).
    messages: Option<u64>,
    /// Time limit per run, milliseconds.
    duration_ms: Option<u128>,
    /// Message sizes.
    sizes: Vec<usize>,
    /// Runs per measurement.
    repeat: usize,
    /// Queue capacity.
    capacity: u32,
    /// Processes per command (spawn section).
    spawns: u64,
    /// Requests per pipelined batch (control section).
    batch: usize,
}

impl Settings {
    /// The effective settings of `ctx`.
    fn of(ctx: &Ctx<'_>) -> Self {
        let finite = |b: Budget| (b.count != u64::MAX).then_some(b.count);
        Settings {
            iterations: finite(ctx.round_trip_budget()),
            messages: finite(ctx.throughput_budget()),
            duration_ms: ctx.args.duration.map(|d| d.as_millis()),
            sizes: ctx.args.sizes.clone(),
            repeat: ctx.args.repeat,
            capacity: ctx.args.capacity,
            spawns: ctx.args.spawns,
            batch: ctx.args.batch,
        }
    }
}

/// The machine a bench ran on.
#[derive(Serialize)]
struct Machine {
    /// CPUs available to this process.
    cpus: usize,
    /// `model name` from /proc/cpuinfo.
    cpu_model: String,
    /// The kernel release.
    kernel: String,
    /// The 1-minute load average when the bench started (other work on the
    /// machine skews every figure; well above 0.2 on 2 CPUs, distrust them).
    load_average: Option<f64>,
}

impl Machine {
    /// Reads what it can; unknown parts are `?`.
    fn probe() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "?".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".to_owned());
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel,
            load_average,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map(|w| w.bench)
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.targets, [BenchTarget::Mq]);
        assert_eq!(a.sizes, [64, 4096]);
        assert_eq!(
            (a.repeat, a.capacity, a.iterations, a.duration),
            (3, 10, None, None)
        );
    }

    #[test]
    fn sizes_targets_and_duration() {
        let a = parse(&[
            "control",
            "spawn",
            "--size",
            "8,16",
            "--size",
            "32",
            "--duration",
            "250ms",
        ])
        .unwrap();
        assert_eq!(a.targets, [BenchTarget::Control, BenchTarget::Spawn]);
        assert_eq!(a.sizes, [8, 16, 32]);
        assert_eq!(a.duration, Some(Duration::from_millis(250)));
        assert!(parse(&["--size", "0"]).is_err());
        assert!(parse(&["--repeat", "0"]).is_err());
        assert!(parse(&["shm"]).is_err());
        let a = parse(&["pipe", "fifo"]).unwrap();
        assert_eq!(a.targets, [BenchTarget::Pipe, BenchTarget::Fifo]);
    }

    #[test]
    fn budgets_combine_counts_and_time() {
        let t = Some(Duration::from_secs(1));
        assert_eq!(
            budget(None, 5, None),
            Budget {
                count: 5,
                time: None
            }
        );
        assert_eq!(
            budget(None, 5, t),
            Budget {
                count: u64::MAX,
                time: t
            }
        );
        assert_eq!(budget(Some(7), 5, t), Budget { count: 7, time: t });
    }

    #[test]
    fn mq_runs_every_section_once() {
        assert_eq!(
            BenchTarget::Mq.sections(),
            [Section::Mq, Section::Control, Section::Spawn]
        );
        assert_eq!(BenchTarget::Pipe.sections(), [Section::Pipe]);
        assert_eq!(BenchTarget::Fifo.sections(), [Section::Fifo]);
    }
}
