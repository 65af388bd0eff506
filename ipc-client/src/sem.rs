//! `sem:NAME` — a POSIX named semaphore. Permits taken through the daemon
//! are held by this connection and given back if it closes (crash safety).
//! Other processes may use the same semaphore with plain `sem_open(3)`
//! (`/dev/shm/sem.<prefix>NAME`), without that safety.

use std::borrow::Cow;
use std::time::Duration;

use protocol::{KindOp, KindParams, KindReply, Lifetime, ObjectInfo, SemOp, SemParams, SemReply};

use crate::client::{Client, unexpected_kind};
use crate::error::Result;
use crate::lock::{millis, spec};

/// `sem:NAME` for `NAME` (an address is returned as it is).
pub fn sem_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Sem, name)
}

impl Client {
    /// Creates a semaphore with `initial` permits, bounded by `max` if given.
    pub fn create_sem(
        &mut self,
        name: &str,
        initial: u32,
        max: Option<u32>,
        mode: Option<u32>,
    ) -> Result<ObjectInfo> {
        let params = KindParams::Sem(SemParams { initial, max });
        self.create(&sem_address(name), spec(params, mode, Lifetime::Persistent))
    }

    /// Takes a permit, held by this connection, waiting up to `timeout`
    /// (first come, first served among the daemon's waiters). Returns the
    /// permits left free.
    pub fn sem_acquire(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
        let op = KindOp::Sem(SemOp::Acquire {
            timeout_ms: millis(timeout),
        });
        match self.operate(&sem_address(name), op)? {
            KindReply::Sem(SemReply::Acquired { value }) => Ok(value),
            other => Err(unexpected_kind("Acquired", &other)),
        }
    }

    /// Takes a permit only if one is free now (`would-block` otherwise).
    pub fn sem_try_acquire(&mut self, name: &str) -> Result<u32> {
        self.sem_acquire(name, Some(Duration::ZERO))
    }

    /// Gives a permit back (one this connection holds, else a plain post that
    /// settles the oldest permit another connection holds, so that one is not
    /// given back again when its connection closes: a producer posting an item,
    /// a signal); returns the permits free after it.
    pub fn sem_release(&mut self, name: &str) -> Result<u32> {
        match self.operate(&sem_address(name), KindOp::Sem(SemOp::Release))? {
            KindReply::Sem(SemReply::Released { value }) => Ok(value),
            other => Err(unexpected_kind("Released", &other)),
        }
    }
}
