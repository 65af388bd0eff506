//! `shm:` — shared-memory segments: create flags, `write`, `read`, `resize`,
//! and their output rows. ipcctl maps the segment and copies bytes in and out
//! of it; the daemon only hands out the descriptor.

use std::io::{self, Read as _};
use std::os::unix::ffi::OsStrExt as _;

use anyhow::Context as _;
use ipc_client::{Access, Client, ErrorCode, KindParams, ObjectInfo, SharedMemory, ShmDetails};
use ipc_client::{ShmParams, shm_address};
use serde_json::{Value, json};

use super::common::{no_ring_flags, not_for};
use crate::cli::{CreateArgs, ReadArgs, ResizeArgs, WriteArgs};
use crate::errors::{fail, usage};
use crate::output::{self, Out, base64};

/// Bytes copied out of the segment per write to standard output (a multiple of 16).
const CHUNK: usize = 64 * 1024;

/// The segment's parameters from `create`'s flags.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    no_ring_flags(args)?;
    if args.capacity.is_some() {
        return Err(not_for(
            args,
            "--capacity",
            "for mq: and pipe: only (a segment has a --size)",
        ));
    }
    if args.msg_size.is_some() {
        return Err(not_for(args, "--msg-size", "for mq: only"));
    }
    if args.buffered {
        return Err(not_for(args, "--buffered", "for fifo: only"));
    }
    match (args.adopt, args.size) {
        (true, Some(_)) => Err(usage(
            "--size sets up a new segment; an adopted segment keeps its own size \
             (ipcctl resize grows it afterwards)",
        )),
        (false, None) => Err(usage(format!(
            "creating {} needs --size, the segment's size in bytes (e.g. --size 1MiB)",
            args.address
        ))),
        (_, size) => Ok(KindParams::Shm(ShmParams { size })),
    }
}

/// Opens and maps the segment for `access`; `doing` says what for.
fn open(
    client: &mut Client,
    address: &str,
    access: Access,
    doing: &str,
) -> anyhow::Result<SharedMemory> {
    client
        .open_shm(address, access)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot open {address} for {doing}")))
}

/// The range from `offset` for `len` bytes (`None`: to the end) of a mapping
/// of `size` bytes, as `usize`s; an offset past the end or a range running
/// past it is `invalid-argument`.
fn range(
    address: &str,
    size: usize,
    offset: u64,
    len: Option<u64>,
) -> anyhow::Result<(usize, usize)> {
    let size64 = size as u64;
    if offset > size64 {
        return Err(fail(
            ErrorCode::InvalidArgument,
            format!("offset {offset} is past the end of {address} ({size} bytes)"),
        ));
    }
    let len = len.unwrap_or(size64 - offset);
    if len > size64 - offset {
        return Err(fail(
            ErrorCode::InvalidArgument,
            format!(
                "{len} bytes at offset {offset} run past the end of {address} ({size} bytes; \
                 {} from offset {offset})",
                size64 - offset
            ),
        ));
    }
    // Both fit in `size`, a usize.
    Ok((offset as usize, len as usize))
}

/// `ipcctl write shm:… [--offset N] [DATA|-]`: all of it or nothing.
pub fn write(client: &mut Client, args: &WriteArgs, json: bool) -> anyhow::Result<()> {
    let address = shm_address(&args.address);
    let shm = open(client, &address, Access::Write, "writing")?;
    let offset = args.offset.unwrap_or(0);
    let (at, room) = range(&address, shm.len(), offset, None)?;
    let data = match &args.data {
        Some(d) if d != "-" => d.as_bytes().to_vec(),
        _ => {
            // One byte more than fits tells "too much" from "exactly enough".
            let mut buf = Vec::new();
            io::stdin()
                .lock()
                .take(room as u64 + 1)
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
            if buf.len() > room {
                return Err(too_large(
                    &address,
                    "standard input holds more than",
                    room,
                    offset,
                    shm.len(),
                ));
            }
            buf
        }
    };
    if data.len() > room {
        let s = if data.len() == 1 { " is" } else { "s are" };
        let what = format!("{} byte{s} more than", data.len());
        return Err(too_large(&address, &what, room, offset, shm.len()));
    }
    shm.write_at(at, &data)
        .with_context(|| format!("cannot write to {address}"))?;
    output::print(
        json,
        || json!({ "written": address, "offset": offset, "bytes": data.len() }),
        || {
            let s = if data.len() == 1 { "" } else { "s" };
            format!(
                "wrote {} byte{s} to {address} at offset {offset}",
                data.len()
            )
        },
    )
}

