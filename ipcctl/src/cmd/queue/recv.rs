//! `ipcctl recv queue:…`: deliveries printed as they come, acknowledged
//! with `--ack` once written; the connection is `recv`'s own, so what it got
//! and did not acknowledge goes back to the queue when ipcctl exits.

use std::os::fd::AsFd as _;
use std::time::Duration;

use ipc_client::{Client, ErrorCode, QueueDelivery, QueueReceiver};

use crate::cli::RecvArgs;
use crate::cmd::common::daemon_gone;
use crate::errors::fail;
use crate::output::{Out, message_json};
use crate::watch::{Wait, Waited, Watch, show};

/// The most deliveries `recv` asks for at once.
const MOST_AT_ONCE: u64 = 64;

/// What one wait for a delivery ended with.
enum Next {
    /// A delivery.
    Got(QueueDelivery),
    /// The time ran out, or the queue was empty and waiting was not wanted.
    Nothing,
    /// Whoever reads our output has gone away.
    ReaderGone,
}

/// `ipcctl recv queue:…`: one message, `--count N` or `--follow`; with
/// `--ack` each acknowledged once written. Owns the connection: the
/// messages it got go back to the queue when it closes, unless acknowledged.
pub fn recv(client: Client, args: &RecvArgs, json: bool) -> anyhow::Result<()> {
    let address = args.address.clone();
    // `--timeout 0s` takes what is there now, as `--nonblock` does.
    let wait = match Wait::from_flags(args.timeout, args.nonblock) {
        Wait::Timeout(t) if t.is_zero() => Wait::Never,
        w => w,
    };
    let limit = (!args.follow).then(|| args.count.unwrap_or(1));
    // Never hold more than will be printed; --follow takes one at a time.
    let prefetch = limit.map_or(1, |n| n.min(MOST_AT_ONCE) as u32);
    let mut rx = QueueReceiver::new(client, &address)
        .prefetch(prefetch)
        .gets(1)
        .ack_delay(Duration::ZERO);
    if let Some(n) = limit {
        rx = rx.limit(n);
    }
    let printed = print_deliveries(&mut rx, args, wait, limit, json);
    // What was acknowledged is confirmed even when printing stopped early.
    let flushed = rx
        .flush()
        .map_err(|e| receive_failed(&address, e, "acknowledging messages of"));
    let (received, reader_gone) = printed?;
    flushed?;
    if received == 0 && !reader_gone {
        return Err(nothing(&address, wait));
    }
    Ok(())
}

/// Prints deliveries as they come (acknowledging each with `--ack`) until
/// `limit`, the wait's end, or standard output closing; returns how many,
/// and whether standard output's reader left.
fn print_deliveries(
    rx: &mut QueueReceiver,
    args: &RecvArgs,
    wait: Wait,
    limit: Option<u64>,
    json: bool,
) -> anyhow::Result<(u64, bool)> {
    let address = &args.address;
    let mut out = Out::new();
    let mut watch = Watch::new();
    let mut received = 0;
    while limit.is_none_or(|n| received < n) {
        let d = match next(rx, wait, &mut watch)? {
            Next::Got(d) => d,
            Next::Nothing => break,
            Next::ReaderGone => return Ok((received, true)),
        };
        if json {
            let mut doc = message_json(&d.body, Some(d.priority));
            doc["id"] = d.id.into();
            doc["deliveries"] = d.deliveries.into();
            doc["acked"] = args.ack.into();
            out.json(&doc)?;
        } else {
            out.bytes(&d.body)?;
            if !args.raw {
                out.bytes(b"\n")?;
            }
        }
        out.flush()?;
        if args.ack {
            rx.ack(d.id)
                .map_err(|e| receive_failed(address, e, "acknowledging a message of"))?;
        } else if received == 0 && !json {
            eprintln!(
                "ipcctl: note: {address} keeps what recv prints without --ack: it goes back \
                 to the queue when ipcctl exits and counts as delivered once more (a queue \
                 with --max-deliveries then moves it to its .dead queue once it was \
                 delivered that many times)"
            );
        }
        received += 1;
    }
    Ok((received, false))
}

/// The next delivery, waiting as `wait` says while watching standard output
/// (so `recv --follow | head -1` ends when `head` does).
fn next(rx: &mut QueueReceiver, wait: Wait, watch: &mut Watch) -> anyhow::Result<Next> {
    let address = rx.address().to_owned();
    let failed = |e| receive_failed(&address, e, "cannot receive from");
    if watch.output_gone()? {
        return Ok(Next::ReaderGone);
    }
    if wait == Wait::Never {
        return Ok(rx
            .try_recv()
            .map_err(failed)?
            .map_or(Next::Nothing, Next::Got));
    }
    let deadline = wait.deadline_from_now();
    loop {
        // Sends the Get (and acknowledgements) and takes what has come.
        if let Some(d) = rx.recv_timeout(Duration::ZERO).map_err(failed)? {
            return Ok(Next::Got(d));
        }
        match watch.wait(rx.as_fd(), deadline, None)? {
            Waited::Ready => {}
            Waited::TimedOut => return Ok(Next::Nothing),
            Waited::OutputGone => return Ok(Next::ReaderGone),
        }
    }
}

/// A failed Get or acknowledgement: ipcd gone, the queue deleted, or another error.
fn receive_failed(address: &str, e: ipc_client::Error, doing: &str) -> anyhow::Error {
    match (&e, e.code()) {
        (ipc_client::Error::Closed | ipc_client::Error::Io(_), _) => {
            daemon_gone(&format!("receiving from {address}"))
        }
        (_, Some(ErrorCode::NotFound)) => fail(
            ErrorCode::NotFound,
            format!("{address} does not exist (or was deleted while waiting)"),
        ),
        _ => anyhow::Error::new(e).context(format!("{doing} {address}")),
    }
}

/// Why nothing was received.
fn nothing(address: &str, wait: Wait) -> anyhow::Error {
    match wait {
        Wait::Timeout(t) => fail(
            ErrorCode::TimedOut,
            format!("no message arrived on {address} within {}", show(t)),
        ),
        _ => fail(ErrorCode::WouldBlock, format!("{address} is empty")),
    }
}
