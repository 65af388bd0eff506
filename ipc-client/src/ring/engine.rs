//! The slot protocol of PROTOCOL.md ("`ring:NAME` rings") over a mapped
//! segment: claiming a position by CAS on the slot's ctrl word and helping the
//! shared position along, committing and releasing, waking the other side,
//! and recovering slots whose owner died (the waiting itself is in `wait`).
//!
//! The fast path is two loads, three CASes and a copy; nothing allocates and
//! nothing calls the kernel unless somebody sleeps. Liveness is looked at only
//! when a wait on the same slot state lasted [`LIVENESS_AFTER`].

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use protocol::kinds::ring::layout::{
    LEN_SKIPPED, STATE_EMPTY, STATE_FULL, STATE_READING, STATE_WRITING, ctrl, ctrl_lap, ctrl_owner,
    ctrl_state,
};

use super::participants::{self, Participant};
use super::wait::{Side, Timeout, Waiter, now_ns};
use crate::error::{Error, Result};
use crate::sys::ring_mem::{Futex, RingMem};

/// How long the same slot state must block us before its owner's liveness is
/// checked (and then at most once per this long per handle).
pub(crate) const LIVENESS_AFTER: Duration = Duration::from_millis(50);

/// Names the segment has in the file system (0 once unlinked); unknown counts as named.
fn links(fd: &OwnedFd) -> u64 {
    nix::sys::stat::fstat(fd).map_or(1, |st| st.st_nlink)
}

/// A slot this participant has claimed: `WRITING(lap, me)` or `READING(lap, me)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The slot index.
    pub(crate) slot: u32,
    /// The lap it was claimed in.
    pub(crate) lap: u32,
    /// The message length (consumer claims; 0 for producers).
    pub(crate) len: usize,
}

/// What one look at the slot at the shared position found.
enum Step {
    /// Claimed.
    Done(Claim),
    /// Something moved: look again at once.
    Retry,
    /// Nothing to do until someone else acts. `owner`: the participant
    /// holding the slot, with the state to set if it turns out dead.
    Blocked {
        pos: u64,
        slot: u32,
        seen: u64,
        owner: Option<(u32, u64)>,
    },
}

/// The ring engine of one attached handle.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) mem: RingMem,
    pub(crate) me: Participant,
    address: String,
    shift: u32,
    spin_ns: AtomicU64,
    /// Per side: which slot state has been blocking us since when.
    stalls: [Stall; 2],
    /// The segment, to notice it being deleted while we wait.
    segment: OwnedFd,
    /// Whether the segment had a name when we attached (a memfd never has).
    named: bool,
}

/// The slot state that has been blocking one side of a handle, and since when.
#[derive(Debug)]
struct Stall {
    ctrl: AtomicU64,
    slot: AtomicU32,
    since: AtomicU64,
}

impl Stall {
    fn new() -> Stall {
        Stall {
            ctrl: AtomicU64::new(u64::MAX),
            slot: AtomicU32::new(u32::MAX),
            since: AtomicU64::new(0),
        }
    }
}

impl Engine {
    /// An engine over `mem` for participant `me`.
    pub(crate) fn new(mem: RingMem, me: Participant, address: String, segment: OwnedFd) -> Engine {
        let named = links(&segment) > 0;
        Engine {
            segment,
            named,
            shift: mem.geometry().slots.trailing_zeros(),
            mem,
            me,
            address,
            spin_ns: AtomicU64::new(0),
            stalls: [Stall::new(), Stall::new()],
        }
    }

    /// Whether the segment was unlinked (the ring deleted) since we attached.
    pub(crate) fn deleted(&self) -> bool {
        self.named && links(&self.segment) == 0
    }

    /// The ring's address (for errors).
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// How long a blocked operation spins before sleeping.
    pub(crate) fn spin(&self) -> Duration {
        Duration::from_nanos(self.spin_ns.load(Relaxed))
    }

    /// Sets [`spin`](Self::spin).
    pub(crate) fn set_spin(&self, spin: Duration) {
        let ns = u64::try_from(spin.as_nanos()).unwrap_or(u64::MAX);
        self.spin_ns.store(ns, Relaxed);
    }

