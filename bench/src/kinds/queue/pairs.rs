//! The comparisons the `queue` kind runs, each a [`Channels`] for the shared
//! runs ([`crate::datapath`]): the raw slot holds a yardstick ([`Yardstick`]:
//! the relay, a POSIX queue, Redis, or the queue used another way), the
//! ipc-client slot the queue as [`Producer`] says. Both alternate in ABBA
//! blocks between the same producer (this process) and consumer (a
//! `bench-peer`). The peer's side of every comparison is opened by
//! [`open_peer`] from the names [`Pair::start_run`] gives it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ipc_client::{QueueReceiver, QueueSender};

use super::super::mq::{RawQueue, raw_name};
use super::ends::{End, QueueEnd};
use super::redis::RedisEnd;
use super::relay::{self, RelayEnd};
use super::sequenced::Sequenced;
use crate::abba::Budget;
use crate::channel::{Blocks, Ends, PeerReport, Role, Sides};
use crate::ctx::Ctx;
use crate::datapath::{Channels, Run, Shape};
use crate::loops::{MessageSide, Messages};
use crate::objects;
use crate::peer::PeerArgs;
use crate::peer_process::PeerProcess;
use crate::tmpdir::PrivateDir;

/// The kind's name, also its peers' `--kind`.
pub const KIND: &str = "queue";

/// How the bench's producer puts messages on a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// A [`QueueSender`]: `batch` messages per Put, at most `window` Puts in
    /// flight (`None`: the sender's default), Puts written `cork` at a time.
    Pipelined {
        /// Messages per Put.
        batch: usize,
        /// Puts in flight at most.
        window: Option<usize>,
        /// Puts per write.
        cork: usize,
    },
    /// One `queue_put` per message, each answered before the next.
    Calls,
}

impl Producer {
    /// A [`QueueSender`] as built by default: one message per Put, each
    /// written at once, the default window.
    pub const DEFAULT_SENDER: Producer = Producer::Pipelined {
        batch: 1,
        window: None,
        cork: 1,
    };

    /// The same producer writing each Put at once (round trips: a corked
    /// message would wait for the next ones, which wait for its echo).
    fn uncorked(self) -> Self {
        match self {
            Producer::Pipelined { batch, window, .. } => Producer::Pipelined {
                batch,
                window,
                cork: 1,
            },
            Producer::Calls => Producer::Calls,
        }
    }

    /// The bench's end on queue `name`, on a connection of its own.
    fn open(self, ctx: &Ctx<'_>, name: &str) -> anyhow::Result<End> {
        let client = ctx.connect()?;
        Ok(End::queue(match self {
            Producer::Pipelined {
                batch,
                window,
                cork,
            } => {
                let tx = QueueSender::new(client, name).batch(batch).cork(cork);
                QueueEnd::Sender(match window {
                    Some(w) => tx.window(w),
                    None => tx,
                })
            }
            Producer::Calls => QueueEnd::Calls {
                client,
                name: name.to_owned(),
                unacked: None,
            },
        }))
    }

    /// How the consumer is told to take from queue `name`: one call per
    /// message if the producer makes one, else through a [`QueueReceiver`].
    fn consumer_name(self, name: &str) -> String {
        match self {
            Producer::Calls => format!("calls:{name}"),
            Producer::Pipelined { .. } => name.to_owned(),
        }
    }
}

/// What the queue is held to, in the raw slot.
pub enum Yardstick {
    /// The relay process, pinned to `cpu` (ipcd's, when it is pinned).
    Relay {
        /// Where the relay runs.
        cpu: Option<usize>,
    },
    /// A fresh POSIX queue per run, `capacity` slots, one message per call.
    Mq {
        /// Its slots.
        capacity: u32,
    },
    /// A private Redis at `socket`, one command per message.
    Redis {
        /// Its socket.
        socket: PathBuf,
    },
    /// Another queue, `name`, put to as `producer` says.
    Queue {
        /// The queue's name.
        name: String,
        /// How it is put to.
        producer: Producer,
    },
}

