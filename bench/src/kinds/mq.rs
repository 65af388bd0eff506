//! The `mq` kind: POSIX message queues through `ipc_client` versus raw
//! `mq_send`/`mq_receive` on queues opened with `mq_open(3)`, between the
//! bench and a `bench-peer` (the runs and rows are [`super::super::datapath`]'s),
//! plus the connect + hello + `open_mq` rows ([`super::super::connect`]).
//!
//! Raw queues are fresh per run, created under unique names
//! (`/ipcbench.<pid>.<n>`) and unlinked as soon as the peer has opened them
//! (the kernel keeps an unlinked queue alive until its last descriptor
//! closes), so an interrupted bench leaves nothing behind; until then a name
//! is listed in a registry the watchdog can still unlink from. The client
//! queues (`mq:ipcbench-<pid>-<n>`, created through ipcd with lifetime
//! session, so they vanish if the bench dies) are created once per message
//! size and deleted after it; each run opens them afresh on both sides. All
//! have `--capacity` slots of exactly the message size under test.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;
use ipc_client::{Access, Client, MessageQueue, MqOptions};
use nix::mqueue::{
    MQ_OFlag, MqAttr, MqdT, mq_attr_member_t, mq_close, mq_open, mq_receive, mq_send, mq_unlink,
};
use nix::sys::stat::Mode;

use crate::channel::{Role, Sides};
use crate::ctx::Ctx;
use crate::datapath::{self, Channels, RatioTargets, Run, Shape};
use crate::kind::KindBench;
use crate::loops::{Endpoint, MessageSide, Messages};
use crate::peer::{PeerArgs, PeerClient};
use crate::peer_process::PeerProcess;
use crate::report::Row;
use crate::{cleanup, connect, objects};

/// Messages per throughput block. Single blocks vary by ±30 % on a 2-vCPU VM
/// (scheduling), so a run needs many of them: at the default 200 000 messages
/// per mechanism, a run's ratio is within about ±5 %.
const THROUGHPUT_BLOCK: u64 = 2_000;

/// The `mq` entry of the kinds table.
pub struct Mq;

impl KindBench for Mq {
    fn name(&self) -> &'static str {
        "mq"
    }

    fn about(&self) -> &'static str {
        "POSIX message queues through ipc-client vs raw mq_send/mq_receive \
         (also runs control and spawn)"
    }

    fn with(&self) -> &'static [&'static str] {
        &["control", "spawn"]
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        let mut queues = MqChannels {
            client: ctx.connect()?,
            capacity: ctx.opts.capacity,
            current: None,
        };
        let rows = datapath::measure(ctx, &mut queues);
        let deleted = queues.delete();
        let mut rows = rows?;
        deleted?;
        rows.extend(setup_rows(ctx, &mut queues.client)?);
        Ok(rows)
    }

    fn open_peer(&self, args: &PeerArgs, client: &mut PeerClient) -> anyhow::Result<Sides> {
        let raw = match &args.raw_rx {
            Some(rx) => Some(Box::new(MessageSide {
                rx: RawQueue::open(rx)?,
                tx: args.raw_tx.as_deref().map(RawQueue::open).transpose()?,
            }) as _),
            None => None,
        };
        let through_client = match &args.client_rx {
            Some(rx) => {
                let c = client.get()?;
                Some(Box::new(MessageSide {
                    rx: open(c, rx, Access::Read)?,
                    tx: match &args.client_tx {
                        Some(tx) => Some(open(c, tx, Access::Write)?),
                        None => None,
                    },
                }) as _)
            }
            None => None,
        };
        Ok([raw, through_client])
    }
}

/// The connect + hello + `open_mq` rows, on a queue made for them.
fn setup_rows(ctx: &Ctx<'_>, client: &mut Client) -> anyhow::Result<Vec<Row>> {
    let name = objects::unique_name();
    drop(create(client, &name, ctx.opts.capacity, 64)?);
    let rows = connect::rows(ctx, "open_mq", |c| open(c, &name, Access::Read).map(drop));
    let deleted = objects::delete_all(client, "mq", &[name]);
    let rows = rows?;
    deleted?;
    Ok(rows)
}

/// The kind's state: its connection and the client queues of the current size.
struct MqChannels {
    /// The connection that creates the queues (lifetime session: they go with it).
    client: Client,
    /// Slots per queue.
    capacity: u32,
    /// The message size the client queues are for, and their names: ping,
    /// pong, stream.
    current: Option<(usize, [String; 3])>,
}

