//! The budget of journal writer threads. Each durable queue's journal has a
//! thread of its own (it blocks in `write` and `fdatasync`), so threads are
//! a resource a user can make ipcd hold: one per durable queue, charged to
//! the uid that created it, until the queue is deleted. A uid other than
//! root may have [`PER_UID`], everybody together [`IN_ALL`]; queues read
//! back after a restart are charged again without a check (they exist).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::RequestError;

/// Durable queues one uid (not root) may have at once.
pub const PER_UID: u32 = 16;
/// Durable queues at once, for all uids.
pub const IN_ALL: u32 = 1024;

/// Writer threads per uid charged.
static WRITERS: Mutex<BTreeMap<u32, u32>> = Mutex::new(BTreeMap::new());

/// One writer's charge; released when dropped (the queue is gone).
#[derive(Debug)]
pub struct Charge {
    uid: u32,
}

impl Charge {
    /// Charges one more durable queue to `uid`, or says which budget is spent.
    pub fn take(uid: u32) -> Result<Charge, RequestError> {
        let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        let total: u32 = writers.values().sum();
        if total >= IN_ALL {
            return Err(RequestError::LimitExceeded(format!(
                "ipcd holds {IN_ALL} durable queues, as many as it journals at once; \
                 delete unused ones or create this one without --durable"
            )));
        }
        let mine = writers.entry(uid).or_default();
        if uid != 0 && *mine >= PER_UID {
            return Err(RequestError::LimitExceeded(format!(
                "uid {uid} has {PER_UID} durable queues, its share (each has a journal \
                 writer thread in ipcd); delete unused ones or create this one without --durable"
            )));
        }
        *mine += 1;
        Ok(Charge { uid })
    }

    /// Charges a durable queue read back after a restart, without a check.
    pub fn again(uid: u32) -> Charge {
        let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        *writers.entry(uid).or_default() += 1;
        Charge { uid }
    }

    /// The uid charged.
    pub fn uid(&self) -> u32 {
        self.uid
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = writers.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                writers.remove(&self.uid);
            }
        }
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
