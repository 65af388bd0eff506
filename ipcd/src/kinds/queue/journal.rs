//! Placeholder on the `queue` branch: the journal helper's module replaces it.

use std::io;
use std::path::Path;

use protocol::Fsync;
use tokio::sync::oneshot;

/// A live message.
pub struct Record {
    /// Sequence number.
    pub seq: u64,
    /// Priority.
    pub priority: u32,
    /// Bytes.
    pub body: Vec<u8>,
}

/// What opening found.
pub struct Recovery {
    /// Live messages by seq.
    pub messages: Vec<Record>,
    /// Next seq.
    pub next_seq: u64,
    /// What was cut.
    pub cut: Option<String>,
}

/// Journal statistics.
pub struct JournalStats {
    /// File size.
    pub bytes: u64,
    /// Compactions.
    pub compactions: u64,
}

/// A journal.
#[derive(Debug)]
pub struct Journal;

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "durable queues are not built yet",
    )
}

impl Journal {
    /// Creates one.
    pub fn create(_path: &Path, _fsync: Fsync) -> io::Result<Journal> {
        Err(unsupported())
    }
    /// Opens one.
    pub fn open(_path: &Path, _fsync: Fsync) -> io::Result<(Journal, Recovery)> {
        Err(unsupported())
    }
    /// Appends puts.
    pub fn put(&self, _records: Vec<Record>) -> oneshot::Receiver<io::Result<()>> {
        oneshot::channel().1
    }
    /// Appends a removal.
    pub fn remove(&self, _seqs: Vec<u64>) {}
    /// Statistics.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            bytes: 0,
            compactions: 0,
        }
    }
    /// Deletes it.
    pub fn delete(self) -> io::Result<()> {
        Ok(())
    }
}
