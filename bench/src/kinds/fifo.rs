//! The `fifo` kind: named pipes created by ipcd and used through
//! `ipc_client` versus raw `mkfifo(3)` FIFOs, between the bench and a
//! `bench-peer` (the runs and rows are [`crate::datapath`]'s, the loops
//! [`crate::streams`]'), plus the connect + hello + `open_fifo_reader` rows.
//!
//! Raw FIFOs are fresh per run: made with `mkfifo` in a private directory
//! (mode 0700, see [`crate::tmpdir`]), opened by path on both sides, then
//! removed with their directory as soon as both sides hold them open, so an
//! interrupted bench leaves nothing behind. The client FIFOs
//! (`fifo:ipcbench-<pid>-<n>`, lifetime session, standard unbuffered
//! semantics) are created once for the kind and deleted at its end.
//!
//! Opening a FIFO blocks until the other side opens it too; so that neither
//! process waits for the other, every read end is opened first, without
//! blocking: this process opens its read ends before it starts the peer, the
//! peer opens its read ends and then its write ends (whose readers, this
//! process, are there already), and this process opens its write ends once
//! the peer is ready. A write end whose reader is missing fails at once
//! (`ENXIO`) rather than hang.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use ipc_client::{Client, FifoOptions, FifoReader, FifoWriter};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::Mode;

use crate::channel::{Blocks, Role, Sides};
use crate::ctx::Ctx;
use crate::datapath::{self, Channels, Run, Shape};
use crate::kind::KindBench;
use crate::peer::{PeerArgs, PeerClient};
use crate::peer_process::PeerProcess;
use crate::report::Row;
use crate::streams::{Bytes, StreamSide, byte_blocks};
use crate::tmpdir::PrivateDir;
use crate::{connect, objects};

/// How long a client write end waits for the FIFO's reader to open it. The
/// reader is already there in every run; this only bounds a failure.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The `fifo` entry of the kinds table.
pub struct Fifo;

impl KindBench for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }

    fn about(&self) -> &'static str {
        "FIFOs created by ipcd vs raw mkfifo FIFOs"
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        let mut fifos = FifoChannels::create(ctx)?;
        let rows = datapath::measure(ctx, &mut fifos).and_then(|mut rows| {
            let probe = fifos.names[2].clone();
            rows.extend(connect::rows(ctx, "open_fifo_reader", |c| {
                open_reader(c, &probe).map(drop)
            })?);
            Ok(rows)
        });
        let deleted = objects::delete_all(&mut fifos.client, "fifo", &fifos.names);
        let rows = rows?;
        deleted?;
        Ok(rows)
    }

    fn open_peer(&self, args: &PeerArgs, client: &mut PeerClient) -> anyhow::Result<Sides> {
        open_peer_sides(args, client)
    }
}

/// Makes a FIFO at `path`, mode 0600.
fn make_fifo(path: &Path) -> anyhow::Result<()> {
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)
        .with_context(|| format!("mkfifo {}", path.display()))
}

/// Opens the FIFO at `path` for reading or writing without waiting for the
/// other side, then makes the descriptor blocking, as the loops expect. A
/// write end fails if no reader has the FIFO open.
pub fn open_raw(path: &Path, write: bool) -> anyhow::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| {
            let end = if write { "writing" } else { "reading" };
            format!("cannot open FIFO {} for {end}", path.display())
        })?;
    fcntl(&file, FcntlArg::F_SETFL(OFlag::empty()))
        .with_context(|| format!("cannot make FIFO {} blocking", path.display()))?;
    Ok(file)
}

/// The kind's state: its connection and client FIFOs.
struct FifoChannels {
    /// The connection that created the FIFOs (lifetime session: they go with it).
    client: Client,
    /// The client FIFOs' names: ping, pong, stream.
    names: [String; 3],
}

impl FifoChannels {
    /// Connects and creates the three client FIFOs, with standard
    /// (unbuffered) semantics, as a raw FIFO has.
    fn create(ctx: &Ctx<'_>) -> anyhow::Result<Self> {
        let mut client = ctx.connect()?;
        let names = objects::create_three(&mut client, "fifo", |c, name| {
            c.create_fifo(name, &FifoOptions::new().session()).map(drop)
        })?;
        Ok(FifoChannels { client, names })
    }
}

