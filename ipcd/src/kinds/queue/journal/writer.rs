//! The writer thread: batches requests into one write, syncs as the policy
//! says, answers the puts, tracks the live records and compacts the file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::mem;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};

use protocol::Fsync;
use tokio::sync::oneshot;

use super::format::{self, MAX_BODY};
use super::{JournalStats, Request, Span, Tuning, compact_path, sync_dir};

/// Most bytes encoded into one batch before it is written (the rest of the
/// waiting requests go into the next).
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Bytes a compaction collects before writing them to the new file.
const COMPACT_CHUNK: usize = 1 << 20;

/// What a writer starts from.
pub struct Start {
    /// The journal.
    pub path: PathBuf,
    /// The journal, opened for reading and appending.
    pub file: File,
    /// The flush policy.
    pub fsync: Fsync,
    /// Compaction limits.
    pub tuning: Tuning,
    /// Where each live put lies.
    pub live: BTreeMap<u64, Span>,
    /// The highest seq in the file (0: none).
    pub max_seq: u64,
    /// The file's valid length (appends go there).
    pub file_len: u64,
}

/// A change to the live set that the buffer makes once written.
enum Staged {
    Put(u64, Span),
    Remove(u64),
}

/// The writer thread's state.
pub struct Writer {
    path: PathBuf,
    file: File,
    fsync: Fsync,
    tuning: Tuning,
    live: BTreeMap<u64, Span>,
    /// Sum of the live spans' lengths.
    live_bytes: u64,
    max_seq: u64,
    file_len: u64,
    /// Records encoded, not written yet.
    buf: Vec<u8>,
    /// What `buf` changes in `live`, in order.
    staged: Vec<Staged>,
    /// Puts whose records are in `buf`.
    waiters: Vec<oneshot::Sender<io::Result<()>>>,
    /// Removals whose write failed, written again before anything else.
    retry_removes: Vec<u64>,
    /// Set when a failed write could not be undone: no more writes.
    broken: Option<String>,
    compactions: u64,
    /// No compaction before the file is this long (after one failed).
    compact_not_before: u64,
    last_error: Option<String>,
    stats: Arc<Mutex<JournalStats>>,
}

impl Writer {
    /// A writer continuing the journal `start` describes (its stats
    /// published already).
    pub fn new(start: Start, stats: Arc<Mutex<JournalStats>>) -> Writer {
        let live_bytes = start.live.values().map(|s| u64::from(s.len)).sum();
        let writer = Writer {
            path: start.path,
            file: start.file,
            fsync: start.fsync,
            tuning: start.tuning,
            live: start.live,
            live_bytes,
            max_seq: start.max_seq,
            file_len: start.file_len,
            buf: Vec::new(),
            staged: Vec::new(),
            waiters: Vec::new(),
            retry_removes: Vec::new(),
            broken: None,
            compactions: 0,
            compact_not_before: 0,
            last_error: None,
            stats,
        };
        writer.publish();
        writer
    }

    /// Serves requests until every sender is gone, then syncs the file.
    pub fn run(mut self, requests: mpsc::Receiver<Request>) {
        self.maybe_compact();
        while let Ok(first) = requests.recv() {
            self.take(first);
            while self.buf.len() < MAX_BATCH_BYTES {
                match requests.try_recv() {
                    Ok(request) => self.take(request),
                    Err(_) => break,
                }
            }
            self.commit();
            self.maybe_compact();
        }
        // Removals whose write failed last, if any, get one more try.
        if self.broken.is_none() {
            self.retry_failed_removes();
            self.commit();
        }
        if self.broken.is_none()
            && let Err(e) = self.file.sync_data()
        {
            self.note_error(format!(
                "journal {}: final sync failed: {e}",
                self.path.display()
            ));
        }
    }

