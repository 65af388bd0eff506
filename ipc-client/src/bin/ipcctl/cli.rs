//! The command line: clap definitions, help text and value parsers.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipc_client::Kind;

use crate::bench;

const LONG_ABOUT: &str = "\
Control ipcd and use the IPC objects it hosts.

ipcd keeps named IPC objects (POSIX message queues, addressed as mq:NAME), checks
who may use them and hands out file descriptors. ipcctl creates, lists, inspects
and deletes them, and sends and receives messages; the messages go through the
kernel object directly, not through the daemon.";

const AFTER_HELP: &str = "\
Exit status:
  0   success
  1   timed out, or nothing to receive / no room to send (--timeout, --nonblock)
  2   any other error, reported on stderr as: ipcctl: MESSAGE (error-code)
  64  usage error

Socket: --socket, else $IPCD_SOCKET, else $XDG_RUNTIME_DIR/ipcd/ipcd.sock,
else /run/ipcd/ipcd.sock.

Examples:
  ipcctl create mq:jobs --capacity 100 --msg-size 1024 --mode 0660
  echo 'build #42' | ipcctl send mq:jobs
  ipcctl recv mq:jobs --timeout 2s
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
    max_term_width = 100
)]
pub struct Cli {
    /// Path of ipcd's socket [default: $XDG_RUNTIME_DIR/ipcd/ipcd.sock, else /run/ipcd/ipcd.sock]
    #[arg(
        long,
        global = true,
        env = "IPCD_SOCKET",
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub socket: Option<PathBuf>,

    /// Print JSON instead of text (for recv: one JSON object per message and line)
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
    #[command(after_help = "Example:\n  ipcctl ping")]
    Ping,

    /// Show the daemon's version, uptime, counters and limits
    #[command(after_help = "Example:\n  ipcctl status --json")]
    Status,

    /// List objects, of one kind or all
    #[command(after_help = "Examples:\n  ipcctl list\n  ipcctl list mq --json")]
    List {
        /// Only objects of this kind (mq)
        #[arg(value_parser = parse_kind)]
        kind: Option<Kind>,
    },

    /// Show one object's details: depth, sizes, owner, mode, lifetime, creator
    #[command(after_help = "Example:\n  ipcctl stat mq:jobs")]
    Stat {
        /// Object address, KIND:NAME (e.g. mq:jobs)
        address: String,
    },

    /// Create an object (a message queue for mq:NAME)
    #[command(after_help = "\
Examples:
  ipcctl create mq:jobs --capacity 100 --msg-size 1024 --mode 0660
  ipcctl create mq:scratch --session     # removed when ipcctl is interrupted")]
    Create(CreateArgs),

    /// Delete an object and its kernel object
    #[command(after_help = "Example:\n  ipcctl delete mq:jobs")]
    Delete {
        /// Object address, KIND:NAME (e.g. mq:jobs)
        address: String,
    },

    /// Send a message to a queue
    #[command(after_help = "\
Examples:
  ipcctl send mq:jobs 'build #42' --priority 5
  ipcctl send mq:jobs < request.bin          # all of stdin as one message
  seq 10 | ipcctl send mq:jobs --lines       # one message per line
  ipcctl send mq:jobs hello --timeout 500ms  # exit 1 if still full after 500ms")]
    Send(SendArgs),

    /// Receive messages from a queue and print them, one per line
    #[command(after_help = "\
Examples:
  ipcctl recv mq:jobs                    # wait for one message
  ipcctl recv mq:jobs --nonblock         # exit 1 at once if the queue is empty
  ipcctl recv mq:jobs --follow --json    # every message as a JSON line, until interrupted
  ipcctl recv mq:jobs --count 10 --timeout 2s
  ipcctl recv mq:blobs --raw > blob.bin")]
    Recv(RecvArgs),

    /// Measure throughput and latency
    Bench(bench::BenchArgs),

    /// The second process of `ipcctl bench` (internal)
    #[command(hide = true)]
    BenchPeer(bench::PeerArgs),
}

/// `ipcctl create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Address of the new object, KIND:NAME (e.g. mq:jobs)
    pub address: String,

    /// Maximum number of messages in the queue [default: the kernel's, usually 10]
    #[arg(long, value_name = "N")]
    pub capacity: Option<u32>,

    /// Maximum size of one message in bytes [default: the kernel's, usually 8192]
    #[arg(long, value_name = "BYTES")]
    pub msg_size: Option<u32>,

    /// Permission bits in octal, e.g. 0660: read lets a user or group receive,
    /// write lets them send [default: 0600]
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub mode: Option<u32>,

    /// Tie the object to this ipcctl: it keeps running and the object is removed
    /// when it exits (Ctrl-C) or the daemon stops
    #[arg(long)]
    pub session: bool,

    /// Register an existing kernel object of this name instead of creating one
    #[arg(long)]
    pub adopt: bool,
}

