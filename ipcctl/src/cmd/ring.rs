//! `ring:` — shared-memory rings: create flags, `send`, `recv`, and their
//! output rows. ipcctl attaches to the ring and copies each message into or
//! out of a slot itself; the daemon only makes the segment and hands out its
//! descriptor.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipc_client::protocol::{RingDetails, RingParams};
use ipc_client::{Client, ErrorCode, KindParams, ObjectInfo, Ring};
use serde_json::Value;

use super::common::{
    Sent, described, kind_of, not_for, read_stdin_message, send_each, send_failed,
};
use crate::cli::{CreateArgs, RecvArgs, SendArgs};
use crate::errors::{fail, usage};
use crate::output::{Out, message_json};
use crate::watch::{Wait, Watch, show};

/// The longest a receive waits in one go before ipcctl looks at its standard
/// output again (a reader that left ends `recv`).
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// The ring's parameters from `create`'s flags.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    let other = [
        (
            args.capacity.is_some(),
            "--capacity",
            "for mq: and pipe: only",
        ),
        (args.msg_size.is_some(), "--msg-size", "for mq: only"),
        (args.size.is_some(), "--size", "for shm: only"),
        (args.buffered, "--buffered", "for fifo: only"),
    ];
    if let Some((_, flag, what)) = other.into_iter().find(|(given, ..)| *given) {
        return Err(not_for(
            args,
            flag,
            &format!("{what} (a ring has --slots and --slot-size)"),
        ));
    }
    if args.adopt && (args.slots.is_some() || args.slot_size.is_some()) {
        return Err(usage(
            "--slots and --slot-size set up a new ring; an adopted ring keeps its own \
             (ipcctl stat shows them)",
        ));
    }
    Ok(KindParams::Ring(RingParams {
        slots: args.slots,
        slot_size: args.slot_size,
    }))
}

/// `--priority` for a ring, or `--spin-us` for anything else: usage errors.
pub fn check_send_flags(args: &SendArgs) -> anyhow::Result<()> {
    if args.priority.is_some() {
        return Err(usage(format!(
            "--priority applies to mq: only; {} is {} (its messages come out in the \
             order they went in)",
            args.address,
            described(kind_of(&args.address)?)
        )));
    }
    Ok(())
}

/// `--spin-us` given for an object that is no ring: a usage error.
pub fn refuse_spin(address: &str, spin_us: Option<u64>) -> anyhow::Result<()> {
    if spin_us.is_none() {
        return Ok(());
    }
    Err(usage(format!(
        "--spin-us applies to ring: only; {address} is {} (its waits are the kernel's)",
        described(kind_of(address)?)
    )))
}

/// Opens and attaches to the ring, spinning `spin_us` before each sleep.
fn open(client: &mut Client, address: &str, spin_us: Option<u64>) -> anyhow::Result<Ring> {
    let ring = client
        .open_ring(address)
        .with_context(|| format!("cannot open {address}"))?;
    ring.set_spin(Duration::from_micros(spin_us.unwrap_or(0)));
    Ok(ring)
}

/// `ipcctl send ring:…`: MESSAGE, standard input as one message, or `--lines`.
pub fn send(client: &mut Client, args: &SendArgs) -> anyhow::Result<Sent> {
    let ring = open(client, &args.address, args.spin_us)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let mut sent = Sent::default();
    let send_one = |msg: &[u8]| -> anyhow::Result<()> {
        if msg.len() > ring.slot_size() {
            return Err(too_large(
                &ring,
                &format!("the message is {} bytes", msg.len()),
            ));
        }
        let result = match wait {
            Wait::Forever => ring.send(msg),
            Wait::Timeout(t) => ring.send_timeout(msg, t),
            Wait::Never => ring.try_send(msg),
        };
        result.map_err(|e| send_failed(ring.address(), e, args.timeout))?;
        sent.message(msg.len());
        Ok(())
    };
    send_each(args, || read_whole_stdin(&ring, args.raw), send_one)?;
    Ok(sent)
}

/// A message longer than the ring's slots: `too-large`, naming the slot size.
fn too_large(ring: &Ring, what: &str) -> anyhow::Error {
    fail(
        ErrorCode::TooLarge,
        format!(
            "cannot send to {}: {what}, more than its slot size of {} bytes (a ring's \
             messages are at most one slot; create it with a larger --slot-size)",
            ring.address(),
            ring.slot_size()
        ),
    )
}

/// All of standard input as one message (see [`read_stdin_message`]), at
/// most the ring's slot size.
fn read_whole_stdin(ring: &Ring, raw: bool) -> anyhow::Result<Vec<u8>> {
    read_stdin_message(ring.slot_size(), raw)?
        .ok_or_else(|| too_large(ring, "standard input holds a longer message"))
}

