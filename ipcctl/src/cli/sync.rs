//! The command line of the synchronization kinds (`sem:`, `lock:`, `event:`,
//! `barrier:`): `acquire`, `take`, `release`, `with`, `set`, `clear`, `wait` and
//! `reset`, with their help texts (kept here so `cli.rs` stays a readable size).

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;

use crate::parse::parse_duration;

/// `ipcctl acquire --help`, after the options.
pub const ACQUIRE_HELP: &str = "\
Takes one permit of a semaphore, or a lock. What ipcctl acquires is held by
ipcctl's own connection to ipcd, and ipcd gives it back as soon as that
connection closes: when this ipcctl exits, a moment after it printed that it
acquired. So acquire answers \"could I take it now (or within --timeout)?\" and
leaves nothing held behind; to hold a permit or a lock while something runs,
use ipcctl with. Waiters are served first come, first served.

Prints \"acquired sem:NAME (N free)\" or \"acquired lock:NAME\"; with --json
{\"acquired\":ADDRESS,\"free\":N} (sem:) or {\"acquired\":ADDRESS,\"depth\":N} (lock:).

Examples:
  ipcctl acquire lock:deploy --nonblock || echo 'someone is deploying'
  ipcctl acquire sem:slots --timeout 5s

Exit status: 0 acquired (and given back on exit), 1 not within --timeout
(timed-out) or not free now with --nonblock (would-block), 2 error (deleted while
waiting: not-found; no permission: permission-denied; not a sem: or lock:
wrong-kind), 64 usage error.";

/// `ipcctl take --help`, after the options.
pub const TAKE_HELP: &str = "\
Takes one permit of a semaphore for good: the value goes down by one and stays
down when ipcctl exits (acquire gives its permit back then). That is how a
consumer takes an item or a signal another process posted with release.
Waiters (take and acquire alike) are served first come, first served.

Prints \"took sem:NAME (N free)\"; with --json {\"taken\":ADDRESS,\"free\":N}.

Examples:
  ipcctl take sem:jobs-ready && ./run-one-job.sh    # a consumer
  ipcctl release sem:jobs-ready                      # the producer, per job
  ipcctl take sem:jobs-ready --nonblock || echo 'nothing to do'

Exit status: 0 taken, 1 not within --timeout (timed-out) or none free now with
--nonblock (would-block), 2 error (deleted while waiting: not-found; no
permission: permission-denied; not a sem: wrong-kind), 64 usage error.";

/// `ipcctl release --help`, after the options.
pub const RELEASE_HELP: &str = "\
sem: posts one permit: the semaphore's value goes up by one (a bounded one
refuses to go above its --max: invalid-argument). That is how a signal or an
item is posted (a consumer takes it with ipcctl take), and how a permit lost
by a program that used sem_wait(3) on the kernel semaphore is given back by
hand. A permit another connection holds stays held (and is given back when
that connection closes). lock: only the connection that holds a lock may release it,
and that is never a new ipcctl (acquire's lock goes when it exits), so release
on a held lock is refused with the daemon's reason; ipcctl delete removes it.

Prints \"released sem:NAME (N free)\"; with --json {\"released\":ADDRESS,\"free\":N}
(lock: {\"released\":ADDRESS,\"depth\":N}).

Example:
  ipcctl release sem:slots

Exit status: 0 released, 2 error (above --max: invalid-argument; a lock this
ipcctl does not hold; no permission: permission-denied), 64 usage error.";

/// `ipcctl with --help`, after the options.
pub const WITH_HELP: &str = "\
Acquires a permit of a semaphore (or a lock), runs CMD while holding it, and
gives it back when CMD ends, whatever CMD's exit. The permit is held by this
ipcctl's connection, so it is given back even if ipcctl is killed (kill -9):
ipcd sees the connection drop; CMD is killed too if ipcctl dies. ipcctl exits
with CMD's status (128+N if signal N killed it; 127 if it was not found, 126
if it could not run), as exec does; signals sent to ipcctl are passed on to
CMD. --json does not apply: the output is CMD's. If ipcd itself goes away
while CMD runs (killed, restarted), the connection no longer holds the permit
(ipcd gives back what a closed connection held): ipcctl warns at once on
stderr and lets CMD finish.

Examples:
  ipcctl with lock:deploy -- ./deploy.sh
  ipcctl with sem:gpu --timeout 30s -- python train.py
  ipcctl with lock:db --nonblock -- sh -c 'pg_dump mydb > dump.sql'

Exit status: CMD's; before it runs: 1 not acquired within --timeout (or not
free now with --nonblock), 2 error (deleted while waiting: not-found; no
permission: permission-denied), 64 usage error.";

/// `ipcctl set --help` and `ipcctl clear --help`, after the options.
pub const SET_HELP: &str = "\
set wakes every waiter of the event and lets later waits pass at once until it
is cleared; clear makes waits wait again. Both print nothing; with --json
{\"set\":ADDRESS} or {\"cleared\":ADDRESS}.

Examples:
  ipcctl set event:ready
  ipcctl clear event:ready

Exit status: 0 success, 2 error (no write permission: permission-denied; not an
event: wrong-kind), 64 usage error.";

/// `ipcctl wait --help`, after the options.
pub const WAIT_HELP: &str = "\
event: waits until the event is set (at once if it is); prints nothing, with
--json {\"address\":ADDRESS,\"set\":true}.
barrier: arrives and waits until all its parties have arrived, then prints this
party's arrival index (0 for the first); with --json
{\"address\":ADDRESS,\"index\":N}. A party that leaves before the others come
(--timeout, killed, disconnected) breaks the barrier: every waiter, and every
later wait, fails with broken until ipcctl reset.

Examples:
  ipcctl wait event:ready --timeout 30s && ./start.sh
  ipcctl wait event:ready --nonblock || echo 'not ready yet'
  ipcctl wait barrier:start              # in each of the parties

Exit status: 0 set / all arrived, 1 not within --timeout (timed-out) or not set
now with --nonblock (would-block), 2 error
(a broken barrier: broken; deleted while waiting: not-found; not an event or a
barrier: wrong-kind), 64 usage error.";

/// `ipcctl reset --help`, after the options.
pub const RESET_HELP: &str = "\
Repairs a broken barrier: the parties waiting now fail with broken, and the
barrier starts afresh with nobody arrived. Prints nothing; with --json
{\"reset\":ADDRESS}.

Example:
  ipcctl reset barrier:start

Exit status: 0 success, 2 error (no write permission; not a barrier:
wrong-kind), 64 usage error.";

/// `ipcctl acquire`.
#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// Semaphore or lock address, sem:NAME or lock:NAME
    pub address: String,

    /// Wait at most this long (e.g. 500ms, 2s), then exit 1 [default: no limit]
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration, conflicts_with = "nonblock")]
    pub timeout: Option<Duration>,

    /// Do not wait: exit 1 at once if nothing is free
    #[arg(long, short)]
    pub nonblock: bool,
}

impl AcquireArgs {
    /// How long to wait: `None` for as long as it takes.
    pub fn wait(&self) -> Option<Duration> {
        if self.nonblock {
            Some(Duration::ZERO)
        } else {
            self.timeout
        }
    }
}

/// `ipcctl with`.
#[derive(Debug, Args)]
pub struct WithArgs {
    /// Semaphore or lock address, sem:NAME or lock:NAME
    pub address: String,

    /// Wait at most this long for the permit (e.g. 500ms, 2s), then exit 1
    /// without running CMD [default: no limit]
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration, conflicts_with = "nonblock")]
    pub timeout: Option<Duration>,

    /// Do not wait: exit 1 without running CMD if nothing is free
    #[arg(long, short)]
    pub nonblock: bool,

    /// The command and its arguments (put them after --)
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

impl WithArgs {
    /// How long to wait: `None` for as long as it takes.
    pub fn wait(&self) -> Option<Duration> {
        if self.nonblock {
            Some(Duration::ZERO)
        } else {
            self.timeout
        }
    }
}

/// `ipcctl wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Event or barrier address, event:NAME or barrier:NAME
    pub address: String,

    /// Wait at most this long (e.g. 500ms, 2s), then exit 1 [default: no limit]
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration, conflicts_with = "nonblock")]
    pub timeout: Option<Duration>,

    /// Events only: do not wait, exit 1 at once unless the event is set
    #[arg(long, short)]
    pub nonblock: bool,
}

impl WaitArgs {
    /// How long to wait: `None` for as long as it takes.
    pub fn wait(&self) -> Option<Duration> {
        if self.nonblock {
            Some(Duration::ZERO)
        } else {
            self.timeout
        }
    }
}
