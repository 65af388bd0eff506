//! The ring's participant table: attaching a handle (taking a free entry or a
//! dead owner's), detaching it, and judging whether the owner of a slot is
//! still alive (pid, generation and `/proc/PID/stat` start time).

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use nix::errno::Errno;
use nix::unistd::Pid;
use protocol::kinds::ring::layout;

use crate::sys::ring_mem::RingMem;

/// The entry a handle holds, and the owner field it writes into ctrl words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Participant {
    /// Entry index, 0..128.
    pub(crate) index: u32,
    /// The entry's generation since this handle took it.
    pub(crate) generation: u32,
    /// `layout::owner(index, generation)`.
    pub(crate) owner: u32,
}

/// The table has no free entry and no dead owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableFull;

fn word(generation: u32, pid: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(pid)
}

/// An entry read consistently: word, start, word again.
fn read_entry(mem: &RingMem, index: u32) -> (u64, u64) {
    let w = mem.participant_word(index);
    let s = mem.participant_start(index);
    loop {
        let first = w.load(Acquire);
        let start = s.load(Acquire);
        if w.load(Acquire) == first {
            return (first, start);
        }
    }
}

/// Takes an entry for this process: a free one if there is, else a dead
/// owner's. Two passes, so the `/proc` reads happen only when the table is full.
pub(crate) fn attach(mem: &RingMem) -> Result<Participant, TableFull> {
    let me = this_process();
    for index in 0..layout::PARTICIPANTS_MAX {
        if let Some(p) = try_take(mem, index, me, false) {
            return Ok(p);
        }
    }
    for index in 0..layout::PARTICIPANTS_MAX {
        if let Some(p) = try_take(mem, index, me, true) {
            return Ok(p);
        }
    }
    Err(TableFull)
}

/// Takes entry `index` if it is free (or, with `reclaim`, its owner is dead).
fn try_take(mem: &RingMem, index: u32, me: Process, reclaim: bool) -> Option<Participant> {
    loop {
        let (w, start) = read_entry(mem, index);
        let (generation, pid) = ((w >> 32) as u32, w as u32);
        if pid != 0 {
            if !reclaim || process_alive(pid, start, me) {
                return None;
            }
            // Clear the dead process's start time first, so nobody judges
            // the new owner by it between our CAS and our own start store.
            if start != 0
                && mem
                    .participant_start(index)
                    .compare_exchange(start, 0, AcqRel, Acquire)
                    .is_err()
            {
                continue;
            }
        }
        let next = generation.wrapping_add(1);
        if mem
            .participant_word(index)
            .compare_exchange(w, word(next, me.pid), AcqRel, Acquire)
            .is_err()
        {
            continue;
        }
        mem.participant_start(index).store(me.start, Release);
        return Some(Participant {
            index,
            generation: next,
            owner: layout::owner(index, next),
        });
    }
}

/// Gives the entry back (unless someone judged us dead and took it).
pub(crate) fn detach(mem: &RingMem, p: Participant) {
    let me = this_process();
    let w = mem.participant_word(p.index);
    if w.load(Acquire) != word(p.generation, me.pid) {
        return;
    }
    mem.participant_start(p.index).store(0, Release);
    let _ = w.compare_exchange(
        word(p.generation, me.pid),
        word(p.generation, 0),
        AcqRel,
        Relaxed,
    );
}

/// Whether the owner field `owner` names a live participant.
pub(crate) fn owner_alive(mem: &RingMem, owner: u32) -> bool {
    let index = layout::owner_index(owner);
    let (w, start) = read_entry(mem, index);
    let (generation, pid) = ((w >> 32) as u32, w as u32);
    let gen_mask = (1u32 << layout::OWNER_GEN_BITS) - 1;
    if pid == 0 || generation & gen_mask != layout::owner_generation(owner) {
        return false;
    }
    process_alive(pid, start, this_process())
}

/// This process: its pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Process {
    pid: u32,
    start: u64,
}

fn this_process() -> Process {
    use std::sync::Mutex;
    static CACHE: Mutex<Option<Process>> = Mutex::new(None);
    let pid = std::process::id();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    match *cache {
        // A forked child has another pid: look again.
        Some(p) if p.pid == pid => p,
        _ => {
            let start = read_stat(pid).map_or(0, |s| s.start);
            let p = Process { pid, start };
            *cache = Some(p);
            p
        }
    }
}

/// Whether process `pid` is the live process that started at `start` clock
/// ticks after boot (`start == 0`: any live process with that pid).
fn process_alive(pid: u32, start: u64, me: Process) -> bool {
    if pid == me.pid {
        return true;
    }
    match read_stat(pid) {
        Some(stat) => !stat.gone && (start == 0 || stat.start == start),
        // Not in /proc (or unreadable): trust kill(pid, 0), which cannot tell
        // a reused pid but never calls a hidden live process dead.
        None => {
            let Ok(raw) = i32::try_from(pid) else {
                return false;
            };
            !matches!(
                nix::sys::signal::kill(Pid::from_raw(raw), None),
                Err(Errno::ESRCH)
            )
        }
    }
}

/// What the ring needs from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Field 22: start time in clock ticks after boot.
    pub(crate) start: u64,
    /// State `Z` (zombie) or `X` (dead): the process has exited.
    pub(crate) gone: bool,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses `/proc/PID/stat`. The comm field (2) may hold spaces and
/// parentheses, so fields 3 onwards are the text after the *last* `)`.
pub(crate) fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    // `state` is field 3, so field 22 is 19 further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some(Stat {
        start,
        gone: matches!(state, "Z" | "X" | "x"),
    })
}
