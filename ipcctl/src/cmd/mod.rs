//! The commands, one module per kind (`mq`, `pipe`, `fifo`, with `stream` for
//! what pipes and FIFOs share) plus the kind-generic `admin`. This file is where
//! a command picks the module of its object's kind.

pub mod admin;
pub mod fifo;
pub mod mq;
pub mod pipe;
pub mod stream;

use std::time::Duration;

use ipc_client::protocol::Address;
use ipc_client::{Client, ErrorCode, Kind, KindDetails, KindParams, ObjectInfo};

use crate::cli::{Command, CreateArgs, RecvArgs, SendArgs};
use crate::errors::{Code, fail, usage};
use crate::output;

/// The kind named by `address`, checked as the daemon would check it.
pub fn kind_of(address: &str) -> anyhow::Result<Kind> {
    Address::parse(address)
        .map(|a| a.kind)
        .map_err(|e| ipc_client::Error::Server(e).into())
}

/// Every kind: what most commands take.
pub const ANY_KIND: &[Kind] = &[Kind::Mq, Kind::Pipe, Kind::Fifo];
/// The byte streams: what `exec` joins a command to.
pub const STREAMS: &[Kind] = &[Kind::Pipe, Kind::Fifo];

/// The kind of `address`, checked as the daemon would check it, and checked to
/// be one that `verb` takes: any other is the same `wrong-kind` error for
/// every verb.
pub fn check_kind(address: &str, verb: &str, takes: &[Kind]) -> anyhow::Result<Kind> {
    let kind = kind_of(address)?;
    if takes.contains(&kind) {
        return Ok(kind);
    }
    let takes: Vec<String> = takes.iter().map(|k| format!("{k}:")).collect();
    Err(fail(
        ErrorCode::WrongKind,
        format!(
            "{verb} takes {} only; {address} is {}",
            takes.join(" or "),
            described(kind)
        ),
    ))
}

/// A kind in words: `a message queue`, `a pipe`, `a FIFO`.
pub fn described(kind: Kind) -> &'static str {
    match kind {
        Kind::Mq => "a message queue",
        Kind::Pipe => "a pipe",
        Kind::Fifo => "a FIFO",
    }
}

/// The kind's own JSON fields of an object, added to `v`.
pub fn json_details(details: &KindDetails, v: &mut serde_json::Value) {
    match details {
        KindDetails::Mq(d) => mq::json_details(d, v),
        KindDetails::Pipe(d) => pipe::json_details(d, v),
        KindDetails::Fifo(d) => fifo::json_details(d, v),
    }
}

/// The kind's own `stat` rows of an object.
pub fn field_rows(o: &ObjectInfo) -> Vec<(&'static str, String)> {
    match &o.details {
        KindDetails::Mq(d) => mq::field_rows(o, d),
        KindDetails::Pipe(d) => pipe::field_rows(o, d),
        KindDetails::Fifo(d) => fifo::field_rows(o, d),
    }
}

/// The kind's `list` cells of an object: QUEUED, CAPACITY, ENDS.
pub fn table_cells(details: &KindDetails) -> [String; 3] {
    match details {
        KindDetails::Mq(d) => mq::table_cells(d),
        KindDetails::Pipe(d) => pipe::table_cells(d),
        KindDetails::Fifo(d) => fifo::table_cells(d),
    }
}

/// Flags that do not apply to the kind of object a command names (or to the
/// command): usage errors, found before connecting. Every flag either works
/// for every kind a command takes, or is refused here.
pub fn check_flags(command: &Command, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Create(args) => create_params(args).map(drop),
        Command::Send(args) => match kind_of(&args.address)? {
            Kind::Mq => Ok(()),
            kind @ (Kind::Pipe | Kind::Fifo) => stream::check_send_flags(args, kind),
        },
        Command::Recv(args) => match kind_of(&args.address)? {
            Kind::Mq => Ok(()),
            Kind::Pipe | Kind::Fifo => stream::check_recv_flags(args),
        },
        Command::Exec(_) if json => Err(usage(
            "--json does not apply to exec: the command's output is its own, and exec \
             exits with its status",
        )),
        _ => Ok(()),
    }
}

/// The kind's parameters from `create`'s flags; a flag for another kind is a
/// usage error.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    match kind_of(&args.address)? {
        Kind::Mq => mq::create_params(args),
        Kind::Pipe => pipe::create_params(args),
        Kind::Fifo => fifo::create_params(args),
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
    fn message(&mut self, len: usize) {
        self.messages = Some(self.messages.unwrap_or(0) + 1);
        self.bytes += len as u64;
    }
}

/// `ipcctl send`: prints nothing, or with `--json` what was sent.
pub fn send(client: &mut Client, args: &SendArgs, json: bool) -> anyhow::Result<()> {
    let sent = match kind_of(&args.address)? {
        Kind::Mq => mq::send(client, args)?,
        kind @ (Kind::Pipe | Kind::Fifo) => stream::send(client, args, kind)?,
    };
    output::print_json_only(json, || {
        output::sent_json(&args.address, sent.messages, sent.bytes)
    })
}

/// `ipcctl recv`.
pub fn recv(client: &mut Client, args: &RecvArgs, json: bool) -> anyhow::Result<()> {
    match kind_of(&args.address)? {
        Kind::Mq => mq::recv(client, args, json),
        kind @ (Kind::Pipe | Kind::Fifo) => stream::recv(client, args, json, kind),
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
        KindDetails::Mq(_) => false,
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
fn not_for(args: &CreateArgs, flag: &str, what: &str) -> anyhow::Error {
    let kind = kind_of(&args.address).map_or("?", described);
    usage(format!("{flag} is {what}; {} is {kind}", args.address))
}

/// Context for a `--lines` send that failed: which line, and what went before it.
fn stopped_at(sent: usize) -> String {
    format!(
        "stopped at line {} of standard input, after sending {sent} line{}",
        sent + 1,
        if sent == 1 { "" } else { "s" }
    )
}