impl MqChannels {
    /// The client queues for messages of `size`, made now if need be.
    fn queues_for(&mut self, size: usize) -> anyhow::Result<[String; 3]> {
        if let Some((s, names)) = &self.current
            && *s == size
        {
            return Ok(names.clone());
        }
        self.delete()?;
        let names = [(); 3].map(|()| objects::unique_name());
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = create(&mut self.client, name, self.capacity, size) {
                let _ = objects::delete_all(&mut self.client, "mq", &names[..i]);
                return Err(e);
            }
        }
        self.current = Some((size, names.clone()));
        Ok(names)
    }

    /// Deletes the client queues, if any.
    fn delete(&mut self) -> anyhow::Result<()> {
        match self.current.take() {
            Some((_, names)) => objects::delete_all(&mut self.client, "mq", &names),
            None => Ok(()),
        }
    }
}

impl Channels for MqChannels {
    fn name(&self) -> &'static str {
        "mq"
    }

    fn shape(&self) -> Shape {
        Shape {
            block: |_| THROUGHPUT_BLOCK,
            max_run_bytes: None,
            bulk: false,
            targets: Some(RatioTargets::KERNEL_OBJECTS),
        }
    }

    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run> {
        let (tx_name, rx_name) = objects::for_role(self.queues_for(size)?, role);
        let names = (raw_name(), rx_name.as_ref().map(|_| raw_name()));
        let mut raw_tx = RawQueue::create(&names.0, self.capacity, size)?;
        let mut raw_rx = match &names.1 {
            Some(n) => Some(RawQueue::create(n, self.capacity, size)?),
            None => None,
        };
        let c = &mut self.client;
        let client = Messages {
            tx: open(c, &tx_name, Access::Write)?,
            rx: rx_name
                .as_deref()
                .map(|n| open(c, n, Access::Read))
                .transpose()?,
        };
        let args = PeerArgs {
            raw_rx: Some(names.0),
            raw_tx: names.1,
            client_rx: Some(tx_name),
            client_tx: rx_name,
            ..ctx.peer_args("mq", role, size)
        };
        let peer = PeerProcess::spawn(&args)?;
        raw_tx.unlink()?;
        if let Some(q) = raw_rx.as_mut() {
            q.unlink()?;
        }
        let raw = Messages {
            tx: raw_tx,
            rx: raw_rx,
        };
        Ok(Run {
            peer,
            ends: [Box::new(raw), Box::new(client)],
        })
    }
}

/// Creates `mq:<name>` with lifetime session (it vanishes if the bench dies)
/// and opens it for reading and writing.
pub fn create(
    client: &mut Client,
    name: &str,
    capacity: u32,
    msg_size: usize,
) -> anyhow::Result<MessageQueue> {
    let msg_size = u32::try_from(msg_size).context("message size too large")?;
    let opts = MqOptions::new()
        .capacity(capacity)
        .msg_size(msg_size)
        .session()
        .access(Access::ReadWrite);
    client.create_mq(name, &opts).with_context(|| {
        format!("cannot create mq:{name} (capacity {capacity}, message size {msg_size})")
    })
}

/// Opens the existing `mq:<name>` with `access`.
fn open(client: &mut Client, name: &str, access: Access) -> anyhow::Result<MessageQueue> {
    client
        .open_mq(name, access)
        .with_context(|| format!("cannot open mq:{name}"))
}

impl Endpoint for MessageQueue {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        MessageQueue::send(self, msg, 0).with_context(|| format!("send on {}", self.address()))
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        match self.recv_into(buf) {
            Ok((n, _priority)) => Ok(n),
            Err(e) => Err(anyhow::Error::new(e).context(format!("receive on {}", self.address()))),
        }
    }
}

impl Endpoint for RawQueue {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        mq_send(self.mqd(), msg, 0).with_context(|| format!("mq_send on {}", self.name()))
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let mut prio = 0;
        mq_receive(self.mqd(), buf, &mut prio)
            .with_context(|| format!("mq_receive on {}", self.name()))
    }
}

/// Names this process created and has not unlinked yet.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Counter that makes [`raw_name`] unique within this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh queue name, `/ipcbench.<pid>.<n>`.
pub fn raw_name() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/ipcbench.{}.{n}", std::process::id())
}

/// Unlinks every queue this process created and has not unlinked yet. For exit
/// paths that skip destructors; errors are ignored (nothing more can be done).
pub fn unlink_all_live() {
    let names = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for name in names {
        let _ = mq_unlink(name.as_str());
    }
}

