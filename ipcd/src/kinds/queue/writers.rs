//! The budget of journal writer threads. Each durable queue's journal has a
//! thread of its own (it blocks in `write` and `fdatasync`), so threads are
//! a resource a user can make ipcd hold: one per durable queue, charged to
//! the uid that created it, until the queue is deleted. A uid other than
//! root may have [`PER_UID`], everybody together [`IN_ALL`]; queues read
//! back after a restart are charged again without a check (they exist).

use crate::error::RequestError;
use crate::kinds::uid_share::{Share, Shares, Spent};

/// Durable queues one uid (not root) may have at once.
pub const PER_UID: u32 = 16;
/// Durable queues at once, for all uids.
pub const IN_ALL: u32 = 1024;

/// Writer threads per uid charged.
static WRITERS: Shares = Shares::new(PER_UID, IN_ALL);

/// One writer's charge; released when dropped (the queue is gone).
#[derive(Debug)]
pub struct Charge(Share);

impl Charge {
    /// Charges one more durable queue to `uid`, or says which budget is spent.
    pub fn take(uid: u32) -> Result<Charge, RequestError> {
        WRITERS.take(uid).map(Charge).map_err(|spent| {
            RequestError::LimitExceeded(match spent {
                Spent::InAll => format!(
                    "ipcd holds {IN_ALL} durable queues, as many as it journals at once; \
                     delete unused ones or create this one without --durable"
                ),
                Spent::PerUid => format!(
                    "uid {uid} has {PER_UID} durable queues, its share (each has a journal \
                     writer thread in ipcd); delete unused ones or create this one without \
                     --durable"
                ),
            })
        })
    }

    /// Charges a durable queue read back after a restart, without a check.
    pub fn again(uid: u32) -> Charge {
        Charge(WRITERS.again(uid))
    }

    /// The uid charged.
    pub fn uid(&self) -> u32 {
        self.0.uid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_gets_its_share_and_gets_it_back() {
        let uid = 5_000_000 + std::process::id() % 1000;
        let held: Vec<Charge> = (0..PER_UID).map(|_| Charge::take(uid).unwrap()).collect();
        let err = Charge::take(uid).unwrap_err();
        assert!(err.to_string().contains("its share"), "{err}");
        let extra = Charge::again(uid);
        drop((held, extra));
        Charge::take(uid).unwrap();
    }
}