    /// Messages claimed by producers and not yet by consumers (a snapshot).
    pub(crate) fn depth(&self) -> u64 {
        let deq = self.mem.dequeue_pos().load(Acquire);
        let enq = self.mem.enqueue_pos().load(Acquire);
        enq.saturating_sub(deq)
            .min(u64::from(self.mem.geometry().slots))
    }

    #[inline]
    fn split(&self, pos: u64) -> (u32, u32) {
        (pos as u32 & self.mem.mask(), (pos >> self.shift) as u32)
    }

    // ------------------------------------------------------------ producing

    /// Claims the slot at `enqueue_pos` for writing, waiting as `timeout` says.
    #[inline]
    pub(crate) fn claim_produce(&self, timeout: Timeout) -> Result<Claim> {
        match self.step_produce()? {
            Step::Done(c) => Ok(c),
            _ => self.claim_produce_slow(timeout),
        }
    }

    #[cold]
    fn claim_produce_slow(&self, timeout: Timeout) -> Result<Claim> {
        let mut waiter = Waiter::new(timeout, self.spin());
        loop {
            match self.step_produce()? {
                Step::Done(c) => return Ok(c),
                Step::Retry => {}
                Step::Blocked {
                    pos,
                    slot,
                    seen,
                    owner,
                } => {
                    if waiter.spin_once() {
                        continue;
                    }
                    if let Some((owner, to)) = owner
                        && self.stalled_on_dead(Side::Producer, slot, seen, owner, to)
                    {
                        continue;
                    }
                    waiter.block(self, Side::Producer, pos, slot, seen)?;
                }
            }
        }
    }

    #[inline]
    fn step_produce(&self) -> Result<Step> {
        let enq = self.mem.enqueue_pos();
        let p = enq.load(Acquire);
        let (slot, lap) = self.split(p);
        let word = self.mem.ctrl(slot);
        let c = word.load(Acquire);
        let ahead = ctrl_lap(c).wrapping_sub(lap) as i32;
        if ahead == 0 {
            if c == ctrl(lap, STATE_EMPTY, 0) {
                let mine = ctrl(lap, STATE_WRITING, self.me.owner);
                if word.compare_exchange(c, mine, Acquire, Relaxed).is_ok() {
                    let _ = enq.compare_exchange(p, p + 1, AcqRel, Relaxed);
                    return Ok(Step::Done(Claim { slot, lap, len: 0 }));
                }
                return Ok(Step::Retry);
            }
            if ctrl_state(c) == STATE_EMPTY {
                return self.corrupt_unless_moved(
                    Side::Producer,
                    p,
                    slot,
                    c,
                    "EMPTY with an owner",
                );
            }
            // Another producer took `p`: help it along.
            let _ = enq.compare_exchange(p, p + 1, AcqRel, Relaxed);
            return Ok(Step::Retry);
        }
        if ahead == 1 {
            let _ = enq.compare_exchange(p, p + 1, AcqRel, Relaxed);
            return Ok(Step::Retry);
        }
        if ahead == -1 {
            let owner = match ctrl_state(c) {
                STATE_FULL => None,
                STATE_WRITING | STATE_READING => Some((ctrl_owner(c), ctrl(lap, STATE_EMPTY, 0))),
                _ => {
                    return self.corrupt_unless_moved(
                        Side::Producer,
                        p,
                        slot,
                        c,
                        "EMPTY of the previous lap at the producers' position",
                    );
                }
            };
            return Ok(Step::Blocked {
                pos: p,
                slot,
                seen: c,
                owner,
            });
        }
        self.corrupt_unless_moved(Side::Producer, p, slot, c, "slot lap out of step")
    }

    /// Publishes a claimed slot with `len` bytes (or [`LEN_SKIPPED`]).
    #[inline]
    pub(crate) fn commit(&self, claim: Claim, len: u32) -> Result<()> {
        self.mem.len(claim.slot).store(len, Relaxed);
        let ok = self
            .mem
            .ctrl(claim.slot)
            .compare_exchange(
                ctrl(claim.lap, STATE_WRITING, self.me.owner),
                ctrl(claim.lap, STATE_FULL, 0),
                SeqCst,
                Relaxed,
            )
            .is_ok();
        if !ok {
            return Err(self.lost("another process judged this producer dead and took its slot"));
        }
        self.wake(Futex::NotEmpty);
        Ok(())
    }

