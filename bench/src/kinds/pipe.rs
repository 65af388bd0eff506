//! The `pipe` kind: anonymous pipes hosted by ipcd and used through
//! `ipc_client` versus raw `pipe2(2)` pipes, between the bench and a
//! `bench-peer` (the runs and rows are [`crate::datapath`]'s, the loops
//! [`crate::streams`]'), plus the connect + hello + `open_pipe_reader` rows.
//!
//! Raw pipes are fresh per run: the bench creates them with `pipe2` and the
//! peer inherits its ends, as a child does from its parent. The client pipes
//! (`pipe:ipcbench-<pid>-<n>`, lifetime session, kernel default capacity like
//! the raw ones) are created once for the kind and deleted at its end; each
//! run opens its ends through the daemon, which hands each end over as a
//! descriptor.

use std::io::{PipeReader, PipeWriter};
use std::os::fd::{AsRawFd as _, OwnedFd};

use anyhow::Context as _;
use ipc_client::{Client, PipeOptions};
use nix::fcntl::OFlag;

use crate::channel::{Role, Sides};
use crate::ctx::Ctx;
use crate::datapath::{self, Channels, Run, Shape};
use crate::kind::KindBench;
use crate::peer::{PeerArgs, PeerClient};
use crate::peer_process::PeerProcess;
use crate::report::Row;
use crate::streams::{Bytes, StreamSide, byte_blocks};
use crate::{connect, fds, objects};

/// The `pipe` entry of the kinds table.
pub struct Pipe;

impl KindBench for Pipe {
    fn name(&self) -> &'static str {
        "pipe"
    }

    fn about(&self) -> &'static str {
        "anonymous pipes hosted by ipcd vs raw pipe2 pipes"
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        let mut pipes = PipeChannels::create(ctx)?;
        let rows = datapath::measure(ctx, &mut pipes).and_then(|mut rows| {
            let probe = pipes.names[2].clone();
            rows.extend(connect::rows(ctx, "open_pipe_reader", |c| {
                open_reader(c, &probe).map(drop)
            })?);
            Ok(rows)
        });
        let deleted = objects::delete_all(&mut pipes.client, "pipe", &pipes.names);
        let rows = rows?;
        deleted?;
        Ok(rows)
    }

    fn open_peer(&self, args: &PeerArgs, client: &mut PeerClient) -> anyhow::Result<Sides> {
        let inherited = |n: &str| -> anyhow::Result<OwnedFd> {
            let fd = n
                .parse()
                .with_context(|| format!("{n:?} is not a descriptor number"))?;
            fds::take_inherited(fd, fds::Inherited::Pipe)
        };
        let raw = match &args.raw_rx {
            Some(rx) => Some(Box::new(StreamSide {
                rx: PipeReader::from(inherited(rx)?),
                tx: args
                    .raw_tx
                    .as_deref()
                    .map(|tx| inherited(tx).map(PipeWriter::from))
                    .transpose()?,
            }) as _),
            None => None,
        };
        let through_client = match &args.client_rx {
            Some(rx) => {
                let c = client.get()?;
                Some(Box::new(StreamSide {
                    rx: open_reader(c, rx)?,
                    tx: args
                        .client_tx
                        .as_deref()
                        .map(|tx| open_writer(c, tx))
                        .transpose()?,
                }) as _)
            }
            None => None,
        };
        Ok([raw, through_client])
    }
}

/// A fresh raw pipe, both ends close-on-exec: (read end, write end).
fn raw_pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2")
}

/// The kind's state: its connection and client pipes.
struct PipeChannels {
    /// The connection that created the pipes (lifetime session: they go with it).
    client: Client,
    /// The client pipes' names: ping, pong, stream.
    names: [String; 3],
}

impl PipeChannels {
    /// Connects and creates the three client pipes, with the kernel's
    /// default capacity, as a raw pipe has.
    fn create(ctx: &Ctx<'_>) -> anyhow::Result<Self> {
        let mut client = ctx.connect()?;
        let names = objects::create_three(&mut client, "pipe", |c, name| {
            c.create_pipe(name, &PipeOptions::new().session()).map(drop)
        })?;
        Ok(PipeChannels { client, names })
    }
}

impl Channels for PipeChannels {
    fn name(&self) -> &'static str {
        "pipe"
    }

    fn shape(&self) -> Shape {
        byte_blocks()
    }

    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run> {
        let (tx_name, rx_name) = objects::for_role(self.names.each_ref(), role);
        let c = &mut self.client;
        let (peer_rx, tx) = raw_pipe()?;
        let (rx, peer_tx) = match rx_name {
            Some(_) => {
                let (r, w) = raw_pipe()?;
                (Some(r), Some(w))
            }
            None => (None, None),
        };
        let client = Bytes {
            tx: open_writer(c, tx_name)?,
            rx: rx_name.map(|n| open_reader(c, n)).transpose()?,
        };
        let args = PeerArgs {
            raw_rx: Some(peer_rx.as_raw_fd().to_string()),
            raw_tx: peer_tx.as_ref().map(|w| w.as_raw_fd().to_string()),
            client_rx: Some(tx_name.clone()),
            client_tx: rx_name.cloned(),
            ..ctx.peer_args("pipe", role, size)
        };
        let inherited = std::iter::once(peer_rx).chain(peer_tx).collect();
        let peer = PeerProcess::spawn_inheriting(&args, inherited)?;
        let raw = Bytes {
            tx: PipeWriter::from(tx),
            rx: rx.map(PipeReader::from),
        };
        Ok(Run {
            peer,
            ends: [Box::new(raw), Box::new(client)],
        })
    }
}

/// Opens the read end of `pipe:<name>`.
fn open_reader(client: &mut Client, name: &str) -> anyhow::Result<ipc_client::PipeReader> {
    client
        .open_pipe_reader(name)
        .with_context(|| format!("cannot open pipe:{name} for reading"))
}

/// Opens the write end of `pipe:<name>`.
fn open_writer(client: &mut Client, name: &str) -> anyhow::Result<ipc_client::PipeWriter> {
    client
        .open_pipe_writer(name)
        .with_context(|| format!("cannot open pipe:{name} for writing"))
}