/// Data that does not fit between the offset and the end: `too-large`.
fn too_large(address: &str, what: &str, room: usize, offset: u64, size: usize) -> anyhow::Error {
    fail(
        ErrorCode::TooLarge,
        format!(
            "cannot write to {address}: {what} the {room} byte{} from offset {offset} to its \
             end ({size} bytes); nothing was written",
            if room == 1 { "" } else { "s" }
        ),
    )
}

/// `ipcctl read shm:… [--offset N] [--len N] [--hex]`.
pub fn read(client: &mut Client, args: &ReadArgs, json: bool) -> anyhow::Result<()> {
    let address = shm_address(&args.address);
    let shm = open(client, &address, Access::Read, "reading")?;
    let offset = args.offset.unwrap_or(0);
    let (at, len) = range(&address, shm.len(), offset, args.len)?;
    let copy = |from: usize, buf: &mut [u8]| {
        shm.read_at(from, buf)
            .with_context(|| format!("cannot read {address}"))
    };
    if json {
        let mut data = vec![0; len];
        copy(at, &mut data)?;
        let mut v = json!({ "address": address, "offset": offset, "bytes": len });
        match std::str::from_utf8(&data) {
            Ok(text) => v["data"] = text.into(),
            Err(_) => v["data_base64"] = base64(&data).into(),
        }
        return output::print(true, || v, String::new);
    }
    let mut out = Out::new();
    let mut hex = args.hex.then(|| Hexdump::new(offset));
    let mut buf = vec![0; CHUNK.min(len)];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        copy(at + done, &mut buf[..n])?;
        match &mut hex {
            Some(h) => h.lines(&buf[..n], &mut out)?,
            None => out.bytes(&buf[..n])?,
        }
        done += n;
    }
    if let Some(h) = hex {
        h.finish(&mut out)?;
    }
    out.flush()
}

/// A `hexdump -C` listing, fed in chunks: 16 bytes a line with the offset
/// and the printable characters; a run of lines equal to the one before shows
/// as one `*`; the end offset last.
struct Hexdump {
    offset: u64,
    previous: Option<Vec<u8>>,
    starred: bool,
    partial: Vec<u8>,
}

impl Hexdump {
    fn new(offset: u64) -> Self {
        Hexdump {
            offset,
            previous: None,
            starred: false,
            partial: Vec::new(),
        }
    }

    /// Lists `bytes` (whole lines; a short tail waits for more or [`finish`](Self::finish)).
    fn lines(&mut self, bytes: &[u8], out: &mut Out) -> anyhow::Result<()> {
        let mut bytes = bytes;
        if !self.partial.is_empty() {
            let take = (16 - self.partial.len()).min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < 16 {
                return Ok(());
            }
            let line = std::mem::take(&mut self.partial);
            self.line(&line, out)?;
        }
        let mut lines = bytes.chunks_exact(16);
        for line in &mut lines {
            self.line(line, out)?;
        }
        self.partial.extend_from_slice(lines.remainder());
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Out) -> anyhow::Result<()> {
        if line.len() == 16 && self.previous.as_deref() == Some(line) {
            if !self.starred {
                out.line("*")?;
                self.starred = true;
            }
        } else {
            out.line(hex_line(self.offset, line))?;
            self.starred = false;
            self.previous = Some(line.to_vec());
        }
        self.offset += line.len() as u64;
        Ok(())
    }