    // ------------------------------------------------------------ consuming

    /// Claims the message at `dequeue_pos` for reading (skipping skipped
    /// slots), waiting as `timeout` says. A message longer than `max_len` is
    /// left in the ring: [`Error::RingBufferTooSmall`].
    #[inline]
    pub(crate) fn claim_consume(&self, timeout: Timeout, max_len: usize) -> Result<Claim> {
        match self.step_consume(max_len)? {
            Step::Done(c) => Ok(c),
            _ => self.claim_consume_slow(timeout, max_len),
        }
    }

    #[cold]
    fn claim_consume_slow(&self, timeout: Timeout, max_len: usize) -> Result<Claim> {
        let mut waiter = Waiter::new(timeout, self.spin());
        loop {
            match self.step_consume(max_len)? {
                Step::Done(c) => return Ok(c),
                Step::Retry => {}
                Step::Blocked {
                    pos,
                    slot,
                    seen,
                    owner,
                } => {
                    if waiter.spin_once() {
                        continue;
                    }
                    if let Some((owner, to)) = owner
                        && self.stalled_on_dead(Side::Consumer, slot, seen, owner, to)
                    {
                        // The dead producer's message is lost: move past it.
                        let _ =
                            self.mem
                                .dequeue_pos()
                                .compare_exchange(pos, pos + 1, AcqRel, Relaxed);
                        continue;
                    }
                    waiter.block(self, Side::Consumer, pos, slot, seen)?;
                }
            }
        }
    }

    #[inline]
    fn step_consume(&self, max_len: usize) -> Result<Step> {
        let deq = self.mem.dequeue_pos();
        let q = deq.load(Acquire);
        let (slot, lap) = self.split(q);
        let word = self.mem.ctrl(slot);
        let c = word.load(Acquire);
        let ahead = ctrl_lap(c).wrapping_sub(lap) as i32;
        if ahead == 0 {
            match ctrl_state(c) {
                STATE_FULL => {
                    if c != ctrl(lap, STATE_FULL, 0) {
                        return self.corrupt_unless_moved(
                            Side::Consumer,
                            q,
                            slot,
                            c,
                            "FULL with an owner",
                        );
                    }
                    let len = self.mem.len(slot).load(Relaxed);
                    if len != LEN_SKIPPED && len as usize > max_len.min(self.mem.slot_size()) {
                        if word.load(Acquire) != c {
                            return Ok(Step::Retry);
                        }
                        if len as usize > self.mem.slot_size() {
                            return self.corrupt_unless_moved(
                                Side::Consumer,
                                q,
                                slot,
                                c,
                                "message longer than the slot",
                            );
                        }
                        return Err(Error::RingBufferTooSmall {
                            address: self.address.clone(),
                            len: max_len,
                            needed: len as usize,
                        });
                    }
                    let mine = ctrl(lap, STATE_READING, self.me.owner);
                    if word.compare_exchange(c, mine, Acquire, Relaxed).is_err() {
                        return Ok(Step::Retry);
                    }
                    let _ = deq.compare_exchange(q, q + 1, AcqRel, Relaxed);
                    let claim = Claim {
                        slot,
                        lap,
                        len: len as usize,
                    };
                    if len == LEN_SKIPPED {
                        // A producer gave this slot up: hand it back, go on.
                        let _ = self.release(claim);
                        return Ok(Step::Retry);
                    }
                    Ok(Step::Done(claim))
                }
                STATE_READING => {
                    let _ = deq.compare_exchange(q, q + 1, AcqRel, Relaxed);
                    Ok(Step::Retry)
                }
                STATE_EMPTY => Ok(Step::Blocked {
                    pos: q,
                    slot,
                    seen: c,
                    owner: None,
                }),
                _ => Ok(Step::Blocked {
                    pos: q,
                    slot,
                    seen: c,
                    owner: Some((ctrl_owner(c), ctrl(lap.wrapping_add(1), STATE_EMPTY, 0))),
                }),
            }
        } else if ahead == 1 {
            let _ = deq.compare_exchange(q, q + 1, AcqRel, Relaxed);
            Ok(Step::Retry)
        } else if ahead == -1 && ctrl_state(c) == STATE_READING {
            // The previous lap's consumer is still reading: nothing here yet.
            Ok(Step::Blocked {
                pos: q,
                slot,
                seen: c,
                owner: None,
            })
        } else {
            self.corrupt_unless_moved(Side::Consumer, q, slot, c, "slot lap out of step")
        }
    }

