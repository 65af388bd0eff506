//! `queue:` — work queues held in ipcd: create flags, send (put), recv (get,
//! and with `--ack` acknowledge), join, and their `stat` rows, `list` cells
//! and JSON fields.

use std::io::{self, BufRead as _, BufReader};
use std::os::fd::AsFd as _;
use std::os::unix::ffi::OsStrExt as _;
use std::time::Duration;

use anyhow::Context as _;
use ipc_client::{
    Client, ErrorCode, Fsync, KindParams, ObjectInfo, QueueDelivery, QueueDetails, QueueItem,
    QueueParams, QueueReceiver, dead_letter_address,
};
use serde_json::{Value, json};

use super::common::{Sent, daemon_gone, no_ring_flags, not_for, read_stdin_message, stopped_at};
use crate::cli::{CreateArgs, JoinArgs, RecvArgs, SendArgs};
use crate::errors::{fail, usage};
use crate::output::{self, Out, message_json};
use crate::watch::{Wait, Waited, Watch, show};

/// Messages in one Put request at most.
const BATCH: usize = 64;
/// Room left in a request's frame for everything but the message bodies.
const FRAME_SLACK: usize = 1024;

/// The queue's parameters from `create`'s flags.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    no_ring_flags(args)?;
    let what = "not for queues";
    if args.size.is_some() {
        return Err(not_for(args, "--size", what));
    }
    if args.msg_size.is_some() {
        return Err(not_for(
            args,
            "--msg-size",
            "not for queues (--max-bytes bounds the bytes a queue holds)",
        ));
    }
    if args.buffered {
        return Err(not_for(args, "--buffered", what));
    }
    if args.adopt {
        return Err(usage(format!(
            "--adopt registers a kernel object that exists already; {} lives in ipcd itself",
            args.address
        )));
    }
    let q = &args.queue;
    Ok(KindParams::Queue(QueueParams {
        capacity: args.capacity.map_or(0, u64::from),
        max_bytes: q.max_bytes.unwrap_or(0),
        order: q.order.unwrap_or_default(),
        max_deliveries: q.max_deliveries.unwrap_or(0),
        durable: q.durable.then(|| q.fsync.unwrap_or(Fsync::Batch)),
    }))
}

/// Refuses the queue flags of `create` for any other kind.
pub fn no_queue_flags(args: &CreateArgs) -> anyhow::Result<()> {
    match args.queue.given().first() {
        Some(flag) => Err(not_for(args, flag, "for queue: only")),
        None => Ok(()),
    }
}

/// `send --count` for any other kind than a queue: a usage error.
pub fn no_send_count(args: &SendArgs) -> anyhow::Result<()> {
    match args.count {
        Some(_) => Err(usage(format!(
            "--count is for queue: only (it puts the message N times); {} is no queue",
            args.address
        ))),
        None => Ok(()),
    }
}

/// `recv --ack` for any other kind than a queue: a usage error.
pub fn no_ack(args: &RecvArgs) -> anyhow::Result<()> {
    match args.ack {
        true => Err(usage(format!(
            "--ack is for queue: only (its messages are acknowledged); what recv takes \
             from {} is gone already",
            args.address
        ))),
        false => Ok(()),
    }
}

/// The most bytes of one message `send` reads from standard input.
fn max_message(client: &Client) -> usize {
    (client.welcome().limits.max_frame as usize).saturating_sub(FRAME_SLACK)
}

