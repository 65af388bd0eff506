//! The `fifo` section: named pipes created by ipcd and used through
//! `ipc_client` versus raw `mkfifo(3)` FIFOs, between this process and a
//! `bench-peer` (the runs and rows are [`super::bytestream`]'s).
//!
//! Raw FIFOs are fresh per run: made with `mkfifo` in a private directory
//! (mode 0700, see [`super::tmpdir`]), opened by path on both sides, then
//! removed with their directory as soon as both sides hold them open, so an
//! interrupted bench leaves nothing behind. The client FIFOs
//! (`fifo:ipcbench-<pid>-<n>`, lifetime session, standard unbuffered
//! semantics) are created once for the section and deleted at its end.
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
use ipc_client::Client;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::Mode;

use super::Ctx;
use super::bytestream::{self, Ends, Run, StreamKind, StreamSide};
use super::client_mq::unique_name;
use super::client_stream;
use super::peer::{Blocks, PeerArgs, PeerKind, PeerProcess, Role, Sides, peer_client};
use super::report::Row;
use super::tmpdir::PrivateDir;

/// How long a client write end waits for the FIFO's reader to open it. The
/// reader is already there in every run; this only bounds a failure.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the section.
pub fn run(ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
    let mut bench = FifoBench::create(ctx)?;
    let rows = bytestream::measure(ctx, &mut bench);
    let deleted = bench.delete();
    let rows = rows?;
    deleted?;
    Ok(rows)
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

/// The section's state: its connection and client FIFOs.
struct FifoBench {
    /// The connection that created the FIFOs (lifetime session: they go with it).
    client: Client,
    /// The client FIFOs' names: ping, pong, stream.
    names: [String; 3],
}

impl FifoBench {
    /// Connects and creates the three client FIFOs.
    fn create(ctx: &Ctx<'_>) -> anyhow::Result<Self> {
        let mut client = ctx.connect()?;
        let names = [(); 3].map(|()| unique_name());
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = client_stream::create_fifo(&mut client, name) {
                let _ = client_stream::delete_all(&mut client, "fifo", &names[..i]);
                return Err(e);
            }
        }
        Ok(FifoBench { client, names })
    }

    /// Deletes the client FIFOs.
    fn delete(mut self) -> anyhow::Result<()> {
        client_stream::delete_all(&mut self.client, "fifo", &self.names)
    }
}

impl StreamKind for FifoBench {
    type RawReader = File;
    type RawWriter = File;
    type ClientReader = ipc_client::FifoReader;
    type ClientWriter = ipc_client::FifoWriter;

    const NAME: &'static str = "fifo";

    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run<Self>> {
        let [ping, pong, stream] = &self.names;
        let c = &mut self.client;
        // This process writes to the first FIFO and, for role echo, reads the second.
        let (tx_name, rx_name) = match role {
            Role::Echo => (ping, Some(pong)),
            Role::Sink => (stream, None),
        };
        let mut dir = PrivateDir::create()?;
        let tx_path = dir.path().join(tx_name);
        let rx_path: Option<PathBuf> = rx_name.map(|n| dir.path().join(n));
        for path in std::iter::once(&tx_path).chain(&rx_path) {
            make_fifo(path)?;
        }
        // Read ends first (they never wait), then the peer, then the write ends.
        let raw_rx = rx_path.as_deref().map(|p| open_raw(p, false)).transpose()?;
        let client_rx = rx_name
            .map(|n| client_stream::open_fifo_reader(c, n))
            .transpose()?;
        let args = PeerArgs {
            kind: PeerKind::Fifo,
            role,
            raw_rx: Some(tx_path.to_string_lossy().into_owned()),
            raw_tx: rx_path.as_ref().map(|p| p.to_string_lossy().into_owned()),
            client_rx: Some(tx_name.clone()),
            client_tx: rx_name.cloned(),
            size,
            socket: ctx.socket.map(|p| p.to_path_buf()),
            parent: Some(std::process::id()),
        };
        let peer = PeerProcess::spawn(&args)?;
        let raw_tx = open_raw(&tx_path, true)?;
        let client_tx = client_stream::open_fifo_writer(c, tx_name, OPEN_TIMEOUT)?;
        // Both sides hold every FIFO open: the names are no longer needed.
        dir.remove()?;
        Ok(Run {
            peer,
            raw: Ends {
                tx: raw_tx,
                rx: raw_rx,
            },
            client: Ends {
                tx: client_tx,
                rx: client_rx,
            },
        })
    }
}

/// The peer's side: raw FIFOs opened by path, client ones through the daemon
/// by name; all read ends first, then the write ends.
pub fn open_peer_sides(args: &PeerArgs, client: &mut Option<Client>) -> anyhow::Result<Sides> {
    let raw_rx = args
        .raw_rx
        .as_deref()
        .map(|p| open_raw(Path::new(p), false))
        .transpose()?;
    let client_rx = match &args.client_rx {
        Some(name) => Some(client_stream::open_fifo_reader(
            peer_client(args, client)?,
            name,
        )?),
        None => None,
    };
    let raw_tx = args
        .raw_tx
        .as_deref()
        .map(|p| open_raw(Path::new(p), true))
        .transpose()?;
    let client_tx = match &args.client_tx {
        Some(name) => Some(client_stream::open_fifo_writer(
            peer_client(args, client)?,
            name,
            OPEN_TIMEOUT,
        )?),
        None => None,
    };
    let raw = raw_rx.map(|rx| Box::new(StreamSide { rx, tx: raw_tx }) as Box<dyn Blocks>);
    let through_client =
        client_rx.map(|rx| Box::new(StreamSide { rx, tx: client_tx }) as Box<dyn Blocks>);
    Ok((raw, through_client))
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
