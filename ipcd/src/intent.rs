//! The intent journal: fixed-size records in `<state dir>/intent`, each written
//! and synced *before* a create or delete touches the kernel, blanked after the
//! registry is saved. A crash between the two leaves the record behind, and the
//! next start finishes the job: a kernel object a record names that the
//! registry does not list is removed (if it is the daemon's), so kernel objects
//! and registry always agree. Objects without a kernel name (pipes) need no
//! record: they end with the process.
//!
//! Changes run concurrently (`changes::Store` holds no lock across a sync), so
//! the file has [`SLOTS`] slots of 512 bytes: a change takes a free slot (the
//! lowest; it waits if all are busy), writes and syncs only that slot, and
//! blanks it when done. The file grows only as far as changes ever ran at once;
//! a file of one slot (the format before slots) is slot 0. Syncs are shared
//! (group commit): a writer whose record an earlier sync did not cover syncs
//! the file for every record written so far, so the writers queued behind it
//! find theirs durable and return without a sync of their own. A record holds the
//! address and the caller's uid, never a kernel name: that is recomputed from
//! the daemon's namespace.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Condvar, Mutex};

use serde::{Deserialize, Serialize};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// File name of the journal inside the state directory.
pub const INTENT_FILE: &str = "intent";

/// Bytes of a record slot (an address is at most 5 + 1 + 200 bytes).
const SLOT: usize = 512;

/// Most changes recorded at once (one bit each in the busy mask).
pub const SLOTS: usize = 128;

/// What was about to happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// `create`, `adopt` or `delete`.
    pub op: String,
    /// `KIND:NAME`.
    pub address: String,
    /// The uid the kernel object may belong to besides the daemon: the object's
    /// owner (a FIFO a root daemon creates is chowned to its creator).
    pub uid: u32,
}

/// The open journal; shared by every change in progress.
#[derive(Debug)]
pub struct Journal {
    file: File,
    /// Bit `i` set: slot `i` holds a change in progress.
    busy: Mutex<u128>,
    /// Signalled when a slot is freed.
    freed: Condvar,
    /// Records written so far (each counted once its write returned).
    written: Mutex<u64>,
    /// The sync lock, holding how many records the last sync covered.
    synced: Mutex<u64>,
}

/// A slot holding one durable intent; blanked and freed when dropped (but
/// kept, record and all, if its thread panics: the next start recovers it).
#[derive(Debug)]
pub struct Slot<'a> {
    journal: &'a Journal,
    index: usize,
}

impl Journal {
    /// Opens (creating and syncing it the first time) the journal in `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join(INTENT_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .mode(0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if !existed {
            file.write_all_at(&[b' '; SLOT], 0)?;
            file.sync_all()?;
            File::open(dir)?.sync_all()?;
        }
        Ok(Journal {
            file,
            busy: Mutex::new(0),
            freed: Condvar::new(),
            written: Mutex::new(0),
            synced: Mutex::new(0),
        })
    }

    /// The records left by a run that stopped between intent and completion,
    /// in slot order.
    pub fn pending(dir: &Path) -> Vec<Intent> {
        let Ok(bytes) = std::fs::read(dir.join(INTENT_FILE)) else {
            return Vec::new();
        };
        bytes
            .chunks(SLOT)
            .filter_map(|slot| {
                let text = String::from_utf8_lossy(slot);
                let text = text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
                if text.is_empty() {
                    return None;
                }
                serde_json::from_str(text)
                    .inspect_err(|e| tracing::warn!("unreadable intent record ignored: {e}"))
                    .ok()
            })
            .collect()
    }

    /// Records `intent` durably in a free slot; nothing may touch the kernel
    /// until this returns `Ok`. Waits while every slot is busy.
    pub fn begin(&self, intent: &Intent) -> io::Result<Slot<'_>> {
        let mut record = serde_json::to_vec(intent).map_err(io::Error::other)?;
        if record.len() > SLOT {
            return Err(io::Error::other("intent record too long"));
        }
        record.resize(SLOT, b' ');
        let slot = self.take();
        // On failure the slot is dropped: blanked and freed.
        self.file
            .write_all_at(&record, (slot.index * SLOT) as u64)?;
        let mine = {
            let mut written = lock(&self.written);
            *written += 1;
            *written
        };
        let mut synced = lock(&self.synced);
        if *synced < mine {
            // Every record counted by now was written before this sync starts.
            let covers = *lock(&self.written);
            self.file.sync_data()?;
            *synced = covers;
        }
        Ok(slot)
    }

    /// Takes the lowest free slot, waiting for one if need be.
    fn take(&self) -> Slot<'_> {
        let mut busy = lock(&self.busy);
        while *busy == u128::MAX {
            busy = self.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        let index = (!*busy).trailing_zeros() as usize;
        *busy |= 1 << index;
        Slot {
            journal: self,
            index,
        }
    }

    /// Blanks every slot and shrinks the file to one, synced: at start, once
    /// the pending records are dealt with.
    pub fn reset(&self) -> io::Result<()> {
        self.file.set_len(SLOT as u64)?;
        self.file.write_all_at(&[b' '; SLOT], 0)?;
        self.file.sync_data()
    }
}

