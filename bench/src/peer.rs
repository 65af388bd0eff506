//! The second process of a benchmark: `ipcctl bench-peer` (hidden).
//!
//! The bench re-executes its own binary ([`std::env::current_exe`]) with
//! `bench-peer` and [`PeerArgs`] naming the kind (`--kind`, a name in the
//! kinds table) and the channels of both mechanisms. The peer pins itself
//! (`--cpu`), lets the kind open the channels ([`serve`]'s `open`: raw ones by
//! kernel name, inherited descriptor or path; client ones through the daemon)
//! and prints `ready`. Then, line by line on its stdin, the bench names the
//! mechanism of the next *block* (`raw` or `client`); the peer runs its half
//! of the loop ([`Blocks`]) until the end marker and answers with one JSON
//! line ([`PeerReport`]). End of stdin ends the peer. Since both mechanisms
//! run in the same two processes, block after block, they share placement and
//! drift, which is what makes their ratio stable.
//!
//! Nothing here knows any kind: the bench's side is
//! [`super::peer_process::PeerProcess`], and which kind opens the channels
//! is decided by the caller of [`serve`].

use std::ffi::OsString;
use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::ValueEnum as _;
use ipc_client::Client;

use super::abba::Mechanism;
use super::channel::{Blocks, Role, Sides};
use super::{objects, placement};

/// What one peer process does (the hidden `ipcctl bench-peer` subcommand).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PeerArgs {
    /// What the channels are: a kind's name (`mq`, `pipe`, `fifo`).
    #[arg(long, default_value = "mq")]
    pub kind: String,
    /// Echo every message back (round trip), count them (throughput), or relay them.
    #[arg(long, value_enum)]
    pub role: Role,
    /// The raw channel to receive from: a queue's kernel name
    /// (`/ipcbench.1.0`), an inherited pipe end's descriptor number, or a FIFO's path
    /// (kind `queue`: `relay:PATH`, `mq:NAME`, `redis:PATH` or `queue:NAME`).
    #[arg(long)]
    pub raw_rx: Option<String>,
    /// The raw channel to echo to (role `echo`), named as `--raw-rx`.
    #[arg(long)]
    pub raw_tx: Option<String>,
    /// The ipcd object to receive from, by name (kind `queue`: `calls:NAME`
    /// for one request per message instead of a `QueueReceiver`).
    #[arg(long)]
    pub client_rx: Option<String>,
    /// The ipcd object to echo to (role `echo`).
    #[arg(long)]
    pub client_tx: Option<String>,
    /// Message size in bytes (for queues, also their message size).
    #[arg(long)]
    pub size: usize,
    /// The daemon's socket (for the client channels); default: the usual resolution.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The pid of the bench that started this peer; the peer refuses to run if
    /// its parent is already someone else.
    #[arg(long)]
    pub parent: Option<u32>,
    /// The CPU to pin this process to (`sched_setaffinity`); default: unpinned.
    #[arg(long)]
    pub cpu: Option<usize>,
}

/// Names of a [`clap::ValueEnum`] value as typed on the command line.
pub fn value_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

impl PeerArgs {
    /// Arguments for a peer of `kind` with no channels named yet.
    pub fn new(kind: &str, role: Role, size: usize) -> Self {
        PeerArgs {
            kind: kind.to_owned(),
            role,
            raw_rx: None,
            raw_tx: None,
            client_rx: None,
            client_tx: None,
            size,
            socket: None,
            parent: Some(std::process::id()),
            cpu: None,
        }
    }

