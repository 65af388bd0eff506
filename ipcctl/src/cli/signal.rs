//! The command line of the signal channels (`signal:NAME`): watch,
//! subscribe and unsubscribe a process, and `kill`, with their help texts.

use std::time::Duration;

use clap::Args;

use crate::parse::{parse_count, parse_duration};

/// A signal name or number as clap parses it.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    ipc_client::protocol::kinds::signal::parse_signal(s)
}

/// `ipcctl watch --help`, after the options.
pub const WATCH_HELP: &str = "\
Subscribes this ipcctl's connection to the channel and prints each event raised
from then on, in order, one line each:
  #SEQ TIME pid PID uid UID [SIGNAL] [: PAYLOAD]
SEQ counts the channel's events since ipcd started; SIGNAL is the real signal
that raised it (a channel bound with create --bind); PAYLOAD is what send
attached. Every event reaches every watcher: none is taken from another.
ipcd keeps up to --buffer events for a watcher that reads slower than events
come; past that the oldest are dropped and the watcher is told how many, as a
line `missed N events`, never silently. --json prints one document per line:
{\"seq\":N,\"time_ms\":MS,\"time\":ISO,\"pid\":P,\"uid\":U,\"signal\":NAME|null,
\"payload\":TEXT} (\"payload_base64\" for bytes that are not UTF-8), and
{\"missed\":N}.

Examples:
  ipcctl watch signal:reload                      # until interrupted
  ipcctl watch signal:reload --count 1 --timeout 30s && ./reload.sh
  ipcctl watch signal:reload --json | jq .payload

Exit status: 0 watched until --count events or --timeout, 1 --timeout passed
before --count events came (without --count: before any came), 2 error (the
channel deleted while watching: not-found), 64 usage error.";

/// `ipcctl subscribe --help`, after the options.
pub const SUBSCRIBE_HELP: &str = "\
ipcd sends the real signal --deliver to process --pid on every event of the
channel, for programs that only understand signals (workers that reload on
SIGHUP). ipcd holds the process by a pidfd, so a pid reused after the process
exits is never signalled; the subscription ends when the process exits (or with
unsubscribe), not when ipcctl does, and survives a restart of ipcd. You may
subscribe only processes of your own uid (as kill(2) would let you signal them;
root: any). Real signals coalesce: several events raised before the process
handles the first may reach it as one signal (channel watchers get every event).

Examples:
  ipcctl subscribe signal:reload --pid \"$(pidof myworker)\" --deliver SIGHUP
  ipcctl subscribe signal:reload --pid $$ --deliver USR1   # this shell (trap ... USR1)
  ipcctl unsubscribe signal:reload --pid $$

Exit status: 0 subscribed, 2 error (no such process: not-found; another uid's:
permission-denied), 64 usage error.";

/// `ipcctl kill --help`, after the options.
pub const KILL_HELP: &str = "\
Sends SIGNAL to PID through ipcd, which opens the process as a pidfd (a reused
pid is never signalled) and logs who asked. The same rule as kill(2): only
processes of your own uid (root: any); useful when a system ipcd's log should
record who signalled its registered workers.

Examples:
  ipcctl kill 4242 SIGTERM
  ipcctl kill 4242 HUP

Exit status: 0 sent, 2 error (no such process: not-found; another uid's:
permission-denied), 64 usage error (a bad PID or SIGNAL).";

/// `ipcctl watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Signal channel address, signal:NAME
    pub address: String,

    /// Stop after N events [default: until interrupted]
    #[arg(long, short, value_name = "N", value_parser = parse_count)]
    pub count: Option<u64>,

    /// Stop after this long in all (e.g. 30s); exit 1 if fewer than --count
    /// events (without --count: none) came by then
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Events ipcd keeps for this watcher while it is behind, 1 to 4096
    /// [default: 256]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub buffer: Option<u32>,
}

/// `ipcctl subscribe`.
#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Signal channel address, signal:NAME
    pub address: String,

    /// The process to signal on every event
    #[arg(long, value_name = "PID", allow_negative_numbers = true)]
    pub pid: i32,

    /// The signal to send it: a name (SIGHUP, HUP, SIGRTMIN+1) or a number
    #[arg(long, value_name = "SIGNAL", value_parser = parse_signal)]
    pub deliver: i32,
}

/// `ipcctl unsubscribe`.
#[derive(Debug, Args)]
pub struct UnsubscribeArgs {
    /// Signal channel address, signal:NAME
    pub address: String,

    /// The process to stop signalling
    #[arg(long, value_name = "PID", allow_negative_numbers = true)]
    pub pid: i32,
}

/// `ipcctl kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// The process
    #[arg(value_name = "PID", allow_negative_numbers = true)]
    pub pid: i32,

    /// The signal: a name (SIGTERM, TERM, SIGRTMIN+1) or a number
    #[arg(value_name = "SIGNAL", value_parser = parse_signal)]
    pub signal: i32,
}