impl Channels for FifoChannels {
    fn name(&self) -> &'static str {
        "fifo"
    }

    fn shape(&self) -> Shape {
        byte_blocks()
    }

    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run> {
        let (tx_name, rx_name) = objects::for_role(self.names.each_ref(), role);
        let c = &mut self.client;
        let mut dir = PrivateDir::create()?;
        let tx_path = dir.path().join(tx_name);
        let rx_path: Option<PathBuf> = rx_name.map(|n| dir.path().join(n));
        for path in std::iter::once(&tx_path).chain(&rx_path) {
            make_fifo(path)?;
        }
        // Read ends first (they never wait), then the peer, then the write ends.
        let raw_rx = rx_path.as_deref().map(|p| open_raw(p, false)).transpose()?;
        let client_rx = rx_name.map(|n| open_reader(c, n)).transpose()?;
        let args = PeerArgs {
            raw_rx: Some(tx_path.to_string_lossy().into_owned()),
            raw_tx: rx_path.as_ref().map(|p| p.to_string_lossy().into_owned()),
            client_rx: Some(tx_name.clone()),
            client_tx: rx_name.cloned(),
            ..ctx.peer_args("fifo", role, size)
        };
        let peer = PeerProcess::spawn(&args)?;
        let raw_tx = open_raw(&tx_path, true)?;
        let client_tx = open_writer(c, tx_name)?;
        // Both sides hold every FIFO open: the names are no longer needed.
        dir.remove()?;
        let raw = Bytes {
            tx: raw_tx,
            rx: raw_rx,
        };
        let client = Bytes {
            tx: client_tx,
            rx: client_rx,
        };
        Ok(Run {
            peer,
            ends: [Box::new(raw), Box::new(client)],
        })
    }
}

/// The peer's side: raw FIFOs opened by path, client ones through the daemon
/// by name; all read ends first, then the write ends.
fn open_peer_sides(args: &PeerArgs, client: &mut PeerClient) -> anyhow::Result<Sides> {
    let raw_rx = args
        .raw_rx
        .as_deref()
        .map(|p| open_raw(Path::new(p), false))
        .transpose()?;
    let client_rx = match &args.client_rx {
        Some(name) => Some(open_reader(client.get()?, name)?),
        None => None,
    };
    let raw_tx = args
        .raw_tx
        .as_deref()
        .map(|p| open_raw(Path::new(p), true))
        .transpose()?;
    let client_tx = match &args.client_tx {
        Some(name) => Some(open_writer(client.get()?, name)?),
        None => None,
    };
    let raw = raw_rx.map(|rx| Box::new(StreamSide { rx, tx: raw_tx }) as Box<dyn Blocks>);
    let through_client =
        client_rx.map(|rx| Box::new(StreamSide { rx, tx: client_tx }) as Box<dyn Blocks>);
    Ok([raw, through_client])
}

/// Opens `fifo:<name>` for reading (never waits).
fn open_reader(client: &mut Client, name: &str) -> anyhow::Result<FifoReader> {
    client
        .open_fifo_reader(name)
        .with_context(|| format!("cannot open fifo:{name} for reading"))
}

/// Opens `fifo:<name>` for writing, waiting up to [`OPEN_TIMEOUT`] for a reader.
fn open_writer(client: &mut Client, name: &str) -> anyhow::Result<FifoWriter> {
    client
        .open_fifo_writer(name, Some(OPEN_TIMEOUT))
        .with_context(|| format!("cannot open fifo:{name} for writing"))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    #[test]
    fn raw_fifos_open_without_waiting_and_then_block() {
        let mut dir = PrivateDir::create().unwrap();
        let path = dir.path().join("f");
        make_fifo(&path).unwrap();
        // No reader yet: a write end fails at once instead of hanging.
        let err = open_raw(&path, true).unwrap_err();
        assert!(format!("{err:#}").contains("for writing"), "{err:#}");
        let mut r = open_raw(&path, false).unwrap();
        let mut w = open_raw(&path, true).unwrap();
        dir.remove().unwrap();
        let flags = OFlag::from_bits_truncate(fcntl(&r, FcntlArg::F_GETFL).unwrap());
        assert!(!flags.contains(OFlag::O_NONBLOCK));
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 5];
            r.read_exact(&mut buf).unwrap();
            buf
        });
        std::thread::sleep(Duration::from_millis(20));
        w.write_all(b"hello").unwrap();
        assert_eq!(&reader.join().unwrap(), b"hello");
    }
}
