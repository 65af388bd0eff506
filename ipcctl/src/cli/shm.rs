//! The command line of `shm:` segments: `write`, `read` and `resize`, with
//! their help texts (kept here so `cli.rs` stays a readable size).

use std::ffi::OsString;

use clap::Args;

use crate::parse::parse_bytes;

/// `ipcctl write --help`, after the options.
pub const WRITE_HELP: &str = "\
DATA is written as it is, byte for byte (no newline is added); with - or no
DATA, all of standard input is written. ipcctl maps the segment and copies the
bytes into it: they never pass through ipcd, and every process that has the
segment mapped sees them at once. Nothing marks where they end: keep a length
or a flag in the segment if readers need one.

Everything must fit between --offset and the end of the segment: a write that
would run past the end is refused before anything is written (too-large),
never cut short; an --offset past the end is invalid-argument.

write prints what it wrote: \"wrote N bytes to shm:NAME at offset O\"; with
--json {\"written\":ADDRESS,\"offset\":O,\"bytes\":N}.

Examples:
  ipcctl write shm:buf 'hello'                      # at offset 0
  ipcctl write shm:buf --offset 4KiB - < frame.bin  # a file, 4096 bytes in
  printf '\\001' | ipcctl write shm:buf --offset 100

Exit status: 0 written, 2 error (does not fit: too-large; no write permission:
permission-denied; not a segment: wrong-kind), 64 usage error.";

/// `ipcctl read --help`, after the options.
pub const READ_HELP: &str = "\
Copies bytes out of the segment to standard output, exactly as they are: from
--offset (default 0) for --len bytes (default: to the end). --hex prints a
listing instead, 16 bytes a line with their offset and printable characters,
as hexdump -C does (a run of identical lines shows as one \"*\"). With --json:
{\"address\":ADDRESS,\"offset\":O,\"bytes\":N,\"data\":TEXT} when the bytes
are UTF-8, else \"data_base64\" (standard alphabet, padded) instead of \"data\".

A range past the end is an error naming offset, length and size
(invalid-argument). A read is a copy of what is there now: a process writing
at the same moment may be seen half done. ipcctl read ... | head stops quietly
once head has enough.

Examples:
  ipcctl read shm:buf --len 5
  ipcctl read shm:buf --offset 4KiB --len 64 --hex
  ipcctl read shm:buf > snapshot.bin               # the whole segment

Exit status: 0 success, 2 error (a range past the end: invalid-argument; no
read permission: permission-denied; not a segment: wrong-kind), 64 usage error.";

/// `ipcctl resize --help`, after the options.
pub const RESIZE_HELP: &str = "\
Grows the segment to --size bytes: the new bytes read as zero, the old ones
stay as they are. Segments only grow: a smaller size is refused
(invalid-argument), because a process that has the old end mapped would crash
touching it. Processes that mapped the segment before still see the old size
until they map it again (ipc-client: SharedMemory::refresh; every ipcctl read
and write maps it afresh). Needs the write permission. With --json:
{\"resized\":ADDRESS,\"size\":N}.

Examples:
  ipcctl resize shm:buf --size 2MiB
  ipcctl --json resize shm:buf --size 1GiB

Exit status: 0 success, 2 error (smaller than now: invalid-argument; past your
byte share: limit-exceeded; not a segment: wrong-kind), 64 usage error.";

/// `ipcctl write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Segment address, shm:NAME
    pub address: String,

    /// The bytes to write, as given; - or nothing: all of standard input
    #[arg(value_name = "DATA|-")]
    pub data: Option<OsString>,

    /// Where to start, in bytes from the start of the segment (e.g. 100,
    /// 4KiB) [default: 0]
    #[arg(long, short, value_name = "BYTES", value_parser = parse_bytes)]
    pub offset: Option<u64>,
}

/// `ipcctl read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Segment address, shm:NAME
    pub address: String,

    /// Where to start, in bytes from the start of the segment [default: 0]
    #[arg(long, short, value_name = "BYTES", value_parser = parse_bytes)]
    pub offset: Option<u64>,

    /// How many bytes to read [default: to the end of the segment]
    #[arg(long, short, value_name = "BYTES", value_parser = parse_bytes)]
    pub len: Option<u64>,

    /// Print a hexdump -C style listing instead of the raw bytes
    #[arg(long, short = 'x')]
    pub hex: bool,
}

/// `ipcctl resize`.
#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// Segment address, shm:NAME
    pub address: String,

    /// The new size in bytes, at least the current one (e.g. 2MiB)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub size: u64,
}
