//! The `pipe` section: anonymous pipes hosted by ipcd and used through
//! `ipc_client` versus raw `pipe2(2)` pipes, between this process and a
//! `bench-peer` (the runs and rows are [`super::bytestream`]'s).
//!
//! Raw pipes are fresh per run: this process creates them with `pipe2` and
//! the peer inherits its ends, as a child does from its parent. The client
//! pipes (`pipe:ipcbench-<pid>-<n>`, lifetime session, kernel default
//! capacity like the raw ones) are created once for the section and deleted
//! at its end; each run's peer opens its ends through the daemon, which hands
//! each end over as a descriptor.

use std::io::{PipeReader, PipeWriter};
use std::os::fd::{AsRawFd as _, OwnedFd};

use anyhow::Context as _;
use ipc_client::Client;
use nix::fcntl::OFlag;

use super::Ctx;
use super::bytestream::{self, Ends, Run, StreamKind, StreamSide};
use super::client_mq::unique_name;
use super::client_stream;
use super::peer::{PeerArgs, PeerKind, PeerProcess, Role, Sides, peer_client};
use super::report::Row;

/// Runs the section.
pub fn run(ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
    let mut bench = PipeBench::create(ctx)?;
    let rows = bytestream::measure(ctx, &mut bench);
    let deleted = bench.delete();
    let rows = rows?;
    deleted?;
    Ok(rows)
}

/// A fresh raw pipe, both ends close-on-exec: (read end, write end).
fn raw_pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2")
}

/// The section's state: its connection and client pipes.
struct PipeBench {
    /// The connection that created the pipes (lifetime session: they go with it).
    client: Client,
    /// The client pipes' names: ping, pong, stream.
    names: [String; 3],
}

impl PipeBench {
    /// Connects and creates the three client pipes.
    fn create(ctx: &Ctx<'_>) -> anyhow::Result<Self> {
        let mut client = ctx.connect()?;
        let names = [(); 3].map(|()| unique_name());
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = client_stream::create_pipe(&mut client, name) {
                let _ = client_stream::delete_all(&mut client, "pipe", &names[..i]);
                return Err(e);
            }
        }
        Ok(PipeBench { client, names })
    }

    /// Deletes the client pipes.
    fn delete(mut self) -> anyhow::Result<()> {
        client_stream::delete_all(&mut self.client, "pipe", &self.names)
    }
}

impl StreamKind for PipeBench {
    type RawReader = PipeReader;
    type RawWriter = PipeWriter;
    type ClientReader = ipc_client::PipeReader;
    type ClientWriter = ipc_client::PipeWriter;

    const NAME: &'static str = "pipe";

    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run<Self>> {
        let [ping, pong, stream] = &self.names;
        let c = &mut self.client;
        // This process writes to the first pipe and, for role echo, reads the second.
        let (tx_name, rx_name) = match role {
            Role::Echo => (ping, Some(pong)),
            Role::Sink => (stream, None),
        };
        let (peer_rx, tx) = raw_pipe()?;
        let (rx, peer_tx) = match rx_name {
            Some(_) => {
                let (r, w) = raw_pipe()?;
                (Some(r), Some(w))
            }
            None => (None, None),
        };
        let client_ends = Ends {
            tx: client_stream::open_pipe_writer(c, tx_name)?,
            rx: rx_name
                .map(|n| client_stream::open_pipe_reader(c, n))
                .transpose()?,
        };
        let args = PeerArgs {
            kind: PeerKind::Pipe,
            role,
            raw_rx: Some(peer_rx.as_raw_fd().to_string()),
            raw_tx: peer_tx.as_ref().map(|w| w.as_raw_fd().to_string()),
            client_rx: Some(tx_name.clone()),
            client_tx: rx_name.cloned(),
            size,
            socket: ctx.socket.map(|p| p.to_path_buf()),
            parent: Some(std::process::id()),
        };
        let inherited = std::iter::once(peer_rx).chain(peer_tx).collect();
        let peer = PeerProcess::spawn_inheriting(&args, inherited)?;
        Ok(Run {
            peer,
            raw: Ends {
                tx: PipeWriter::from(tx),
                rx: rx.map(PipeReader::from),
            },
            client: client_ends,
        })
    }
}

/// The peer's side: raw ends inherited under the numbers `args` gives,
/// client ends opened through the daemon by name.
pub fn open_peer_sides(args: &PeerArgs, client: &mut Option<Client>) -> anyhow::Result<Sides> {
    let inherited = |n: &str| -> anyhow::Result<OwnedFd> {
        let fd = n
            .parse()
            .with_context(|| format!("{n:?} is not a descriptor number"))?;
        super::fds::take_inherited(fd)
    };
    let raw: Option<Box<dyn super::peer::Blocks>> = match &args.raw_rx {
        Some(rx) => Some(Box::new(StreamSide {
            rx: PipeReader::from(inherited(rx)?),
            tx: args
                .raw_tx
                .as_deref()
                .map(|tx| inherited(tx).map(PipeWriter::from))
                .transpose()?,
        })),
        None => None,
    };
    let through_client: Option<Box<dyn super::peer::Blocks>> = match &args.client_rx {
        Some(rx) => {
            let c = peer_client(args, client)?;
            Some(Box::new(StreamSide {
                rx: client_stream::open_pipe_reader(c, rx)?,
                tx: args
                    .client_tx
                    .as_deref()
                    .map(|tx| client_stream::open_pipe_writer(c, tx))
                    .transpose()?,
            }))
        }
        None => None,
    };
    Ok((raw, through_client))
}
