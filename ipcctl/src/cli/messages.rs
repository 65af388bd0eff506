//! The command line of `send` and `recv`, which every messaging kind shares
//! (mq:, pipe:, fifo:, ring:, queue:), with their help texts (kept here so `cli.rs`
//! stays a readable size).

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;

use crate::parse::{parse_count, parse_duration, parse_priority, parse_spin};

/// `ipcctl send --help`, after the options.
pub const SEND_HELP: &str = "\
mq: and ring: MESSAGE is one message. Without MESSAGE, all of standard input is one
message, less one trailing newline (as the shell's $(...) drops it), so
`echo hi | ipcctl send mq:jobs` sends \"hi\"; --raw sends standard input exactly as
it is (binary data); --lines sends one message per line, without the newline.
A ring: message is at most the ring's slot size (stat shows it; a longer one is
refused, too-large, naming it), and ipcctl copies it into a slot of the shared
memory itself: it never passes through ipcd. A ring has no priorities.

pipe: and fifo: carry lines: MESSAGE is written with a newline added (unless it
ends with one) in a single write; without MESSAGE, all of standard input is sent
the same way, in one write; --lines writes each line of standard input with its
own write. Every such write is at most PIPE_BUF (4096) bytes including the
newline, which the kernel keeps whole, so lines from concurrent senders never
interleave; longer ones are refused (too-large) rather than split. --raw streams
standard input (or MESSAGE) as it is, with no newline and no size limit (and no
atomicity beyond 4096 bytes). A fifo: sender waits for a reader unless the FIFO
is --buffered; --timeout bounds that wait too.

signal: MESSAGE is the event's payload (at most 4096 bytes); without it the event
has none (standard input is not read). send raises the channel at once: every
watcher gets the event, every process subscribed its signal; --lines, --raw,
--priority, --timeout, --nonblock and --spin-us do not apply.

queue: MESSAGE is one message, as for mq: (without it, or if it is -, all of
standard input, less one trailing newline; --raw exactly; --lines one per line, up to
64 lines that are already there going in one request). It goes through ipcd into
the queue; a full
queue (its --capacity counts messages delivered and not yet acknowledged too)
makes send wait, up to --timeout. --priority P is for a queue in priority order
(0 to 32767, highest first). --count N puts MESSAGE (or standard input) N times.
Every request is all or nothing: the error of a refused --lines send says how
many lines went in before it.

--spin-us N (ring: only): when the ring is full, poll it for up to N microseconds
before sleeping (see recv --help).

With --lines, a line that cannot be sent (too large, or no room in time) stops
send; the error says which line, and how many were sent before it.

send prints nothing; with --json it prints what it sent:
{\"sent\":ADDRESS,\"messages\":N,\"bytes\":B} (messages: lines for pipe: and
fifo:, null for --raw to them; bytes include the newlines added).

Examples:
  ipcctl send mq:jobs 'build #42' --priority 5
  ipcctl send mq:jobs --raw < request.bin    # all of stdin, byte for byte
  seq 10 | ipcctl send mq:jobs --lines       # one message per line
  ipcctl send mq:jobs hello --timeout 500ms  # exit 1 if still full after 500ms
  ipcctl send pipe:logs 'disk 93% full'
  tail -f app.log | ipcctl send --raw pipe:logs
  ipcctl send fifo:events hi --timeout 2s    # exit 1 if no reader came in 2s
  seq 1000 | ipcctl send ring:frames --lines # 1000 messages into shared memory
  ipcctl send signal:reload v2               # raise a signal channel
  ipcctl send queue:jobs 'build #42'         # a work item, through ipcd
  ipcctl send queue:jobs ping --count 1000   # the same message 1000 times

Exit status: 0 sent, 1 no room in time (--timeout, --nonblock) or no FIFO reader,
2 error (a bad ADDRESS, a message too large), 64 usage error.";

/// `ipcctl recv --help`, after the options.
pub const RECV_HELP: &str = "\
Text output is each message followed by a newline; a message that holds
newlines itself is printed as it is, so use --raw (exact bytes, nothing added) or
--json to tell messages apart. --json prints {\"message\":TEXT} (mq: plus
\"priority\") when the bytes are valid UTF-8, else {\"message_base64\":BASE64}
(standard alphabet, with padding).

pipe: and fifo: are read a line at a time, byte by byte, so a receiver takes
exactly the lines it prints and leaves the rest to the next one; --follow reads in
bulk (it takes everything anyway). A pipe at end of file (closed or deleted, and
drained) ends recv; a fifo: whose writers left is waited on for the next writer,
except with --raw, which copies bytes as they come until end of file, like cat.
If ipcd stops meanwhile (it holds ends of pipes and buffered FIFOs, so readers see
end of file too), recv on an mq:, pipe: or fifo: says so and exits 2 (daemon-gone);
a ring: needs no daemon once mapped, so its receivers go on. An mq: or ring:
deleted while recv waits ends it with exit 2 (not-found).

ring: is many senders and many receivers at once (MPMC): each message goes to
exactly one receiver, first in first out (one sender's messages stay in its
order). A receiver killed (kill -9) while copying a message out of its slot
loses that message: delivery is at most once, never twice. ipcctl copies the
messages out of the shared memory itself; they never pass through ipcd.
--spin-us N: when the ring is empty, poll it for up to N microseconds before
sleeping, for quicker wake-ups when the sender runs on another, otherwise idle
CPU; off by default, because it burns that CPU time, and on few CPUs (2 vCPUs)
a spinner next to its peer takes the CPU the peer needs and slows both.

queue: delivery is at least once. recv gets a message from the queue and prints
it; the message then stays held by this ipcctl until it is acknowledged. With
--ack, recv acknowledges each message once it has been written to standard
output, which removes it from the queue for good. Without --ack nothing is
removed: when ipcctl exits, the messages it printed go back to the head of the
queue (ipcctl says so on standard error), counted as delivered once more, so a
queue created with --max-deliveries N moves a message looked at N times this
way to its dead-letter queue, queue:NAME.dead. A message whose output failed
(`| head -1` stopped reading) is never acknowledged. --ack means written, not
worked on: a message written into a pipe is acknowledged although the program
reading the pipe may not have done its work yet (or may die before it does), so
for work that must not be lost, a program acknowledges each message itself
after the work (ipc-client: queue_ack_get, QueueReceiver::ack). --json adds
\"id\", \"deliveries\" (2 or more: delivered before, to a consumer that did
not acknowledge it; counts start again at 1 after ipcd restarts) and \"acked\". recv takes no more messages from the queue than
--count asks for (--follow: one at a time).

