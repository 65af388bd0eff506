//! The second process of a benchmark: `ipcctl bench-peer` (hidden), and the
//! parent's handle on it.
//!
//! The parent re-executes its own binary ([`std::env::current_exe`]) with
//! `bench-peer` and [`PeerArgs`] naming the channels of both mechanisms:
//! queues, pipes or FIFOs ([`PeerKind`]). The peer opens them all (raw ones by
//! kernel name, inherited descriptor or path; client ones through the daemon)
//! and prints `ready`. Then, line by line on its stdin, the parent
//! names the mechanism of the next *block* (`raw` or `client`); the peer runs
//! its half of the loop in [`super::loops`] (queues) or [`super::streams`]
//! (pipes, FIFOs) on it until the end marker and
//! answers with one JSON line ([`PeerReport`]). End of stdin ends the peer.
//! Since both mechanisms run in the same two processes, block after block,
//! they share CPU placement and drift, which is what makes their ratio stable.
//!
//! Nothing can hang forever: the peer dies with its parent (`PR_SET_PDEATHSIG`),
//! and a watchdog thread in the parent ends the bench if the peer dies
//! mid-run (the parent would otherwise block in a receive nobody answers).

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::ValueEnum as _;
use ipc_client::{Access, Client};
use serde::{Deserialize, Serialize};

use super::client_mq;
use super::loops::{Endpoint, echo, sink};
use super::raw::{self, RawQueue};
use super::stats::Rate;
use super::{fds, fifo, pipe, tmpdir};

/// What one peer process does (the hidden `ipcctl bench-peer` subcommand).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PeerArgs {
    /// What the channels are.
    #[arg(long, value_enum, default_value_t = PeerKind::Mq)]
    pub kind: PeerKind,
    /// Echo every message back (round trip), or count them (throughput).
    #[arg(long, value_enum)]
    pub role: Role,
    /// The raw channel to receive from: a queue's kernel name
    /// (`/ipcbench.1.0`), an inherited pipe end's descriptor number, or a FIFO's path.
    #[arg(long)]
    pub raw_rx: Option<String>,
    /// The raw channel to echo to (role `echo`), named as `--raw-rx`.
    #[arg(long)]
    pub raw_tx: Option<String>,
    /// The ipcd object to receive from, by name.
    #[arg(long)]
    pub client_rx: Option<String>,
    /// The ipcd object to echo to (role `echo`).
    #[arg(long)]
    pub client_tx: Option<String>,
    /// Message size in bytes (for queues, also their message size).
    #[arg(long)]
    pub size: usize,
    /// The daemon's socket (for the client queues); default: the usual resolution.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The pid of the bench that started this peer; the peer refuses to run if
    /// its parent is already someone else.
    #[arg(long)]
    pub parent: Option<u32>,
}

/// What a peer's channels are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerKind {
    /// POSIX message queues.
    Mq,
    /// Anonymous pipes: raw ends inherited from the bench, client ones
    /// through ipcd.
    Pipe,
    /// Named pipes: raw ones by path, client ones through ipcd.
    Fifo,
}

/// How a peer reaches its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mechanism {
    /// `mq_open(3)` by kernel name, `mq_send`/`mq_receive` on the descriptor.
    Raw,
    /// `ipc_client::Client::open_mq`, then the library's send/receive.
    Client,
}

/// Both mechanisms, in the order results are kept: raw first, then ipc-client.
pub const MECHANISMS: [Mechanism; 2] = [Mechanism::Raw, Mechanism::Client];

impl Mechanism {
    /// Index of this mechanism in [`MECHANISMS`].
    pub fn index(self) -> usize {
        match self {
            Mechanism::Raw => 0,
            Mechanism::Client => 1,
        }
    }
}

/// What a peer does with the messages it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Send each message back on the mechanism's `--*-tx` queue.
    Echo,
    /// Count them and time the stream.
    Sink,
}

/// Names of a [`clap::ValueEnum`] value as typed on the command line.
fn value_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

impl PeerArgs {
    /// The command line (after `bench-peer`) that parses back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--kind".into(),
            value_name(&self.kind).into(),
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
        if let Some(parent) = self.parent {
            a.extend(["--parent".into(), parent.to_string().into()]);
        }
        a
    }
}

