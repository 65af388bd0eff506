//! `lock:NAME` — a daemon-hosted mutex held by this connection: acquire,
//! release, with a timeout; the daemon releases it if the connection closes.

use std::borrow::Cow;
use std::time::Duration;

use protocol::{
    CreateSpec, KindOp, KindParams, KindReply, Lifetime, LockOp, LockParams, LockReply, ObjectInfo,
};

use crate::client::{Client, unexpected_kind};
use crate::error::Result;

/// `lock:NAME` for `NAME` (an address is returned as it is).
pub fn lock_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Lock, name)
}

pub(crate) fn millis(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|t| t.as_millis().min(u128::from(u64::MAX)) as u64)
}

pub(crate) fn spec(params: KindParams, mode: Option<u32>, lifetime: Lifetime) -> CreateSpec {
    CreateSpec {
        mode,
        lifetime,
        adopt: false,
        params,
    }
}

impl Client {
    /// Creates a lock (persistent, mode `0o600` unless `mode` says otherwise).
    pub fn create_lock(
        &mut self,
        name: &str,
        reentrant: bool,
        mode: Option<u32>,
    ) -> Result<ObjectInfo> {
        let params = KindParams::Lock(LockParams { reentrant });
        self.create(
            &lock_address(name),
            spec(params, mode, Lifetime::Persistent),
        )
    }

    /// Takes the lock for this connection, waiting up to `timeout` (`None`: as
    /// long as it takes; zero: `would-block` at once if held). Returns the depth.
    pub fn lock_acquire(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
        let op = KindOp::Lock(LockOp::Acquire {
            timeout_ms: millis(timeout),
        });
        match self.operate(&lock_address(name), op)? {
            KindReply::Lock(LockReply::Acquired { depth }) => Ok(depth),
            other => Err(unexpected_kind("Acquired", &other)),
        }
    }

    /// Releases the lock once; returns the depth left (0: free).
    pub fn lock_release(&mut self, name: &str) -> Result<u32> {
        match self.operate(&lock_address(name), KindOp::Lock(LockOp::Release))? {
            KindReply::Lock(LockReply::Released { depth }) => Ok(depth),
            other => Err(unexpected_kind("Released", &other)),
        }
    }
}
