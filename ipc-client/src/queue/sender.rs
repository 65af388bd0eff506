//! [`QueueSender`]: puts pipelined on a connection of its own — many Put
//! requests in flight, optionally several messages per request (a batch) and
//! several requests per write (a cork).

use std::collections::VecDeque;
use std::time::Duration;

use protocol::{KindOp, KindReply, QueueItem, QueueOp, QueueReply, Reply, Request};

use super::queue_address;
use crate::client::{Client, Response};
use crate::error::{Error, Result};
use crate::lock::millis;

/// Put requests in flight at most, unless [`QueueSender::window`] says otherwise.
const DEFAULT_WINDOW: usize = 128;
/// Bytes of messages in one Put at most, unless [`QueueSender::batch_bytes`]
/// says otherwise (also at most half the daemon's frame limit).
const DEFAULT_BATCH_BYTES: usize = 256 << 10;

/// Puts messages on a queue without waiting for each answer: a bounded
/// window of Put requests is in flight at once, so the daemon always has
/// work while this side prepares more.
///
/// It owns its [`Client`] (a connection of its own), like a file owns its
/// descriptor. Messages go out as soon as they are sent by default; with
/// [`batch`](Self::batch) several messages travel in one Put request (all or
/// none of them are put), and with [`cork`](Self::cork) several requests in
/// one write to the socket. A batched or corked message may wait in the
/// sender until the batch or cork fills or [`flush`](Self::flush) is called,
/// like bytes in a [`BufWriter`](std::io::BufWriter).
///
/// **Errors are reported late, never lost.** A refused Put (the queue full
/// for the whole [`timeout`](Self::timeout), deleted, a message too large) is
/// known only when its answer arrives: the first such error is kept and
/// returned by the next [`send`](Self::send) (which then does not take its
/// message) or by [`flush`](Self::flush); [`refused`](Self::refused) counts
/// every message of every refused Put. Puts after a refused one may still
/// succeed, so with a timeout the queue can hold later messages without an
/// earlier one. Dropping the sender flushes it, waiting as a send would, but
/// its errors are lost then: call `flush` at the end.
///
/// ```no_run
/// use ipc_client::{Client, QueueSender};
/// let client = Client::connect()?;
/// let mut tx = QueueSender::new(client, "jobs").batch(64);
/// for n in 0..100_000 {
///     tx.send(format!("job {n}").as_bytes())?;
/// }
/// tx.flush()?; // every message is in the queue, or this says why not
/// assert_eq!(tx.confirmed(), 100_000);
/// # Ok::<(), ipc_client::Error>(())
/// ```
#[derive(Debug)]
pub struct QueueSender {
    client: Client,
    address: String,
    window: usize,
    batch: usize,
    batch_bytes: usize,
    cork: usize,
    timeout_ms: Option<u64>,
    /// The batch being filled.
    items: Vec<QueueItem>,
    /// Its bytes, as the daemon counts them.
    items_bytes: usize,
    /// Requests submitted since the last write.
    corked: usize,
    /// Put requests in flight: id and message count, oldest first.
    in_flight: VecDeque<(u64, u32)>,
    /// The first error not yet returned.
    error: Option<Error>,
    confirmed: u64,
    refused: u64,
}

impl QueueSender {
    /// A sender to queue `name` (`NAME` or `queue:NAME`) over `client`'s
    /// connection, which it keeps: one message per Put, written at once, up
    /// to 128 Puts in flight, each waiting for room as long as it takes.
    pub fn new(client: Client, name: &str) -> Self {
        let frame_share = client.welcome().limits.max_frame as usize / 2;
        QueueSender {
            address: queue_address(name).into_owned(),
            window: DEFAULT_WINDOW,
            batch: 1,
            batch_bytes: DEFAULT_BATCH_BYTES.min(frame_share),
            cork: 1,
            timeout_ms: None,
            items: Vec::new(),
            items_bytes: 0,
            corked: 0,
            in_flight: VecDeque::new(),
            error: None,
            confirmed: 0,
            refused: 0,
            client,
        }
    }

    /// At most `requests` Puts in flight (at least 1); a send past them waits
    /// for the oldest answer.
    pub fn window(mut self, requests: usize) -> Self {
        self.window = requests.max(1);
        self
    }

    /// Up to `messages` messages per Put request (at least 1): fewer requests,
    /// more throughput; a Put is all or nothing, so a refused one refuses them all.
    pub fn batch(mut self, messages: usize) -> Self {
        self.batch = messages.max(1);
        self
    }