--timeout 0s, like --nonblock, takes what is there now (and exits 1 if nothing is).

recv stops when its output is closed (`| head -1`): it checks before taking each
message and while waiting, so a --follow that waits for messages ends without
taking the next one. What it has already written into the pipe but the reader
left unread is lost, though: with five messages waiting, `--count 5 | head -1`
takes all five. Ask --count for what will be read.

Examples:
  ipcctl recv mq:jobs                    # wait for one message
  ipcctl recv mq:jobs --nonblock         # exit 1 at once if the queue is empty
  ipcctl recv mq:jobs --follow --json    # every message as a JSON line, until interrupted
  ipcctl recv mq:jobs --count 10 --timeout 2s
  ipcctl recv mq:blobs --raw > blob.bin
  ipcctl recv pipe:logs --follow | grep ERROR
  ipcctl recv --raw pipe:logs > all.log  # until the pipe is closed and drained
  ipcctl recv fifo:events --count 3
  ipcctl recv ring:frames --count 1000 --timeout 5s
  ipcctl recv queue:jobs --ack           # take one work item for good
  ipcctl recv queue:jobs --follow --ack --json >> jobs.log   # drain into a file
  ipcctl recv queue:jobs.dead --count 10 --timeout 1s  # look at dead letters, leave them there

Exit status: 0 received something, 1 nothing in time (--timeout, --nonblock) or a
pipe at end of file, 2 error (a bad ADDRESS, ipcd stopped: daemon-gone), 64 usage error.";

/// `ipcctl send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Object address, KIND:NAME (e.g. mq:jobs, pipe:logs, fifo:events, ring:frames)
    pub address: String,

    /// The message (pipe, fifo: a line; a newline is added); without it, all of
    /// standard input is sent as one message, less one trailing newline
    #[arg(conflicts_with = "lines")]
    pub message: Option<OsString>,

    /// Send each line of standard input as a message of its own (mq: without
    /// the newline; pipe, fifo: one write per line)
    #[arg(long)]
    pub lines: bool,

    /// Send MESSAGE or standard input exactly as it is (mq, ring: one message, keeping
    /// a trailing newline; pipe, fifo: streaming, adding no newline, no size limit)
    #[arg(long, conflicts_with = "lines")]
    pub raw: bool,

    /// mq, queue only: priority, 0-32767; higher-priority messages are received
    /// first (a queue: in priority order) [default: 0]
    #[arg(long, short, value_name = "P", value_parser = parse_priority)]
    pub priority: Option<u32>,

    /// Wait at most this long for room in a full queue, pipe or ring, or for a
    /// FIFO reader, then exit 1 (e.g. 500ms, 2s)
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration, conflicts_with = "nonblock")]
    pub timeout: Option<Duration>,

    /// Don't wait: exit 1 at once if the queue, pipe or ring is full, or a FIFO
    /// has no reader
    #[arg(long, short)]
    pub nonblock: bool,

    /// ring only: spin up to US microseconds polling a full ring before sleeping
    /// [default: 0, off: on few CPUs a spinner slows the peer it waits for]
    #[arg(long, value_name = "US", value_parser = parse_spin)]
    pub spin_us: Option<u64>,

    /// queue only: put MESSAGE (or standard input) N times [default: 1]
    #[arg(long, short, value_name = "N", value_parser = parse_count, conflicts_with = "lines")]
    pub count: Option<u64>,
}

/// `ipcctl recv`.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Object address, KIND:NAME (e.g. mq:jobs, pipe:logs, fifo:events, ring:frames)
    pub address: String,

    /// Wait at most this long for each message or line (e.g. 500ms, 2s); exit 1
    /// if none came
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration, conflicts_with = "nonblock")]
    pub timeout: Option<Duration>,

    /// Don't wait: take what is there now; exit 1 if there is nothing
    #[arg(long, short)]
    pub nonblock: bool,

    /// Receive N messages or lines, waiting for each (fewer only when --timeout or
    /// --nonblock ends the wait) [default: 1]
    #[arg(long, short, value_name = "N", conflicts_with = "follow", value_parser = parse_count)]
    pub count: Option<u64>,

    /// Keep receiving until interrupted (with --timeout: until idle that long;
    /// with --nonblock: until nothing is left; a pipe: until end of file)
    #[arg(long, short)]
    pub follow: bool,

    /// Write the bytes exactly as received, adding nothing (mq, ring: each
    /// message; pipe, fifo: the stream, until end of file)
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// ring only: spin up to US microseconds polling an empty ring before
    /// sleeping [default: 0, off: on few CPUs a spinner slows the peer it waits for]
    #[arg(long, value_name = "US", value_parser = parse_spin)]
    pub spin_us: Option<u64>,

    /// queue only: acknowledge each message once it is written to standard
    /// output, removing it from the queue (without --ack it goes back to the
    /// queue when ipcctl exits)
    #[arg(long)]
    pub ack: bool,
}
