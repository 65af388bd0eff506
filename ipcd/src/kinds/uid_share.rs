//! Counted per-uid shares of something a kind holds a thread for (semaphore
//! helpers, queue journal writers): a uid other than root may hold
//! `per_uid` at once, everybody together `in_all`. A [`Share`] is taken and
//! given back when dropped.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One budget: its limits and what each uid holds now.
#[derive(Debug)]
pub struct Shares {
    per_uid: u32,
    in_all: u32,
    held: Mutex<BTreeMap<u32, u32>>,
}

/// Which limit refused a [`Shares::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// Everybody together holds `in_all`.
    InAll,
    /// The uid holds `per_uid`.
    PerUid,
}

/// One unit held by a uid; given back when dropped.
#[derive(Debug)]
pub struct Share {
    shares: &'static Shares,
    uid: u32,
}

impl Shares {
    /// A budget of `per_uid` for each uid but root and `in_all` in all.
    pub const fn new(per_uid: u32, in_all: u32) -> Self {
        Shares {
            per_uid,
            in_all,
            held: Mutex::new(BTreeMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, u32>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more unit for `uid`, or which limit is spent.
    pub fn take(&'static self, uid: u32) -> Result<Share, Spent> {
        let mut held = self.held();
        if held.values().sum::<u32>() >= self.in_all {
            return Err(Spent::InAll);
        }
        let mine = held.entry(uid).or_default();
        if uid != 0 && *mine >= self.per_uid {
            return Err(Spent::PerUid);
        }
        *mine += 1;
        Ok(Share { shares: self, uid })
    }

    /// One more unit for `uid` without a check (something that exists
    /// already, read back after a restart).
    pub fn again(&'static self, uid: u32) -> Share {
        *self.held().entry(uid).or_default() += 1;
        Share { shares: self, uid }
    }
}

impl Share {
    /// The uid it is charged to.
    pub fn uid(&self) -> u32 {
        self.uid
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.shares.held();
        if let Some(n) = held.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.uid);
            }
        }
    }
}