    /// The last short line, then the end offset.
    fn finish(mut self, out: &mut Out) -> anyhow::Result<()> {
        let tail = std::mem::take(&mut self.partial);
        if !tail.is_empty() {
            self.line(&tail, out)?;
        }
        out.line(format!("{:08x}", self.offset))
    }
}

/// One `hexdump -C` line of up to 16 bytes starting at `offset`.
fn hex_line(offset: u64, bytes: &[u8]) -> String {
    let mut s = format!("{offset:08x} ");
    for i in 0..16 {
        if i == 8 {
            s.push(' ');
        }
        match bytes.get(i) {
            Some(b) => s.push_str(&format!(" {b:02x}")),
            None => s.push_str("   "),
        }
    }
    let text: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    s.push_str(&format!("  |{text}|"));
    s
}

/// `ipcctl resize shm:… --size N`.
pub fn resize(client: &mut Client, args: &ResizeArgs, json: bool) -> anyhow::Result<()> {
    let address = shm_address(&args.address);
    let size = client
        .resize_shm(&address, args.size)
        .with_context(|| format!("cannot resize {address} to {} bytes", args.size))?;
    output::print(
        json,
        || json!({ "resized": address, "size": size }),
        || format!("resized {address} to {size} bytes ({})", human(size)),
    )
}

/// A size in bytes for people: `1 MiB`, `1.5 KiB`, `100 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut value = bytes as f64;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// How many processes have it mapped, in words.
fn mapped(d: &ShmDetails) -> String {
    d.mapped_by
        .map_or_else(|| "?".to_owned(), |n| n.to_string())
}

/// A segment's own JSON fields (`opens` is every object's).
pub fn json_details(d: &ShmDetails, v: &mut Value) {
    v["size"] = d.size.into();
    v["mapped_by"] = d.mapped_by.into();
}

/// A segment's own `stat` rows.
pub fn field_rows(o: &ObjectInfo, d: &ShmDetails) -> Vec<(&'static str, String)> {
    let mapped_by = match d.mapped_by {
        Some(1) => "1 process now".to_owned(),
        Some(n) => format!("{n} processes now"),
        None => "unknown (ipcd could not look)".to_owned(),
    };
    vec![
        ("kernel name", o.kernel_name.clone()),
        ("size", format!("{} bytes ({})", d.size, human(d.size))),
        ("mapped by", mapped_by),
    ]
}

/// A segment's `list` cells: QUEUED, CAPACITY, ENDS.
pub fn table_cells(o: &ObjectInfo, d: &ShmDetails) -> [String; 3] {
    [
        "-".to_owned(),
        format!("{} B", d.size),
        format!("{} opens, {} mapped", o.opens, mapped(d)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_lines_look_like_hexdump_c() {
        assert_eq!(
            hex_line(0, b"hello, world\n\x00\x01\xff"),
            "00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a 00 01 ff  |hello, world....|"
        );
        assert_eq!(
            hex_line(0x1000, b"ab"),
            "00001000  61 62                                             |ab|"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(100), "100 B");
        assert_eq!(human(1 << 20), "1 MiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(1 << 40), "1 TiB");
    }

    #[test]
    fn ranges_stay_inside_the_segment() {
        assert_eq!(range("shm:b", 4096, 0, None).unwrap(), (0, 4096));
        assert_eq!(range("shm:b", 4096, 4096, None).unwrap(), (4096, 0));
        assert_eq!(range("shm:b", 4096, 96, Some(4000)).unwrap(), (96, 4000));
        let e = range("shm:b", 4096, 4097, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "offset 4097 is past the end of shm:b (4096 bytes)"
        );
        let e = range("shm:b", 4096, 4000, Some(100)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "100 bytes at offset 4000 run past the end of shm:b (4096 bytes; 96 from offset 4000)"
        );
        assert!(range("shm:b", 4096, 1, Some(u64::MAX)).is_err());
    }
}
