//! The `queue` kind: work queues hosted in ipcd (`queue:NAME`), the one
//! kind whose messages pass through the daemon, against what a daemon hop
//! and other queues cost in the same run. One producer (this process) and
//! one consumer (a `bench-peer`), messages of 64 B carrying a sequence
//! number the consumer checks ([`sequenced::Sequenced`]): a message lost,
//! repeated or out of order fails the bench. Each comparison alternates
//! its two mechanisms in ABBA blocks between the same two processes
//! ([`pairs`], run by [`crate::datapath`]):
//!
//! - **relay**: a minimal relay process ([`relay`]) copying length-framed
//!   messages between two Unix-socket connections (each side writes a
//!   message with one `write`), against the queue put through a
//!   [`QueueSender`](ipc_client::QueueSender) (pipelined, one message per
//!   Put) and taken through a [`QueueReceiver`](ipc_client::QueueReceiver)
//!   (its defaults: Gets in flight, each delivery acknowledged, acks
//!   batched). Round trip (the consumer answers on a second queue, or back
//!   through the relay), and one-way twice: with the sender corked (16 Puts
//!   per write) and as built by default (each Put written at once).
//!   Targets: one-way ≥ 0.8× the relay, round-trip p50 ≤ 1.3×.
//! - **batched**: the queue with Puts of 64 messages (a Get takes up to 64
//!   anyway) against a POSIX queue one message per call. Target ≥ 1 M msgs/s.
//! - **durable**: queues journalled with `fsync batch` (group commit) and
//!   `fsync always`, Puts of 64, at most 64 in flight (a durable Put waits
//!   for the journal, and ipcd lets one connection have 64 requests
//!   waiting), blocks of 100 000 messages: ipcd delivers a message as soon
//!   as it is put, so the consumer can run ahead of the disk by the 4096
//!   messages in flight, a few % of a block. Target for `batch` ≥ 100 k msgs/s.
//! - **Redis**: `LPUSH`/`BRPOP`, one command per message and no pipelining,
//!   on a private `redis-server` ([`redis`]) if one is installed, against
//!   the queue used the same way: `queue_put`, and `queue_ack_get` of one
//!   (acknowledging the one before), each answered before the next request.
//! - **memory** ([`memory`]): ipcd's RSS growth for 1 M queued messages,
//!   target ≤ 200 MiB; once per bench.
//!
//! Placement follows ipcd: with ipcd pinned to one CPU, `same` runs the
//! producer and consumer on ipcd's CPU, `split` both on another one; the
//! relay and Redis, the stand-ins for a daemon, are pinned to ipcd's CPU.
//! The client queues (`queue:ipcbench-<pid>-<n>`, lifetime session) are
//! made per placement and deleted after it.

mod ends;
mod memory;
mod pairs;
mod redis;
mod relay;
mod rows;
mod sequenced;

use anyhow::Context as _;
use ipc_client::{Client, Fsync, QueueOptions};

use crate::abba::Mechanism;
use crate::channel::Sides;
use crate::ctx::{Ctx, Options};
use crate::datapath::{self, RatioTargets, Shape};
use crate::kind::KindBench;
use crate::objects;
use crate::peer::{PeerArgs, PeerClient};
use crate::placement::{self, Placement};
use crate::report::{Row, Target};
use pairs::{Pair, Producer, Queues, Yardstick};
use rows::OneWay;

/// Every message's size.
pub const SIZE: usize = 64;
/// The relay comparison's goals: round trip ≤ 1.3×, one-way ≥ 0.8×.
const RELAY_TARGETS: RatioTargets = RatioTargets {
    max_round_trip: 1.3,
    min_throughput: 0.8,
};
/// Puts per write of the corked sender in the one-way runs against the relay.
const CORK: usize = 16;
/// Messages per Put (and at most per Get) in the batched and durable runs.
const BATCH: usize = 64;
/// Puts in flight for durable queues and the corked sender: ipcd's limit of
/// waiting requests per connection (a Put waits when the queue is full).
const DURABLE_WINDOW: usize = 64;
/// Batched one-way goal, msgs/s.
const MIN_BATCHED: f64 = 1e6;
/// Durable (`fsync batch`) one-way goal, msgs/s.
const MIN_DURABLE: f64 = 1e5;

