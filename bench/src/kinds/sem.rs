//! The `sem` kind: semaphores.
//!
//! - Direct path: `ipc_client::DirectSem` (`sem_wait`/`sem_post` on the
//!   mapped `sem_t` of a `sem:` object the daemon created and handed over)
//!   versus raw process-shared semaphores (`sem_init` in a memfd the peer
//!   inherits), between the bench and a `bench-peer`: the round trip is a
//!   post/wait ping-pong over two semaphores, one-way is posts per second
//!   (the runs and rows are [`crate::datapath`]'s, the loops
//!   [`crate::loops`]'). Target: ≥ 0.9× raw (round trip ≤ 1/0.9 ×).
//! - Through the daemon ([`daemon`]): acquire + release pairs pipelined on
//!   one connection (target ≥ 50 000 pairs/s), and an uncontended
//!   `lock:` acquire round trip against a ping in alternating blocks
//!   (target ≤ 1.2× a ping).
//!
//! A semaphore carries no bytes, so the loops' zero-length end marker is a
//! word beside it: the sender stores how many posts the block took, marker
//! included, before its last post ([`Counted`]); rows have no size. The
//! client semaphores (`sem:ipcbench-<pid>-<n>`, initial 0, lifetime session)
//! are created once for the kind and deleted at its end; the raw ones and the
//! end words live in one fresh memfd per run.

mod daemon;

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use ipc_client::protocol::{KindParams, SemParams};
use ipc_client::{Client, DirectSem};

use crate::channel::{Role, Sides};
use crate::ctx::Ctx;
use crate::datapath::{self, Channels, RatioTargets, Run, Shape};
use crate::fds::{self, Inherited};
use crate::kind::KindBench;
use crate::loops::{Endpoint, MessageSide, Messages};
use crate::objects;
use crate::peer::{PeerArgs, PeerClient};
use crate::peer_process::PeerProcess;
use crate::report::Row;
use crate::sys::{self, Mapping};

/// The loops' message size: one "message" is one post.
const SIZE: usize = 1;
/// Posts per throughput block.
const BLOCK: u64 = 20_000;
/// Where the raw semaphores sit in the run's memfd: ping, pong.
const RAW_SEMS: [usize; 2] = [0, 64];
/// The end words in the memfd: raw ping, raw pong, client ping, client pong.
const END_WORDS: [usize; 4] = [128, 136, 144, 152];
/// Bytes of the run's memfd.
const MEMFD_LEN: usize = 4096;
/// The direct path's goals relative to raw: ≥ 0.9× (latency ≤ 1/0.9×).
const TARGETS: RatioTargets = RatioTargets {
    max_round_trip: 1.0 / 0.9,
    min_throughput: 0.9,
};

/// The `sem` entry of the kinds table.
pub struct Sem;

impl KindBench for Sem {
    fn name(&self) -> &'static str {
        "sem"
    }

    fn about(&self) -> &'static str {
        "semaphores: the direct path vs raw sem_post/sem_wait, acquire+release through ipcd \
         (pipelined), a lock round trip vs a ping"
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        let opts = crate::ctx::Options {
            sizes: vec![SIZE],
            ..ctx.opts.clone()
        };
        let one_size = Ctx {
            opts: &opts,
            socket: ctx.socket,
            progress: ctx.progress,
            placement: ctx.placement,
            allowed: ctx.allowed,
            daemon: ctx.daemon,
            notes: ctx.notes,
        };
        let mut client = ctx.connect()?;
        let names = objects::create_three(&mut client, "sem", |c, name| {
            let none = KindParams::Sem(SemParams {
                initial: 0,
                max: None,
            });
            c.create(&format!("sem:{name}"), daemon::session(none))
                .map(drop)
        })?;
        let mut sems = SemChannels { client, names };
        let rows = datapath::measure(&one_size, &mut sems).and_then(|mut rows| {
            for row in &mut rows {
                row.size = None;
            }
            rows.extend(daemon::rows(ctx, &mut sems.client)?);
            Ok(rows)
        });
        let deleted = objects::delete_all(&mut sems.client, "sem", &sems.names);
        let rows = rows?;
        deleted?;
        Ok(rows)
    }

    fn open_peer(&self, args: &PeerArgs, client: &mut PeerClient) -> anyhow::Result<Sides> {
        let Some(memfd) = &args.raw_rx else {
            anyhow::bail!("the sem peer needs --raw-rx (the run's memfd)");
        };
        let fd = memfd
            .parse()
            .with_context(|| format!("{memfd:?} is not a descriptor number"))?;
        let map = Arc::new(Mapping::map(fds::take_inherited(fd, Inherited::Memfd)?)?);
        let echo = args.raw_tx.is_some();
        let raw = MessageSide {
            rx: Counted::new(RawSem::at(&map, RAW_SEMS[0]), &map, END_WORDS[0]),
            tx: echo.then(|| Counted::new(RawSem::at(&map, RAW_SEMS[1]), &map, END_WORDS[1])),
        };
        let c = client.get()?;
        let rx_name = args
            .client_rx
            .as_deref()
            .context("the sem peer needs --client-rx")?;
        let through_client = MessageSide {
            rx: Counted::new(open(c, rx_name)?, &map, END_WORDS[2]),
            tx: args
                .client_tx
                .as_deref()
                .map(|n| Ok::<_, anyhow::Error>(Counted::new(open(c, n)?, &map, END_WORDS[3])))
                .transpose()?,
        };
        Ok([
            Some(Box::new(raw) as _),
            Some(Box::new(through_client) as _),
        ])
    }
}

