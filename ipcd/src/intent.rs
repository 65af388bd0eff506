//! The intent journal: one fixed-size record in `<state dir>/intent`, written
//! and synced *before* a create or delete touches the kernel, blanked after the
//! registry is saved. A crash between the two leaves the record behind, and the
//! next start finishes the job: a kernel object the record names that the
//! registry does not list is removed (if it is the daemon's), so kernel objects
//! and registry always agree.
//!
//! One record suffices: creates and deletes run one at a time under the
//! registry lock. The record holds the address and the caller's uid, never a
//! kernel name: that is recomputed from the daemon's namespace.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name of the journal inside the state directory.
pub const INTENT_FILE: &str = "intent";

/// Bytes of the record slot (an address is at most 5 + 1 + 200 bytes).
const SLOT: usize = 512;

/// What was about to happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// `create` or `delete`.
    pub op: String,
    /// `KIND:NAME`.
    pub address: String,
    /// The uid the kernel object may belong to besides the daemon: the object's
    /// owner (a FIFO a root daemon creates is chowned to its creator).
    pub uid: u32,
}

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    file: File,
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
        Ok(Journal { file })
    }

    /// The record left by a run that stopped between intent and completion.
    pub fn pending(dir: &Path) -> Option<Intent> {
        let text = std::fs::read_to_string(dir.join(INTENT_FILE)).ok()?;
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        match serde_json::from_str(text) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!("unreadable intent record ignored: {e}");
                None
            }
        }
    }

    /// Records `intent` durably; nothing may touch the kernel until this returns `Ok`.
    pub fn begin(&mut self, intent: &Intent) -> io::Result<()> {
        let mut slot = serde_json::to_vec(intent).map_err(io::Error::other)?;
        if slot.len() > SLOT {
            return Err(io::Error::other("intent record too long"));
        }
        slot.resize(SLOT, b' ');
        self.file.write_all_at(&slot, 0)?;
        self.file.sync_data()
    }

    /// Blanks the record once the registry is saved. Not synced: a lost blank
    /// only makes the next start check an object that is fine.
    pub fn clear(&mut self) {
        let _ = self.file.write_all_at(&[b' '; SLOT], 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(Journal::pending(dir.path()), None);
        let i = Intent {
            op: "create".into(),
            address: format!("mq:{}", "x".repeat(200)),
            uid: 1000,
        };
        j.begin(&i).unwrap();
        assert_eq!(Journal::pending(dir.path()), Some(i));
        j.clear();
        assert_eq!(Journal::pending(dir.path()), None);
        drop(j);
        assert!(
            Journal::open(dir.path()).is_ok(),
            "reopens an existing journal"
        );
    }
}