/// What one wait for a message ended with.
enum Received {
    /// A message of this length is in the buffer.
    Message(usize),
    /// The time ran out, or the ring was empty and waiting was not wanted.
    Nothing,
    /// Whoever reads our output has gone away.
    ReaderGone,
}

/// `ipcctl recv ring:…`: one message, `--count N` or `--follow`.
pub fn recv(client: &mut Client, args: &RecvArgs, json: bool) -> anyhow::Result<()> {
    let ring = open(client, &args.address, args.spin_us)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let limit = if args.follow {
        u64::MAX
    } else {
        args.count.unwrap_or(1)
    };
    let mut buf = vec![0; ring.slot_size()];
    let mut out = Out::new();
    let mut watch = Watch::new();
    let mut received = 0;
    while received < limit {
        let len = match receive(&ring, &mut buf, wait, &mut watch)? {
            Received::Message(len) => len,
            Received::Nothing => break,
            Received::ReaderGone => return Ok(()),
        };
        let msg = &buf[..len];
        if json {
            out.json(&message_json(msg, None))?;
        } else {
            out.bytes(msg)?;
            if !args.raw {
                out.bytes(b"\n")?;
            }
        }
        out.flush()?;
        received += 1;
    }
    if received == 0 {
        return Err(match wait {
            Wait::Timeout(t) => fail(
                ErrorCode::TimedOut,
                format!(
                    "no message arrived on {} within {}",
                    ring.address(),
                    show(t)
                ),
            ),
            _ => fail(
                ErrorCode::WouldBlock,
                format!("{} is empty", ring.address()),
            ),
        });
    }
    Ok(())
}

/// Receives a message into `buf`, waiting for one as `wait` says. A message
/// already there is taken even when there is no time to wait (`--timeout 0s`).
///
/// A ring has no descriptor to poll, so a long wait is cut into waits of at
/// most [`WATCH_EVERY`], and standard output is checked before each: `ipcctl
/// recv --follow | head -1` ends soon after `head` does, without taking a
/// message it could not print.
fn receive(ring: &Ring, buf: &mut [u8], wait: Wait, watch: &mut Watch) -> anyhow::Result<Received> {
    let deadline = wait.deadline_from_now();
    loop {
        if watch.output_gone()? {
            return Ok(Received::ReaderGone);
        }
        let slice = match (wait, deadline) {
            (Wait::Never, _) => Duration::ZERO,
            (_, Some(d)) => d.saturating_duration_since(Instant::now()).min(WATCH_EVERY),
            (_, None) => WATCH_EVERY,
        };
        let got = if slice.is_zero() {
            ring.try_recv_into(buf)
        } else {
            ring.recv_into_timeout(buf, slice)
        };
        match got {
            Ok(len) => return Ok(Received::Message(len)),
            Err(ipc_client::Error::WouldBlock | ipc_client::Error::TimedOut) => {
                let over = match (wait, deadline) {
                    (Wait::Never, _) => true,
                    (_, Some(d)) => Instant::now() >= d,
                    // Forever, or a deadline past the clock's range.
                    (_, None) => false,
                };
                if over {
                    return Ok(Received::Nothing);
                }
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot receive from {}", ring.address())));
            }
        }
    }
}

/// A ring's own JSON fields.
pub fn json_details(d: &RingDetails, v: &mut Value) {
    v["depth"] = d.depth.into();
    v["slots"] = d.slots.into();
    v["slot_size"] = d.slot_size.into();
    v["segment_size"] = d.segment_size.into();
    v["attached"] = d.attached.into();
}

/// A ring's own `stat` rows.
pub fn field_rows(o: &ObjectInfo, d: &RingDetails) -> Vec<(&'static str, String)> {
    let attached = match d.attached {
        1 => "1 handle now".to_owned(),
        n => format!("{n} handles now"),
    };
    vec![
        ("kernel name", o.kernel_name.clone()),
        ("depth", format!("{} of {} slots", d.depth, d.slots)),
        ("slots", d.slots.to_string()),
        (
            "slot size",
            format!("{} bytes (the largest message)", d.slot_size),
        ),
        ("segment size", format!("{} bytes", d.segment_size)),
        ("attached", attached),
    ]
}

/// A ring's `list` cells: QUEUED, CAPACITY, ENDS.
pub fn table_cells(d: &RingDetails) -> [String; 3] {
    [
        format!("{} msg", d.depth),
        format!("{} × {} B", d.slots, d.slot_size),
        format!("{} attached", d.attached),
    ]
}
