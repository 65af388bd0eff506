//! The command line of work queues (`queue:NAME`): `create`'s queue flags,
//! `join`, and the help texts that teach what a queue does (kept here so
//! `cli.rs` stays a readable size).

use std::time::Duration;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use ipc_client::{Fsync, QueueOrder};

use crate::parse::{parse_bytes, parse_duration};

/// `ipcctl join --help`, after the options.
pub const JOIN_HELP: &str = "\
Waits until every message put on the queue so far has been acknowledged by
the consumers that got them (Python's JoinableQueue.join): a producer's way to
know that the work it handed out is done. Messages a consumer got but did not
acknowledge (recv without --ack, a consumer that died) go back to the queue,
so join waits for them to be got and acknowledged again. Prints nothing; with
--json {\"joined\":ADDRESS}.

Examples:
  seq 100 | ipcctl send queue:jobs --lines && ipcctl join queue:jobs
  ipcctl join queue:jobs --timeout 30s || echo 'the workers are behind'

Exit status: 0 all acknowledged, 1 not within --timeout (timed-out), 2 error
(the queue deleted while waiting: not-found; no write permission:
permission-denied; not a queue: wrong-kind), 64 usage error.";

/// `ipcctl create`'s flags for queues.
#[derive(Debug, Args)]
#[command(next_help_heading = "Queue options (queue: only)")]
pub struct QueueCreateArgs {
    /// The most bytes held, queued and unacknowledged, each message counting
    /// its length plus 64 (e.g. 64MiB) [default: ipcd's]
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_bytes: Option<u64>,

    /// The order messages are delivered in [default: fifo]
    #[arg(long, value_name = "ORDER", value_parser = order_parser())]
    pub order: Option<QueueOrder>,

    /// Move a message delivered N times without an acknowledgement to
    /// queue:NAME.dead [default: 0, redelivered forever]
    #[arg(long, value_name = "N")]
    pub max_deliveries: Option<u32>,

    /// Journal the queue in ipcd's state directory: its messages survive ipcd
    /// stopping or crashing
    #[arg(long)]
    pub durable: bool,

    /// With --durable: when the journal reaches the disk [default: batch]
    #[arg(long, value_name = "WHEN", requires = "durable", value_parser = fsync_parser())]
    pub fsync: Option<Fsync>,
}

impl QueueCreateArgs {
    /// The queue flags given, by name: what another kind refuses.
    pub fn given(&self) -> Vec<&'static str> {
        [
            (self.max_bytes.is_some(), "--max-bytes"),
            (self.order.is_some(), "--order"),
            (self.max_deliveries.is_some(), "--max-deliveries"),
            (self.durable, "--durable"),
            (self.fsync.is_some(), "--fsync"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }
}

/// `--order fifo|lifo|priority`.
fn order_parser() -> impl clap::builder::TypedValueParser<Value = QueueOrder> {
    PossibleValuesParser::new(["fifo", "lifo", "priority"]).map(|s| match s.as_str() {
        "lifo" => QueueOrder::Lifo,
        "priority" => QueueOrder::Priority,
        _ => QueueOrder::Fifo,
    })
}

/// `--fsync always|batch|never`.
fn fsync_parser() -> impl clap::builder::TypedValueParser<Value = Fsync> {
    PossibleValuesParser::new(["always", "batch", "never"]).map(|s| match s.as_str() {
        "always" => Fsync::Always,
        "never" => Fsync::Never,
        _ => Fsync::Batch,
    })
}

/// `ipcctl join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Queue address, queue:NAME
    pub address: String,

    /// Wait at most this long (e.g. 500ms, 30s), then exit 1 [default: no limit]
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}
