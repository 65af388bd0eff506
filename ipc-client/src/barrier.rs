//! `barrier:NAME` — N parties wait for each other; a party leaving or timing
//! out breaks it (`broken`) until reset.

use std::borrow::Cow;
use std::time::Duration;

use protocol::{
    BarrierOp, BarrierParams, BarrierReply, KindOp, KindParams, KindReply, Lifetime, ObjectInfo,
};

use crate::client::{Client, unexpected_kind};
use crate::error::Result;
use crate::lock::{millis, spec};

/// `barrier:NAME` for `NAME` (an address is returned as it is).
pub fn barrier_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Barrier, name)
}

impl Client {
    /// Creates a barrier for `parties` parties.
    pub fn create_barrier(
        &mut self,
        name: &str,
        parties: u32,
        mode: Option<u32>,
    ) -> Result<ObjectInfo> {
        let params = KindParams::Barrier(BarrierParams { parties });
        self.create(
            &barrier_address(name),
            spec(params, mode, Lifetime::Persistent),
        )
    }

    /// Arrives and waits for the others; returns this party's arrival index.
    pub fn barrier_wait(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
        let op = KindOp::Barrier(BarrierOp::Wait {
            timeout_ms: millis(timeout),
        });
        match self.operate(&barrier_address(name), op)? {
            KindReply::Barrier(BarrierReply::Passed { index }) => Ok(index),
            other => Err(unexpected_kind("Passed", &other)),
        }
    }

    /// Repairs a broken barrier.
    pub fn barrier_reset(&mut self, name: &str) -> Result<()> {
        match self.operate(&barrier_address(name), KindOp::Barrier(BarrierOp::Reset))? {
            KindReply::Barrier(BarrierReply::Reset) => Ok(()),
            other => Err(unexpected_kind("Reset", &other)),
        }
    }
}
