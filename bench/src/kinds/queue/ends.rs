//! The `queue` kind's channel ends, as the shared loops ([`crate::loops`])
//! drive them: the queue through ipc-client three ways ([`QueueEnd`]), and
//! every yardstick it is compared with ([`End`]).

use std::time::Duration;

use anyhow::{Context as _, bail};
use ipc_client::{Client, QueueReceiver, QueueSender};

use super::super::mq::RawQueue;
use super::redis::RedisEnd;
use super::relay::RelayEnd;
use super::sequenced::Describe;
use crate::loops::Endpoint;

/// One end of any channel this kind measures: the queue, or a yardstick.
pub enum End {
    /// A connection to the relay (length-framed messages).
    Relay(RelayEnd),
    /// A POSIX message queue, one message per call.
    Mq(RawQueue),
    /// A connection to a private Redis: `LPUSH` to send, `BRPOP` to receive.
    Redis(RedisEnd),
    /// The queue through ipc-client (boxed: its handles are large).
    Queue(Box<QueueEnd>),
}

impl Endpoint for End {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        match self {
            End::Relay(e) => e.send(msg),
            End::Mq(e) => e.send(msg),
            End::Redis(e) => e.send(msg),
            End::Queue(e) => e.send(msg),
        }
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        match self {
            End::Relay(e) => e.recv(buf),
            End::Mq(e) => e.recv(buf),
            End::Redis(e) => e.recv(buf),
            End::Queue(e) => e.recv(buf),
        }
    }
}

impl End {
    /// The queue's end `q`.
    pub fn queue(q: QueueEnd) -> Self {
        End::Queue(Box::new(q))
    }

    /// What it is, for errors.
    fn describe(&self) -> String {
        match self {
            End::Relay(_) => "the relay".into(),
            End::Mq(q) => format!("POSIX queue {}", q.name()),
            End::Redis(_) => "redis".into(),
            End::Queue(q) => match q.as_ref() {
                QueueEnd::Sender(tx) => tx.address().into(),
                QueueEnd::Receiver(rx) => rx.address().into(),
                QueueEnd::Calls { name, .. } => format!("queue:{name}"),
            },
        }
    }
}

/// The queue through ipc-client, as one side uses it.
pub enum QueueEnd {
    /// Puts through a [`QueueSender`] (pipelined, batched as it was built).
    /// An end marker is followed by [`QueueSender::flush`] (see
    /// [`Describe::send_end`]), so that a block's last batch goes out and
    /// every Put of the block is answered.
    Sender(QueueSender),
    /// Gets through a [`QueueReceiver`] (Gets in flight, batched acks); every
    /// delivery is acknowledged as soon as it is handed out.
    Receiver(QueueReceiver),
    /// One request per message and none in flight: `queue_put`, or
    /// `queue_ack_get` of one message, acknowledging the one before.
    Calls {
        /// A connection of its own.
        client: Client,
        /// The queue's name.
        name: String,
        /// The last delivery, acknowledged with the next get.
        unacked: Option<u64>,
    },
}

impl Endpoint for QueueEnd {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        match self {
            QueueEnd::Sender(tx) => tx
                .send(msg)
                .with_context(|| format!("put on {}", tx.address())),
            QueueEnd::Calls { client, name, .. } => client
                .queue_put(name, msg, None)
                .with_context(|| format!("put on queue:{name}")),
            QueueEnd::Receiver(rx) => bail!("{} is received from, not sent to", rx.address()),
        }
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        match self {
            QueueEnd::Receiver(rx) => {
                let d = rx
                    .recv()
                    .with_context(|| format!("get from {}", rx.address()))?;
                rx.ack(d.id)
                    .with_context(|| format!("ack on {}", rx.address()))?;
                copy_body(&d.body, buf, rx.address())
            }
            QueueEnd::Calls {
                client,
                name,
                unacked,
            } => {
                let ack: Vec<u64> = unacked.take().into_iter().collect();
                let mut got = client
                    .queue_ack_get(name, &ack, 1, None)
                    .with_context(|| format!("ack and get on queue:{name}"))?;
                let Some(d) = got.pop().filter(|_| got.is_empty()) else {
                    bail!("a get of one message from queue:{name} brought another number");
                };
                if is_end_marker(&d.body) {
                    // The block ends here and the connection may close:
                    // acknowledge it now, or it would come back.
                    client
                        .queue_ack(name, &[d.id])
                        .with_context(|| format!("ack on queue:{name}"))?;
                } else {
                    *unacked = Some(d.id);
                }
                copy_body(&d.body, buf, name)
            }
            QueueEnd::Sender(tx) => bail!("{} is sent to, not received from", tx.address()),
        }
    }
}

/// Whether `body` is a block's end marker ([`super::sequenced::END`]).
fn is_end_marker(body: &[u8]) -> bool {
    body.first_chunk::<8>()
        .is_some_and(|b| u64::from_le_bytes(*b) & super::sequenced::END != 0)
}

/// Copies a delivery's body into `buf`; returns its length.
#[inline]
fn copy_body(body: &[u8], buf: &mut [u8], queue: &str) -> anyhow::Result<usize> {
    let Some(dst) = buf.get_mut(..body.len()) else {
        bail!(
            "a {}-byte message arrived from {queue} where at most {} bytes were expected",
            body.len(),
            buf.len()
        );
    };
    dst.copy_from_slice(body);
    Ok(body.len())
}

impl Describe for End {
    fn describe(&self) -> String {
        End::describe(self)
    }

    fn send_end(&mut self, marker: &[u8]) -> anyhow::Result<()> {
        self.send(marker)?;
        if let End::Queue(q) = self
            && let QueueEnd::Sender(tx) = q.as_mut()
        {
            tx.flush()
                .with_context(|| format!("flushing the puts on {}", tx.address()))?;
        }
        Ok(())
    }

    fn recv_within(&mut self, buf: &mut [u8], timeout: Duration) -> anyhow::Result<Option<usize>> {
        let End::Queue(q) = self else {
            return self.recv(buf).map(Some);
        };
        let QueueEnd::Receiver(rx) = q.as_mut() else {
            return self.recv(buf).map(Some);
        };
        let Some(d) = rx
            .recv_timeout(timeout)
            .with_context(|| format!("get from {}", rx.address()))?
        else {
            return Ok(None);
        };
        rx.ack(d.id)
            .with_context(|| format!("ack on {}", rx.address()))?;
        copy_body(&d.body, buf, rx.address()).map(Some)
    }
}