/// One comparison: a yardstick and the queue, and how their runs are cut.
pub struct Pair {
    /// The raw slot.
    pub yardstick: Yardstick,
    /// The queues of the ipc-client slot: ping and pong (round trips only),
    /// and the stream.
    pub queues: Queues,
    /// How the bench puts to them (uncorked for round trips).
    pub producer: Producer,
    /// Blocks, run caps.
    pub shape: Shape,
}

/// The queues one comparison uses.
#[derive(Debug, Clone)]
pub struct Queues {
    /// Ping and pong, for round trips.
    pub ping_pong: Option<(String, String)>,
    /// The stream, for one-way runs.
    pub stream: String,
}

impl Queues {
    /// Where this process puts and, for role echo, gets.
    fn for_role(&self, role: Role) -> anyhow::Result<(&str, Option<&str>)> {
        match (role, &self.ping_pong) {
            (Role::Echo, Some((ping, pong))) => Ok((ping, Some(pong))),
            (Role::Echo, None) => bail!("this comparison has no round trips"),
            (Role::Sink | Role::Relay, _) => Ok((&self.stream, None)),
        }
    }
}

/// A mechanism's ends in the bench, with what must live as long as they do
/// (the relay process and its socket's directory, dropped after the ends).
struct Held {
    ends: Messages<Sequenced<End>, Sequenced<End>>,
    _relay: Option<(PeerProcess, PrivateDir)>,
}

impl Ends for Held {
    fn round_trip(
        &mut self,
        size: usize,
        lead_in: u64,
        budget: Budget,
    ) -> anyhow::Result<Vec<u64>> {
        self.ends.round_trip(size, lead_in, budget)
    }

    fn stream(&mut self, size: usize, budget: Budget) -> anyhow::Result<u64> {
        self.ends.stream(size, budget)
    }
}

impl Channels for Pair {
    fn name(&self) -> &'static str {
        KIND
    }

    fn shape(&self) -> Shape {
        self.shape
    }

    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run> {
        let echo = role == Role::Echo;
        if echo && !matches!(self.yardstick, Yardstick::Relay { .. }) {
            bail!("only the relay comparison has round trips");
        }
        let (put_to, get_from) = self.queues.for_role(role)?;
        let producer = if echo {
            self.producer.uncorked()
        } else {
            self.producer
        };
        let client = Messages {
            tx: Sequenced::new(producer.open(ctx, put_to)?),
            rx: match get_from {
                Some(name) => Some(Sequenced::new(End::queue(QueueEnd::Receiver(
                    QueueReceiver::new(ctx.connect()?, name),
                )))),
                None => None,
            },
        };
        let mut args = PeerArgs {
            client_rx: Some(self.producer.consumer_name(put_to)),
            client_tx: get_from.map(str::to_owned),
            ..ctx.peer_args(KIND, role, size)
        };
        let mut relay = None;
        let (raw_tx, raw_rx, raw_name) = match &self.yardstick {
            Yardstick::Relay { cpu } => {
                let dir = PrivateDir::create()?;
                let path = dir.path().join("relay.sock");
                let address = format!("relay:{}", utf8(&path)?);
                let relay_args = PeerArgs {
                    raw_rx: Some(address.clone()),
                    cpu: *cpu,
                    ..ctx.peer_args(KIND, Role::Relay, size)
                };
                let process = PeerProcess::spawn(&relay_args)?;
                let end = RelayEnd::connect(&path)?;
                let back = if echo {
                    Some(End::Relay(end.try_clone()?))
                } else {
                    None
                };
                relay = Some((process, dir));
                args.raw_tx = echo.then(|| address.clone());
                (End::Relay(end), back, address)
            }
            Yardstick::Mq { capacity } => {
                let name = raw_name();
                let q = RawQueue::create(&name, *capacity, size)?;
                (End::Mq(q), None, format!("mq:{name}"))
            }
            Yardstick::Redis { socket } => (
                End::Redis(RedisEnd::connect(socket)?),
                None,
                format!("redis:{}", utf8(socket)?),
            ),
            Yardstick::Queue { name, producer } => {
                (producer.open(ctx, name)?, None, format!("queue:{name}"))
            }
        };
        args.raw_rx = Some(raw_name);
        let peer = PeerProcess::spawn(&args)?;
        let mut raw_tx = raw_tx;
        if let End::Mq(q) = &mut raw_tx {
            // The peer has it open: the name can go.
            q.unlink()?;
        }
        let raw = Held {
            ends: Messages {
                tx: Sequenced::new(raw_tx),
                rx: raw_rx.map(Sequenced::new),
            },
            _relay: relay,
        };
        Ok(Run {
            peer,
            ends: [Box::new(raw), Box::new(client)],
        })
    }
}