    /// Hands a consumed slot back to the producers of the next lap.
    #[inline]
    pub(crate) fn release(&self, claim: Claim) -> Result<()> {
        let ok = self
            .mem
            .ctrl(claim.slot)
            .compare_exchange(
                ctrl(claim.lap, STATE_READING, self.me.owner),
                ctrl(claim.lap.wrapping_add(1), STATE_EMPTY, 0),
                SeqCst,
                Relaxed,
            )
            .is_ok();
        if !ok {
            return Err(self.lost(
                "another process judged this consumer dead and took its slot; \
                 the bytes read may be torn",
            ));
        }
        self.wake(Futex::NotFull);
        Ok(())
    }

    // ------------------------------------------------------------ waking and waiting

    /// After a commit or release (sequentially consistent): wakes the other
    /// side if anyone there is asleep or about to be.
    #[inline]
    fn wake(&self, f: Futex) {
        if self.mem.waiting(f).load(SeqCst) != 0 {
            self.wake_slow(f);
        }
    }

    /// Clears the waiter count; whoever cleared a non-zero one wakes them all.
    #[cold]
    fn wake_slow(&self, f: Futex) {
        if self.mem.waiting(f).swap(0, SeqCst) != 0 {
            self.wake_all(f);
        }
    }

    fn wake_all(&self, f: Futex) {
        self.mem.futex(f).fetch_add(1, SeqCst);
        self.mem.futex_wake_all(f);
    }

    /// Whether the slot state `seen` at `slot` has blocked this handle for
    /// [`LIVENESS_AFTER`], its `owner` is dead, and we moved the slot to
    /// `recovered` (true: look again at once).
    #[cold]
    fn stalled_on_dead(
        &self,
        side: Side,
        slot: u32,
        seen: u64,
        owner: u32,
        recovered: u64,
    ) -> bool {
        let stall = &self.stalls[side as usize];
        let now = now_ns();
        if stall.ctrl.load(Relaxed) != seen || stall.slot.load(Relaxed) != slot {
            stall.ctrl.store(seen, Relaxed);
            stall.slot.store(slot, Relaxed);
            stall.since.store(now, Relaxed);
            return false;
        }
        if now.saturating_sub(stall.since.load(Relaxed)) < LIVENESS_AFTER.as_nanos() as u64 {
            return false;
        }
        stall.since.store(now, Relaxed);
        if participants::owner_alive(&self.mem, owner) {
            return false;
        }
        let word = self.mem.ctrl(slot);
        if word
            .compare_exchange(seen, recovered, AcqRel, Relaxed)
            .is_ok()
        {
            // Whoever waits on either side may now go on.
            self.wake_all(Futex::NotEmpty);
            self.wake_all(Futex::NotFull);
        }
        true
    }

    // ------------------------------------------------------------ errors

    #[cold]
    fn lost(&self, detail: &'static str) -> Error {
        Error::RingMessageLost {
            address: self.address.clone(),
            detail,
        }
    }

    /// An impossible state, unless a second look finds that the position or
    /// the slot moved meanwhile (then: look again).
    #[cold]
    fn corrupt_unless_moved(
        &self,
        side: Side,
        pos: u64,
        slot: u32,
        seen: u64,
        what: &str,
    ) -> Result<Step> {
        let (name, word) = match side {
            Side::Producer => ("enqueue", self.mem.enqueue_pos()),
            Side::Consumer => ("dequeue", self.mem.dequeue_pos()),
        };
        if word.load(SeqCst) != pos || self.mem.ctrl(slot).load(SeqCst) != seen {
            return Ok(Step::Retry);
        }
        Err(Error::RingCorrupted {
            address: self.address.clone(),
            detail: format!(
                "{what}: slot {slot} ctrl {seen:#018x} (lap {}, state {}, owner {:#x}) \
                 at {name} position {pos}",
                ctrl_lap(seen),
                ctrl_state(seen),
                ctrl_owner(seen),
            ),
        })
    }
}
