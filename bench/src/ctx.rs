//! What every kind's bench gets: the settings, where the daemon is, where to
//! run ([`Placement`]), the progress bar, and a place for notes.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;
use ipc_client::Client;

use super::abba::Budget;
use super::channel::Role;
use super::daemon::Daemon;
use super::objects;
use super::peer::PeerArgs;
use super::placement::{self, Placement};

/// Round trips per run when neither `--iterations` nor `--duration` is given.
const DEFAULT_ITERATIONS: u64 = 5_000;
/// Messages per throughput run when neither `--messages` nor `--duration` is given.
const DEFAULT_MESSAGES: u64 = 200_000;

/// The knobs of a bench, from its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Timed round trips per run (`--iterations`).
    pub iterations: Option<u64>,
    /// Messages per throughput run (`--messages`).
    pub messages: Option<u64>,
    /// Time limit per run (`--duration`).
    pub duration: Option<Duration>,
    /// Message sizes.
    pub sizes: Vec<usize>,
    /// Runs per measurement.
    pub repeat: usize,
    /// Queue capacity.
    pub capacity: u32,
    /// Processes per command (spawn).
    pub spawns: u64,
    /// Requests per pipelined batch (control).
    pub batch: usize,
    /// Connections timed per run of the connect rows.
    pub connects: u64,
    /// Idle connections held for the memory rows.
    pub connections: u64,
}

impl Options {
    /// When a round-trip run (or ping/stat one-at-a-time run) stops.
    pub fn round_trip_budget(&self) -> Budget {
        budget(self.iterations, DEFAULT_ITERATIONS, self.duration)
    }

    /// When a throughput run (or pipelined stat run) stops.
    pub fn throughput_budget(&self) -> Budget {
        budget(self.messages, DEFAULT_MESSAGES, self.duration)
    }
}

/// What a kind's bench runs with.
pub struct Ctx<'a> {
    /// The settings.
    pub opts: &'a Options,
    /// `--socket`, passed on to peers and spawned processes.
    pub socket: Option<&'a Path>,
    /// The progress bar (hidden unless stderr is a terminal).
    pub progress: &'a ProgressBar,
    /// Where the bench and its peers run now.
    pub placement: Placement,
    /// The CPUs the bench may use.
    pub allowed: &'a [usize],
    /// ipcd's process, if this process can see it.
    pub daemon: Option<Daemon>,
    /// Notes for the report's footer.
    pub notes: &'a RefCell<Vec<String>>,
}

impl Ctx<'_> {
    /// A new connection to the daemon.
    pub fn connect(&self) -> anyhow::Result<Client> {
        objects::connect(self.socket)
    }

    /// When a round-trip run (or ping/stat one-at-a-time run) stops.
    pub fn round_trip_budget(&self) -> Budget {
        self.opts.round_trip_budget()
    }

    /// When a throughput run (or pipelined stat run) stops.
    pub fn throughput_budget(&self) -> Budget {
        self.opts.throughput_budget()
    }

    /// Untimed round trips before a timed run: a tenth of it, at most 500.
    pub fn warmup(&self) -> u64 {
        (self.round_trip_budget().count / 10).min(500)
    }

    /// Shows what runs now on the progress bar (with the placement).
    pub fn step(&self, what: impl AsRef<str>) {
        self.progress
            .set_message(format!("{} ({})", what.as_ref(), self.placement.name));
    }

    /// Marks one step done.
    pub fn done(&self) {
        self.progress.inc(1);
    }

    /// Adds a note to the report's footer (once).
    pub fn note(&self, note: impl Into<String>) {
        let note = note.into();
        let mut notes = self.notes.borrow_mut();
        if !notes.contains(&note) {
            notes.push(note);
        }
    }

    /// Arguments for a peer of `kind` in `role`, with the socket, this
    /// process as parent and the placement's CPU filled in; the kind names
    /// the channels.
    pub fn peer_args(&self, kind: &str, role: Role, size: usize) -> PeerArgs {
        PeerArgs {
            socket: self.socket.map(Path::to_path_buf),
            cpu: self.placement.peer,
            ..PeerArgs::new(kind, role, size)
        }
    }

    /// Runs `f` for rows that measure a conversation with ipcd: pinned next
    /// to ipcd or away from it as the placement says (see
    /// [`placement::towards_daemon`]), then back where the placement puts the
    /// bench. `f` gets the rows' placement label.
    pub fn with_daemon<T>(&self, f: impl FnOnce(&str) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let cpus = self.daemon.and_then(|d| d.cpus());
        let (cpu, label) =
            placement::towards_daemon(&self.placement, cpus.as_deref(), self.allowed);
        if label == "ipcd any" {
            self.note(
                "`ipcd any`: ipcd is not pinned to one CPU, so rows that talk to it may mix \
                 the one-CPU and two-CPU regimes; start it with `taskset -c N ipcd …` to \
                 separate them",
            );
        }
        if self.placement.bench.is_some() {
            placement::pin(cpu, self.allowed)?;
        }
        let result = f(&label);
        if self.placement.bench.is_some() {
            placement::pin(self.placement.bench, self.allowed)?;
        }
        result
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