    /// Encodes one request into the batch (`Always`: writes a put at once).
    fn take(&mut self, request: Request) {
        match request {
            Request::Put(records, done) => {
                if let Some(why) = &self.broken {
                    let _ = done.send(Err(io::Error::other(why.clone())));
                    return;
                }
                if let Some(r) = records.iter().find(|r| r.body.len() > MAX_BODY) {
                    let _ = done.send(Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "message of {} bytes is larger than a journal record may be ({MAX_BODY})",
                            r.body.len()
                        ),
                    )));
                    return;
                }
                self.retry_failed_removes();
                for r in &records {
                    let offset = self.file_len + self.buf.len() as u64;
                    let len = format::append_put(&mut self.buf, r.seq, r.priority, &r.body);
                    self.staged.push(Staged::Put(r.seq, Span { offset, len }));
                }
                self.waiters.push(done);
                if self.fsync == Fsync::Always {
                    self.commit();
                }
            }
            Request::Remove(seqs) => {
                if self.broken.is_some() {
                    return;
                }
                self.retry_failed_removes();
                format::append_remove(&mut self.buf, &seqs);
                self.staged.extend(seqs.into_iter().map(Staged::Remove));
            }
        }
    }

    /// Puts the removals of a failed write back at the head of the batch.
    fn retry_failed_removes(&mut self) {
        if self.buf.is_empty() && !self.retry_removes.is_empty() {
            let seqs = mem::take(&mut self.retry_removes);
            format::append_remove(&mut self.buf, &seqs);
            self.staged.extend(seqs.into_iter().map(Staged::Remove));
        }
    }

    /// Writes the batch (and syncs it if puts wait and the policy says so),
    /// then answers its puts.
    fn commit(&mut self) {
        if self.buf.is_empty() && self.waiters.is_empty() {
            return;
        }
        let sync = !self.waiters.is_empty() && self.fsync != Fsync::Never;
        let result = self.write_batch(sync);
        match &result {
            Ok(()) => self.apply_staged(),
            Err(_) => {
                for staged in self.staged.drain(..) {
                    if let Staged::Remove(seq) = staged {
                        self.retry_removes.push(seq);
                    }
                }
            }
        }
        self.buf.clear();
        // Before the answers, so a caller that got its answer sees its put counted.
        self.publish();
        for done in self.waiters.drain(..) {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err((kind, why)) => Err(io::Error::new(*kind, why.clone())),
            };
            let _ = done.send(answer);
        }
    }

    /// Appends `buf` to the file. On failure, truncates the file back to
    /// where the batch began (if even that fails, the journal is broken).
    fn write_batch(&mut self, sync: bool) -> Result<(), (io::ErrorKind, String)> {
        let written = (&self.file).write_all(&self.buf);
        let synced = match written {
            Ok(()) if sync => self.file.sync_data().map_err(|e| ("fdatasync", e)),
            Ok(()) => Ok(()),
            Err(e) => Err(("write", e)),
        };
        let Err((what, e)) = synced else {
            self.file_len += self.buf.len() as u64;
            return Ok(());
        };
        let why = format!("journal {}: {what} failed: {e}", self.path.display());
        if let Err(undo) = self
            .file
            .set_len(self.file_len)
            .and_then(|()| self.file.sync_data())
        {
            self.broken = Some(format!(
                "{why}; truncating it back to {} bytes failed too ({undo}): the journal takes no more writes",
                self.file_len
            ));
        }
        self.note_error(self.broken.clone().unwrap_or_else(|| why.clone()));
        Err((e.kind(), why))
    }

    /// Applies the written batch's changes to the live set.
    fn apply_staged(&mut self) {
        for staged in self.staged.drain(..) {
            let (seq, old) = match staged {
                Staged::Put(seq, span) => {
                    self.live_bytes += u64::from(span.len);
                    (seq, self.live.insert(seq, span))
                }
                Staged::Remove(seq) => (seq, self.live.remove(&seq)),
            };
            self.max_seq = self.max_seq.max(seq);
            if let Some(old) = old {
                self.live_bytes -= u64::from(old.len);
            }
        }
    }

    /// Compacts the file if it is large and mostly dead.
    fn maybe_compact(&mut self) {
        let live_file = format::FILE_HEADER as u64 + self.live_bytes;
        let threshold = self.tuning.compact_min_bytes.max(2 * live_file);
        if self.broken.is_some()
            || self.file_len <= threshold
            || self.file_len < self.compact_not_before
        {
            return;
        }
        let before = self.file_len;
        match self.compact() {
            Ok(()) => {
                self.compactions += 1;
                self.publish();
                tracing::debug!(
                    "journal {}: compacted {before} bytes to {}",
                    self.path.display(),
                    self.file_len
                );
            }
            Err(e) => {
                self.compact_not_before = self.file_len + self.tuning.compact_min_bytes;
                self.note_error(format!(
                    "journal {}: compaction failed: {e}",
                    self.path.display()
                ));
            }
        }
    }

    /// Writes the live records into `<path>.compact`, syncs it and renames
    /// it over the journal, which it then appends to.
    fn compact(&mut self) -> io::Result<()> {
        let temp = compact_path(&self.path);
        match fs::remove_file(&temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let out = OpenOptions::new()
            .mode(0o600)
            .read(true)
            .append(true)
            .create_new(true)
            .open(&temp)?;
        let copied = self
            .copy_live(&out)
            .and_then(|copied| out.sync_data().map(|()| copied))
            .and_then(|copied| fs::rename(&temp, &self.path).map(|()| copied));
        let (live, len) = match copied {
            Ok(copied) => copied,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        };
        self.file = out;
        self.live = live;
        self.file_len = len;
        sync_dir(&self.path)
    }

    /// Writes the header, the live records and the seq floor to `out`;
    /// returns where each live record now lies, and the file's length.
    fn copy_live(&mut self, mut out: &File) -> io::Result<(BTreeMap<u64, Span>, u64)> {
        let mut buf = mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&format::file_header());
        let mut flushed = 0u64;
        let mut moved = Vec::with_capacity(self.live.len());
        let result = (|| {
            for (&seq, span) in &self.live {
                let start = buf.len();
                buf.resize(start + span.len as usize, 0);
                self.file.read_exact_at(&mut buf[start..], span.offset)?;
                let offset = flushed + start as u64;
                moved.push((
                    seq,
                    Span {
                        offset,
                        len: span.len,
                    },
                ));
                if buf.len() >= COMPACT_CHUNK {
                    out.write_all(&buf)?;
                    flushed += buf.len() as u64;
                    buf.clear();
                }
            }
            // The highest seq survives even when its message was removed.
            let max_live = self.live.last_key_value().map_or(0, |(&seq, _)| seq);
            if self.max_seq > max_live {
                format::append_remove(&mut buf, &[self.max_seq]);
            }
            out.write_all(&buf)?;
            flushed += buf.len() as u64;
            Ok(())
        })();
        buf.clear();
        self.buf = buf;
        result.map(|()| (moved.into_iter().collect(), flushed))
    }

    fn note_error(&mut self, why: String) {
        tracing::warn!("{why}");
        self.last_error = Some(why);
        self.publish();
    }

    /// Copies the counters into the handle's stats.
    fn publish(&self) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.bytes = self.file_len;
        stats.live = self.live.len() as u64;
        stats.live_bytes = self.live_bytes;
        stats.compactions = self.compactions;
        stats.last_error.clone_from(&self.last_error);
    }
}
