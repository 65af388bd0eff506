//! The append-only journal of a durable queue: every put and every removal
//! is appended to one file, so that after ipcd is killed (`kill -9`) and
//! restarted each put that was answered and not yet removed is read back, in
//! seq order.
//!
//! # File format (all integers little-endian)
//!
//! ```text
//! offset  size  field
//! 0       8     magic  "IPCDQJNL"
//! 8       4     format version, u32 = 1
//! 12      ...   records, back to back, to the end of the file
//!
//! record:
//! +0      4     len: u32, bytes after the checksum (type + payload), 1 ..= 64 MiB + 13
//! +4      4     crc32 (IEEE, as zlib) of those `len` bytes
//! +8      1     type: 1 = put, 2 = remove
//! +9      len-1 payload
//!
//! put payload (len >= 13):    seq u64, priority u32, body (len - 13 bytes, at most 64 MiB)
//! remove payload (len = 1 + 8n, n >= 1):  n seqs, u64 each
//! ```
//!
//! # Durability
//!
//! One writer thread per journal (`ipcd-journal`) takes requests from a
//! channel and completes the callers' oneshot receivers itself. It drains
//! every request waiting, encodes them into one buffer and writes it with one
//! `write`; what it does then depends on [`Fsync`]: `Batch` issues one
//! `fdatasync` for the whole buffer before resolving every put in it (group
//! commit); `Always` writes and syncs each put call on its own; `Never`
//! resolves once `write` returned. Removals never wait: they ride along with
//! the next write, in order with the puts. A write or sync that fails is
//! answered to the puts it carried, and what it may have left in the file is
//! truncated away (so a put answered with an error never comes back, and no
//! later record follows a torn one); if even that fails, the journal refuses
//! every later put.
//!
//! # Recovery
//!
//! [`Journal::open`] reads the records from the start. The first record that
//! is torn, has an impossible length, a bad checksum or an unknown type ends
//! the valid part: the bytes from there on are copied into a side file
//! `<path>.cut-<unix-ms>`, the journal is truncated after the last good
//! record, and [`Recovery::cut`] says what happened. A file without our
//! header is an error, never truncated. Removals of unknown seqs are ignored.
//!
//! # Compaction
//!
//! The writer knows where each live put lies in the file. When the file is
//! larger than max(4 MiB, 2 × the header and the live records), it copies the
//! live records into `<path>.compact`, syncs it, renames it over the journal,
//! syncs the directory and appends to the new file. If the highest seq seen
//! is not live, a removal of it follows, so [`Recovery::next_seq`] never goes
//! back. A `<path>.compact` found at open is a compaction the crash
//! interrupted: the journal itself is still whole, so the copy is deleted.

mod format;
mod recover;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use protocol::Fsync;
use tokio::sync::oneshot;

pub use format::MAX_BODY;

/// A live message as the journal stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Assigned by the queue, strictly increasing across puts.
    pub seq: u64,
    /// The message's priority.
    pub priority: u32,
    /// The message.
    pub body: Vec<u8>,
}

/// What opening an existing journal found.
#[derive(Debug)]
pub struct Recovery {
    /// Every put not removed, by seq ascending.
    pub messages: Vec<Record>,
    /// 1 + the highest seq the file names (of removed messages too); 1 for
    /// a journal without records.
    pub next_seq: u64,
    /// `None`, or what was wrong at which offset, how many bytes were cut and
    /// where they were saved.
    pub cut: Option<String>,
}

/// A journal's state, for a queue's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// The file's size in bytes (as of the last batch written).
    pub bytes: u64,
    /// Live (put, not removed) records.
    pub live: u64,
    /// Bytes of the live records.
    pub live_bytes: u64,
    /// Compactions since the journal was opened or created.
    pub compactions: u64,
    /// The last write, sync or compaction error, if any.
    pub last_error: Option<String>,
}

/// Where a record lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    offset: u64,
    /// Its whole length, header included.
    len: u32,
}

/// Smallest file that is compacted.
const COMPACT_MIN_BYTES: u64 = 4 << 20;

/// The writer's tunable limits (tests make compaction happen sooner).
#[derive(Debug, Clone, Copy)]
struct Tuning {
    /// A file at most this large is not compacted.
    compact_min_bytes: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            compact_min_bytes: COMPACT_MIN_BYTES,
        }
    }
}

/// A request to the writer thread.
enum Request {
    /// Append puts, then answer.
    Put(Vec<Record>, oneshot::Sender<io::Result<()>>),
    /// Append a removal.
    Remove(Vec<u64>),
}

/// An open journal: a handle to its writer thread.
pub struct Journal {
    path: PathBuf,
    /// `None` once stopping (the writer ends when it is dropped).
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    stats: Arc<Mutex<JournalStats>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Creates a new, empty journal at `path` (an error if it exists),
    /// durable (file and directory synced) when this returns.
    pub fn create(path: &Path, fsync: Fsync) -> io::Result<Journal> {
        Self::create_tuned(path, fsync, Tuning::default())
    }

