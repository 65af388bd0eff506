//! [`QueueReceiver`]: gets kept in flight on a connection of its own
//! (prefetch), deliveries handed out one at a time, acknowledgements sent in
//! batches.

use std::collections::{HashSet, VecDeque};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use protocol::{ErrorCode, KindOp, KindReply, QueueDelivery, QueueOp, QueueReply, Reply, Request};

use super::queue_address;
use crate::client::{Client, Response};
use crate::error::{Error, Result};

/// Messages one Get asks for, unless [`QueueReceiver::prefetch`] says otherwise.
const DEFAULT_PREFETCH: u32 = 64;
/// Gets in flight at once, unless [`QueueReceiver::gets`] says otherwise.
const DEFAULT_GETS: usize = 2;
/// Acknowledgements sent together, unless [`QueueReceiver::ack_batch`] says otherwise.
const DEFAULT_ACK_BATCH: usize = 64;
/// The longest an acknowledgement waits for its batch, unless
/// [`QueueReceiver::ack_delay`] says otherwise.
const DEFAULT_ACK_DELAY: Duration = Duration::from_millis(5);

/// What a Get in flight was.
#[derive(Debug, Clone, Copy)]
struct GetInFlight {
    id: u64,
    /// Messages it asked for.
    max: u32,
    /// A Get that does not wait (`try_recv`): `would-block` is no error.
    probe: bool,
}

/// Takes messages from a queue with Gets kept in flight (prefetch), one
/// delivery at a time, and acknowledges them in batches.
///
/// It owns its [`Client`] (a connection of its own): every delivery it
/// receives is held by that connection until [`ack`](Self::ack)ed, and
/// goes back to the queue if the receiver is dropped (or its process dies)
/// first. That is the *at-least-once* contract: a message is removed only by
/// its acknowledgement, so ack after the work is done, and expect a message
/// again ([`QueueDelivery::deliveries`] above 1) when a consumer died between
/// doing the work and acknowledging it.
///
/// **Prefetch.** Up to [`gets`](Self::gets) Gets wait in the daemon at once,
/// each for up to [`prefetch`](Self::prefetch) messages, so deliveries are
/// already here when [`recv`](Self::recv) asks. They are held by this
/// receiver from then on — other consumers cannot have them, and they count
/// against the queue's capacity until acknowledged. A slow consumer that
/// shares a queue with others should prefetch 1. [`limit`](Self::limit)
/// caps the deliveries it takes in all.
///
/// **Acknowledgements** are queued by [`ack`](Self::ack) and sent together:
/// when [`ack_batch`](Self::ack_batch) are queued, when the oldest has
/// waited [`ack_delay`](Self::ack_delay) (checked by `ack` and `recv`), when
/// `recv` has to wait, and on [`flush`](Self::flush) (which also waits for
/// their answers). Until an acknowledgement reaches ipcd its message still
/// counts as in flight — against the capacity, and for `join`. Call `flush`
/// when pausing; dropping the receiver flushes too, but loses the errors.
///
/// ```no_run
/// use ipc_client::{Client, QueueReceiver};
/// let client = Client::connect()?;
/// let mut rx = QueueReceiver::new(client, "jobs").prefetch(32);
/// loop {
///     let job = rx.recv()?;
///     println!("{}", String::from_utf8_lossy(&job.body)); // do the work, then:
///     rx.ack(job.id)?;
/// }
/// # Ok::<(), ipc_client::Error>(())
/// ```
#[derive(Debug)]
pub struct QueueReceiver {
    client: Client,
    address: String,
    prefetch: u32,
    gets: usize,
    /// Deliveries it may still ask for (`None`: no limit).
    budget: Option<u64>,
    ack_batch: usize,
    ack_delay: Duration,
    /// Deliveries received, not yet handed out.
    buffer: VecDeque<QueueDelivery>,
    /// Ids received and not yet acknowledged (by `ack`).
    held: HashSet<u64>,
    /// Acknowledgements queued, not yet sent; and since when.
    acks: Vec<u64>,
    acks_since: Option<Instant>,
    gets_in_flight: Vec<GetInFlight>,
    /// Ack requests in flight: id and count.
    acks_in_flight: VecDeque<(u64, u32)>,
    /// The first error not yet returned.
    error: Option<Error>,
    received: u64,
    acked: u64,
}

impl QueueReceiver {
    /// A receiver from queue `name` (`NAME` or `queue:NAME`) over `client`'s
    /// connection, which it keeps: 2 Gets in flight for up to 64 messages
    /// each; acknowledgements sent 64 at a time or after 5 ms.
    pub fn new(client: Client, name: &str) -> Self {
        QueueReceiver {
            client,
            address: queue_address(name).into_owned(),
            prefetch: DEFAULT_PREFETCH,
            gets: DEFAULT_GETS,
            budget: None,
            ack_batch: DEFAULT_ACK_BATCH,
            ack_delay: DEFAULT_ACK_DELAY,
            buffer: VecDeque::new(),
            held: HashSet::new(),
            acks: Vec::new(),
            acks_since: None,
            gets_in_flight: Vec::new(),
            acks_in_flight: VecDeque::new(),
            error: None,
            received: 0,
            acked: 0,
        }
    }

