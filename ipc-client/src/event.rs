//! `event:NAME` — a daemon-hosted flag: set, clear, wait.

use std::borrow::Cow;
use std::time::Duration;

use protocol::{
    EventOp, EventParams, EventReply, KindOp, KindParams, KindReply, Lifetime, ObjectInfo,
};

use crate::client::{Client, unexpected_kind};
use crate::error::Result;
use crate::lock::{millis, spec};

/// `event:NAME` for `NAME` (an address is returned as it is).
pub fn event_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Event, name)
}

impl Client {
    /// Creates an event, set or clear.
    pub fn create_event(&mut self, name: &str, set: bool, mode: Option<u32>) -> Result<ObjectInfo> {
        let params = KindParams::Event(EventParams { set });
        self.create(
            &event_address(name),
            spec(params, mode, Lifetime::Persistent),
        )
    }

    fn event_op(&mut self, name: &str, op: EventOp) -> Result<bool> {
        match self.operate(&event_address(name), KindOp::Event(op))? {
            KindReply::Event(EventReply::IsSet) => Ok(true),
            KindReply::Event(EventReply::IsClear) => Ok(false),
            other => Err(unexpected_kind("IsSet or IsClear", &other)),
        }
    }

    /// Sets the event, waking every waiter.
    pub fn event_set(&mut self, name: &str) -> Result<()> {
        self.event_op(name, EventOp::Set).map(drop)
    }

    /// Clears the event.
    pub fn event_clear(&mut self, name: &str) -> Result<()> {
        self.event_op(name, EventOp::Clear).map(drop)
    }

    /// Waits until the event is set, up to `timeout` (`timed-out` after).
    pub fn event_wait(&mut self, name: &str, timeout: Option<Duration>) -> Result<()> {
        let op = EventOp::Wait {
            timeout_ms: millis(timeout),
        };
        self.event_op(name, op).map(drop)
    }
}
