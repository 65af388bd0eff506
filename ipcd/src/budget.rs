//! Per-uid budgets: what each user may make the daemon hold — connections,
//! handshakes in progress, waiting requests, descriptors and queue bytes — so
//! that no user can take the share kept for the others. Root and the daemon's
//! own uid are *privileged*: exempt from per-uid shares, bounded only by the
//! global limits, of which a reserve is kept for them alone.
//!
//! Connections, handshakes and waits are counted here (the [`Ledger`]), each
//! held by an RAII ticket; descriptors and queue bytes held by objects are
//! summed by the registry from the objects themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Budget settings (config file keys of the same names; all optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budgets {
    /// Connections one unprivileged uid may hold at once.
    pub max_connections_per_uid: u32,
    /// Connections of `max_connections` only privileged uids may use.
    pub reserved_connections: u32,
    /// Connections one unprivileged uid may have before their hello.
    pub max_handshakes_per_uid: u32,
    /// Connections before their hello, all uids together.
    pub max_handshakes: u32,
    /// Requests one unprivileged uid may have waiting, all connections together.
    pub max_waits_per_uid: u32,
    /// Descriptors the daemon may hold for one unprivileged uid's objects and
    /// waits; `None`: an eighth of what the open-file limit leaves after connections.
    pub max_fds_per_uid: Option<u64>,
    /// The queue byte budget (`RLIMIT_MSGQUEUE`) the daemon asks for at start.
    pub mq_budget_bytes: u64,
    /// Queue bytes one unprivileged uid's queues may take; `None`: a quarter of
    /// the budget the daemon got.
    pub mq_bytes_per_uid: Option<u64>,
    /// Shared-memory bytes (`/dev/shm`) all unprivileged uids' segments and
    /// rings may take together.
    pub shm_budget_bytes: u64,
    /// Shared-memory bytes one unprivileged uid's segments and rings may take;
    /// `None`: a quarter of `shm_budget_bytes`.
    pub shm_bytes_per_uid: Option<u64>,
    /// Signal-channel subscriptions (socket subscribers and processes
    /// signalled) one unprivileged uid may hold, on anyone's channels.
    pub max_subscriptions_per_uid: u32,
    /// Memory all unprivileged uids' `queue:` objects may reserve together.
    pub queue_budget_bytes: u64,
    /// Memory one unprivileged uid's `queue:` objects may reserve; `None`: a
    /// quarter of `queue_budget_bytes`.
    pub queue_bytes_per_uid: Option<u64>,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            max_connections_per_uid: 256,
            reserved_connections: 32,
            max_handshakes_per_uid: 16,
            max_handshakes: 128,
            max_waits_per_uid: 256,
            max_fds_per_uid: None,
            mq_budget_bytes: 64 * 1024 * 1024,
            mq_bytes_per_uid: None,
            shm_budget_bytes: 1 << 30,
            shm_bytes_per_uid: None,
            max_subscriptions_per_uid: 256,
            queue_budget_bytes: 1 << 30,
            queue_bytes_per_uid: None,
        }
    }
}

/// What the system granted at start: the limits budgets are shares of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The daemon's open-file soft limit.
    pub nofile: u64,
    /// The daemon's `RLIMIT_MSGQUEUE` soft limit in bytes.
    pub mq_bytes: u64,
    /// The daemon's effective uid (privileged like root).
    pub daemon_uid: u32,
}

/// The shares in force for one unprivileged uid, resolved against [`Granted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    /// Descriptors held for its objects and waits.
    pub fds: u64,
    /// Queue bytes of its queues.
    pub mq_bytes: u64,
    /// Shared-memory bytes of its segments and rings.
    pub shm_bytes: u64,
    /// Requests waiting.
    pub waits: u32,
    /// Signal-channel subscriptions.
    pub subscriptions: u64,
    /// Memory its `queue:` objects reserve.
    pub queue_bytes: u64,
}

impl Budgets {
    /// The per-uid shares, given what the system granted and `max_connections`.
    pub fn shares(&self, granted: &Granted, max_connections: u32) -> Shares {
        let spare = granted
            .nofile
            .saturating_sub(u64::from(max_connections) + 256);
        Shares {
            fds: self.max_fds_per_uid.unwrap_or((spare / 8).max(64)),
            mq_bytes: self.mq_bytes_per_uid.unwrap_or(granted.mq_bytes / 4),
            shm_bytes: self.shm_bytes_per_uid.unwrap_or(self.shm_budget_bytes / 4),
            waits: self.max_waits_per_uid,
            subscriptions: u64::from(self.max_subscriptions_per_uid),
            queue_bytes: self
                .queue_bytes_per_uid
                .unwrap_or(self.queue_budget_bytes / 4),
        }
    }
}