/// The `queue` entry of the kinds table.
pub struct Queue;

impl KindBench for Queue {
    fn name(&self) -> &'static str {
        pairs::KIND
    }

    fn about(&self) -> &'static str {
        "work queues through ipcd vs a minimal socket relay, a POSIX queue and Redis; \
         batched, durable, and ipcd's memory for 1 M queued messages"
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        let opts = Options {
            sizes: vec![SIZE],
            ..ctx.opts.clone()
        };
        let ipcd_cpus = ctx.daemon.and_then(|d| d.cpus());
        let (cpu, label) =
            placement::towards_daemon(&ctx.placement, ipcd_cpus.as_deref(), ctx.allowed);
        // The stand-ins for a daemon go where ipcd is, when it is pinned.
        let hop_cpu = match (ctx.placement.bench, ipcd_cpus.as_deref()) {
            (Some(_), Some(&[d])) => Some(d),
            _ => None,
        };
        let placed = Ctx {
            opts: &opts,
            socket: ctx.socket,
            progress: ctx.progress,
            placement: Placement {
                name: static_label(&label),
                bench: cpu,
                peer: cpu,
            },
            allowed: ctx.allowed,
            daemon: ctx.daemon,
            notes: ctx.notes,
        };
        if let (Some(cpu), Some(hop)) = (cpu, hop_cpu) {
            ctx.note(format!(
                "queue ({label}): producer and consumer on CPU {cpu}; ipcd, the relay and \
                 redis-server on CPU {hop}"
            ));
        }
        let mut client = ctx.connect()?;
        let mut rows = ctx.with_daemon(|_| measure(&placed, &mut client, hop_cpu))?;
        for row in &mut rows {
            row.placement.clone_from(&label);
        }
        rows.extend(memory::rows(ctx)?);
        Ok(rows)
    }

    fn open_peer(&self, args: &PeerArgs, _client: &mut PeerClient) -> anyhow::Result<Sides> {
        pairs::open_peer(args)
    }
}

/// The placement label as the rows' `'static` name.
fn static_label(label: &str) -> &'static str {
    match label {
        "same" => "same",
        "split" => "split",
        "ipcd any" => "ipcd any",
        _ => Placement::ANY.name,
    }
}

/// Creates a queue for the bench (lifetime session, mode 0600).
fn create(client: &mut Client, name: &str, opts: &QueueOptions) -> ipc_client::Result<()> {
    client.create_queue(name, &opts.clone().session()).map(drop)
}

/// Every comparison but memory, on queues made for them and deleted after.
fn measure(ctx: &Ctx<'_>, client: &mut Client, hop_cpu: Option<usize>) -> anyhow::Result<Vec<Row>> {
    let plain = QueueOptions::new();
    let [ping, pong, stream] =
        objects::create_three(client, "queue", |c, name| create(c, name, &plain))?;
    let queues = Queues {
        ping_pong: Some((ping.clone(), pong.clone())),
        stream: stream.clone(),
    };
    let rows = compare(ctx, client, &queues, hop_cpu);
    let deleted = objects::delete_all(client, "queue", &[ping, pong, stream]);
    let rows = rows?;
    deleted?;
    Ok(rows)
}

fn compare(
    ctx: &Ctx<'_>,
    client: &mut Client,
    queues: &Queues,
    hop_cpu: Option<usize>,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = against_relay(ctx, queues, hop_cpu)?;
    rows.extend(batched(ctx, queues)?);
    rows.extend(durable(ctx, client)?);
    rows.extend(against_redis(ctx, queues, hop_cpu)?);
    Ok(rows)
}