/// Opens `sem:<name>` for the direct path.
fn open(client: &mut Client, name: &str) -> anyhow::Result<DirectSem> {
    client
        .open_sem(name)
        .with_context(|| format!("cannot open sem:{name} for the direct path"))
}

/// A semaphore the loops can post and wait on.
trait Semaphore {
    /// Gives a permit.
    fn post(&self) -> anyhow::Result<()>;
    /// Takes a permit, waiting as long as it takes.
    fn wait(&self) -> anyhow::Result<()>;
}

impl Semaphore for DirectSem {
    #[inline]
    fn post(&self) -> anyhow::Result<()> {
        Ok(DirectSem::post(self)?)
    }

    #[inline]
    fn wait(&self) -> anyhow::Result<()> {
        Ok(DirectSem::wait(self)?)
    }
}

/// A raw process-shared semaphore in the run's memfd.
struct RawSem {
    map: Arc<Mapping>,
    offset: usize,
}

impl RawSem {
    fn at(map: &Arc<Mapping>, offset: usize) -> Self {
        RawSem {
            map: Arc::clone(map),
            offset,
        }
    }
}

impl Semaphore for RawSem {
    #[inline]
    fn post(&self) -> anyhow::Result<()> {
        self.map.sem_post(self.offset)
    }

    #[inline]
    fn wait(&self) -> anyhow::Result<()> {
        self.map.sem_wait(self.offset)
    }
}

/// A semaphore as a message channel: a post is a message of [`SIZE`]; the
/// end marker is the post count stored in the end word before the last post.
struct Counted<S> {
    sem: S,
    map: Arc<Mapping>,
    end: usize,
    count: u64,
}

impl<S: Semaphore> Counted<S> {
    fn new(sem: S, map: &Arc<Mapping>, end: usize) -> Self {
        Counted {
            sem,
            map: Arc::clone(map),
            end,
            count: 0,
        }
    }
}

impl<S: Semaphore> Endpoint for Counted<S> {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        self.count += 1;
        if msg.is_empty() {
            self.map
                .u64_at(self.end)
                .store(self.count, Ordering::Release);
            self.count = 0;
        }
        self.sem.post()
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        self.sem.wait()?;
        self.count += 1;
        let word = self.map.u64_at(self.end);
        // The last post comes after the store, so the wait that takes it sees it.
        if word.load(Ordering::Acquire) == self.count {
            word.store(0, Ordering::Relaxed);
            self.count = 0;
            return Ok(0);
        }
        Ok(buf.len())
    }
}

/// The kind's state: its connection and client semaphores.
struct SemChannels {
    /// The connection that created the semaphores (lifetime session).
    client: Client,
    /// The client semaphores' names: ping, pong, stream.
    names: [String; 3],
}

impl Channels for SemChannels {
    fn name(&self) -> &'static str {
        "sem"
    }

    fn shape(&self) -> Shape {
        Shape {
            block: |_| BLOCK,
            max_run_bytes: None,
            bulk: false,
            targets: Some(TARGETS),
        }
    }

    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run> {
        let (tx_name, rx_name) = objects::for_role(self.names.each_ref(), role);
        let memfd: OwnedFd = sys::memfd("sem", MEMFD_LEN)?;
        let map = Arc::new(Mapping::map(&memfd)?);
        for offset in RAW_SEMS {
            map.sem_init(offset, 0)?;
        }
        let c = &mut self.client;
        let client = Messages {
            tx: Counted::new(open(c, tx_name)?, &map, END_WORDS[2]),
            rx: rx_name
                .map(|n| Ok::<_, anyhow::Error>(Counted::new(open(c, n)?, &map, END_WORDS[3])))
                .transpose()?,
        };
        let raw = Messages {
            tx: Counted::new(RawSem::at(&map, RAW_SEMS[0]), &map, END_WORDS[0]),
            rx: rx_name.map(|_| Counted::new(RawSem::at(&map, RAW_SEMS[1]), &map, END_WORDS[1])),
        };
        let fd = memfd.as_raw_fd().to_string();
        let args = PeerArgs {
            raw_rx: Some(fd.clone()),
            // Role echo: the peer answers on the pong semaphore of the same memfd.
            raw_tx: rx_name.map(|_| fd),
            client_rx: Some(tx_name.clone()),
            client_tx: rx_name.cloned(),
            ..ctx.peer_args("sem", role, size)
        };
        let peer = PeerProcess::spawn_inheriting(&args, vec![memfd])?;
        Ok(Run {
            peer,
            ends: [Box::new(raw), Box::new(client)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_word_marks_the_last_post_of_a_block() {
        let memfd = sys::memfd("sem-test", MEMFD_LEN).unwrap();
        let map = Arc::new(Mapping::map(&memfd).unwrap());
        map.sem_init(RAW_SEMS[0], 0).unwrap();
        let mut tx = Counted::new(RawSem::at(&map, RAW_SEMS[0]), &map, END_WORDS[0]);
        let mut rx = Counted::new(RawSem::at(&map, RAW_SEMS[0]), &map, END_WORDS[0]);
        let mut buf = [0u8; SIZE];
        for block in 0..3 {
            for _ in 0..block {
                tx.send(&buf).unwrap();
            }
            tx.send(&[]).unwrap();
            // The receiver lags the whole block: it still counts to the marker.
            for _ in 0..block {
                assert_eq!(rx.recv(&mut buf).unwrap(), SIZE);
            }
            assert_eq!(rx.recv(&mut buf).unwrap(), 0, "block {block}");
            assert_eq!(map.u64_at(END_WORDS[0]).load(Ordering::Relaxed), 0);
        }
    }
}
