//! The command line: clap definitions, help text and value parsers.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::parse::{parse_bytes, parse_duration, parse_mode, parse_size};

mod create_help;
mod docs;
mod exec;
mod messages;
mod queue;
mod shm;
mod signal;
mod sync;
pub use docs::{CompletionsArgs, ManArgs, Shell};
pub use exec::{ExecArgs, ExecChildArgs};
pub use messages::{RecvArgs, SendArgs};
pub use queue::{JoinArgs, QueueCreateArgs};
pub use shm::{ReadArgs, ResizeArgs, WriteArgs};
pub use signal::{KillArgs, SubscribeArgs, UnsubscribeArgs, WatchArgs, parse_signal};
pub use sync::{AcquireArgs, WaitArgs, WithArgs};

const LONG_ABOUT: &str = "\
Control ipcd and use the IPC objects it hosts.

ipcd keeps named IPC objects, checks who may use them and hands out file
descriptors; the data goes through the kernel object directly, not through the
daemon (but for work queues and signal channels, whose messages ipcd keeps).
Kinds, addressed as KIND:NAME:

  mq:NAME    a POSIX message queue: messages with priorities, up to --msg-size
  pipe:NAME  an anonymous pipe shared by unrelated processes: a byte stream;
             send/recv move lines (or --raw bytes), exec joins a command to it
  fifo:NAME  a named pipe (mkfifo) with a path any shell tool can open
  shm:NAME   a POSIX shared-memory segment many processes map at once; write
             and read copy bytes in and out, resize grows it
  ring:NAME  a queue of messages in shared memory, for many senders and
             receivers at once; send/recv copy messages straight into and out
             of its slots, never through ipcd
  sem:NAME   a counting semaphore (a POSIX named one); permits a process holds
             are given back when it dies: acquire, release, with
  lock:NAME  a lock held by one connection at a time, freed if its holder dies
  event:NAME a flag processes wait for: set, clear, wait
  barrier:NAME  N parties wait until all have arrived: wait, reset
  signal:NAME   events fanned out to every watcher (send, watch); a process can
             get a real signal on each (subscribe), and a real signal ipcd
             receives can raise one (create --bind); kill signals through ipcd
  queue:NAME    a work queue held in ipcd (its messages pass through it):
             at-least-once delivery, acknowledged by recv --ack, given back
             when a consumer dies; join waits until all are acknowledged

ipcctl creates, lists, inspects, closes and deletes them, sends and receives, and
runs commands with their standard input/output joined to pipes and FIFOs.";

const AFTER_HELP: &str = "\
Output: text for people; with --json, exactly one JSON document per command,
compact on one line, on stdout (recv of several messages: one document per
message, JSON Lines). Errors go to stderr, one per command, as
  ipcctl: MESSAGE (CODE)
