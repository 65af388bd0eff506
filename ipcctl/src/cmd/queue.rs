//! `queue:` — work queues held in ipcd: create flags, send (put), recv (get,
//! and with `--ack` acknowledge), join, and their `stat` rows, `list` cells
//! and JSON fields.

mod recv;
mod rows;

use std::io::{self, BufRead as _, BufReader};
use std::os::unix::ffi::OsStrExt as _;
use std::time::Duration;

use anyhow::Context as _;
use ipc_client::protocol::QUEUE_MESSAGE_OVERHEAD;
use ipc_client::{Client, ErrorCode, Fsync, KindParams, QueueItem, QueueParams};
use serde_json::json;

use super::common::{Sent, no_ring_flags, not_for, read_stdin_message, stopped_at};
use crate::cli::{CreateArgs, JoinArgs, RecvArgs, SendArgs};
use crate::errors::{fail, usage};
use crate::output;
use crate::watch::{Wait, show};

pub use recv::recv;
pub use rows::{created, field_rows, json_details, table_cells};

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
    let (batch_count, batch_bytes) = batch_limits(client, address);
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
        while let Some(batch) = read_lines(&mut stdin, batch_count, batch_bytes)? {
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
    let cost = body.len() + QUEUE_MESSAGE_OVERHEAD as usize;
    let per_put = (batch_bytes / cost).clamp(1, batch_count) as u64;
    let mut left = args.count.unwrap_or(1);
    while left > 0 {
        let n = left.min(per_put);
        put(client, vec![body.clone(); n as usize])?;
        left -= n;
    }
    Ok(sent)
}

/// Messages and bytes (with the per-message overhead) one Put of `send`
/// carries at most: [`BATCH`] and half a frame, and at most half what the
/// queue holds, so a batch always fits once the queue drains (a Put is all
/// or nothing). Without `stat` (no permission to see it), the first two.
fn batch_limits(client: &mut Client, address: &str) -> (usize, usize) {
    let frame = max_message(client) / 2;
    let Ok(info) = client.stat(address) else {
        return (BATCH, frame);
    };
    let ipc_client::KindDetails::Queue(q) = info.details else {
        return (BATCH, frame);
    };
    let half = |n: u64| usize::try_from(n / 2).unwrap_or(usize::MAX).max(1);
    let count = match q.capacity {
        0 => BATCH,
        cap => BATCH.min(half(cap)),
    };
    (count, frame.min(half(q.max_bytes)))
}

/// The next lines of standard input without their newlines: one (waiting
/// for it), then those already read in with it, up to `max_count` lines or
/// about `max_bytes` (with the per-message overhead); `None` at end of input.
fn read_lines(
    stdin: &mut BufReader<io::StdinLock<'_>>,
    max_count: usize,
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
        bytes += line.len() + QUEUE_MESSAGE_OVERHEAD as usize;
        batch.push(line);
        // Only a whole line already buffered is taken without waiting.
        if batch.len() >= max_count || bytes >= max_bytes || !stdin.buffer().contains(&b'\n') {
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