/// What a peer prints after each block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    /// Messages echoed (role echo) or counted after the clock started (role sink).
    pub messages: u64,
    /// Payload bytes counted (role sink).
    pub bytes: u64,
    /// Nanoseconds from the first message (queues) or the first read (streams)
    /// to the end marker (role sink).
    pub elapsed_ns: u64,
    /// Byte streams, role sink: messages received in all, the end marker
    /// included. 0 for queues.
    #[serde(default)]
    pub received: u64,
}

impl PeerReport {
    /// The throughput the report describes.
    pub fn rate(&self) -> Rate {
        Rate {
            messages: self.messages,
            bytes: self.bytes,
            elapsed: Duration::from_nanos(self.elapsed_ns),
        }
    }
}

/// The line a peer prints once its queues are open.
const READY: &str = "ready";

/// One mechanism's channels on the peer's side, whatever they are.
pub trait Blocks {
    /// Runs one block of `role` on these channels and reports on it.
    fn block(&mut self, role: Role, size: usize) -> anyhow::Result<PeerReport>;
}

/// The peer's two mechanisms; `None` for one the bench named no channels of.
pub type Sides = (Option<Box<dyn Blocks>>, Option<Box<dyn Blocks>>);

/// One mechanism's queues on the peer's side: where it receives and, for
/// role echo, where it answers.
struct Side<E> {
    /// Receives the parent's messages.
    rx: E,
    /// Carries the echoes back (role echo only).
    tx: Option<E>,
}

impl<E: Endpoint> Blocks for Side<E> {
    fn block(&mut self, role: Role, size: usize) -> anyhow::Result<PeerReport> {
        Ok(match (role, &mut self.tx) {
            (Role::Echo, Some(tx)) => echoed(echo(&mut self.rx, tx, size)?),
            (Role::Echo, None) => bail!("role echo needs a queue to echo to"),
            (Role::Sink, _) => counted(sink(&mut self.rx, size)?),
        })
    }
}

/// The `ipcctl bench-peer` subcommand: the second process of one run.
pub fn peer(args: &PeerArgs) -> anyhow::Result<()> {
    // Die with the bench rather than block forever on a queue nobody feeds.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("cannot set the parent-death signal")?;
    if let Some(parent) = args.parent {
        let actual = nix::unistd::getppid().as_raw();
        if i64::from(actual) != i64::from(parent) {
            bail!("the bench (pid {parent}) has already exited");
        }
    }
    // Kept open for as long as the peer runs, like any application's connection.
    let mut client = None;
    let (mut raw, mut through_client) = match args.kind {
        PeerKind::Mq => open_queues(args, &mut client)?,
        PeerKind::Pipe => pipe::open_peer_sides(args, &mut client)?,
        PeerKind::Fifo => fifo::open_peer_sides(args, &mut client)?,
    };
    say(READY)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read the bench's commands")?;
        let report = match Mechanism::from_str(line.trim(), false) {
            Ok(Mechanism::Raw) => raw
                .as_mut()
                .context("no raw channels were named")?
                .block(args.role, args.size)?,
            Ok(Mechanism::Client) => through_client
                .as_mut()
                .context("no ipcd objects were named")?
                .block(args.role, args.size)?,
            Err(_) => bail!("unknown bench command {line:?}"),
        };
        say(&serde_json::to_string(&report)?)?;
    }
    Ok(())
}

/// Opens the queues `args` name: raw ones by kernel name, client ones through
/// the daemon (connecting `client`).
fn open_queues(args: &PeerArgs, client: &mut Option<Client>) -> anyhow::Result<Sides> {
    let raw: Option<Box<dyn Blocks>> = match &args.raw_rx {
        Some(rx) => Some(Box::new(Side {
            rx: RawQueue::open(rx)?,
            tx: args.raw_tx.as_deref().map(RawQueue::open).transpose()?,
        })),
        None => None,
    };
    let through_client: Option<Box<dyn Blocks>> = match &args.client_rx {
        Some(rx) => {
            let c = peer_client(args, client)?;
            Some(Box::new(Side {
                rx: client_mq::open(c, rx, Access::Read)?,
                tx: match &args.client_tx {
                    Some(tx) => Some(client_mq::open(c, tx, Access::Write)?),
                    None => None,
                },
            }))
        }
        None => None,
    };
    Ok((raw, through_client))
}