    /// Messages each Get asks for (at least 1).
    pub fn prefetch(mut self, messages: u32) -> Self {
        self.prefetch = messages.max(1);
        self
    }

    /// Gets in flight at once (at least 1): with 2 or more, the next Get
    /// already waits in the daemon while the answer to one is read.
    pub fn gets(mut self, requests: usize) -> Self {
        self.gets = requests.max(1);
        self
    }

    /// Takes at most `deliveries` in all, never asking for more (so a
    /// consumer that will handle N messages holds no others).
    pub fn limit(mut self, deliveries: u64) -> Self {
        self.budget = Some(deliveries);
        self
    }

    /// Acknowledgements sent together (at least 1; 1 sends each at once).
    pub fn ack_batch(mut self, ids: usize) -> Self {
        self.ack_batch = ids.max(1);
        self
    }

    /// The longest a queued acknowledgement waits for its batch, checked
    /// whenever [`ack`](Self::ack) or [`recv`](Self::recv) is called.
    pub fn ack_delay(mut self, delay: Duration) -> Self {
        self.ack_delay = delay;
        self
    }

    /// The queue's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Deliveries received so far (handed out or waiting here).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Acknowledgements ipcd has confirmed.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Deliveries received and not yet acknowledged, buffered ones included:
    /// what goes back to the queue if this receiver goes away now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Deliveries received but not yet handed out by `recv`.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next delivery, waiting as long as it takes. Fails once
    /// [`limit`](Self::limit) deliveries were taken, and with the first error
    /// of a Get or an acknowledgement not returned yet (deliveries already
    /// here are handed out first).
    pub fn recv(&mut self) -> Result<QueueDelivery> {
        match self.recv_by(None)? {
            Some(d) => Ok(d),
            None => Err(Error::InvalidArgument(format!(
                "this receiver of {} took all the deliveries its limit allows",
                self.address
            ))),
        }
    }