    fn create_tuned(path: &Path, fsync: Fsync, tuning: Tuning) -> io::Result<Journal> {
        let file = OpenOptions::new()
            .mode(0o600)
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|e| context(e, "creating journal", path))?;
        let header = format::file_header();
        (&file)
            .write_all(&header)
            .and_then(|()| file.sync_all())
            .and_then(|()| sync_dir(path))
            .map_err(|e| {
                let _ = fs::remove_file(path);
                context(e, "writing journal", path)
            })?;
        let start = writer::Start {
            path: path.to_owned(),
            file,
            fsync,
            tuning,
            live: BTreeMap::new(),
            max_seq: 0,
            file_len: header.len() as u64,
        };
        Self::start(start)
    }

    /// Opens an existing journal after a restart and recovers its live
    /// records; a torn or corrupt tail is cut (see the module documentation).
    pub fn open(path: &Path, fsync: Fsync) -> io::Result<(Journal, Recovery)> {
        Self::open_tuned(path, fsync, Tuning::default())
    }

    fn open_tuned(path: &Path, fsync: Fsync, tuning: Tuning) -> io::Result<(Journal, Recovery)> {
        let leftover = compact_path(path);
        match fs::remove_file(&leftover) {
            Ok(()) => tracing::info!(
                "removed {}, left by a compaction that did not finish",
                leftover.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(context(e, "removing", &leftover)),
        }
        let file = OpenOptions::new()
            .mode(0o600)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| context(e, "opening journal", path))?;
        let scan = recover::scan(&file).map_err(|e| context(e, "reading journal", path))?;
        let cut = match &scan.defect {
            Some(defect) => Some(
                recover::cut(&file, path, &scan, defect)
                    .map_err(|e| context(e, "cutting the damaged tail of", path))?,
            ),
            None => None,
        };
        if let Some(report) = &cut {
            tracing::warn!("{report}");
        }
        let mut live = BTreeMap::new();
        let mut messages = Vec::with_capacity(scan.live.len());
        for (seq, found) in scan.live {
            live.insert(seq, found.span);
            messages.push(found.record);
        }
        let recovery = Recovery {
            messages,
            next_seq: scan.max_seq.saturating_add(1),
            cut,
        };
        let start = writer::Start {
            path: path.to_owned(),
            file,
            fsync,
            tuning,
            live,
            max_seq: scan.max_seq,
            file_len: scan.valid_end,
        };
        Ok((Self::start(start)?, recovery))
    }

    fn start(start: writer::Start) -> io::Result<Journal> {
        let path = start.path.clone();
        let stats = Arc::new(Mutex::new(JournalStats::default()));
        let (requests, incoming) = mpsc::channel();
        let writer = writer::Writer::new(start, Arc::clone(&stats));
        let writer = std::thread::Builder::new()
            .name("ipcd-journal".into())
            .spawn(move || writer.run(incoming))
            .map_err(|e| context(e, "starting the writer thread of", &path))?;
        Ok(Journal {
            path,
            requests: Some(requests),
            writer: Some(writer),
            stats,
        })
    }

    /// Appends puts; the receiver resolves once they are as durable as the
    /// journal's [`Fsync`] policy says, or with the error that prevented it
    /// (then none of them is in the journal). A body longer than
    /// [`MAX_BODY`] fails the whole call.
    pub fn put(&self, records: Vec<Record>) -> oneshot::Receiver<io::Result<()>> {
        let (done, answer) = oneshot::channel();
        self.send(Request::Put(records, done));
        answer
    }

    /// Appends a removal (messages acknowledged or dead-lettered), in order
    /// with the puts; nothing waits for it to be synced.
    pub fn remove(&self, seqs: Vec<u64>) {
        if !seqs.is_empty() {
            self.send(Request::Remove(seqs));
        }
    }

    fn send(&self, request: Request) {
        let Some(requests) = &self.requests else {
            return;
        };
        if let Err(mpsc::SendError(Request::Put(_, done))) = requests.send(request) {
            // The writer is gone (it only ends when this handle drops it).
            let gone = io::Error::other(format!("journal {}: writer stopped", self.path.display()));
            let _ = done.send(Err(gone));
        }
    }

    /// The file's size, live records, compactions and last error, as of the
    /// last batch the writer finished.
    pub fn stats(&self) -> JournalStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the writer after it wrote everything pending, then deletes the
    /// file (the queue was deleted).
    pub fn delete(mut self) -> io::Result<()> {
        self.stop();
        fs::remove_file(&self.path)
            .and_then(|()| sync_dir(&self.path))
            .map_err(|e| context(e, "deleting journal", &self.path))
    }

    /// Lets the writer write and sync everything pending, and waits for it.
    fn stop(&mut self) {
        drop(self.requests.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("journal {}: writer thread panicked", self.path.display());
        }
    }
}

impl Drop for Journal {
    /// Stops the writer after it wrote and synced everything pending (ipcd is
    /// shutting down); blocks for that long; never deletes the file.
    fn drop(&mut self) {
        self.stop();
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Where a compaction writes the new journal.
fn compact_path(path: &Path) -> PathBuf {
    with_suffix(path, ".compact")
}

/// Syncs the directory holding `path`, so that a created, renamed or removed
/// name is durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// `e` with what was done to which file in front of its message.
fn context(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}