/// The peer's connection to the daemon, connected on first use.
pub fn peer_client<'a>(
    args: &PeerArgs,
    client: &'a mut Option<Client>,
) -> anyhow::Result<&'a mut Client> {
    if client.is_none() {
        *client = Some(super::connect(args.socket.as_deref())?);
    }
    Ok(client.as_mut().expect("connected just above"))
}

/// Prints one line to the parent.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The report of an echo block.
pub fn echoed(messages: u64) -> PeerReport {
    PeerReport {
        messages,
        bytes: 0,
        elapsed_ns: 0,
        received: 0,
    }
}

/// The report of a sink block.
pub fn counted(rate: Rate) -> PeerReport {
    PeerReport {
        messages: rate.messages,
        bytes: rate.bytes,
        elapsed_ns: super::stats::nanos(rate.elapsed),
        received: 0,
    }
}

/// How long a peer may take to open its queues before the bench gives up on it.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the watchdog looks at the peer. Rare enough not to disturb the
/// measurement (one wake-up per 50 ms against tens of thousands of messages).
const WATCH_INTERVAL: Duration = Duration::from_millis(50);

/// Flags shared between the parent's thread and the watchdog.
#[derive(Debug, Default)]
struct Shared {
    /// The peer printed `ready`.
    ready: AtomicBool,
    /// The parent no longer waits on the peer; the watchdog should stop.
    done: AtomicBool,
}

/// The parent's handle on a running peer; kills it on drop if still running.
pub struct PeerProcess {
    /// The child, shared with the watchdog.
    child: Arc<Mutex<Child>>,
    /// The child's stdin: one mechanism name per block; closed to end the peer.
    stdin: Option<ChildStdin>,
    /// The child's stdout: `ready`, then one report per block.
    stdout: BufReader<ChildStdout>,
    /// Flags shared with the watchdog.
    shared: Arc<Shared>,
    /// The watchdog thread.
    watchdog: Option<JoinHandle<()>>,
}

impl PeerProcess {
    /// Starts `current_exe() bench-peer <args>` and its watchdog, and waits
    /// until the peer has opened its channels.
    pub fn spawn(args: &PeerArgs) -> anyhow::Result<Self> {
        Self::spawn_inheriting(args, Vec::new())
    }

    /// Like [`spawn`](Self::spawn), and the peer inherits `fds` under their
    /// numbers (`args` names them); this process's copies are closed once
    /// the peer has started.
    pub fn spawn_inheriting(args: &PeerArgs, fds: Vec<OwnedFd>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the ipcctl executable")?;
        for fd in &fds {
            fds::inheritable(fd)?;
        }
        let spawned = Command::new(&exe)
            .arg("bench-peer")
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        // The peer has its copies now; holding ours would hide its exit from
        // the other end (no end of file, no EPIPE).
        drop(fds);
        let mut child =
            spawned.with_context(|| format!("cannot start {} bench-peer", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let child = Arc::new(Mutex::new(child));
        let shared = Arc::new(Shared::default());
        let watchdog = {
            let (child, shared) = (Arc::clone(&child), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("bench-watchdog".into())
                .spawn(move || watch(&child, &shared))
                .context("cannot start the watchdog thread")?
        };
        let mut peer = PeerProcess {
            child,
            stdin,
            stdout,
            shared,
            watchdog: Some(watchdog),
        };
        let line = peer.read_line()?;
        if line != READY {
            bail!("bench peer said {line:?} instead of {READY:?}");
        }
        peer.shared.ready.store(true, Ordering::SeqCst);
        Ok(peer)
    }

    /// Tells the peer that the next block runs on `mechanism`. The block's
    /// report follows with [`report`](Self::report) once the parent's half is done.
    pub fn start(&mut self, mechanism: Mechanism) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the bench peer's stdin is closed")?;
        writeln!(stdin, "{}", value_name(&mechanism))
            .and_then(|()| stdin.flush())
            .context("cannot write to the bench peer")
    }

    /// Reads the report of the block just run.
    pub fn report(&mut self) -> anyhow::Result<PeerReport> {
        let line = self.read_line()?;
        serde_json::from_str(&line)
            .with_context(|| format!("bench peer sent a malformed report {line:?}"))
    }

    /// Ends the peer (end of its stdin) and waits for it to exit successfully.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.shared.done.store(true, Ordering::SeqCst);
        drop(self.stdin.take());
        let status = lock(&self.child)
            .wait()
            .context("cannot wait for the bench peer")?;
        if !status.success() {
            bail!("bench peer failed ({status})");
        }
        Ok(())
    }

    /// One line of the peer's stdout, without its newline.
    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .context("cannot read from the bench peer")?;
        if n == 0 {
            self.shared.done.store(true, Ordering::SeqCst);
            let status = lock(&self.child)
                .wait()
                .context("cannot wait for the bench peer")?;
            bail!("bench peer exited early ({status}); see its error above");
        }
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::SeqCst);
        drop(self.stdin.take());
        {
            let mut child = lock(&self.child);
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
    }
}