impl Drop for Slot<'_> {
    /// Blanks the record once the change is finished or undone. Not synced: a
    /// lost blank only makes the next start check an object that is fine.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let j = self.journal;
        let _ = j
            .file
            .write_all_at(&[b' '; SLOT], (self.index * SLOT) as u64);
        let mut busy = lock(&j.busy);
        *busy &= !(1 << self.index);
        j.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(op: &str, name: &str, uid: u32) -> Intent {
        Intent {
            op: op.into(),
            address: format!("mq:{name}"),
            uid,
        }
    }

    #[test]
    fn a_record_survives_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(Journal::pending(dir.path()), []);
        let i = intent("create", &"x".repeat(200), 1000);
        let slot = j.begin(&i).unwrap();
        assert_eq!(Journal::pending(dir.path()), [i]);
        drop(slot);
        assert_eq!(Journal::pending(dir.path()), []);
        drop(j);
        assert!(
            Journal::open(dir.path()).is_ok(),
            "reopens an existing journal"
        );
    }

    #[test]
    fn several_changes_take_several_slots_and_all_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let intents: Vec<Intent> = (0..10)
            .map(|n| intent("create", &n.to_string(), n))
            .collect();
        let mut slots: Vec<Slot<'_>> = intents.iter().map(|i| j.begin(i).unwrap()).collect();
        assert_eq!(
            slots.iter().map(|s| s.index).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(Journal::pending(dir.path()), intents);
        // Finishing one frees its slot, and the next change takes the lowest free one.
        drop(slots.remove(3));
        let mut expected = intents.clone();
        expected.remove(3);
        assert_eq!(Journal::pending(dir.path()), expected);
        let late = intent("delete", "late", 7);
        let slot = j.begin(&late).unwrap();
        assert_eq!(slot.index, 3);
        expected.insert(3, late);
        // What a crash leaves (the slots are never blanked) is what the next start reads.
        std::mem::forget(slot);
        slots.into_iter().for_each(std::mem::forget);
        assert_eq!(Journal::pending(dir.path()), expected);
        j.reset().unwrap();
        assert_eq!(Journal::pending(dir.path()), []);
        assert_eq!(
            std::fs::metadata(dir.path().join(INTENT_FILE))
                .unwrap()
                .len(),
            SLOT as u64
        );
    }

    #[test]
    fn a_one_slot_file_of_the_previous_format_is_slot_0() {
        let dir = tempfile::tempdir().unwrap();
        let old = intent("delete", "old", 1000);
        let mut record = serde_json::to_vec(&old).unwrap();
        record.resize(SLOT, b' ');
        std::fs::write(dir.path().join(INTENT_FILE), &record).unwrap();
        assert_eq!(Journal::pending(dir.path()), [old]);
        // Garbage (a torn write of a record never synced) is ignored, zeros are blank.
        let mut two = record.clone();
        two.extend_from_slice(b"{\"op\":\"cre");
        two.resize(3 * SLOT, 0);
        std::fs::write(dir.path().join(INTENT_FILE), &two).unwrap();
        assert_eq!(Journal::pending(dir.path()).len(), 1);
    }

    #[test]
    fn writers_at_once_each_get_a_slot_and_a_durable_record() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let n = 32;
        let barrier = std::sync::Barrier::new(n);
        let slots: Vec<Slot<'_>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (j, barrier) = (&j, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        j.begin(&intent("create", &i.to_string(), i as u32))
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut indexes: Vec<usize> = slots.iter().map(|s| s.index).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, (0..n).collect::<Vec<_>>(), "one slot each");
        let mut uids: Vec<u32> = Journal::pending(dir.path()).iter().map(|i| i.uid).collect();
        uids.sort_unstable();
        assert_eq!(uids, (0..n as u32).collect::<Vec<_>>());
        assert!(
            *lock(&j.synced) >= n as u64,
            "the last sync covered every record"
        );
        drop(slots);
        assert_eq!(Journal::pending(dir.path()), []);
    }

    #[test]
    fn a_writer_waits_for_a_free_slot_when_all_are_busy() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let i = intent("create", "q", 1);
        let mut slots: Vec<Slot<'_>> = (0..SLOTS).map(|_| j.begin(&i).unwrap()).collect();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| j.begin(&i).map(|slot| slot.index).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "all {SLOTS} slots are busy");
            drop(slots.remove(42));
            assert_eq!(waiter.join().unwrap(), 42);
        });
    }
}