or with --json as
  {\"error\":{\"code\":\"CODE\",\"number\":N,\"message\":\"MESSAGE\"}}
where CODE is ipcd's error code (N is its stable number) or one of ipcctl's
own (N is null): usage, not-running (nothing listens on the socket),
not-a-socket (the socket path is a directory or a file), not-answering (ipcd
did not accept the connection or answer the handshake within --connect-timeout,
10s by default: stopped with SIGSTOP, or overloaded), daemon-gone (ipcd
stopped while the command needed it), reader-gone (a pipe or FIFO has no reader
left), end-of-file, protocol-error, command-not-found and cannot-run (exec).

Exit status:
  0   success
  1   timed out, or nothing to receive / no room to send (--timeout, --nonblock),
      or a pipe at end of file with no line to receive (recv --raw ends at
      end of file with 0, as cat does): timed-out, would-block, end-of-file
  2   any other error (not-answering too: a daemon that does not answer is
      an error, not an empty queue)
  64  usage error (a flag that does not apply to the object's kind too)
  (exec and with exit with their command's status instead; 127 or 126 if it
  cannot run)

Socket: --socket, else $IPCD_SOCKET, else $XDG_RUNTIME_DIR/ipcd/ipcd.sock,
else /run/ipcd/ipcd.sock (an empty variable counts as unset). Connecting and
the handshake wait at most --connect-timeout, else $IPCCTL_CONNECT_TIMEOUT,
else 10s.

Examples:
  ipcctl create mq:jobs --capacity 10 --msg-size 1024 --mode 0660
  echo 'build #42' | ipcctl send mq:jobs
  ipcctl recv mq:jobs --timeout 2s
  ipcctl create pipe:logs --capacity 1MiB
  tail -f app.log | ipcctl send --raw pipe:logs
  ipcctl recv pipe:logs --follow
  ipcctl close pipe:logs                  # readers see end of file once drained
  ipcctl create fifo:events --buffered
  echo hi > \"$(ipcctl path fifo:events)\"
  ipcctl exec --stdin pipe:a --stdout pipe:b -- tr a-z A-Z
  ipcctl wait-for mq:jobs --readable --timeout 30s
  ipcctl create shm:buf --size 1MiB
  ipcctl write shm:buf 'hello' --offset 64
  ipcctl read shm:buf --offset 64 --len 5 --hex
  ipcctl create ring:frames --slots 1024 --slot-size 4KiB
  seq 1000 | ipcctl send ring:frames --lines
  ipcctl recv ring:frames --count 1000
  ipcctl create lock:deploy && ipcctl with lock:deploy -- ./deploy.sh
  ipcctl create sem:gpu --initial 2 --max 2
  ipcctl wait event:ready --timeout 30s
  ipcctl watch signal:reload & ipcctl send signal:reload v2
  seq 100 | ipcctl send queue:jobs --lines; ipcctl recv queue:jobs --ack
  ipcctl list --json";

/// `ipcctl [--socket PATH] [--json] COMMAND`
#[derive(Debug, Parser)]
#[command(
    name = "ipcctl",
    version,
    about = "Control ipcd and use the IPC objects it hosts",
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    arg_required_else_help = true,
    disable_help_subcommand = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Path of ipcd's socket [default: $IPCD_SOCKET, else
    /// $XDG_RUNTIME_DIR/ipcd/ipcd.sock, else /run/ipcd/ipcd.sock]
    // Not clap's `env`: an empty IPCD_SOCKET counts as unset, as for ipcd and
    // the library (main resolves it with `resolve_socket_path`).
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub socket: Option<PathBuf>,

    /// Wait at most this long for ipcd to accept the connection and answer the
    /// handshake (e.g. 500ms, 30s); a later wait is bounded by the command's
    /// own flags [default: $IPCCTL_CONNECT_TIMEOUT, else 10s]
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        value_parser = parse_duration,
        help_heading = "Global options"
    )]
    pub connect_timeout: Option<Duration>,

    /// Print one compact JSON document instead of text (recv of several
    /// messages: one per message); errors too, on stderr
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that the daemon answers, and how fast
    #[command(after_help = "\
Example:
  ipcctl ping

Exit status: 0 the daemon answered, 2 error (e.g. no daemon), 64 usage error.")]
    Ping,

    /// Show the daemon's version, uptime, counters and limits, and your usage
    #[command(after_help = "\
After the daemon's status comes your usage: what your uid holds in ipcd
(connections, objects, descriptors ipcd holds for your objects and waits,
waiting requests, queue bytes) against your share of each, \"unlimited\" for
root and ipcd's own user, which only the daemon-wide limits bound; then ipcd's
queue byte budget (RLIMIT_MSGQUEUE, for all users together) and open-file
limit. --json adds them as \"usage\": {\"objects\":N,\"max_objects\":N|null,…}.

Example:
  ipcctl status --json

Exit status: 0 success, 2 error, 64 usage error.")]
    Status,

    /// List objects, of one kind or all
    #[command(after_help = "\
Columns: QUEUED is what waits to be read (mq: and ring: messages; pipe and
buffered fifo: bytes), CAPACITY is mq: messages × message size, pipe: buffer
bytes, shm: size, ring: slots × slot size; ENDS counts read/write ends handed
out since ipcd started, and says closed (pipe) or buffered (fifo); for shm: the
opens since ipcd started and the processes that have it mapped now; for ring:
the handles attached to it now. The sync kinds fill the three columns with
their state: sem: \"N free\", \"max M\", \"Hh Ww\" (holders, waiters); lock: \"free\"
or \"held by PID\", \"reentrant\", \"Ww\"; event: \"set\" or \"clear\", -, \"Ww\";
barrier: \"arrived/parties\", \"broken\", \"N opened\" (times it let parties through).
queue: messages waiting, its capacity (or byte limit), \"N in flight\" (delivered,
not yet acknowledged).

Examples:
  ipcctl list
  ipcctl list pipe --json
  ipcctl list --kind ring

Exit status: 0 success, 2 error (an unknown KIND too), 64 usage error.")]
    List {
        /// Only objects of this kind (mq, pipe, fifo, shm, ring, sem, lock, event,
        /// barrier, signal, queue)
        kind: Option<String>,
        /// The same as KIND, spelled as `delete --all --kind` spells it
        #[arg(long = "kind", value_name = "KIND", conflicts_with = "kind")]
        kind_flag: Option<String>,
    },

    /// Show one object's details: what waits in it, sizes, ends, owner, mode, lifetime
    #[command(after_help = "\
