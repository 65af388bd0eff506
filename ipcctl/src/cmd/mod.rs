//! The commands, one module per kind (`mq`, `pipe`, `fifo`, `shm`, `ring`, with
//! `stream` for what pipes and FIFOs share) plus the kind-generic `admin` and `objects`
//! (an object's output in any kind). This file is where a command picks the
//! module of its object's kind; what the kind modules share is in `common`, so
//! imports go one way: `mod.rs` → kind modules → `common` → `output`, `errors`.

pub mod admin;
pub mod barrier;
pub mod common;
pub mod event;
pub mod fifo;
pub mod lock;
pub mod mq;
pub mod objects;
pub mod pipe;
pub mod queue;
pub mod ring;
pub mod sem;
pub mod shm;
pub mod signal;
pub mod status;
pub mod stream;
pub mod sync;

use ipc_client::{Client, ErrorCode, Kind, KindParams};

use common::{described, kind_of};

use crate::cli::{AcquireArgs, Command, CreateArgs, RecvArgs, SendArgs, WaitArgs};
use crate::errors::{fail, usage};
use crate::output;

/// Every kind: what stat and delete take.
pub const ANY_KIND: &[Kind] = &[
    Kind::Mq,
    Kind::Pipe,
    Kind::Fifo,
    Kind::Shm,
    Kind::Ring,
    Kind::Sem,
    Kind::Lock,
    Kind::Event,
    Kind::Barrier,
    Kind::Signal,
    Kind::Queue,
];
/// The kinds ipcctl creates: all of them.
pub const CREATABLE: &[Kind] = ANY_KIND;
/// What carries messages or lines: what send and recv take.
pub const MESSAGING: &[Kind] = &[Kind::Mq, Kind::Pipe, Kind::Fifo, Kind::Ring, Kind::Queue];
/// What send takes: the messaging kinds, and signal channels (send raises one).
pub const SENDABLE: &[Kind] = &[
    Kind::Mq,
    Kind::Pipe,
    Kind::Fifo,
    Kind::Ring,
    Kind::Signal,
    Kind::Queue,
];
/// Work queues: what join takes.
pub const QUEUES: &[Kind] = &[Kind::Queue];
/// Signal channels: what watch, subscribe and unsubscribe take.
pub const CHANNELS: &[Kind] = &[Kind::Signal];
/// Shared-memory segments: what write, read and resize take.
pub const SEGMENTS: &[Kind] = &[Kind::Shm];
/// What is acquired and released: what acquire, release and with take.
pub const PERMITS: &[Kind] = &[Kind::Sem, Kind::Lock];
/// What is waited on: what wait takes.
pub const WAITABLE: &[Kind] = &[Kind::Event, Kind::Barrier];
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
    Err(wrong_kind(address, kind, verb, takes))
}

/// `verb` does not take `address`, of `kind`: `wrong-kind`, with the verb to
/// use instead where there is one.
fn wrong_kind(address: &str, kind: Kind, verb: &str, takes: &[Kind]) -> anyhow::Error {
    let takes: Vec<String> = takes.iter().map(|k| format!("{k}:")).collect();
    let instead = match (kind, verb) {
        (Kind::Shm, "send") => " (ipcctl write puts bytes into it)",
        (Kind::Shm, "recv") => " (ipcctl read prints its bytes)",
        (Kind::Ring, "write" | "read" | "resize") => " (ipcctl send and recv move its messages)",
        (Kind::Ring, "wait-for") => {
            " (its waits happen in shared memory, which ipcd does not watch: ipcctl recv \
             --timeout waits for a message and takes it)"
        }
        (Kind::Queue, "wait-for") => {
            " (ipcctl recv --timeout waits for a message and takes it; ipcctl join waits \
             until all are acknowledged)"
        }
        _ => "",
    };
    fail(
        ErrorCode::WrongKind,
        format!(
            "{verb} takes {} only; {address} is {}{instead}",
            takes.join(" or "),
            described(kind)
        ),
    )
}