/// `ipcctl send queue:…`: MESSAGE (`--count` times), standard input as one
/// message, or `--lines` (the lines already read go together, up to 64 a request).
pub fn send(client: &mut Client, args: &SendArgs) -> anyhow::Result<Sent> {
    let address = &args.address;
    let wait = Wait::from_flags(args.timeout, args.nonblock).as_timeout();
    let priority = args.priority.unwrap_or(0);
    let batch_bytes = max_message(client) / 2;
    let mut sent = Sent::default();
    let mut put = |client: &mut Client, bodies: Vec<Vec<u8>>| -> anyhow::Result<()> {
        let lens: Vec<usize> = bodies.iter().map(Vec::len).collect();
        let items = bodies
            .into_iter()
            .map(|body| QueueItem { priority, body })
            .collect();
        client
            .queue_put_batch(address, items, wait)
            .map_err(|e| put_failed(address, e, wait))?;
        lens.into_iter().for_each(|len| sent.message(len));
        Ok(())
    };
    if args.lines {
        let mut stdin = BufReader::with_capacity(1 << 16, io::stdin().lock());
        let mut lines = 0;
        while let Some(batch) = read_lines(&mut stdin, batch_bytes)? {
            let n = batch.len();
            put(client, batch).with_context(|| stopped_at(lines))?;
            lines += n;
        }
        return Ok(sent);
    }
    let body = match &args.message {
        Some(m) if m.as_bytes() != b"-" => m.as_bytes().to_vec(),
        _ => read_stdin_message(max_message(client), args.raw)?.ok_or_else(|| {
            fail(
                ErrorCode::TooLarge,
                format!(
                    "cannot send to {address}: standard input holds more than {} bytes, \
                     the most one request to ipcd carries",
                    max_message(client)
                ),
            )
        })?,
    };
    let per_put = (batch_bytes / body.len().max(1)).clamp(1, BATCH) as u64;
    let mut left = args.count.unwrap_or(1);
    while left > 0 {
        let n = left.min(per_put);
        put(client, vec![body.clone(); n as usize])?;
        left -= n;
    }
    Ok(sent)
}

/// The next lines of standard input without their newlines: one (waiting
/// for it), then those already read in with it, up to [`BATCH`] lines or
/// about `max_bytes`; `None` at end of input.
fn read_lines(
    stdin: &mut BufReader<io::StdinLock<'_>>,
    max_bytes: usize,
) -> anyhow::Result<Option<Vec<Vec<u8>>>> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    loop {
        let mut line = Vec::new();
        if stdin
            .read_until(b'\n', &mut line)
            .context("cannot read standard input")?
            == 0
        {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        bytes += line.len();
        batch.push(line);
        // Only a whole line already buffered is taken without waiting.
        if batch.len() >= BATCH || bytes >= max_bytes || !stdin.buffer().contains(&b'\n') {
            break;
        }
    }
    Ok((!batch.is_empty()).then_some(batch))
}

/// A Put that did not go through: the queue full now (`--nonblock`), full
/// for the whole `timeout`, or another failure.
fn put_failed(address: &str, e: ipc_client::Error, timeout: Option<Duration>) -> anyhow::Error {
    match (e.code(), timeout) {
        (Some(ErrorCode::WouldBlock), _) => {
            fail(ErrorCode::WouldBlock, format!("{address} is full"))
        }
        (Some(ErrorCode::TimedOut), t) => fail(
            ErrorCode::TimedOut,
            format!("{address} stayed full for {}", show(t.unwrap_or_default())),
        ),
        _ => anyhow::Error::new(e).context(format!("cannot send to {address}")),
    }
}

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
    let prefetch = limit.map_or(1, |n| n.min(BATCH as u64) as u32);
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
                 to the queue when ipcctl exits (and counts as delivered once more)"
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

/// `ipcctl join queue:…`: waits until every message put was acknowledged.
pub fn join(client: &mut Client, args: &JoinArgs, json: bool) -> anyhow::Result<()> {
    let address = &args.address;
    client
        .queue_join(address, args.timeout)
        .map_err(|e| match (e.code(), args.timeout) {
            (Some(ErrorCode::TimedOut | ErrorCode::WouldBlock), t) => fail(
                ErrorCode::TimedOut,
                format!(
                    "not every message put on {address} was acknowledged within {}",
                    show(t.unwrap_or_default())
                ),
            ),
            _ => anyhow::Error::new(e).context(format!("joining {address}")),
        })?;
    output::print_json_only(json, || json!({ "joined": address }))
}

/// Deliveries held, in all.
fn in_flight(d: &QueueDetails) -> u64 {
    d.consumers.iter().map(|c| c.in_flight).sum()
}

/// The dead-letter queue of `o`, if it has one.
fn dead_letters(o: &ObjectInfo, d: &QueueDetails) -> Option<String> {
    (d.max_deliveries > 0).then(|| dead_letter_address(&o.address))
}