/// The peer's side of a mechanism, whose reports say how many messages
/// arrived out of order.
struct Checked(MessageSide<Sequenced<End>>);

impl Blocks for Checked {
    fn block(&mut self, role: Role, size: usize) -> anyhow::Result<PeerReport> {
        let mut report = self.0.block(role, size)?;
        report.reordered = self.0.rx.take_reordered();
        Ok(report)
    }
}

/// `path` as UTF-8, for a peer's command line.
fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// In a `bench-peer` of this kind: starts the relay (role relay), or opens
/// the consumer's ends that [`Pair::start_run`] named.
pub fn open_peer(args: &PeerArgs) -> anyhow::Result<Sides> {
    let connect = || objects::connect(args.socket.as_deref());
    if args.role == Role::Relay {
        let Some(path) = args
            .raw_rx
            .as_deref()
            .and_then(|r| r.strip_prefix("relay:"))
        else {
            bail!("a relay needs --raw-rx relay:PATH");
        };
        relay::serve(Path::new(path))?;
        return Ok([None, None]);
    }
    let raw = match args.raw_rx.as_deref() {
        None => None,
        Some(address) => {
            let Some((scheme, rest)) = address.split_once(':') else {
                bail!("--raw-rx {address:?} names no channel (relay:, mq:, redis: or queue:)");
            };
            let rx = match scheme {
                "relay" => End::Relay(RelayEnd::connect(Path::new(rest))?),
                "mq" => End::Mq(RawQueue::open(rest)?),
                "redis" => End::Redis(RedisEnd::connect(Path::new(rest))?),
                "queue" => End::queue(QueueEnd::Receiver(QueueReceiver::new(connect()?, rest))),
                _ => bail!("--raw-rx {address:?}: unknown channel {scheme:?}"),
            };
            let tx = match (&args.raw_tx, &rx) {
                (None, _) => None,
                (Some(_), End::Relay(r)) => Some(Sequenced::new(End::Relay(r.try_clone()?))),
                (Some(t), _) => bail!("--raw-tx {t:?}: only the relay carries echoes"),
            };
            Some(Box::new(Checked(MessageSide {
                rx: Sequenced::new(rx),
                tx,
            })) as _)
        }
    };
    let client = match args.client_rx.as_deref() {
        None => None,
        Some(name) => {
            let rx = match name.strip_prefix("calls:") {
                Some(name) => QueueEnd::Calls {
                    client: connect()?,
                    name: name.to_owned(),
                    unacked: None,
                },
                None => QueueEnd::Receiver(QueueReceiver::new(connect()?, name)),
            };
            let tx = match &args.client_tx {
                Some(name) => Some(Sequenced::new(End::queue(QueueEnd::Sender(
                    QueueSender::new(connect()?, name),
                )))),
                None => None,
            };
            Some(Box::new(Checked(MessageSide {
                rx: Sequenced::new(End::queue(rx)),
                tx,
            })) as _)
        }
    };
    Ok([raw, client])
}
