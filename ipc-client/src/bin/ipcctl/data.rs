//! Commands that move data: send and recv.

use std::io::{self, BufRead as _, Read as _};
use std::os::fd::AsFd as _;
use std::os::unix::ffi::OsStrExt as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipc_client::{Access, Client, Kind, MessageQueue, Reply, Request};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::json;

use crate::cli::{RecvArgs, SendArgs, Wait};
use crate::output::Out;

/// Nothing happened in time: no message to receive, or no room to send. Exit status 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NothingInTime(pub String);

/// Opens `address` with `access` and wraps it in the handle for its kind.
fn open_queue(client: &mut Client, address: &str, access: Access) -> anyhow::Result<MessageQueue> {
    let response = client.request(Request::Open {
        address: address.to_owned(),
        access,
    })?;
    let Reply::Opened { info, access } = response.reply else {
        anyhow::bail!(
            "unexpected answer to opening {address}: {:?}",
            response.reply
        );
    };
    match info.kind {
        Kind::Mq => Ok(MessageQueue::from_opened(info, access, response.fds)?),
        Kind::Pipe | Kind::Fifo => {
            anyhow::bail!("{address}: send and recv support mq: only so far")
        }
    }
}

/// `ipcctl send`.
pub fn send(client: &mut Client, args: &SendArgs) -> anyhow::Result<()> {
    let q = open_queue(client, &args.address, Access::Write)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let send_one = |msg: &[u8]| -> anyhow::Result<()> {
        let result = match wait {
            Wait::Forever => q.send(msg, args.priority),
            Wait::Timeout(t) => q.send_timeout(msg, args.priority, t),
            Wait::Never => q.try_send(msg, args.priority),
        };
        result.map_err(|e| match e {
            ipc_client::Error::WouldBlock => {
                NothingInTime(format!("{} is full (would-block)", q.address())).into()
            }
            ipc_client::Error::TimedOut => NothingInTime(format!(
                "{} stayed full for {} (timed-out)",
                q.address(),
                humantime::format_duration(args.timeout.unwrap_or_default())
            ))
            .into(),
            e => anyhow::Error::new(e).context(format!("cannot send to {}", q.address())),
        })
    };
    if let Some(message) = &args.message {
        return send_one(message.as_bytes());
    }
    let stdin = io::stdin().lock();
    if args.lines {
        for line in stdin.split(b'\n') {
            send_one(&line.context("cannot read standard input")?)?;
        }
        Ok(())
    } else {
        let mut message = Vec::new();
        let mut stdin = stdin.take(q.msg_size() as u64 + 1);
        stdin
            .read_to_end(&mut message)
            .context("cannot read standard input")?;
        if message.len() > q.msg_size() {
            anyhow::bail!(
                "cannot send to {}: standard input holds more than the queue's message size of {} bytes (too-large)",
                q.address(),
                q.msg_size()
            );
        }
        send_one(&message)
    }
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

/// `ipcctl recv`.
pub fn recv(client: &mut Client, args: &RecvArgs, json: bool) -> anyhow::Result<()> {
    let q = open_queue(client, &args.address, Access::Read)?;
    let wait = Wait::from_flags(args.timeout, args.nonblock);
    let limit = if args.follow {
        u64::MAX
    } else {
        args.count.unwrap_or(1)
    };
    let mut buf = vec![0; q.msg_size()];
    let mut out = Out::new();
    let mut received = 0;
    while received < limit {
        let (len, priority) = match receive(&q, &mut buf, wait)? {
            Received::Message(len, priority) => (len, priority),
            Received::Nothing => break,
            Received::ReaderGone => return Ok(()),
        };
        let msg = &buf[..len];
        if json {
            out.json(&json!({ "message": String::from_utf8_lossy(msg), "priority": priority }))?;
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
        let why = match wait {
            Wait::Timeout(t) => {
                format!(
                    "no message arrived on {} within {} (timed-out)",
                    q.address(),
                    humantime::format_duration(t)
                )
            }
            _ => format!("{} is empty (would-block)", q.address()),
        };
        return Err(NothingInTime(why).into());
    }
    Ok(())
}

/// Waits for a message as `wait` says, and receives it into `buf`. While
/// waiting it also watches standard output, so that `ipcctl recv --follow | head -1`
/// ends when `head` does, not only when the next message comes.
fn receive(q: &MessageQueue, buf: &mut [u8], wait: Wait) -> anyhow::Result<Received> {
    let deadline = match wait {
        Wait::Never => return try_receive(q, buf).map(|r| r.unwrap_or(Received::Nothing)),
        Wait::Timeout(t) => Some(Instant::now() + t),
        Wait::Forever => None,
    };
    let stdout = io::stdout();
    let mut watch_stdout = true;
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Received::Nothing);
                }
                poll_timeout(left)
            }
        };
        let mut fds = vec![PollFd::new(q.as_fd(), PollFlags::POLLIN)];
        if watch_stdout {
            fds.push(PollFd::new(stdout.as_fd(), PollFlags::empty()));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("poll")),
        }
        if let Some(revents) = fds.get(1).and_then(PollFd::revents) {
            if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
                return Ok(Received::ReaderGone);
            }
            if revents.contains(PollFlags::POLLNVAL) {
                watch_stdout = false;
            }
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            // Readable, unless another receiver was quicker: then wait again.
            if let Some(got) = try_receive(q, buf)? {
                return Ok(got);
            }
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

/// A poll timeout that never rounds a remaining wait down to zero.
fn poll_timeout(left: Duration) -> PollTimeout {
    PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX)
}