/// A queue's JSON fields.
pub fn json_details(o: &ObjectInfo, d: &QueueDetails, v: &mut Value) {
    v["order"] = d.order.to_string().into();
    v["capacity"] = d.capacity.into();
    v["max_bytes"] = d.max_bytes.into();
    v["max_deliveries"] = d.max_deliveries.into();
    v["dead_letters"] = json!(dead_letters(o, d));
    v["depth"] = d.depth.into();
    v["bytes"] = d.bytes.into();
    v["in_flight"] = in_flight(d).into();
    v["consumers"] = d
        .consumers
        .iter()
        .map(|c| json!({ "pid": c.pid, "uid": c.uid, "in_flight": c.in_flight }))
        .collect();
    v["put"] = d.put.into();
    v["acked"] = d.acked.into();
    v["redelivered"] = d.redelivered.into();
    v["dead"] = d.dead.into();
    v["put_rate"] = d.put_rate.into();
    v["ack_rate"] = d.ack_rate.into();
    v["getters"] = d.getters.into();
    v["putters"] = d.putters.into();
    v["joiners"] = d.joiners.into();
    v["journal"] = d.journal.as_ref().map_or(Value::Null, |j| {
        json!({
            "fsync": j.fsync.to_string(),
            "bytes": j.bytes,
            "compactions": j.compactions,
            "recovery": j.recovery,
        })
    });
}

/// A queue's `stat` rows.
pub fn field_rows(o: &ObjectInfo, d: &QueueDetails) -> Vec<(&'static str, String)> {
    let limit = |n: u64, unit: &str| {
        if n == 0 {
            "no limit".to_owned()
        } else {
            format!("{n} {unit}")
        }
    };
    let consumers: Vec<String> = d
        .consumers
        .iter()
        .map(|c| format!("pid {} (uid {}) ×{}", c.pid, c.uid, c.in_flight))
        .collect();
    vec![
        ("order", d.order.to_string()),
        ("depth", format!("{} waiting", d.depth)),
        (
            "in flight",
            match consumers.as_slice() {
                [] => "0".to_owned(),
                held => format!("{} ({})", in_flight(d), held.join(", ")),
            },
        ),
        (
            "bytes",
            format!(
                "{} of {} (64 per message besides its body)",
                d.bytes, d.max_bytes
            ),
        ),
        ("capacity", limit(d.capacity, "messages")),
        (
            "max deliveries",
            match dead_letters(o, d) {
                Some(dead) => format!("{}, then to {dead}", d.max_deliveries),
                None => "no limit (redelivered forever)".to_owned(),
            },
        ),
        (
            "since start",
            format!(
                "{} put, {} acked, {} redelivered, {} dead",
                d.put, d.acked, d.redelivered, d.dead
            ),
        ),
        (
            "rates",
            format!("{} puts/s, {} acks/s", d.put_rate, d.ack_rate),
        ),
        (
            "waiting",
            format!(
                "{} getters, {} putters, {} joiners",
                d.getters, d.putters, d.joiners
            ),
        ),
        ("journal", journal_text(d)),
    ]
}

fn journal_text(d: &QueueDetails) -> String {
    match &d.journal {
        None => "none (held in memory: lost when ipcd stops)".to_owned(),
        Some(j) => {
            let mut text = format!(
                "fsync {}, {} bytes, {} compactions",
                j.fsync, j.bytes, j.compactions
            );
            if let Some(r) = &j.recovery {
                text.push_str(&format!("; last start cut: {r}"));
            }
            text
        }
    }
}

/// A queue's `list` cells: QUEUED, CAPACITY, ENDS (deliveries in flight).
pub fn table_cells(d: &QueueDetails) -> [String; 3] {
    [
        format!("{} msg", d.depth),
        if d.capacity == 0 {
            format!("{} B", d.max_bytes)
        } else {
            format!("{} msg", d.capacity)
        },
        format!("{} in flight", in_flight(d)),
    ]
}

/// What `create` says of a new queue.
pub fn created(o: &ObjectInfo, d: &QueueDetails) -> String {
    let mut parts = vec![d.order.to_string()];
    if d.capacity > 0 {
        parts.push(format!("capacity {}", d.capacity));
    }
    parts.push(format!("{} bytes", d.max_bytes));
    if let Some(dead) = dead_letters(o, d) {
        parts.push(format!("{} deliveries, then {dead}", d.max_deliveries));
    }
    if let Some(j) = &d.journal {
        parts.push(format!("durable, fsync {}", j.fsync));
    }
    parts.join(", ")
}
