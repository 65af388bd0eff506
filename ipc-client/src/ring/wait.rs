//! Waiting for a slot to move: the deadline and spin budget of a blocked
//! operation, and the waiter-count handshake before a futex sleep
//! (PROTOCOL.md, "Waking").

use std::sync::OnceLock;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::sys::ring_mem::Futex;

/// The longest single futex sleep (PROTOCOL.md: at most 50 ms), so dead
/// owners get noticed and a waiter count left by a killed process costs only
/// a spare wake-up.
pub(crate) const MAX_SLEEP: Duration = Duration::from_millis(50);

/// How an operation may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// Not at all: [`Error::WouldBlock`].
    Never,
    /// As long as it takes.
    Forever,
    /// Up to this long, then [`Error::TimedOut`].
    After(Duration),
}

/// Producers or consumers: which position, futex and stall tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Producers: `enqueue_pos`, `not_full`.
    Producer = 0,
    /// Consumers: `dequeue_pos`, `not_empty`.
    Consumer = 1,
}

/// The waiting state of one blocked operation: its deadline and spin budget,
/// fixed when it first blocks.
pub(crate) struct Waiter {
    timeout: Timeout,
    spin: Duration,
    started: bool,
    deadline: Option<Instant>,
    spin_until: Option<Instant>,
    spins: u32,
    /// When the segment was last checked for having been deleted.
    looked: Option<Instant>,
}

/// Spin rounds between two looks at the clock.
const SPINS_PER_CLOCK: u32 = 8;

/// A spin round pauses at most `1 << MAX_BACKOFF` times.
const MAX_BACKOFF: u32 = 6;

impl Waiter {
    pub(crate) fn new(timeout: Timeout, spin: Duration) -> Waiter {
        Waiter {
            timeout,
            spin,
            started: false,
            deadline: None,
            spin_until: None,
            spins: 0,
            looked: None,
        }
    }

    /// Fixes the deadline and the spin budget at the first block.
    fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        if let Timeout::After(t) = self.timeout {
            // A deadline past the clock's range is no deadline.
            self.deadline = now.checked_add(t);
        }
        if !self.spin.is_zero() && self.timeout != Timeout::Never {
            self.spin_until = now.checked_add(self.spin);
        }
    }

    /// One round of spinning, while the spin budget (and the deadline) lasts:
    /// true means "look again now", false "go on to sleep".
    #[inline]
    pub(crate) fn spin_once(&mut self) -> bool {
        if self.spin.is_zero() || self.timeout == Timeout::Never {
            return false;
        }
        if !self.started {
            self.start(Instant::now());
        }
        let Some(until) = self.spin_until else {
            return false;
        };
        // Back off (1, 2, 4 … 64 pauses): a poll pulls the slot's cache line
        // away from the peer working on it, so polling flat out slows it.
        for _ in 0..1u32 << self.spins.min(MAX_BACKOFF) {
            std::hint::spin_loop();
        }
        self.spins = self.spins.wrapping_add(1);
        if !self.spins.is_multiple_of(SPINS_PER_CLOCK) {
            return true;
        }
        let now = Instant::now();
        if now < until && self.deadline.is_none_or(|d| now < d) {
            return true;
        }
        self.spin_until = None;
        false
    }

    /// Sleeps a little on the side's futex (at most [`MAX_SLEEP`], and not
    /// past the deadline) unless the slot at `pos`/`slot` has moved from
    /// `seen`, after the waiter-count handshake. [`Error::WouldBlock`] for
    /// an operation that may not wait, [`Error::TimedOut`] past its deadline.
    pub(crate) fn block(
        &mut self,
        e: &Engine,
        side: Side,
        pos: u64,
        slot: u32,
        seen: u64,
    ) -> Result<()> {
        if self.timeout == Timeout::Never {
            return Err(Error::WouldBlock);
        }
        let now = Instant::now();
        self.start(now);
        // Once a sleep's worth has passed, see whether the ring was deleted
        // meanwhile (one fstat per sleep at most): its waiters are told so.
        match self.looked {
            None => self.looked = Some(now),
            Some(t) if now.duration_since(t) >= MAX_SLEEP => {
                self.looked = Some(now);
                if e.deleted() {
                    return Err(Error::Deleted {
                        address: e.address().to_owned(),
                    });
                }
            }
            Some(_) => {}
        }
        let left = match self.deadline {
            Some(d) if now >= d => return Err(Error::TimedOut),
            Some(d) => (d - now).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        let (f, position) = match side {
            Side::Producer => (Futex::NotFull, e.mem.enqueue_pos()),
            Side::Consumer => (Futex::NotEmpty, e.mem.dequeue_pos()),
        };
        let value = e.mem.futex(f).load(SeqCst);
        e.mem.waiting(f).fetch_add(1, SeqCst);
        // Look again after announcing ourselves: a commit or release after
        // this look sees the count and wakes us. The count is not taken back:
        // the waker clears it (PROTOCOL.md, "Waking").
        if position.load(SeqCst) == pos && e.mem.ctrl(slot).load(SeqCst) == seen {
            e.mem.futex_wait(f, value, left);
        }
        Ok(())
    }
}

/// Nanoseconds on a monotonic clock since the first call.
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
