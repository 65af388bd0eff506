//! What the kind modules share, below the dispatch in `cmd/mod.rs`: kinds in
//! words, a `send`'s tally, refusing a flag for another kind, and telling a
//! stream's end of file from ipcd stopping.

use std::io::{self, BufRead as _, Read as _};
use std::os::unix::ffi::OsStrExt as _;
use std::time::Duration;

use anyhow::Context as _;
use ipc_client::protocol::Address;
use ipc_client::{Client, ErrorCode, Kind, KindDetails, ObjectInfo};

use crate::cli::{CreateArgs, SendArgs};
use crate::errors::{Code, fail, usage};
use crate::watch::show;

/// The kind named by `address`, checked as the daemon would check it.
pub fn kind_of(address: &str) -> anyhow::Result<Kind> {
    Address::parse(address)
        .map(|a| a.kind)
        .map_err(|e| ipc_client::Error::Server(e).into())
}

/// A kind in words: `a message queue`, `a pipe`, `a FIFO`, …
pub fn described(kind: Kind) -> &'static str {
    match kind {
        Kind::Mq => "a message queue",
        Kind::Pipe => "a pipe",
        Kind::Fifo => "a FIFO",
        Kind::Shm => "a shared-memory segment",
        Kind::Ring => "a shared-memory ring",
        Kind::Sem => "a semaphore",
        Kind::Lock => "a lock",
        Kind::Event => "an event",
        Kind::Barrier => "a barrier",
        Kind::Signal => "a signal channel",
        Kind::Queue => "a work queue",
    }
}

/// What a `send` sent.
#[derive(Debug, Default)]
pub struct Sent {
    /// Messages (a pipe's or FIFO's: lines); `None` for a `--raw` byte stream.
    pub messages: Option<u64>,
    /// Bytes written (a line's newline included).
    pub bytes: u64,
}

impl Sent {
    /// Counts one message of `len` bytes.
    pub fn message(&mut self, len: usize) {
        self.messages = Some(self.messages.unwrap_or(0) + 1);
        self.bytes += len as u64;
    }
}

/// How long [`daemon_alive`] waits for ipcd's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether ipcd still answers on `client`'s connection: asked when a pipe or
/// FIFO reaches end of file, which is also what a reader sees when ipcd (which
/// holds ends of them) stops. A daemon that announced its shutdown is gone.
pub fn daemon_alive(client: &mut Client) -> bool {
    // Its end of the connection closed: gone. Still open may only mean that a
    // dying ipcd has not closed that descriptor yet, so then it is asked.
    if client.daemon_gone() || client.shutting_down() {
        return false;
    }
    client.set_timeout(Some(PROBE_TIMEOUT));
    let alive = match client.ping() {
        Ok(()) | Err(ipc_client::Error::Server(_)) => !client.shutting_down(),
        Err(_) => false,
    };
    client.set_timeout(None);
    alive
}

/// Whether a reader's end of file may mean that ipcd stopped: ipcd holds a
/// write end of a pipe (until it is closed) and of a buffered FIFO; a plain
/// FIFO's end of file is its writers leaving.
pub fn ends_with_daemon(info: &ObjectInfo) -> bool {
    match &info.details {
        KindDetails::Pipe(_) => true,
        KindDetails::Fifo(d) => d.buffered,
        KindDetails::Mq(_)
        | KindDetails::Shm(_)
        | KindDetails::Ring(_)
        | KindDetails::Sem(_)
        | KindDetails::Lock(_)
        | KindDetails::Event(_)
        | KindDetails::Barrier(_)
        | KindDetails::Signal(_)
        | KindDetails::Queue(_) => false,
    }
}

/// ipcd stopped while the command was `doing` something (e.g. `reading pipe:k`).
pub fn daemon_gone(doing: &str) -> anyhow::Error {
    fail(
        Code::DaemonGone,
        format!("ipcd stopped while {doing}; data buffered in the daemon is lost"),
    )
}

/// A `create` flag that `args.address`'s kind does not take: a usage error.
pub fn not_for(args: &CreateArgs, flag: &str, what: &str) -> anyhow::Error {
    let kind = kind_of(&args.address).map_or("?", described);
    usage(format!("{flag} is {what}; {} is {kind}", args.address))
}

/// `--slots` and `--slot-size` given to create an object that is no ring: a
/// Refuses the flags of the message and stream kinds (ring's, --size,
/// --capacity, --msg-size, --buffered) for a kind that takes none; `what`
/// says why, e.g. "not for signal channels".
pub fn no_message_flags(args: &CreateArgs, what: &str) -> anyhow::Result<()> {
    no_ring_flags(args)?;
    if args.size.is_some() {
        return Err(not_for(args, "--size", what));
    }
    if args.capacity.is_some() {
        return Err(not_for(args, "--capacity", what));
    }
    if args.msg_size.is_some() {
        return Err(not_for(args, "--msg-size", what));
    }
    if args.buffered {
        return Err(not_for(args, "--buffered", what));
    }
    Ok(())
}

/// usage error.
pub fn no_ring_flags(args: &CreateArgs) -> anyhow::Result<()> {
    if args.slots.is_some() {
        return Err(not_for(args, "--slots", "for ring: only"));
    }
    if args.slot_size.is_some() {
        return Err(not_for(args, "--slot-size", "for ring: only"));
    }
    Ok(())
}

/// Context for a `--lines` send that failed: which line, and what went before it.
pub fn stopped_at(sent: usize) -> String {
    format!(
        "stopped at line {} of standard input, after sending {sent} line{}",
        sent + 1,
        if sent == 1 { "" } else { "s" }
    )
}

/// Hands `send`'s messages to `send_one`: the MESSAGE argument, each line of
/// standard input (`--lines`), or all of standard input as one message
/// (`whole_stdin`), for the message kinds (mq, ring).
pub fn send_each(
    args: &SendArgs,
    whole_stdin: impl FnOnce() -> anyhow::Result<Vec<u8>>,
    mut send_one: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if let Some(message) = &args.message {
        send_one(message.as_bytes())
    } else if args.lines {
        for (n, line) in io::stdin().lock().split(b'\n').enumerate() {
            send_one(&line.context("cannot read standard input")?)
                .with_context(|| stopped_at(n))?;
        }
        Ok(())
    } else {
        send_one(&whole_stdin()?)
    }
}

/// A send to `address` that did not go through: full now (`--nonblock`),
/// full for the whole `timeout`, or another failure.
pub fn send_failed(
    address: &str,
    e: ipc_client::Error,
    timeout: Option<Duration>,
) -> anyhow::Error {
    match e {
        ipc_client::Error::WouldBlock => fail(ErrorCode::WouldBlock, format!("{address} is full")),
        ipc_client::Error::TimedOut => fail(
            ErrorCode::TimedOut,
            format!(
                "{address} stayed full for {}",
                show(timeout.unwrap_or_default())
            ),
        ),
        e => anyhow::Error::new(e).context(format!("cannot send to {address}")),
    }
}

/// All of standard input as one message of at most `max` bytes, less one
/// trailing newline unless `raw` (`echo text | ipcctl send` means "text", as
/// `$(echo text)` would); `None` if it holds more.
pub fn read_stdin_message(max: usize, raw: bool) -> anyhow::Result<Option<Vec<u8>>> {
    // One byte more than fits, and one for a trailing newline to drop.
    let mut message = Vec::new();
    io::stdin()
        .lock()
        .take(max as u64 + 2)
        .read_to_end(&mut message)
        .context("cannot read standard input")?;
    if !raw && message.ends_with(b"\n") {
        message.pop();
    }
    Ok((message.len() <= max).then_some(message))
}