/// Flags that do not apply to the kind of object a command names (or to the
/// command): usage errors, found before connecting. Every flag either works
/// for every kind a command takes, or is refused here.
pub fn check_flags(command: &Command, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Create(args) => create_params(args).map(drop),
        Command::Send(args) => match kind_of(&args.address)? {
            Kind::Mq => ring::refuse_spin(&args.address, args.spin_us)
                .and_then(|()| queue::no_send_count(args)),
            kind @ (Kind::Pipe | Kind::Fifo) => stream::check_send_flags(args, kind)
                .and_then(|()| ring::refuse_spin(&args.address, args.spin_us))
                .and_then(|()| queue::no_send_count(args)),
            Kind::Ring => ring::check_send_flags(args).and_then(|()| queue::no_send_count(args)),
            Kind::Signal => {
                signal::check_send_flags(args).and_then(|()| queue::no_send_count(args))
            }
            Kind::Queue => ring::refuse_spin(&args.address, args.spin_us),
            kind @ (Kind::Shm | Kind::Sem | Kind::Lock | Kind::Event | Kind::Barrier) => {
                Err(wrong_kind(&args.address, kind, "send", SENDABLE))
            }
        },
        Command::Recv(args) => match kind_of(&args.address)? {
            Kind::Mq => {
                ring::refuse_spin(&args.address, args.spin_us).and_then(|()| queue::no_ack(args))
            }
            Kind::Pipe | Kind::Fifo => stream::check_recv_flags(args)
                .and_then(|()| ring::refuse_spin(&args.address, args.spin_us))
                .and_then(|()| queue::no_ack(args)),
            Kind::Ring => queue::no_ack(args),
            Kind::Queue => ring::refuse_spin(&args.address, args.spin_us),
            kind @ (Kind::Shm
            | Kind::Sem
            | Kind::Lock
            | Kind::Event
            | Kind::Barrier
            | Kind::Signal) => Err(wrong_kind(&args.address, kind, "recv", MESSAGING)),
        },
        Command::Read(args) if json && args.hex => Err(usage(
            "--hex and --json do not go together: --json prints the bytes as \"data\" \
             (or \"data_base64\")",
        )),
        Command::Exec(_) if json => Err(usage(
            "--json does not apply to exec: the command's output is its own, and exec \
             exits with its status",
        )),
        Command::With(_) if json => Err(usage(
            "--json does not apply to with: the command's output is its own, and with \
             exits with its status",
        )),
        Command::Wait(args)
            if (args.nonblock || args.timeout.is_some_and(|t| t.is_zero()))
                && kind_of(&args.address)? == Kind::Barrier =>
        {
            Err(usage(format!(
                "a barrier party that does not wait leaves at once and breaks {} for the \
                 others: give --timeout a duration above 0 (or none)",
                args.address
            )))
        }
        _ => Ok(()),
    }
}

/// The kind's parameters from `create`'s flags; a flag for another kind is a
/// usage error.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    let kind = kind_of(&args.address)?;
    sync::no_sync_flags(args, Some(kind))?;
    if kind != Kind::Signal {
        signal::no_bind(args)?;
    }
    if kind != Kind::Queue {
        queue::no_queue_flags(args)?;
    }
    match kind {
        Kind::Mq => mq::create_params(args),
        Kind::Pipe => pipe::create_params(args),
        Kind::Fifo => fifo::create_params(args),
        Kind::Shm => shm::create_params(args),
        Kind::Ring => ring::create_params(args),
        kind @ (Kind::Sem | Kind::Lock | Kind::Event | Kind::Barrier) => {
            sync::create_params(args, kind)
        }
        Kind::Signal => signal::create_params(args),
        Kind::Queue => queue::create_params(args),
    }
}

/// `ipcctl send`: prints nothing, or with `--json` what was sent.
pub fn send(client: &mut Client, args: &SendArgs, json: bool) -> anyhow::Result<()> {
    let sent = match kind_of(&args.address)? {
        Kind::Mq => mq::send(client, args)?,
        kind @ (Kind::Pipe | Kind::Fifo) => stream::send(client, args, kind)?,
        Kind::Ring => ring::send(client, args)?,
        Kind::Signal => signal::send(client, args)?,
        Kind::Queue => queue::send(client, args)?,
        kind @ (Kind::Shm | Kind::Sem | Kind::Lock | Kind::Event | Kind::Barrier) => {
            return Err(wrong_kind(&args.address, kind, "send", SENDABLE));
        }
    };
    output::print_json_only(json, || {
        output::sent_json(&args.address, sent.messages, sent.bytes)
    })
}

/// `ipcctl recv` (a queue's takes the connection: closing it gives back
/// what was not acknowledged).
pub fn recv(mut client: Client, args: &RecvArgs, json: bool) -> anyhow::Result<()> {
    match kind_of(&args.address)? {
        Kind::Mq => mq::recv(&mut client, args, json),
        kind @ (Kind::Pipe | Kind::Fifo) => stream::recv(&mut client, args, json, kind),
        Kind::Ring => ring::recv(&mut client, args, json),
        Kind::Queue => queue::recv(client, args, json),
        kind
        @ (Kind::Shm | Kind::Sem | Kind::Lock | Kind::Event | Kind::Barrier | Kind::Signal) => {
            Err(wrong_kind(&args.address, kind, "recv", MESSAGING))
        }
    }
}

/// `ipcctl acquire`: a semaphore's permit or a lock, held until ipcctl exits.
pub fn acquire(client: &mut Client, args: &AcquireArgs, json: bool) -> anyhow::Result<()> {
    let address = &args.address;
    match check_kind(address, "acquire", PERMITS)? {
        Kind::Lock => lock::acquire(client, address, args.wait(), json),
        _ => sem::acquire(client, address, args.wait(), json),
    }
}

/// `ipcctl release`: posts a semaphore, releases a lock this connection holds.
pub fn release(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    match check_kind(address, "release", PERMITS)? {
        Kind::Lock => lock::release(client, address, json),
        _ => sem::release(client, address, json),
    }
}

/// `ipcctl wait`: an event to be set, or a barrier's parties.
pub fn wait(client: &mut Client, args: &WaitArgs, json: bool) -> anyhow::Result<()> {
    let address = &args.address;
    match check_kind(address, "wait", WAITABLE)? {
        Kind::Barrier => barrier::wait(client, address, args.timeout, json),
        _ => event::wait(client, address, args.wait(), json),
    }
}
