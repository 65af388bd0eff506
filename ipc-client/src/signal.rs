//! `signal:NAME` — a channel of events: raise it, subscribe this connection
//! and read its events (a [`Subscription`]: an iterator, or a callback), or
//! have ipcd send a real signal to a process on every event. Also
//! [`Client::kill`]: a real signal sent through ipcd.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use protocol::{
    ErrorCode, KindOp, KindParams, KindReply, Lifetime, ObjectInfo, Reply, Request, SignalEvent,
    SignalOp, SignalParams, SignalReply,
};

use crate::client::{Client, unexpected_kind};
use crate::error::{Error, Result};
use crate::lock::{millis, spec};

/// `signal:NAME` for `NAME` (an address is returned as it is).
pub fn signal_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Signal, name)
}

/// What raising a channel reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// The event's sequence number.
    pub seq: u64,
    /// Socket subscribers it was buffered for.
    pub subscribers: u32,
    /// Processes sent a real signal.
    pub delivered: u32,
}

/// What a subscriber receives, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An event.
    Event(SignalEvent),
    /// This many events were dropped here because the subscriber's buffer was full.
    Missed(u64),
}

impl Client {
    /// Creates a signal channel, bound to the real signal `bind` if given
    /// (ipcd then raises it whenever it receives that signal).
    pub fn create_signal(
        &mut self,
        name: &str,
        bind: Option<i32>,
        mode: Option<u32>,
    ) -> Result<ObjectInfo> {
        let params = KindParams::Signal(SignalParams { bind });
        self.create(
            &signal_address(name),
            spec(params, mode, Lifetime::Persistent),
        )
    }

    fn signal_op(&mut self, name: &str, op: SignalOp) -> Result<SignalReply> {
        match self.operate(&signal_address(name), KindOp::Signal(op))? {
            KindReply::Signal(reply) => Ok(reply),
            other => Err(unexpected_kind("signal", &other)),
        }
    }

    /// Raises the channel: every subscriber gets the event (with `payload`,
    /// at most 4096 bytes), every process subscribed its signal.
    pub fn signal_raise(&mut self, name: &str, payload: &[u8]) -> Result<Raised> {
        let op = SignalOp::Raise {
            payload: payload.to_vec(),
        };
        match self.signal_op(name, op)? {
            SignalReply::Raised {
                seq,
                subscribers,
                delivered,
            } => Ok(Raised {
                seq,
                subscribers,
                delivered,
            }),
            other => Err(unexpected_signal("Raised", &other)),
        }
    }

    /// Subscribes this connection (a buffer of `buffer` events; 0: the
    /// daemon's default); returns the last sequence number before it.
    /// [`subscribe_signal`](Self::subscribe_signal) wraps it for reading.
    pub fn signal_subscribe(&mut self, name: &str, buffer: u32) -> Result<u64> {
        match self.signal_op(name, SignalOp::Subscribe { buffer })? {
            SignalReply::Subscribed { seq } => Ok(seq),
            other => Err(unexpected_signal("Subscribed", &other)),
        }
    }

    /// The events buffered for this connection (at most `max`, 0: as many
    /// as fit) and how many were dropped before them, waiting up to
    /// `timeout` while there is none (`timed-out` after).
    pub fn signal_next(
        &mut self,
        name: &str,
        max: u32,
        timeout: Option<Duration>,
    ) -> Result<(Vec<SignalEvent>, u64)> {
        let op = SignalOp::Next {
            max,
            timeout_ms: millis(timeout),
        };
        match self.signal_op(name, op)? {
            SignalReply::Events { events, missed } => Ok((events, missed)),
            other => Err(unexpected_signal("Events", &other)),
        }
    }

    /// Ends this connection's subscription.
    pub fn signal_unsubscribe(&mut self, name: &str) -> Result<()> {
        match self.signal_op(name, SignalOp::Unsubscribe)? {
            SignalReply::Unsubscribed => Ok(()),
            other => Err(unexpected_signal("Unsubscribed", &other)),
        }
    }

    /// Has ipcd send the real signal `signal` to process `pid` on every
    /// event, until it exits (a process of the caller's uid; root: any).
    pub fn signal_deliver(&mut self, name: &str, pid: i32, signal: i32) -> Result<()> {
        match self.signal_op(name, SignalOp::Deliver { pid, signal })? {
            SignalReply::Delivering { .. } => Ok(()),
            other => Err(unexpected_signal("Delivering", &other)),
        }
    }