/// What a request may still take for one uid, as the registry checks it.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    /// Root or the daemon's uid: no per-uid shares.
    pub privileged: bool,
    /// The shares in force.
    pub shares: Shares,
    /// Descriptors the uid's waiting requests hold now.
    pub wait_fds: u64,
    /// The daemon's whole queue byte budget.
    pub mq_budget: u64,
    /// Shared-memory bytes all unprivileged uids may take together.
    pub shm_budget: u64,
    /// Queue memory all unprivileged uids may reserve together.
    pub queue_budget: u64,
}

/// Live counts for one uid.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    connections: u32,
    handshakes: u32,
    waits: u32,
}

#[derive(Debug, Default)]
struct Book {
    per_uid: HashMap<u32, Counts>,
    connections: u32,
    handshakes: u32,
}

impl Book {
    fn entry(&mut self, uid: u32) -> &mut Counts {
        self.per_uid.entry(uid).or_default()
    }

    fn forget_if_idle(&mut self, uid: u32) {
        if let Some(c) = self.per_uid.get(&uid)
            && c.connections == 0
            && c.waits == 0
        {
            self.per_uid.remove(&uid);
        }
    }
}

/// Counts of connections, handshakes and waits, per uid and in all.
#[derive(Debug, Default)]
pub struct Ledger {
    book: Mutex<Book>,
}

/// A connection's place in the ledger; released when dropped.
#[derive(Debug)]
pub struct ConnTicket {
    ledger: Arc<Ledger>,
    uid: u32,
    handshaking: bool,
}

/// A waiting request's place in the ledger; released when dropped.
#[derive(Debug)]
pub struct WaitTicket {
    ledger: Arc<Ledger>,
    uid: u32,
}

/// The global limits an admission is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits<'a> {
    /// `max_connections`.
    pub max_connections: u32,
    /// The budgets in force.
    pub budgets: &'a Budgets,
}

impl Ledger {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection of `uid`, still before its hello, or says why not.
    pub fn admit_connection(
        self: &Arc<Self>,
        uid: u32,
        privileged: bool,
        limits: ConnLimits<'_>,
    ) -> Result<ConnTicket, String> {
        let b = limits.budgets;
        let mut book = self.book();
        let open_to_all = limits
            .max_connections
            .saturating_sub(b.reserved_connections);
        let mine = book.per_uid.get(&uid).copied().unwrap_or_default();
        if book.connections >= limits.max_connections {
            return Err(format!(
                "too many connections ({} open, max_connections is {})",
                book.connections, limits.max_connections
            ));
        }
        if !privileged {
            if book.handshakes >= b.max_handshakes {
                return Err(format!(
                    "too many connections are still in their handshake ({}, max_handshakes)",
                    book.handshakes
                ));
            }
            if book.connections >= open_to_all {
                return Err(format!(
                    "too many connections ({} open; the last {} of max_connections {} are kept for root)",
                    book.connections, b.reserved_connections, limits.max_connections
                ));
            }
            if mine.connections >= b.max_connections_per_uid {
                return Err(format!(
                    "uid {uid} has {} connections open, the maximum (max_connections_per_uid)",
                    mine.connections
                ));
            }
            if mine.handshakes >= b.max_handshakes_per_uid {
                return Err(format!(
                    "uid {uid} has {} connections still in their handshake (max_handshakes_per_uid)",
                    mine.handshakes
                ));
            }
        }
        book.connections += 1;
        book.handshakes += 1;
        let c = book.entry(uid);
        c.connections += 1;
        c.handshakes += 1;
        Ok(ConnTicket {
            ledger: self.clone(),
            uid,
            handshaking: true,
        })
    }

    /// Admits one more waiting request of `uid` (unprivileged: up to `max`).
    pub fn admit_wait(
        self: &Arc<Self>,
        uid: u32,
        privileged: bool,
        max: u32,
    ) -> Result<WaitTicket, String> {
        let mut book = self.book();
        let c = book.entry(uid);
        if !privileged && c.waits >= max {
            return Err(format!(
                "uid {uid} has {} requests waiting, the maximum (max_waits_per_uid)",
                c.waits
            ));
        }
        c.waits += 1;
        Ok(WaitTicket {
            ledger: self.clone(),
            uid,
        })
    }