    /// The command line (after `bench-peer`) that parses back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--kind".into(),
            (&self.kind).into(),
            "--role".into(),
            value_name(&self.role).into(),
            "--size".into(),
            self.size.to_string().into(),
        ];
        let options = [
            ("--raw-rx", &self.raw_rx),
            ("--raw-tx", &self.raw_tx),
            ("--client-rx", &self.client_rx),
            ("--client-tx", &self.client_tx),
        ];
        for (flag, value) in options {
            if let Some(v) = value {
                a.extend([flag.into(), v.into()]);
            }
        }
        if let Some(socket) = &self.socket {
            a.extend(["--socket".into(), socket.into()]);
        }
        let numbers = [
            ("--parent", self.parent.map(|p| p.to_string())),
            ("--cpu", self.cpu.map(|c| c.to_string())),
        ];
        for (flag, value) in numbers {
            if let Some(v) = value {
                a.extend([flag.into(), v.into()]);
            }
        }
        a
    }
}

/// The peer's connection to the daemon, made on first use and kept open for
/// as long as the peer runs, like any application's connection.
pub struct PeerClient {
    /// Where the daemon is.
    socket: Option<PathBuf>,
    /// The connection, once made.
    client: Option<Client>,
}

impl PeerClient {
    /// A connection to the daemon at `socket` (default: the usual
    /// resolution), not made yet.
    pub fn unconnected(socket: Option<PathBuf>) -> Self {
        PeerClient {
            socket,
            client: None,
        }
    }

    /// The connection, connecting first if need be.
    pub fn get(&mut self) -> anyhow::Result<&mut Client> {
        if self.client.is_none() {
            self.client = Some(objects::connect(self.socket.as_deref())?);
        }
        Ok(self.client.as_mut().expect("connected just above"))
    }
}

/// The line a peer prints once its channels are open.
pub const READY: &str = "ready";

/// The `ipcctl bench-peer` subcommand once its kind is known: checks its
/// parent, pins itself, lets `open` open the channels, then runs blocks as
/// the bench names them.
pub fn serve(
    args: &PeerArgs,
    open: impl FnOnce(&PeerArgs, &mut PeerClient) -> anyhow::Result<Sides>,
) -> anyhow::Result<()> {
    // Die with the bench rather than block forever on a channel nobody feeds.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("cannot set the parent-death signal")?;
    if let Some(parent) = args.parent {
        let actual = nix::unistd::getppid().as_raw();
        if i64::from(actual) != i64::from(parent) {
            bail!("the bench (pid {parent}) has already exited");
        }
    }
    if let Some(cpu) = args.cpu {
        placement::pin(Some(cpu), &[])?;
    }
    let mut client = PeerClient::unconnected(args.socket.clone());
    let mut sides = open(args, &mut client)?;
    say(READY)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read the bench's commands")?;
        let Ok(m) = Mechanism::from_str(line.trim(), false) else {
            bail!("unknown bench command {line:?}");
        };
        let side: &mut Box<dyn Blocks> = sides[m.index()]
            .as_mut()
            .with_context(|| format!("no {} channels were named", value_name(&m)))?;
        let report = side.block(args.role, args.size)?;
        say(&serde_json::to_string(&report)?)?;
    }
    Ok(())
}

/// Prints one line to the bench.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        peer: PeerArgs,
    }

    #[test]
    fn peer_args_round_trip_through_the_command_line() {
        let all = PeerArgs {
            kind: "fifo".into(),
            role: Role::Echo,
            raw_rx: Some("/ipcbench.1.0".into()),
            raw_tx: Some("/ipcbench.1.1".into()),
            client_rx: Some("ipcbench-1-0".into()),
            client_tx: Some("ipcbench-1-1".into()),
            size: 4096,
            socket: Some("/tmp/b.sock".into()),
            parent: Some(42),
            cpu: Some(1),
        };
        let minimal = PeerArgs {
            raw_rx: Some("/ipcbench.1.0".into()),
            parent: None,
            ..PeerArgs::new("mq", Role::Sink, 64)
        };
        let relay = PeerArgs {
            raw_rx: Some("relay:/tmp/ipcbench.1.0/relay.sock".into()),
            ..PeerArgs::new("queue", Role::Relay, 64)
        };
        for args in [all, minimal, relay] {
            let argv = std::iter::once(OsString::from("peer")).chain(args.to_args());
            assert_eq!(Wrapper::try_parse_from(argv).unwrap().peer, args);
        }
    }
}
