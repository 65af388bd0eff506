//! Message queues through the client library: created and opened via ipcd, then
//! used with [`ipc_client::MessageQueue::send`] and `recv_into`, exactly as an
//! application would.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;
use ipc_client::{Access, Client, MessageQueue, MqOptions};

use super::loops::Endpoint;

/// Counter that makes [`unique_name`] unique within this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh ipcd object name, `ipcbench-<pid>-<n>`.
pub fn unique_name() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("ipcbench-{}-{n}", std::process::id())
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
pub fn open(client: &mut Client, name: &str, access: Access) -> anyhow::Result<MessageQueue> {
    client
        .open_mq(name, access)
        .with_context(|| format!("cannot open mq:{name}"))
}

/// Deletes the objects named `names` (errors are collected: every one is tried).
pub fn delete_all(client: &mut Client, names: &[String]) -> anyhow::Result<()> {
    let mut first_error = None;
    for name in names {
        if let Err(e) = client.delete(&format!("mq:{name}")) {
            first_error
                .get_or_insert(anyhow::Error::new(e).context(format!("cannot delete mq:{name}")));
        }
    }
    first_error.map_or(Ok(()), Err)
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
