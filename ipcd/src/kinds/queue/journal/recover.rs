//! Reading a journal back after a restart: the scan of its records, and the
//! cut of a torn or corrupt tail into a side file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::format::{self, Decoded, Defect, FILE_HEADER, RECORD_HEADER};
use super::{Record, Span, sync_dir, with_suffix};

/// A live put found by the scan.
pub struct Found {
    /// The message.
    pub record: Record,
    /// Where its record lies in the file.
    pub span: Span,
}

/// What the scan of a journal found.
pub struct Scan {
    /// Puts not removed, by seq.
    pub live: BTreeMap<u64, Found>,
    /// The highest seq of any record (0: none).
    pub max_seq: u64,
    /// End of the last valid record.
    pub valid_end: u64,
    /// The file's size.
    pub size: u64,
    /// What ends the valid part before the end of the file, if anything.
    pub defect: Option<Defect>,
}

/// Reads the records of `file` (opened for reading, at any position) up to
/// the first invalid one. A header that is not ours is an error.
pub fn scan(mut file: &File) -> io::Result<Scan> {
    let size = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut header = Vec::with_capacity(FILE_HEADER);
    (&mut reader)
        .take(FILE_HEADER as u64)
        .read_to_end(&mut header)?;
    if let Some(why) = format::check_file_header(&header) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    let mut scan = Scan {
        live: BTreeMap::new(),
        max_seq: 0,
        valid_end: FILE_HEADER as u64,
        size,
        defect: None,
    };
    let mut data = Vec::new();
    while scan.valid_end < size {
        let left = size - scan.valid_end;
        match read_record(&mut reader, left, &mut data)? {
            Ok((len, decoded)) => {
                let span = Span {
                    offset: scan.valid_end,
                    len,
                };
                apply(&mut scan, decoded, span);
                scan.valid_end += u64::from(len);
            }
            Err(defect) => {
                scan.defect = Some(defect);
                break;
            }
        }
    }
    Ok(scan)
}

/// Reads the next record's type and payload into `data`; returns its total
/// length and its decoding, or what is wrong with it (an I/O error is the
/// outer error).
fn read_record<'a>(
    reader: &mut impl Read,
    left: u64,
    data: &'a mut Vec<u8>,
) -> io::Result<Result<(u32, Decoded<'a>), Defect>> {
    if left < RECORD_HEADER as u64 {
        return Ok(Err(Defect::Torn {
            needed: RECORD_HEADER as u64,
            left,
        }));
    }
    let mut header = [0u8; RECORD_HEADER];
    reader.read_exact(&mut header)?;
    let (len, crc) = format::parse_record_header(&header);
    if let Some(defect) = format::check_len(len) {
        return Ok(Err(defect));
    }
    let total = RECORD_HEADER as u64 + u64::from(len);
    if total > left {
        return Ok(Err(Defect::Torn {
            needed: total,
            left,
        }));
    }
    data.resize(len as usize, 0);
    reader.read_exact(data)?;
    Ok(format::decode(data, crc).map(|decoded| (total as u32, decoded)))
}

/// Applies one valid record to the scan.
fn apply(scan: &mut Scan, decoded: Decoded<'_>, span: Span) {
    match decoded {
        Decoded::Put {
            seq,
            priority,
            body,
        } => {
            scan.max_seq = scan.max_seq.max(seq);
            let record = Record {
                seq,
                priority,
                body: body.to_vec(),
            };
            scan.live.insert(seq, Found { record, span });
        }
        Decoded::Remove(payload) => {
            for seq in format::removed_seqs(payload) {
                scan.max_seq = scan.max_seq.max(seq);
                scan.live.remove(&seq);
            }
        }
    }
}

/// Moves the bytes of `file` from `scan.valid_end` to its end into a new side
/// file `<path>.cut-<unix-ms>`, truncates `file` there and makes both
/// durable; returns the report of what was cut.
pub fn cut(mut file: &File, path: &Path, scan: &Scan, defect: &Defect) -> io::Result<String> {
    let at = scan.valid_end;
    let bytes = scan.size - at;
    let (side_path, mut side) = create_side_file(path)?;
    file.seek(SeekFrom::Start(at))?;
    let copied = io::copy(&mut file.take(bytes), &mut side)?;
    if copied != bytes {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "copied {copied} of the {bytes} bytes to cut into {}",
                side_path.display()
            ),
        ));
    }
    side.sync_all()?;
    sync_dir(path)?;
    file.set_len(at)?;
    file.sync_all()?;
    Ok(format!(
        "journal {}: {defect} at offset {at}; cut {bytes} bytes ({at}..{}), saved in {}",
        path.display(),
        scan.size,
        side_path.display()
    ))
}

/// Creates `<path>.cut-<unix-ms>` (with `-N` appended if that exists).
fn create_side_file(path: &Path) -> io::Result<(PathBuf, File)> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut attempt = 0u32;
    loop {
        let suffix = match attempt {
            0 => format!(".cut-{ms}"),
            n => format!(".cut-{ms}-{n}"),
        };
        let side_path = with_suffix(path, &suffix);
        match OpenOptions::new()
            .mode(0o600)
            .write(true)
            .create_new(true)
            .open(&side_path)
        {
            Ok(f) => return Ok((side_path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("creating {}: {e}", side_path.display()),
                ));
            }
        }
    }
}