What waits to be read is depth (mq: and ring: messages) or buffered_bytes (pipe
and fifo: bytes). A pipe has no kernel name (\"kernel_name\": null). A shm:
segment shows its size and how many processes have it mapped now (\"mapped_by\",
null when ipcd cannot tell). A ring: shows its slots, slot size (the largest
message), segment size, and the handles attached now (\"attached\": processes
such as a running ipcctl send or recv; a killed one stops counting). A queue:
shows its order, depth, deliveries in flight per consumer pid, bytes held,
counts since ipcd started (put, acked, redelivered, dead), rates, waiting
getters, putters and joiners, and its journal if durable.

Examples:
  ipcctl stat mq:jobs
  ipcctl stat pipe:logs --json
  ipcctl stat ring:frames

Exit status: 0 success, 2 error (a bad or unknown ADDRESS too), 64 usage error.")]
    Stat {
        /// Object address, KIND:NAME (e.g. mq:jobs)
        address: String,
    },

    /// Create an object: a message queue, pipe, FIFO, segment, ring, semaphore, lock, event,
    /// barrier, signal channel or work queue
    #[command(after_help = create_help::CREATE_HELP)]
    Create(CreateArgs),

    /// Delete objects and their kernel objects (a FIFO's file is unlinked)
    #[command(after_help = "\
Objects are deleted in the order given; the first that cannot be stops delete, and
the error says which were deleted before it. --all deletes every object you own
(created under your uid; root's are root's), of every kind or of --kind, and
prints each it deleted. With --json, delete prints {\"deleted\":[ADDRESS…]}.
Readers waiting on a deleted pipe or FIFO see end of file once no writer is left;
waiters on a deleted semaphore, lock, event or barrier get not-found.

Examples:
  ipcctl delete mq:jobs
  ipcctl delete mq:jobs pipe:logs fifo:events
  ipcctl delete --all --kind fifo        # all your FIFOs
  ipcctl delete --all --json             # everything you own

Exit status: 0 success, 2 error (a bad or unknown ADDRESS too), 64 usage error.")]
    Delete(DeleteArgs),

    /// Close a pipe for writing: readers see end of file once it is drained
    #[command(after_help = "\
ipcd drops its own write end: no new writer may open the pipe, and readers see
end of file once the bytes in it are read and the writers already open are gone.
Only pipes can be closed; delete removes any object.

Example:
  ipcctl send pipe:in 'last line' && ipcctl close pipe:in

Exit status: 0 success, 2 error (a bad or unknown ADDRESS too; one that is not a
pipe: wrong-kind), 64 usage error.")]
    Close {
        /// Pipe address, pipe:NAME
        address: String,
    },

    /// Print a FIFO's path, for shell tools
    #[command(after_help = "\
Examples:
  echo hi > \"$(ipcctl path fifo:events)\"
  cat \"$(ipcctl path fifo:events)\"

Exit status: 0 success, 2 error (a bad or unknown ADDRESS too; one that is not a
fifo: wrong-kind), 64 usage error.")]
    Path {
        /// FIFO address, fifo:NAME
        address: String,
    },

    /// Send a message to a queue or ring, or a line or bytes to a pipe or FIFO (shm: see write)
    #[command(after_help = messages::SEND_HELP)]
    Send(SendArgs),

    /// Receive messages or lines and print them, one per line (shm: see read)
    #[command(after_help = messages::RECV_HELP)]
    Recv(RecvArgs),

    /// Wait until an mq: queue has a message (--readable) or room for one (--writable)
    #[command(after_help = "\
ipcd holds the wait: it answers when the queue is ready, when --timeout passes,
or when the queue is deleted. Nothing is received or sent: a message seen
waiting may be taken by another receiver before yours (the depth printed is
the daemon's count when it answered). --timeout 0s asks how it is now.
With --json: {\"address\":ADDRESS,\"ready\":\"readable\"|\"writable\",\"depth\":N}.
--connect-timeout bounds only connecting, never this wait. Only message queues:
a ring: is waited on in its shared memory, which ipcd never watches (recv
--timeout waits for a message and takes it).

Examples:
  ipcctl wait-for mq:jobs --readable && ipcctl recv mq:jobs --nonblock
  ipcctl wait-for mq:jobs --writable --timeout 5s   # exit 1 if still full after 5s

Exit status: 0 ready, 1 not ready within --timeout (timed-out), 2 error (the
queue deleted while waiting: not-found; not a queue: wrong-kind), 64 usage error.")]
    WaitFor(WaitForArgs),

    /// Write bytes into a shared-memory segment at an offset
    #[command(after_help = shm::WRITE_HELP)]
    Write(WriteArgs),

    /// Print bytes of a shared-memory segment, raw or as a hex listing
    #[command(after_help = shm::READ_HELP)]
    Read(ReadArgs),

    /// Grow a shared-memory segment (segments never shrink)
    #[command(after_help = shm::RESIZE_HELP)]
    Resize(ResizeArgs),

    /// Run a command with its standard input/output joined to pipes or FIFOs
    #[command(after_help = "\
The command's standard input reads from --stdin, its standard output writes to
--stdout; what is not given is inherited. A fifo: for --stdin is handed over once
a writer has written (or come and gone); a fifo: for --stdout once a reader has it
open. --timeout bounds those waits, and with a pipe: the wait for its first
bytes (--stdin) or for room in it (--stdout). ipcctl waits for the command and
exits with its status (128+N if signal N killed it; 127 if it was not found, 126
if it could not run). Signals sent to ipcctl (kill) are passed on; those from the
terminal reach the command directly. If ipcctl itself dies (kill -9), the command
is killed too, so it does not go on reading the pipe unseen (a set-user-ID
command, such as sudo, is the exception: the kernel drops that for it). --json does not apply: the output is the
command's.

Examples:
  ipcctl exec --stdin pipe:a --stdout pipe:b -- tr a-z A-Z
  ipcctl exec --stdout pipe:logs -- make
  ipcctl exec --stdin fifo:jobs --timeout 10s -- ./worker
  ipcctl exec --stdin pipe:in --timeout 2s -- wc -l  # exit 1 if pipe:in stays empty

Exit status: the command's; before it runs: 1 nothing within --timeout,
2 error (a bad ADDRESS too; a message queue: wrong-kind), 64 usage error.")]
    Exec(ExecArgs),

    /// Runs exec's command so that it dies with the ipcctl that started it (internal)
    #[command(hide = true)]
    ExecChild(ExecChildArgs),

    /// Take a semaphore permit or a lock (given back when ipcctl exits; see with)
    #[command(after_help = sync::ACQUIRE_HELP)]
    Acquire(AcquireArgs),

    /// Take a semaphore permit for good (consume a posted item or signal)
    #[command(after_help = sync::TAKE_HELP)]
    Take(AcquireArgs),

    /// Post a semaphore permit (or release a lock this connection holds)
    #[command(after_help = sync::RELEASE_HELP)]
    Release {
        /// Semaphore or lock address, sem:NAME or lock:NAME
        address: String,
    },

    /// Run a command holding a semaphore permit or a lock, then give it back
    #[command(after_help = sync::WITH_HELP)]
    With(WithArgs),

    /// Set an event: wake its waiters
    #[command(after_help = sync::SET_HELP)]
    Set {
        /// Event address, event:NAME
        address: String,
    },

    /// Clear an event: later waits wait
    #[command(after_help = sync::SET_HELP)]
    Clear {
        /// Event address, event:NAME
        address: String,
    },

    /// Wait for an event to be set, or at a barrier for all its parties
    #[command(after_help = sync::WAIT_HELP)]
    Wait(WaitArgs),

    /// Repair a broken barrier
    #[command(after_help = sync::RESET_HELP)]
    Reset {
        /// Barrier address, barrier:NAME
        address: String,
    },

    /// Print a signal channel's events as they are raised (send raises one)
    #[command(after_help = signal::WATCH_HELP)]
    Watch(WatchArgs),

    /// Wait until every message put on a work queue has been acknowledged
    #[command(after_help = queue::JOIN_HELP)]
    Join(JoinArgs),

    /// Have ipcd send a real signal to a process on every event of a channel
    #[command(after_help = signal::SUBSCRIBE_HELP)]
    Subscribe(SubscribeArgs),

    /// Stop signalling a process on a channel's events
    #[command(after_help = signal::SUBSCRIBE_HELP)]
    Unsubscribe(UnsubscribeArgs),

    /// Send a real signal to a process through ipcd (your own processes only)
    #[command(after_help = signal::KILL_HELP)]
    Kill(KillArgs),

    /// Measure throughput and latency
    Bench(bench::BenchArgs),

    /// The second process of `ipcctl bench` (internal)
    #[command(hide = true)]
    BenchPeer(bench::PeerArgs),

    /// Print the help of ipcctl or of one of its commands
    #[command(after_help = "\
Examples:
  ipcctl help
  ipcctl help recv          # the same as: ipcctl recv --help

Exit status: 0 success, 64 unknown command.")]
    Help {
        /// The command to explain
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
    },

    /// Print a shell completion script for ipcctl (bash, zsh or fish)
    #[command(after_help = docs::COMPLETIONS_HELP)]
    Completions(CompletionsArgs),

    /// Write ipcctl's manual pages: ipcctl(1) and ipcctl-COMMAND(1)
    #[command(after_help = docs::MAN_HELP)]
    Man(ManArgs),
}

/// `ipcctl create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Address of the new object, KIND:NAME (e.g. mq:jobs, pipe:logs, shm:buf, sem:gpu)
    pub address: String,

    /// shm only, and required for it: the segment's size in bytes, e.g. 4096,
    /// 64KiB, 1MiB, 2GiB
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub size: Option<u64>,

    /// mq: maximum number of messages [default: the kernel's, usually 10; more
    /// than fs.mqueue.msg_max (10 by default) needs CAP_SYS_RESOURCE].
    /// pipe: buffer size in bytes, e.g. 65536, 256KiB, 1MiB (rounded up to a
    /// power of two pages; at most /proc/sys/fs/pipe-max-size) [default: 64KiB].
    /// queue: most messages held, unacknowledged ones included [default: no
    /// limit]. Not for fifo
    #[arg(long, value_name = "N|BYTES", value_parser = parse_size)]
    pub capacity: Option<u32>,

    /// mq only: maximum size of one message in bytes [default: the kernel's,
    /// usually 8192]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub msg_size: Option<u32>,

    /// fifo only: ipcd holds the FIFO open, so writers need not wait for a
    /// reader and bytes wait in the kernel buffer until one comes
    #[arg(long)]
    pub buffered: bool,

    /// ring only: how many messages can wait at once, a power of two from 2 to
    /// 1048576 [default: 256]
    #[arg(long, value_name = "N", value_parser = parse_size)]
    pub slots: Option<u32>,

    /// ring only: the largest message in bytes, 1 to 64MiB (e.g. 512, 4KiB)
    /// [default: 1KiB]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub slot_size: Option<u32>,

    /// Permission bits in octal, e.g. 0660: read lets a user or group receive,
    /// write lets them send (a ring needs both) [default: 0600]
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub mode: Option<u32>,

    /// Tie the object to this ipcctl: it keeps running and the object is removed
    /// when it exits (Ctrl-C) or the daemon stops
    #[arg(long)]
    pub session: bool,

    /// Register an existing kernel object of this name instead of creating one
    /// (mq, fifo, shm, ring; an adopted queue keeps its capacity and message
    /// size, a segment its size, a ring its slots)
    #[arg(long)]
    pub adopt: bool,

    /// Permits free at creation, 0 to 2147483647 (sem: only; default 1)
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=i32::MAX as i64))]
    pub initial: Option<u32>,

    /// A bounded semaphore's largest value, 1 to 2147483647: a release above it
    /// is refused (sem: only)
    #[arg(long, value_name = "M",
          value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pub max: Option<u32>,

    /// The holder may acquire it again (lock: only; matters to programs that
    /// hold one connection: every ipcctl is a new one)
    #[arg(long)]
    pub reentrant: bool,

    /// Start set (event: only)
    #[arg(long)]
    pub set: bool,

    /// Parties that must arrive, 1 or more (barrier: only; required)
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub parties: Option<u32>,

    /// signal: only: raise the channel whenever ipcd receives this real signal
    /// (SIGUSR2, SIGWINCH, SIGPWR, SIGRTMIN+N, …)
    #[arg(long, value_name = "SIGNAL", value_parser = parse_signal)]
    pub bind: Option<i32>,

    /// The flags of work queues.
    #[command(flatten)]
    pub queue: QueueCreateArgs,
}

/// `ipcctl delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Object addresses, KIND:NAME (e.g. mq:jobs pipe:logs)
    #[arg(
        value_name = "ADDRESS",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub addresses: Vec<String>,

    /// Delete every object you own (of --kind only, if given)
    #[arg(long)]
    pub all: bool,

    /// With --all: only objects of this kind (mq, pipe, fifo, shm, ring, sem, lock,
    /// event, barrier, signal, queue)
    #[arg(long, value_name = "KIND", requires = "all")]
    pub kind: Option<String>,
}

/// `ipcctl wait-for`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("ready").args(["readable", "writable"]).required(true))]
pub struct WaitForArgs {
    /// Queue address, mq:NAME
    pub address: String,

    /// Wait until at least one message is waiting
    #[arg(long)]
    pub readable: bool,

    /// Wait until there is room for at least one message
    #[arg(long)]
    pub writable: bool,

    /// Wait at most this long (e.g. 500ms, 2s), then exit 1 [default: no limit]
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

#[cfg(test)]
mod tests;
