//! `mq:` — POSIX message queues: create flags, send, recv, wait-for, and their
//! output rows.

use std::os::fd::AsFd as _;
use std::time::Duration;

use ipc_client::{
    Access, Client, ErrorCode, KindParams, MessageQueue, MqDetails, MqParams, ObjectInfo,
    Readiness, Reply, Request,
};
use serde_json::{Value, json};

use super::common::{Sent, no_ring_flags, not_for, read_stdin_message, send_each, send_failed};
use crate::cli::{CreateArgs, RecvArgs, SendArgs, WaitForArgs};
use crate::errors::{Code, fail, usage};
use crate::output::{self, Out, message_json};
use crate::watch::{Wait, Waited, Watch, show};

/// The most messages a queue can hold on Linux, whatever `fs.mqueue.msg_max`
/// says (`HARD_MSGMAX`).
const HARD_MSGMAX: u32 = 65_536;
/// The largest message a queue can carry on Linux, whatever
/// `fs.mqueue.msgsize_max` says (`HARD_MSGSIZEMAX`, 16 MiB).
const HARD_MSGSIZEMAX: u32 = 16 << 20;

/// The queue's parameters from `create`'s flags.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    no_ring_flags(args)?;
    // No sysctl raises these: refuse them here rather than have a hint suggest one.
    if args.capacity.is_some_and(|c| c > HARD_MSGMAX) {
        return Err(usage(format!(
            "--capacity for mq: is at most {HARD_MSGMAX} messages (Linux's hard limit, \
             above any fs.mqueue.msg_max)"
        )));
    }
    if args.msg_size.is_some_and(|s| s > HARD_MSGSIZEMAX) {
        return Err(usage(format!(
            "--msg-size is at most {HARD_MSGSIZEMAX} bytes (16 MiB, Linux's hard limit, \
             above any fs.mqueue.msgsize_max)"
        )));
    }
    if args.size.is_some() {
        return Err(not_for(args, "--size", "for shm: only"));
    }
    if args.buffered {
        return Err(not_for(args, "--buffered", "for fifo: only"));
    }
    if args.adopt && (args.capacity.is_some() || args.msg_size.is_some()) {
        return Err(usage(
            "--capacity and --msg-size set up a new queue; an adopted queue keeps its own \
             (ipcctl stat shows them)",
        ));
    }
    Ok(KindParams::Mq(MqParams {
        capacity: args.capacity,
        msg_size: args.msg_size,
    }))
}

/// Opens `address` with `access` and wraps it in a queue handle.
fn open(client: &mut Client, address: &str, access: Access) -> anyhow::Result<MessageQueue> {
    let response = client.request(Request::Open {
        address: address.to_owned(),
        access,
    })?;
    let Reply::Opened { info, access } = response.reply else {
        return Err(fail(
            Code::Protocol,
            format!(
                "unexpected answer to opening {address}: {:?}",
                response.reply
            ),
        ));
    };
    Ok(MessageQueue::from_opened(info, access, response.fds)?)
}

/// `ipcctl send mq:…`: MESSAGE, standard input as one message, or `--lines`.
pub fn send(client: &mut Client, args: &SendArgs) -> anyhow::Result<Sent> {
    let q = open(client, &args.address, Access::Write)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let priority = args.priority.unwrap_or(0);
    let mut sent = Sent::default();
    let send_one = |msg: &[u8]| -> anyhow::Result<()> {
        let result = match wait {
            Wait::Forever => q.send(msg, priority),
            Wait::Timeout(t) => q.send_timeout(msg, priority, t),
            Wait::Never => q.try_send(msg, priority),
        };
        result.map_err(|e| send_failed(q.address(), e, args.timeout))?;
        sent.message(msg.len());
        Ok(())
    };
    send_each(args, || read_whole_stdin(&q, args.raw), send_one)?;
    Ok(sent)
}

/// All of standard input as one message (see [`read_stdin_message`]), at
/// most the queue's message size.
fn read_whole_stdin(q: &MessageQueue, raw: bool) -> anyhow::Result<Vec<u8>> {
    read_stdin_message(q.msg_size(), raw)?.ok_or_else(|| {
        fail(
            ErrorCode::TooLarge,
            format!(
                "cannot send to {}: standard input holds more than the queue's message size of {} bytes",
                q.address(),
                q.msg_size()
            ),
        )
    })
}

/// How often a waiting `recv` looks whether its queue was deleted.
const DELETED_CHECK: Duration = Duration::from_secs(1);

/// Whether the queue was unlinked (deleted) since it was opened.
fn unlinked(q: &MessageQueue) -> bool {
    nix::sys::stat::fstat(q.as_fd()).is_ok_and(|st| st.st_nlink == 0)
}

/// What one wait for a message ended with.
enum Received {
    /// A message of this length and priority is in the buffer.
    Message(usize, u32),
    /// The time ran out, or the queue was empty and waiting was not wanted.
    Nothing,
    /// Whoever reads our output has gone away.
    ReaderGone,
}