/// `ipcctl send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Queue address, KIND:NAME (e.g. mq:jobs)
    pub address: String,

    /// The message; without it, all of standard input is sent as one message
    #[arg(conflicts_with = "lines")]
    pub message: Option<OsString>,

    /// Send each line of standard input as a message of its own (without the newline)
    #[arg(long)]
    pub lines: bool,

    /// Priority, 0-32767: higher-priority messages are received first
    #[arg(long, short, value_name = "P", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..32768))]
    pub priority: u32,

    /// Wait at most this long for room in a full queue, then exit 1 (e.g. 500ms, 2s)
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration, conflicts_with = "nonblock")]
    pub timeout: Option<Duration>,

    /// Don't wait: exit 1 at once if the queue is full
    #[arg(long, short)]
    pub nonblock: bool,
}

/// `ipcctl recv`.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Queue address, KIND:NAME (e.g. mq:jobs)
    pub address: String,

    /// Wait at most this long for each message (e.g. 500ms, 2s); exit 1 if none came
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration, conflicts_with = "nonblock")]
    pub timeout: Option<Duration>,

    /// Don't wait: take what is there now; exit 1 if the queue is empty
    #[arg(long, short)]
    pub nonblock: bool,

    /// Receive up to N messages [default: 1]
    #[arg(long, short, value_name = "N", conflicts_with = "follow",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Keep receiving until interrupted (with --timeout: until idle that long;
    /// with --nonblock: until the queue is empty)
    #[arg(long, short)]
    pub follow: bool,

    /// Write each message's bytes exactly as received, adding nothing (no newline)
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
}

/// How long a send or receive may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// As long as it takes.
    Forever,
    /// At most this long.
    Timeout(Duration),
    /// Not at all.
    Never,
}

impl Wait {
    /// From the `--timeout` and `--nonblock` flags (clap makes them exclusive).
    pub fn from_flags(timeout: Option<Duration>, nonblock: bool) -> Self {
        match (timeout, nonblock) {
            (_, true) => Wait::Never,
            (Some(t), false) => Wait::Timeout(t),
            (None, false) => Wait::Forever,
        }
    }
}

/// Parses a duration such as `500ms`, `2s` or `1m 30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (examples: 500ms, 2s, 1m30s)"))
}

/// Parses permission bits written in octal: `0660`, `660` or `0o660`, at most `0777`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("'{s}' is not an octal mode (examples: 0660, 600)"))?;
    if digits.is_empty() || mode > 0o777 {
        return Err(format!(
            "'{s}' is not a permission mode between 0000 and 0777"
        ));
    }
    Ok(mode)
}

/// Parses an object kind (`mq`).
pub fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse::<Kind>().map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert_eq!(parse_mode("0"), Ok(0));
        assert!(parse_mode("0688").is_err());
        assert!(
            parse_mode("1777")
                .unwrap_err()
                .contains("between 0000 and 0777")
        );
        assert!(parse_mode("").is_err());
        assert!(parse_mode("0o").is_err());
        assert!(parse_mode("-1").is_err());
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5").unwrap_err().contains("examples"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn kinds_are_checked_locally() {
        assert_eq!(parse_kind("mq"), Ok(Kind::Mq));
        assert_eq!(parse_kind("pipe"), Ok(Kind::Pipe));
        assert!(
            parse_kind("nope")
                .unwrap_err()
                .contains("known kinds: mq, pipe, fifo")
        );
    }

    #[test]
    fn waits_come_from_two_flags() {
        let t = Duration::from_secs(1);
        assert_eq!(Wait::from_flags(None, false), Wait::Forever);
        assert_eq!(Wait::from_flags(Some(t), false), Wait::Timeout(t));
        assert_eq!(Wait::from_flags(None, true), Wait::Never);
    }

    #[test]
    fn flags_parse_in_any_position() {
        let cli = Cli::try_parse_from([
            "ipcctl", "recv", "mq:a", "--json", "-c", "3", "--socket", "/s",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.socket.as_deref(), Some(std::path::Path::new("/s")));
        let Command::Recv(r) = cli.command else {
            panic!()
        };
        assert_eq!(r.count, Some(3));
    }

    #[test]
    fn conflicting_flags_are_usage_errors() {
        for args in [
            &["ipcctl", "recv", "mq:a", "--raw", "--json"][..],
            &["ipcctl", "recv", "mq:a", "--timeout", "1s", "--nonblock"],
            &["ipcctl", "recv", "mq:a", "--count", "2", "--follow"],
            &["ipcctl", "recv", "mq:a", "--count", "0"],
            &["ipcctl", "send", "mq:a", "hi", "--lines"],
            &["ipcctl", "send", "mq:a", "hi", "--priority", "32768"],
            &["ipcctl", "create", "mq:a", "--mode", "999"],
            &["ipcctl", "list", "nope"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