    /// Stops signalling `pid`.
    pub fn signal_undeliver(&mut self, name: &str, pid: i32) -> Result<()> {
        match self.signal_op(name, SignalOp::Undeliver { pid })? {
            SignalReply::Undelivered => Ok(()),
            other => Err(unexpected_signal("Undelivered", &other)),
        }
    }

    /// Sends the real signal `signal` to `pid` through ipcd (a process of
    /// the caller's uid; root: any); ipcd logs who asked.
    pub fn kill(&mut self, pid: i32, signal: i32) -> Result<()> {
        match self.request(Request::Kill { pid, signal })?.reply {
            Reply::Killed => Ok(()),
            other => Err(Error::Protocol(format!(
                "expected a Killed reply, got {other:?}"
            ))),
        }
    }

    /// Subscribes this connection to `name` and returns the subscription to
    /// read its events from (while it lives, the client is busy with it).
    ///
    /// ```no_run
    /// use ipc_client::{Client, Received};
    /// let mut client = Client::connect()?;
    /// let mut sub = client.subscribe_signal("reload", 0)?;
    /// for received in sub.by_ref().take(3) {
    ///     match received? {
    ///         Received::Event(e) => println!("event {} from pid {}", e.seq, e.pid),
    ///         Received::Missed(n) => println!("missed {n}"),
    ///     }
    /// }
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn subscribe_signal(&mut self, name: &str, buffer: u32) -> Result<Subscription<'_>> {
        let address = signal_address(name).into_owned();
        let seq = self.signal_subscribe(&address, buffer)?;
        Ok(Subscription {
            client: self,
            address,
            seq,
            pending: VecDeque::new(),
            deadline: None,
        })
    }
}

fn unexpected_signal(expected: &str, got: &SignalReply) -> Error {
    Error::Protocol(format!("expected a {expected} reply, got {got:?}"))
}

/// A connection's subscription to a signal channel: every event raised
/// after it began, in order, and a [`Received::Missed`] where its buffer
/// overflowed. Read it as an [`Iterator`] (which ends at the deadline,
/// if one is set), with [`recv_timeout`](Self::recv_timeout), or with a
/// callback ([`for_each_event`](Self::for_each_event)). Dropping it
/// unsubscribes.
#[derive(Debug)]
pub struct Subscription<'c> {
    client: &'c mut Client,
    address: String,
    seq: u64,
    pending: VecDeque<Received>,
    deadline: Option<Instant>,
}

impl Subscription<'_> {
    /// The channel's last sequence number when the subscription began.
    pub fn started_after(&self) -> u64 {
        self.seq
    }

    /// Ends the iterator at `deadline` (`None`: never).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// The next event (or missed count), waiting up to `timeout` (`None`:
    /// forever); `Ok(None)` if none came in time.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<Received>> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(Some(r));
        }
        match self.client.signal_next(&self.address, 0, timeout) {
            Ok((events, missed)) => {
                if missed > 0 {
                    self.pending.push_back(Received::Missed(missed));
                }
                self.pending.extend(events.into_iter().map(Received::Event));
                Ok(self.pending.pop_front())
            }
            Err(e) if e.code() == Some(ErrorCode::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next event (or missed count), waiting as long as it takes.
    pub fn recv(&mut self) -> Result<Received> {
        loop {
            if let Some(r) = self.recv_timeout(None)? {
                return Ok(r);
            }
        }
    }

    /// Calls `f` with each event (or missed count) as it arrives until it
    /// returns `ControlFlow::Break`, an error occurs, or the deadline passes.
    pub fn for_each_event(&mut self, mut f: impl FnMut(Received) -> ControlFlow<()>) -> Result<()> {
        for r in self.by_ref() {
            if f(r?).is_break() {
                break;
            }
        }
        Ok(())
    }
}

impl Iterator for Subscription<'_> {
    type Item = Result<Received>;

    fn next(&mut self) -> Option<Self::Item> {
        let timeout = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        if timeout == Some(Duration::ZERO) && self.pending.is_empty() {
            return None;
        }
        self.recv_timeout(timeout).transpose()
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        // Best effort: a connection that is gone has no subscription anyway.
        let _ = self.client.signal_unsubscribe(&self.address);
    }
}