/// The queue against the relay: round trip and one-way with a corked
/// sender (the shared rows), then one-way with the default sender.
fn against_relay(
    ctx: &Ctx<'_>,
    queues: &Queues,
    hop_cpu: Option<usize>,
) -> anyhow::Result<Vec<Row>> {
    let corked = Producer::Pipelined {
        batch: 1,
        window: Some(DURABLE_WINDOW),
        cork: CORK,
    };
    let mut relay = Pair {
        yardstick: Yardstick::Relay { cpu: hop_cpu },
        queues: queues.clone(),
        producer: corked,
        shape: shape(|_| 10_000, None, Some(RELAY_TARGETS)),
    };
    let mut rows = datapath::measure(ctx, &mut relay)?;
    let corked_label = format!("{}, cork {CORK}", rows::QUEUE);
    rows::relabel_relay_rows(&mut rows, &corked_label);
    rows::relabel_relay_notes(ctx, &corked_label);
    let mut default = Pair {
        queues: one_way(queues),
        producer: Producer::DEFAULT_SENDER,
        ..relay
    };
    let runs = one_way_runs(ctx, "one-way vs the relay, default sender", &mut default)?;
    let labels = [rows::RELAY, &format!("{}, cork 1 (default)", rows::QUEUE)];
    rows::note_reordered(ctx, &runs, labels);
    let mut plain = runs.row(Mechanism::Client, "one-way", labels[1], true);
    if let Some(ratio) = plain.vs_raw {
        let goal = format!("≥ {:.2}× relay", RELAY_TARGETS.min_throughput);
        plain.hold_to(Target::at_least(
            goal,
            "vs_raw",
            RELAY_TARGETS.min_throughput,
            ratio,
        ));
    }
    // Beside the corked one-way row.
    let at = rows
        .iter()
        .position(|r| r.mechanism == corked_label)
        .map_or(rows.len(), |i| i + 1);
    rows.insert(at, plain);
    Ok(rows)
}

/// `queues` for one-way runs only.
fn one_way(queues: &Queues) -> Queues {
    Queues {
        ping_pong: None,
        stream: queues.stream.clone(),
    }
}

/// Puts and Gets of [`BATCH`] messages against a POSIX queue one message per call.
fn batched(ctx: &Ctx<'_>, queues: &Queues) -> anyhow::Result<Vec<Row>> {
    let mut pair = Pair {
        yardstick: Yardstick::Mq {
            capacity: ctx.opts.capacity,
        },
        queues: one_way(queues),
        producer: Producer::Pipelined {
            batch: BATCH,
            window: None,
            cork: 1,
        },
        shape: shape(|_| 20_000, None, None),
    };
    let runs = one_way_runs(ctx, "batched ×64 vs mq", &mut pair)?;
    let labels = ["mq raw, one per call", &format!("{} ×{BATCH}", rows::QUEUE)];
    rows::note_reordered(ctx, &runs, labels);
    let mq = runs.row(Mechanism::Raw, "one-way", labels[0], false);
    let mut ours = runs.row(Mechanism::Client, "one-way", labels[1], true);
    hold_rate(&mut ours, "≥ 1 M msgs/s", MIN_BATCHED);
    Ok(vec![mq, ours])
}

/// A [`Shape`]: `block` messages per block, at most `max_messages` per run
/// and mechanism.
fn shape(
    block: fn(usize) -> u64,
    max_messages: Option<u64>,
    targets: Option<RatioTargets>,
) -> Shape {
    Shape {
        block,
        max_run_bytes: max_messages.map(|n| n * SIZE as u64),
        bulk: false,
        targets,
    }
}

/// `--repeat` one-way runs of `pair`.
fn one_way_runs(ctx: &Ctx<'_>, what: &str, pair: &mut Pair) -> anyhow::Result<OneWay> {
    ctx.progress.inc_length(ctx.opts.repeat as u64);
    let mut runs = OneWay::default();
    for round in 1..=ctx.opts.repeat {
        ctx.step(format!("queue: {what}, run {round}"));
        runs.add(datapath::throughput_run(ctx, pair, SIZE)?);
        ctx.done();
    }
    Ok(runs)
}

