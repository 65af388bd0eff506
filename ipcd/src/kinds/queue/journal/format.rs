//! The journal's bytes: the file header and the encoding and decoding of one
//! record (layout in the parent module's documentation).

use std::fmt;

/// The first 8 bytes of every journal file.
pub const MAGIC: [u8; 8] = *b"IPCDQJNL";

/// The format version written after the magic.
pub const VERSION: u32 = 1;

/// Bytes of the file header: magic, then version.
pub const FILE_HEADER: usize = MAGIC.len() + 4;

/// Bytes before a record's type: its `len` and its `crc32`.
pub const RECORD_HEADER: usize = 8;

/// Record type of a put.
pub const TYPE_PUT: u8 = 1;

/// Record type of a removal.
pub const TYPE_REMOVE: u8 = 2;

/// Bytes of a put's payload before its body: seq and priority.
const PUT_FIXED: usize = 8 + 4;

/// Largest message body the journal accepts.
pub const MAX_BODY: usize = 64 << 20;

/// Largest `len` of a valid record (a put of the largest body); a larger one
/// is corrupt, so a damaged length never makes recovery allocate more.
pub const MAX_RECORD_LEN: u32 = (1 + PUT_FIXED + MAX_BODY) as u32;

/// Most seqs in one removal record (its `len` stays within [`MAX_RECORD_LEN`]).
pub const MAX_REMOVE_SEQS: usize = MAX_BODY / 8;

/// The file header bytes.
pub fn file_header() -> [u8; FILE_HEADER] {
    let mut h = [0u8; FILE_HEADER];
    h[..8].copy_from_slice(&MAGIC);
    h[8..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Why a file header is not ours, or `None` when it is.
pub fn check_file_header(h: &[u8]) -> Option<String> {
    if h.len() < FILE_HEADER {
        return Some(format!(
            "not an ipcd queue journal: {} bytes, shorter than the {FILE_HEADER}-byte header",
            h.len()
        ));
    }
    if h[..8] != MAGIC {
        return Some(format!(
            "not an ipcd queue journal: header starts with {:02x?}",
            &h[..8]
        ));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    (version != VERSION).then(|| {
        format!("ipcd queue journal format version {version} is not supported (this ipcd reads {VERSION})")
    })
}

/// Appends one record of type `kind` whose payload `write_payload` appends;
/// returns the record's total length (header included).
fn append_record(buf: &mut Vec<u8>, kind: u8, write_payload: impl FnOnce(&mut Vec<u8>)) -> u32 {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; RECORD_HEADER]);
    buf.push(kind);
    write_payload(buf);
    let len = (buf.len() - start - RECORD_HEADER) as u32;
    let crc = crc32fast::hash(&buf[start + RECORD_HEADER..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    RECORD_HEADER as u32 + len
}

/// Appends a put record; returns its total length. The caller has checked
/// `body.len() <= MAX_BODY`.
pub fn append_put(buf: &mut Vec<u8>, seq: u64, priority: u32, body: &[u8]) -> u32 {
    append_record(buf, TYPE_PUT, |b| {
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&priority.to_le_bytes());
        b.extend_from_slice(body);
    })
}

/// Appends removal records for `seqs` (several if there are more than
/// [`MAX_REMOVE_SEQS`]).
pub fn append_remove(buf: &mut Vec<u8>, seqs: &[u64]) {
    for chunk in seqs.chunks(MAX_REMOVE_SEQS) {
        append_record(buf, TYPE_REMOVE, |b| {
            for seq in chunk {
                b.extend_from_slice(&seq.to_le_bytes());
            }
        });
    }
}

/// A record's `len` and `crc32`, read from its first [`RECORD_HEADER`] bytes.
pub fn parse_record_header(h: &[u8; RECORD_HEADER]) -> (u32, u32) {
    (
        u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
        u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
    )
}

/// Why a record `len` cannot be valid, or `None`.
pub fn check_len(len: u32) -> Option<Defect> {
    (len == 0 || len > MAX_RECORD_LEN).then_some(Defect::ImpossibleLength(len))
}

/// One decoded record, borrowing from the bytes after its header.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A put.
    Put {
        /// Its seq.
        seq: u64,
        /// Its priority.
        priority: u32,
        /// Its body.
        body: &'a [u8],
    },
    /// A removal of these seqs (8 bytes each, little-endian).
    Remove(&'a [u8]),
}

/// The seqs of a removal's payload.
pub fn removed_seqs(payload: &[u8]) -> impl Iterator<Item = u64> + '_ {
    payload.chunks_exact(8).map(|c| {
        let mut seq = [0u8; 8];
        seq.copy_from_slice(c);
        u64::from_le_bytes(seq)
    })
}

/// What makes a record invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defect {
    /// The file ends inside the record (a torn write).
    Torn {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes left in the file.
        left: u64,
    },
    /// `len` is 0 or larger than any valid record.
    ImpossibleLength(u32),
    /// The checksum does not match.
    Checksum {
        /// Stored in the record.
        stored: u32,
        /// Computed over its bytes.
        computed: u32,
    },
    /// An unknown record type.
    UnknownType(u8),
    /// A known type with a payload length it cannot have.
    BadPayload {
        /// The type.
        kind: u8,
        /// The `len`.
        len: u32,
    },
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defect::Torn { needed, left } => write!(
                f,
                "torn record (needs {needed} bytes, the file has {left} left)"
            ),
            Defect::ImpossibleLength(len) => write!(f, "impossible record length {len}"),
            Defect::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Defect::UnknownType(t) => write!(f, "unknown record type {t}"),
            Defect::BadPayload { kind, len } => {
                write!(f, "record of type {kind} with impossible length {len}")
            }
        }
    }
}

/// Checks and decodes a record's type and payload (`data`, `len` bytes)
/// against its stored checksum.
pub fn decode(data: &[u8], crc: u32) -> Result<Decoded<'_>, Defect> {
    let computed = crc32fast::hash(data);
    if computed != crc {
        return Err(Defect::Checksum {
            stored: crc,
            computed,
        });
    }
    let bad = || Defect::BadPayload {
        kind: data[0],
        len: data.len() as u32,
    };
    let payload = &data[1..];
    match data[0] {
        TYPE_PUT => {
            if payload.len() < PUT_FIXED {
                return Err(bad());
            }
            let (fixed, body) = payload.split_at(PUT_FIXED);
            let seq = u64::from_le_bytes(fixed[..8].try_into().map_err(|_| bad())?);
            let priority = u32::from_le_bytes(fixed[8..].try_into().map_err(|_| bad())?);
            Ok(Decoded::Put {
                seq,
                priority,
                body,
            })
        }
        TYPE_REMOVE => {
            if payload.is_empty() || !payload.len().is_multiple_of(8) {
                return Err(bad());
            }
            Ok(Decoded::Remove(payload))
        }
        other => Err(Defect::UnknownType(other)),
    }
}