/// Locks the child, ignoring poisoning (the data is a process handle).
fn lock(child: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(|e| e.into_inner())
}

/// The watchdog: if the peer dies (or never gets ready) while the parent still
/// depends on it, the parent may be blocked in a receive for good; unlink what
/// is left, say why and exit. Objects created through ipcd go with the
/// connection (lifetime session).
fn watch(child: &Mutex<Child>, shared: &Shared) {
    let started = Instant::now();
    loop {
        std::thread::sleep(WATCH_INTERVAL);
        if shared.done.load(Ordering::SeqCst) {
            return;
        }
        let status = {
            let mut child = lock(child);
            match child.try_wait() {
                Ok(None) => {
                    if !shared.ready.load(Ordering::SeqCst) && started.elapsed() > READY_TIMEOUT {
                        let _ = child.kill();
                    }
                    continue;
                }
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => status.to_string(),
                Err(e) => e.to_string(),
            }
        };
        // Give the parent's own error path the chance to report first.
        std::thread::sleep(Duration::from_secs(1));
        if shared.done.load(Ordering::SeqCst) {
            return;
        }
        raw::unlink_all_live();
        tmpdir::remove_all_live();
        eprintln!("ipcctl: bench peer died mid-run ({status}); giving up (os-error)");
        std::process::exit(crate::EXIT_ERROR);
    }
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
            kind: PeerKind::Fifo,
            role: Role::Echo,
            raw_rx: Some("/ipcbench.1.0".into()),
            raw_tx: Some("/ipcbench.1.1".into()),
            client_rx: Some("ipcbench-1-0".into()),
            client_tx: Some("ipcbench-1-1".into()),
            size: 4096,
            socket: Some("/tmp/b.sock".into()),
            parent: Some(42),
        };
        let minimal = PeerArgs {
            kind: PeerKind::Mq,
            role: Role::Sink,
            raw_rx: Some("/ipcbench.1.0".into()),
            raw_tx: None,
            client_rx: None,
            client_tx: None,
            size: 64,
            socket: None,
            parent: None,
        };
        for args in [all, minimal] {
            let argv = std::iter::once(OsString::from("peer")).chain(args.to_args());
            assert_eq!(Wrapper::try_parse_from(argv).unwrap().peer, args);
        }
    }

    #[test]
    fn mechanisms_are_named_as_the_peer_parses_them() {
        for m in [Mechanism::Raw, Mechanism::Client] {
            assert_eq!(Mechanism::from_str(&value_name(&m), false), Ok(m));
        }
    }

    #[test]
    fn reports_are_one_json_line() {
        let r = PeerReport {
            messages: 3,
            bytes: 192,
            elapsed_ns: 1000,
            received: 4,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<PeerReport>(&line).unwrap(), r);
        assert_eq!(r.rate().messages, 3);
        let old = r#"{"messages":3,"bytes":0,"elapsed_ns":0}"#;
        assert_eq!(serde_json::from_str::<PeerReport>(old).unwrap().received, 0);
    }
}