    /// A batch closes early once it holds this many bytes (bodies plus
    /// [`QUEUE_MESSAGE_OVERHEAD`](protocol::QUEUE_MESSAGE_OVERHEAD) each);
    /// capped at half the daemon's frame limit. Default 256 KiB.
    pub fn batch_bytes(mut self, bytes: usize) -> Self {
        let frame_share = self.client.welcome().limits.max_frame as usize / 2;
        self.batch_bytes = bytes.clamp(1, frame_share.max(1));
        self
    }

    /// Write requests to the socket `requests` at a time (at least 1): fewer
    /// system calls, at the price of holding requests until the cork fills.
    pub fn cork(mut self, requests: usize) -> Self {
        self.cork = requests.max(1);
        self
    }

    /// How long each Put may wait for room in a full queue before it is
    /// refused with `timed-out` (`None`, the default: as long as it takes;
    /// zero: `would-block` at once).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout_ms = millis(timeout);
        self
    }

    /// The queue's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Messages the daemon has confirmed as put.
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Messages in Puts the daemon refused.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Messages sent but not answered yet (batched, corked or in flight).
    pub fn pending(&self) -> u64 {
        let in_flight: u64 = self.in_flight.iter().map(|&(_, n)| u64::from(n)).sum();
        in_flight + self.items.len() as u64
    }

    /// Sends one message of priority 0.
    pub fn send(&mut self, body: &[u8]) -> Result<()> {
        self.send_item(QueueItem {
            priority: 0,
            body: body.to_vec(),
        })
    }

    /// Sends one message with a priority (a queue in priority order only).
    pub fn send_priority(&mut self, body: &[u8], priority: u32) -> Result<()> {
        self.send_item(QueueItem {
            priority,
            body: body.to_vec(),
        })
    }

    /// Sends one message. If an earlier Put was refused, returns that error
    /// instead and does not take `item`.
    pub fn send_item(&mut self, item: QueueItem) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let cost = usize::try_from(item.cost()).unwrap_or(usize::MAX);
        if !self.items.is_empty() && self.items_bytes.saturating_add(cost) > self.batch_bytes {
            self.submit_batch()?;
        }
        self.items.push(item);
        self.items_bytes = self.items_bytes.saturating_add(cost);
        if self.items.len() >= self.batch || self.items_bytes >= self.batch_bytes {
            self.submit_batch()?;
        }
        Ok(())
    }

    /// Sends what is batched or corked and waits for every answer; returns
    /// the first error not returned yet (and clears it).
    pub fn flush(&mut self) -> Result<()> {
        if !self.items.is_empty() {
            self.submit_batch()?;
        }
        self.client.push_submitted()?;
        self.corked = 0;
        while !self.in_flight.is_empty() {
            self.settle_one()?;
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Submits the batch as one Put, first making room in the window.
    fn submit_batch(&mut self) -> Result<()> {
        while self.in_flight.len() >= self.window {
            self.settle_one()?;
        }
        let items = std::mem::take(&mut self.items);
        self.items_bytes = 0;
        let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let request = Request::Kind {
            address: self.address.clone(),
            op: KindOp::Queue(QueueOp::Put {
                items,
                timeout_ms: self.timeout_ms,
            }),
        };
        let id = self.client.submit(request)?;
        self.in_flight.push_back((id, count));
        self.corked += 1;
        if self.corked >= self.cork {
            self.client.push_submitted()?;
            self.corked = 0;
        }
        Ok(())
    }

    /// Waits for one answer (sending what is submitted meanwhile) and counts it.
    fn settle_one(&mut self) -> Result<()> {
        let (id, outcome) = self
            .client
            .next_answer(None)?
            .ok_or(Error::Protocol("no answer without a deadline".into()))?;
        let Some(at) = self.in_flight.iter().position(|&(i, _)| i == id) else {
            return Err(Error::Protocol(format!(
                "the daemon answered request {id}, which no Put of this sender sent"
            )));
        };
        let (_, count) = self.in_flight.remove(at).expect("found above");
        match put_count(outcome) {
            Ok(n) => self.confirmed += u64::from(n),
            Err(e) => {
                self.refused += u64::from(count);
                self.error.get_or_insert(e);
            }
        }
        Ok(())
    }
}

/// How many messages an answer to a Put says were put.
fn put_count(outcome: Result<Response>) -> Result<u32> {
    match outcome?.reply {
        Reply::Kind(KindReply::Queue(QueueReply::Put { count })) => Ok(count),
        other => Err(Error::Protocol(format!(
            "expected a queue's Put reply, got {other:?}"
        ))),
    }
}

impl Drop for QueueSender {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // Errors were for `flush` to return; nobody is left to hear them.
            let _ = self.flush();
        }
    }
}