    /// The next delivery, waiting up to `timeout` (zero: only what has
    /// arrived); `Ok(None)` if none came. The Gets in flight stay in flight:
    /// what they bring later waits here for the next call.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<QueueDelivery>> {
        self.recv_by(Instant::now().checked_add(timeout))
    }

    /// A delivery if the queue has a message now: one already here, else
    /// the answer of a Get that does not wait (a round trip); `Ok(None)` if
    /// the queue is empty.
    pub fn try_recv(&mut self) -> Result<Option<QueueDelivery>> {
        if let Some(d) = self.buffer.pop_front() {
            return Ok(Some(d));
        }
        self.take_error()?;
        let max = self.next_ask();
        if max == 0 {
            return Ok(None);
        }
        self.submit_acks()?;
        let id = self.submit_get(max, true)?;
        self.client.push_submitted()?;
        while self.gets_in_flight.iter().any(|g| g.id == id) {
            self.settle_one(None)?;
        }
        if let Some(d) = self.buffer.pop_front() {
            return Ok(Some(d));
        }
        self.take_error().map(|()| None)
    }

    /// Queues the acknowledgement of delivery `id` (see the type's notes on
    /// when it is sent). An id this receiver does not hold — never received,
    /// or acknowledged already — is refused here, so that it cannot spoil
    /// the all-or-none batch it would travel in.
    pub fn ack(&mut self, id: u64) -> Result<()> {
        if !self.held.remove(&id) {
            return Err(Error::InvalidArgument(format!(
                "delivery {id} of {} is not held by this receiver (acknowledged already, \
                 or never received here)",
                self.address
            )));
        }
        self.acks.push(id);
        self.acks_since.get_or_insert_with(Instant::now);
        if self.acks_due() {
            self.submit_acks()?;
            self.client.push_submitted()?;
        }
        Ok(())
    }

    /// Sends the queued acknowledgements and waits for their answers (not for
    /// the Gets in flight); returns the first error not returned yet.
    pub fn flush(&mut self) -> Result<()> {
        self.submit_acks()?;
        self.client.push_submitted()?;
        while !self.acks_in_flight.is_empty() {
            self.settle_one(None)?;
        }
        self.take_error()
    }

    /// The next delivery, waiting until `deadline`; `Ok(None)` when it
    /// passes or the limit is reached.
    fn recv_by(&mut self, deadline: Option<Instant>) -> Result<Option<QueueDelivery>> {
        loop {
            if let Some(d) = self.buffer.pop_front() {
                self.refill(false)?;
                return Ok(Some(d));
            }
            self.take_error()?;
            self.refill(true)?;
            if self.gets_in_flight.is_empty() {
                // The limit is reached: nothing more will come.
                return Ok(None);
            }
            if !self.settle_one(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Keeps Gets in flight and sends acknowledgements that are due (all of
    /// them if `waiting`: this side is about to wait for the daemon).
    fn refill(&mut self, waiting: bool) -> Result<()> {
        let mut submitted = false;
        let low = self.buffer.len() < self.prefetch as usize;
        let want_get = low && self.gets_in_flight.len() < self.gets && self.next_ask() > 0;
        if !self.acks.is_empty() && (waiting || want_get || self.acks_due()) {
            self.submit_acks()?;
            submitted = true;
        }
        if want_get {
            while self.gets_in_flight.len() < self.gets {
                let max = self.next_ask();
                if max == 0 {
                    break;
                }
                self.submit_get(max, false)?;
            }
            submitted = true;
        }
        if submitted {
            self.client.push_submitted()?;
        }
        Ok(())
    }

    /// Messages the next Get may ask for: the prefetch, within the limit.
    fn next_ask(&self) -> u32 {
        match self.budget {
            None => self.prefetch,
            Some(left) => u32::try_from(left.min(u64::from(self.prefetch))).unwrap_or(0),
        }
    }

    fn acks_due(&self) -> bool {
        self.acks.len() >= self.ack_batch
            || self
                .acks_since
                .is_some_and(|since| since.elapsed() >= self.ack_delay)
    }

    fn submit_get(&mut self, max: u32, probe: bool) -> Result<u64> {
        let op = QueueOp::Get {
            max,
            timeout_ms: probe.then_some(0),
        };
        let id = self.client.submit(Request::Kind {
            address: self.address.clone(),
            op: KindOp::Queue(op),
        })?;
        if let Some(left) = &mut self.budget {
            *left -= u64::from(max);
        }
        self.gets_in_flight.push(GetInFlight { id, max, probe });
        Ok(id)
    }

    fn submit_acks(&mut self) -> Result<()> {
        if self.acks.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut self.acks);
        self.acks_since = None;
        let count = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        let id = self.client.submit(Request::Kind {
            address: self.address.clone(),
            op: KindOp::Queue(QueueOp::Ack { ids }),
        })?;
        self.acks_in_flight.push_back((id, count));
        Ok(())
    }

    /// Waits until `deadline` for one answer and takes it in; `false` if
    /// none came in time.
    fn settle_one(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let Some((id, outcome)) = self.client.next_answer(deadline)? else {
            return Ok(false);
        };
        if let Some(at) = self.gets_in_flight.iter().position(|g| g.id == id) {
            let get = self.gets_in_flight.swap_remove(at);
            self.settle_get(get, outcome);
        } else if let Some(at) = self.acks_in_flight.iter().position(|&(i, _)| i == id) {
            self.acks_in_flight.remove(at);
            match reply(outcome) {
                Ok(QueueReply::Acked { count }) => self.acked += u64::from(count),
                Ok(other) => self.fail(unexpected("Acked", &other)),
                Err(e) => self.fail(e),
            }
        } else {
            return Err(Error::Protocol(format!(
                "the daemon answered request {id}, which this receiver did not send"
            )));
        }
        Ok(true)
    }

    fn settle_get(&mut self, get: GetInFlight, outcome: Result<Response>) {
        let deliveries = match reply(outcome) {
            Ok(QueueReply::Got(deliveries)) => deliveries,
            Ok(other) => return self.fail(unexpected("Got", &other)),
            Err(e) if get.probe && e.code() == Some(ErrorCode::WouldBlock) => Vec::new(),
            Err(e) => return self.fail(e),
        };
        // What it did not bring may be asked for again.
        if let Some(left) = &mut self.budget {
            *left += u64::from(get.max).saturating_sub(deliveries.len() as u64);
        }
        self.received += deliveries.len() as u64;
        for d in deliveries {
            self.held.insert(d.id);
            self.buffer.push_back(d);
        }
    }

    fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }

    fn take_error(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A queue's reply in an answer.
fn reply(outcome: Result<Response>) -> Result<QueueReply> {
    match outcome?.reply {
        Reply::Kind(KindReply::Queue(r)) => Ok(r),
        other => Err(Error::Protocol(format!(
            "expected a queue's reply, got {other:?}"
        ))),
    }
}

fn unexpected(expected: &str, got: &QueueReply) -> Error {
    Error::Protocol(format!("expected a queue's {expected} reply, got {got:?}"))
}

/// The connection's socket, to wait in `poll` for answers (it becomes
/// readable when one arrives; then [`QueueReceiver::recv_timeout`] with zero
/// takes it). Check [`QueueReceiver::buffered`] first: deliveries already
/// here do not make it readable. Reading or writing it directly would break
/// the framing.
impl AsFd for QueueReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.client.as_fd()
    }
}

impl Drop for QueueReceiver {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // Errors were for `flush` to return; nobody is left to hear them.
            let _ = self.flush();
        }
    }
}