/// One open POSIX message queue, closed on drop; unlinked on drop too if this
/// process created it and has not unlinked it yet.
#[derive(Debug)]
pub struct RawQueue {
    /// The descriptor; `None` only while dropping.
    mqd: Option<MqdT>,
    /// The kernel name, `/ipcbench.<pid>.<n>`.
    name: String,
    /// Whether the name still has to be unlinked by us.
    linked: bool,
}

impl RawQueue {
    /// Creates a new queue (`O_CREAT | O_EXCL`, mode 0600) for reading and writing.
    pub fn create(name: &str, capacity: u32, msg_size: usize) -> anyhow::Result<Self> {
        let attr = MqAttr::new(
            0,
            mq_attr_member_t::from(capacity),
            mq_attr_member_t::try_from(msg_size).context("message size too large")?,
            0,
        );
        // Registered first, so a watchdog exit between open and push cannot leak it.
        cleanup::register("raw message queues", unlink_all_live);
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_owned());
        let oflag = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
        match mq_open(name, oflag, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)) {
            Ok(mqd) => Ok(RawQueue {
                mqd: Some(mqd),
                name: name.to_owned(),
                linked: true,
            }),
            Err(errno) => {
                forget(name);
                Err(errno).with_context(|| {
                    format!(
                        "cannot create message queue {name} (capacity {capacity}, \
                         message size {msg_size}; see /proc/sys/fs/mqueue)"
                    )
                })
            }
        }
    }

    /// Opens an existing queue for reading and writing.
    pub fn open(name: &str) -> anyhow::Result<Self> {
        let oflag = MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
        let mqd = mq_open(name, oflag, Mode::empty(), None)
            .with_context(|| format!("cannot open message queue {name}"))?;
        Ok(RawQueue {
            mqd: Some(mqd),
            name: name.to_owned(),
            linked: false,
        })
    }

    /// The kernel name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes the name now; the queue itself lives on while descriptors are open.
    pub fn unlink(&mut self) -> anyhow::Result<()> {
        if self.linked {
            self.linked = false;
            forget(&self.name);
            mq_unlink(self.name.as_str())
                .with_context(|| format!("cannot unlink message queue {}", self.name))?;
        }
        Ok(())
    }

    /// The descriptor.
    pub fn mqd(&self) -> &MqdT {
        self.mqd
            .as_ref()
            .expect("a RawQueue holds its descriptor until dropped")
    }
}

impl Drop for RawQueue {
    fn drop(&mut self) {
        let _ = self.unlink();
        if let Some(mqd) = self.mqd.take() {
            let _ = mq_close(mqd);
        }
    }
}

/// Removes one registration of `name` from the registry of names still to unlink.
fn forget(name: &str) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = live.iter().position(|n| n == name) {
        live.swap_remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_send_receive_unlink() {
        let name = raw_name();
        let mut a = RawQueue::create(&name, 10, 64).unwrap();
        let b = RawQueue::open(&name).unwrap();
        mq_send(a.mqd(), b"hello", 3).unwrap();
        let mut buf = [0u8; 64];
        let mut prio = 0;
        let n = mq_receive(b.mqd(), &mut buf, &mut prio).unwrap();
        assert_eq!((&buf[..n], prio), (&b"hello"[..], 3));
        a.unlink().unwrap();
        // Unlinked: the name is gone but both descriptors still work.
        assert!(RawQueue::open(&name).is_err());
        mq_send(b.mqd(), b"", 0).unwrap();
        assert_eq!(mq_receive(a.mqd(), &mut buf, &mut prio).unwrap(), 0);
        assert!(!LIVE.lock().unwrap().contains(&name));
    }

    #[test]
    fn drop_unlinks_a_created_queue() {
        let name = raw_name();
        drop(RawQueue::create(&name, 10, 64).unwrap());
        assert!(RawQueue::open(&name).is_err());
        assert!(RawQueue::create(&name, 10, 64).is_ok());
    }

    #[test]
    fn exclusive_create_fails_on_an_existing_name() {
        let name = raw_name();
        let _a = RawQueue::create(&name, 10, 64).unwrap();
        let err = RawQueue::create(&name, 10, 64).unwrap_err();
        assert!(format!("{err:#}").contains(&name));
        // The failed create must not forget the first one's registration.
        assert!(LIVE.lock().unwrap().contains(&name));
    }
}