/// Holds `row`'s rate to at least `min` msgs/s.
fn hold_rate(row: &mut Row, goal: &str, min: f64) {
    if let Some(rate) = row.per_second {
        row.hold_to(Target::at_least(goal, "per_second", min, rate));
    }
}

/// `fsync batch` against `fsync always`, on two durable queues made for them.
fn durable(ctx: &Ctx<'_>, client: &mut Client) -> anyhow::Result<Vec<Row>> {
    let (batch, always) = (objects::unique_name(), objects::unique_name());
    create(client, &batch, &QueueOptions::new().durable(Fsync::Batch))
        .with_context(|| format!("cannot create the durable queue:{batch}"))?;
    let made = create(client, &always, &QueueOptions::new().durable(Fsync::Always))
        .with_context(|| format!("cannot create the durable queue:{always}"));
    let producer = Producer::Pipelined {
        batch: BATCH,
        window: Some(DURABLE_WINDOW),
        cork: 1,
    };
    let runs = made.and_then(|()| {
        let mut pair = Pair {
            yardstick: Yardstick::Queue {
                name: batch.clone(),
                producer,
            },
            queues: Queues {
                ping_pong: None,
                stream: always.clone(),
            },
            producer,
            // A durable queue delivers a message once it is put and answers
            // the Put once the journal holds it: the consumer may run ahead
            // of the disk by the sender's window (64 Puts of 64), so blocks
            // are long enough for that burst to weigh little.
            shape: shape(|_| 100_000, None, None),
        };
        one_way_runs(ctx, "durable, fsync batch vs always", &mut pair)
    });
    let deleted = objects::delete_all(client, "queue", &[batch, always]);
    let runs = runs?;
    deleted?;
    let labels = ["batch", "always"].map(|f| format!("{} fsync {f} ×{BATCH}", rows::QUEUE));
    rows::note_reordered(ctx, &runs, labels.each_ref().map(String::as_str));
    let mut grouped = runs.row(Mechanism::Raw, "one-way, durable", &labels[0], false);
    hold_rate(&mut grouped, "≥ 100 k msgs/s", MIN_DURABLE);
    let each = runs.row(Mechanism::Client, "one-way, durable", &labels[1], false);
    Ok(vec![grouped, each])
}

/// Redis `LPUSH`/`BRPOP` against the queue one request per message, on a
/// private `redis-server` if one is installed.
fn against_redis(
    ctx: &Ctx<'_>,
    queues: &Queues,
    hop_cpu: Option<usize>,
) -> anyhow::Result<Vec<Row>> {
    const MEASURE: &str = "one-way, one per call";
    const MECHANISMS: [&str; 2] = ["redis LPUSH/BRPOP", "queue put; ack+get"];
    let Some(exe) = redis::RedisServer::find() else {
        let why = format!("{} not installed", redis::SERVER);
        ctx.note(format!("queue: the Redis rows were skipped: {why}"));
        return Ok(rows::skipped(MEASURE, &MECHANISMS, &why));
    };
    let server = redis::RedisServer::start(&exe, hop_cpu)?;
    let mut pair = Pair {
        yardstick: Yardstick::Redis {
            socket: server.socket().to_owned(),
        },
        queues: Queues {
            ping_pong: None,
            stream: queues.stream.clone(),
        },
        producer: Producer::Calls,
        shape: shape(|_| 2_000, Some(20_000), None),
    };
    let runs = one_way_runs(ctx, "one per call vs Redis", &mut pair)?;
    drop(server);
    rows::note_reordered(ctx, &runs, MECHANISMS);
    Ok(vec![
        runs.row(Mechanism::Raw, MEASURE, MECHANISMS[0], false),
        runs.row(Mechanism::Client, MEASURE, MECHANISMS[1], true),
    ])
}