/// `ipcctl recv mq:…`: one message, `--count N` or `--follow`.
pub fn recv(client: &mut Client, args: &RecvArgs, json: bool) -> anyhow::Result<()> {
    let q = open(client, &args.address, Access::Read)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let limit = if args.follow {
        u64::MAX
    } else {
        args.count.unwrap_or(1)
    };
    let mut buf = vec![0; q.msg_size()];
    let mut out = Out::new();
    let mut watch = Watch::new();
    let mut received = 0;
    while received < limit {
        let (len, priority) = match receive(&q, &mut buf, wait, &mut watch)? {
            Received::Message(len, priority) => (len, priority),
            Received::Nothing => break,
            Received::ReaderGone => return Ok(()),
        };
        let msg = &buf[..len];
        if json {
            out.json(&message_json(msg, Some(priority)))?;
        } else if args.raw {
            out.bytes(msg)?;
        } else {
            out.bytes(msg)?;
            out.bytes(b"\n")?;
        }
        out.flush()?;
        received += 1;
    }
    if received == 0 {
        return Err(nothing(q.address(), wait));
    }
    Ok(())
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

/// Receives a message into `buf`, waiting for one as `wait` says. A message
/// already there is taken even when there is no time to wait (`--timeout 0s`).
///
/// Standard output is checked before a message is taken and watched while
/// waiting, so that `ipcctl recv --follow | head -1` ends when `head` does
/// (not only when the next message comes), without taking a message it cannot print.
fn receive(
    q: &MessageQueue,
    buf: &mut [u8],
    wait: Wait,
    watch: &mut Watch,
) -> anyhow::Result<Received> {
    let deadline = wait.deadline_from_now();
    loop {
        if watch.output_gone()? {
            return Ok(Received::ReaderGone);
        }
        if let Some(got) = try_receive(q, buf)? {
            return Ok(got);
        }
        if wait == Wait::Never {
            return Ok(Received::Nothing);
        }
        // Then readable, unless another receiver is quicker: wait again. Once
        // a second, see whether the queue was deleted meanwhile.
        match watch.wait(q.as_fd(), deadline, Some(DELETED_CHECK))? {
            Waited::Ready if unlinked(q) => {
                return Err(fail(
                    ErrorCode::NotFound,
                    format!("{} was deleted while waiting", q.address()),
                ));
            }
            Waited::Ready => {}
            Waited::TimedOut => return Ok(Received::Nothing),
            Waited::OutputGone => return Ok(Received::ReaderGone),
        }
    }
}

/// Takes a message if one is there now.
fn try_receive(q: &MessageQueue, buf: &mut [u8]) -> anyhow::Result<Option<Received>> {
    match q.try_recv_into(buf) {
        Ok((len, priority)) => Ok(Some(Received::Message(len, priority))),
        Err(ipc_client::Error::WouldBlock) => Ok(None),
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("cannot receive from {}", q.address())))
        }
    }
}

/// `ipcctl wait-for mq:… --readable|--writable`: the daemon holds the wait
/// (the client's request timeout does not cut it short).
pub fn wait_for(client: &mut Client, args: &WaitForArgs, json: bool) -> anyhow::Result<()> {
    let (ready, word) = if args.readable {
        (Readiness::Readable, "readable")
    } else {
        (Readiness::Writable, "writable")
    };
    let address = &args.address;
    let depth = client
        .wait_for(address, ready, args.timeout)
        .map_err(|e| match e.code() {
            Some(ErrorCode::TimedOut) => not_ready(address, ready, args.timeout),
            _ => anyhow::Error::new(e).context(format!("waiting for {address} to be {word}")),
        })?;
    output::print(
        json,
        || json!({ "address": address, "ready": word, "depth": depth }),
        || {
            let s = if depth == 1 { "" } else { "s" };
            format!("{address} {word} ({depth} message{s} waiting)")
        },
    )
}

/// A queue that did not become `ready` within `timeout`: `timed-out`.
fn not_ready(address: &str, ready: Readiness, timeout: Option<Duration>) -> anyhow::Error {
    let t = timeout.unwrap_or_default();
    let message = match ready {
        Readiness::Readable if t.is_zero() => format!("{address} is empty"),
        Readiness::Writable if t.is_zero() => format!("{address} is full"),
        Readiness::Readable => format!("no message arrived on {address} within {}", show(t)),
        Readiness::Writable => format!("{address} stayed full for {}", show(t)),
    };
    fail(ErrorCode::TimedOut, message)
}

/// A queue's own JSON fields.
pub fn json_details(d: &MqDetails, v: &mut Value) {
    v["depth"] = d.depth.into();
    v["capacity"] = d.capacity.into();
    v["msg_size"] = d.msg_size.into();
}

/// A queue's own `stat` rows.
pub fn field_rows(o: &ObjectInfo, d: &MqDetails) -> Vec<(&'static str, String)> {
    vec![
        ("kernel name", o.kernel_name.clone()),
        ("depth", d.depth.to_string()),
        ("capacity", d.capacity.to_string()),
        ("message size", format!("{} bytes", d.msg_size)),
    ]
}

/// A queue's `list` cells: QUEUED, CAPACITY, ENDS.
pub fn table_cells(d: &MqDetails) -> [String; 3] {
    [
        format!("{} msg", d.depth),
        format!("{} × {} B", d.capacity, d.msg_size),
        "-".to_owned(),
    ]
}
