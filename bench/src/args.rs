//! The command line of `ipcctl bench` ([`BenchArgs`]). The targets it accepts
//! are the names in the kinds table.

use std::time::Duration;

use clap::builder::TypedValueParser as _;

use super::ctx::Options;
use super::kind::possible_values;
use super::kinds::KINDS;
use super::placement::PlacementArg;

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
  ipcctl bench                          # mq, control and spawn: about 30 s
  ipcctl bench pipe fifo                # pipes and FIFOs, about 30 s each
  ipcctl bench ring ring-spin shm       # shared memory: about 30 s in all
  ipcctl bench control --repeat 5
  ipcctl bench mq --placement split     # both processes pinned, on two CPUs
  ipcctl bench memory --connections 500
  ipcctl bench mq --size 64,4096 --duration 200ms --json > bench.json
  ipcctl bench --check                  # exit 2 if a target is missed

Figures: p50/p99 from per-operation timings; msgs/s and MB/s (10^6 bytes) one way;
`vs raw`: the raw mechanism (mq_send/mq_receive, pipe2, mkfifo, a hand-written
futex ring in a memfd, copies through the bench's own mapping) and ipc-client
alternate in blocks inside each run; it is the median, over adjacent pairs of
blocks, of ipc-client / raw. Pipes, FIFOs and rings add `bulk`: 1 MiB messages
(rings: against one thread's memcpy bandwidth, measured in the same run).
`setup` rows: connect + hello, and the open call (a descriptor over SCM_RIGHTS).

Placement: every measurement runs with both processes pinned to one CPU (`same`)
and to two CPUs (`split`); the footer gives the load other processes put on the
machine meanwhile (min/median/max of 200 ms samples).

Exit status: 0 done (a missed target too, unless --check), 2 error or (with --check)
a target missed, 64 usage error.")]
pub struct BenchArgs {
    /// What to measure (`mq` also runs `control` and `spawn`).
    #[arg(value_parser = possible_values(KINDS), default_value = "mq")]
    pub targets: Vec<String>,
    /// Where the bench and its peer run: both on one CPU (`same`), on two
    /// CPUs (`split`), each measurement once per placement (`both`), or
    /// unpinned (`any`, figures may mix both regimes).
    #[arg(long, value_enum, value_name = "WHERE", default_value_t = PlacementArg::Both)]
    pub placement: PlacementArg,
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
    /// Message sizes in bytes, comma-separated or repeated (pipe, fifo and
    /// the rings add a 1 MiB bulk run; shm always copies 64 B, 4 KiB and 1 MiB).
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
    /// Processes started per command in `spawn`.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub spawns: u64,
    /// Requests per pipelined batch in `control`.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=65536).map(|v| v as usize))]
    pub batch: usize,
    /// Fresh connections timed per run in the `setup` rows (connect, hello, open).
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connects: u64,
    /// Idle connections `memory` holds open at once (bounded by ipcd's
    /// max_connections).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub connections: u64,
    /// Never draw a progress bar (it is drawn only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Exit with an error if a target is missed (by default targets are only
    /// reported: this is a benchmark, not a test).
    #[arg(long)]
    pub check: bool,
}

impl BenchArgs {
    /// The knobs the kinds read.
    pub fn options(&self) -> Options {
        Options {
            iterations: self.iterations,
            messages: self.messages,
            duration: self.duration,
            sizes: self.sizes.clone(),
            repeat: self.repeat,
            capacity: self.capacity,
            spawns: self.spawns,
            batch: self.batch,
            connects: self.connects,
            connections: self.connections,
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
        assert_eq!(a.targets, ["mq"]);
        assert_eq!(a.sizes, [64, 4096]);
        assert_eq!(a.placement, PlacementArg::Both);
        assert_eq!(
            (a.repeat, a.capacity, a.iterations, a.duration),
            (3, 10, None, None)
        );
        assert_eq!((a.connects, a.connections), (200, 1000));
    }

    #[test]
    fn sizes_targets_placement_and_duration() {
        let a = parse(&[
            "control",
            "spawn",
            "--size",
            "8,16",
            "--size",
            "32",
            "--duration",
            "250ms",
            "--placement",
            "split",
        ])
        .unwrap();
        assert_eq!(a.targets, ["control", "spawn"]);
        assert_eq!(a.sizes, [8, 16, 32]);
        assert_eq!(a.duration, Some(Duration::from_millis(250)));
        assert_eq!(a.placement, PlacementArg::Split);
        assert!(parse(&["--size", "0"]).is_err());
        assert!(parse(&["--repeat", "0"]).is_err());
        assert!(parse(&["--placement", "far"]).is_err());
        assert!(parse(&["queues"]).is_err());
        let a = parse(&["pipe", "fifo", "memory", "shm", "sem", "queue"]).unwrap();
        assert_eq!(a.targets, ["pipe", "fifo", "memory", "shm", "sem", "queue"]);
        assert_eq!(a.options().connections, 1000);
    }
}