    /// Requests of `uid` waiting now.
    pub fn waits_of(&self, uid: u32) -> u32 {
        self.book().per_uid.get(&uid).map_or(0, |c| c.waits)
    }

    /// Connections of `uid` open now.
    pub fn connections_of(&self, uid: u32) -> u32 {
        self.book().per_uid.get(&uid).map_or(0, |c| c.connections)
    }

    /// Connections open now, all uids.
    pub fn connections(&self) -> u32 {
        self.book().connections
    }
}

impl ConnTicket {
    /// The connection said hello: it no longer counts as a handshake.
    pub fn greeted(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            let mut book = self.ledger.book();
            book.handshakes -= 1;
            book.entry(self.uid).handshakes -= 1;
        }
    }
}

impl Drop for ConnTicket {
    fn drop(&mut self) {
        self.greeted();
        let mut book = self.ledger.book();
        book.connections -= 1;
        book.entry(self.uid).connections -= 1;
        book.forget_if_idle(self.uid);
    }
}

impl Drop for WaitTicket {
    fn drop(&mut self) {
        let mut book = self.ledger.book();
        book.entry(self.uid).waits -= 1;
        book.forget_if_idle(self.uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(b: &Budgets) -> ConnLimits<'_> {
        ConnLimits {
            max_connections: 10,
            budgets: b,
        }
    }

    #[test]
    fn one_uid_cannot_take_the_reserve_or_more_than_its_share() {
        let b = Budgets {
            max_connections_per_uid: 6,
            reserved_connections: 3,
            ..Budgets::default()
        };
        let ledger = Arc::new(Ledger::default());
        let mut mine: Vec<_> = (0..6)
            .map(|_| ledger.admit_connection(1000, false, limits(&b)).unwrap())
            .collect();
        let err = ledger
            .admit_connection(1000, false, limits(&b))
            .unwrap_err();
        assert!(err.contains("max_connections_per_uid"), "{err}");
        let other = ledger.admit_connection(1001, false, limits(&b)).unwrap();
        let err = ledger
            .admit_connection(1002, false, limits(&b))
            .unwrap_err();
        assert!(err.contains("kept for root"), "{err}");
        let root: Vec<_> = (0..3)
            .map(|_| ledger.admit_connection(0, true, limits(&b)).unwrap())
            .collect();
        assert!(
            ledger.admit_connection(0, true, limits(&b)).is_err(),
            "full"
        );
        drop(root);
        mine.pop();
        assert_eq!(ledger.connections_of(1000), 5);
        drop((mine, other));
        assert_eq!(ledger.connections(), 0);
        assert!(ledger.book().per_uid.is_empty(), "idle uids are forgotten");
    }

    #[test]
    fn handshakes_are_bounded_until_hello() {
        let b = Budgets {
            max_handshakes_per_uid: 2,
            reserved_connections: 0,
            ..Budgets::default()
        };
        let ledger = Arc::new(Ledger::default());
        let mut t1 = ledger.admit_connection(7, false, limits(&b)).unwrap();
        let _t2 = ledger.admit_connection(7, false, limits(&b)).unwrap();
        assert!(ledger.admit_connection(7, false, limits(&b)).is_err());
        t1.greeted();
        t1.greeted();
        let _t3 = ledger.admit_connection(7, false, limits(&b)).unwrap();
    }

    #[test]
    fn waits_are_counted_per_uid() {
        let ledger = Arc::new(Ledger::default());
        let w: Vec<_> = (0..3)
            .map(|_| ledger.admit_wait(5, false, 3).unwrap())
            .collect();
        assert!(ledger.admit_wait(5, false, 3).is_err());
        assert!(ledger.admit_wait(0, true, 3).is_ok(), "privileged");
        assert_eq!(ledger.waits_of(5), 3);
        drop(w);
        assert_eq!(ledger.waits_of(5), 0);
    }

    #[test]
    fn shares_follow_what_was_granted() {
        let g = Granted {
            nofile: 20_000,
            mq_bytes: 800_000,
            daemon_uid: 0,
        };
        let s = Budgets::default().shares(&g, 1024);
        assert_eq!(s.fds, (20_000 - 1024 - 256) / 8);
        assert_eq!(s.mq_bytes, 200_000);
    }
}
