//! The `signal` kind: signal channels (`signal:NAME`) through ipcd.
//!
//! - raise → received, by 1 and by 100 socket subscribers: each subscriber
//!   is a thread of the bench with a connection of its own, subscribed and
//!   reading with `Next`; the raiser puts `CLOCK_MONOTONIC` (shared by every
//!   process) into the payload just before the raise, and each subscriber
//!   takes the difference when the event arrives. One event at a time: the
//!   next is raised once every subscriber has it. With 100 subscribers the
//!   rows give each subscriber's latency and the last one's (the fan-out).
//! - events per second to one subscriber: raises pipelined in batches of
//!   `--batch`, one subscriber (a buffer of 4096) draining in batches;
//!   events received per second, and how many were dropped as missed.
//! - the raw baseline in the same run: a real-time signal ping-pong between
//!   two threads with `pthread_sigqueue` and `sigwait` (a round trip; a
//!   one-way hop is about half).
//!
//! The channel is created for the bench (lifetime session) and deleted at
//! its end. It runs once, unpinned: 100 subscriber threads do not fit a
//! placement of one or two CPUs anyway.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ipc_client::protocol::{CreateSpec, KindParams, Lifetime, SignalParams};
use ipc_client::{Client, Received, Request};
use nix::time::{ClockId, clock_gettime};

use crate::ctx::Ctx;
use crate::kind::KindBench;
use crate::objects;
use crate::report::Row;
use crate::stats::{Samples, median, nanos, per_second};
use crate::sys;

/// Subscribers of the fan-out rows.
const FAN_OUT: usize = 100;

/// The `signal` entry of the kinds table.
pub struct SignalBench;

impl KindBench for SignalBench {
    fn name(&self) -> &'static str {
        "signal"
    }

    fn about(&self) -> &'static str {
        "signal channels: raise → 1 and 100 subscribers, events/s, vs a sigqueue ping-pong"
    }

    fn placed(&self) -> bool {
        false
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        ctx.progress.inc_length(4 * ctx.opts.repeat as u64);
        let mut client = ctx.connect()?;
        let name = objects::unique_name();
        let spec = CreateSpec {
            mode: None,
            lifetime: Lifetime::Session,
            adopt: false,
            params: KindParams::Signal(SignalParams { bind: None }),
        };
        client
            .create(&format!("signal:{name}"), spec)
            .with_context(|| format!("cannot create signal:{name}"))?;
        let rows = measure(ctx, &mut client, &name);
        let deleted = objects::delete_all(&mut client, "signal", std::slice::from_ref(&name));
        let rows = rows?;
        deleted?;
        Ok(rows)
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process.
fn monotonic_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The measurements proper, on `signal:<name>`.
fn measure(ctx: &Ctx<'_>, raiser: &mut Client, name: &str) -> anyhow::Result<Vec<Row>> {
    let budget = ctx.round_trip_budget();
    let events = budget.count.min(5_000);
    let (mut one, mut each, mut last, mut rates, mut raw) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut missed_total = 0;
    for round in 1..=ctx.opts.repeat {
        ctx.step(format!("signal: raise → 1 subscriber, run {round}"));
        let (each1, _) = fan_out(ctx, raiser, name, 1, events)?;
        one.push(each1);
        ctx.done();
        ctx.step(format!(
            "signal: raise → {FAN_OUT} subscribers, run {round}"
        ));
        let (e, l) = fan_out(ctx, raiser, name, FAN_OUT, (events / 10).max(20))?;
        each.push(e);
        last.push(l);
        ctx.done();
        ctx.step(format!("signal: events/s to one subscriber, run {round}"));
        let (rate, missed) = throughput(ctx, raiser, name)?;
        rates.push(rate);
        missed_total += missed;
        ctx.done();
        ctx.step(format!("signal: sigqueue ping-pong, run {round}"));
        raw.push(sigqueue_ping_pong(events)?);
        ctx.done();
    }
    if missed_total > 0 {
        ctx.note(format!(
            "signal events/s: the subscriber fell behind and was told of {missed_total} \
             missed events over the runs (counted as received: they were reported)"
        ));
    }
    let latency = |measure: String, mechanism: &str, runs: &[Samples]| {
        let pick = |f: fn(&Samples) -> Option<u64>| {
            median(
                &runs
                    .iter()
                    .filter_map(|s| f(s).map(|ns| ns as f64 / 1e3))
                    .collect::<Vec<_>>(),
            )
        };
        Row {
            measure,
            mechanism: mechanism.into(),
            p50_us: pick(Samples::p50),
            p99_us: pick(Samples::p99),
            runs: runs.len(),
            operations: median(&runs.iter().map(|s| s.len() as f64).collect::<Vec<_>>())
                .unwrap_or(0.0) as u64,
            per_run: runs
                .iter()
                .filter_map(|s| s.p50().map(|ns| ns as f64 / 1e3))
                .collect(),
            ..Row::default()
        }
    };
    let rate_row = Row {
        measure: "events/s, 1 subscriber".into(),
        mechanism: format!("signal ipc-client, raises ×{}", ctx.opts.batch),
        per_second: median(&rates),
        runs: rates.len(),
        per_run: rates.clone(),
        ..Row::default()
    };
    Ok(vec![
        latency("raise → 1 subscriber".into(), "signal ipc-client", &one),
        latency(
            format!("raise → {FAN_OUT} subscribers, each"),
            "signal ipc-client",
            &each,
        ),
        latency(
            format!("raise → {FAN_OUT} subscribers, last"),
            "signal ipc-client",
            &last,
        ),
        rate_row,
        latency(
            "round trip".into(),
            "sigqueue raw (2 threads, RT signal)",
            &raw,
        ),
    ])
}

/// Raises `events` events (after a tenth as many untimed), one at a time,
/// to `subscribers` subscriber threads; returns every (event, subscriber)
/// latency and each event's slowest.
fn fan_out(
    ctx: &Ctx<'_>,
    raiser: &mut Client,
    name: &str,
    subscribers: usize,
    events: u64,
) -> anyhow::Result<(Samples, Samples)> {
    let warmup = (events / 10).max(1);
    let (tx, rx) = mpsc::channel::<anyhow::Result<u64>>();
    let mut threads = Vec::new();
    for _ in 0..subscribers {
        let mut client = ctx.connect()?;
        let (tx, name) = (tx.clone(), name.to_owned());
        threads.push(thread::spawn(move || subscriber(&mut client, &name, tx)));
    }
    drop(tx);
    // Every subscriber says it is subscribed (0) before the first raise.
    for _ in 0..subscribers {
        recv(&rx)?;
    }
    let (mut each, mut last) = (Vec::new(), Vec::new());
    for i in 0..warmup + events {
        let t0 = monotonic_ns();
        raiser
            .signal_raise(name, &t0.to_le_bytes())
            .context("raise")?;
        let mut slowest = 0;
        for _ in 0..subscribers {
            let ns = recv(&rx)?;
            slowest = slowest.max(ns);
            if i >= warmup {
                each.push(ns);
            }
        }
        if i >= warmup {
            last.push(slowest);
        }
    }
    // An empty payload ends the subscribers.
    raiser.signal_raise(name, b"").context("raise")?;
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a subscriber panicked"))??;
    }
    Ok((Samples::new(each), Samples::new(last)))
}

fn recv(rx: &mpsc::Receiver<anyhow::Result<u64>>) -> anyhow::Result<u64> {
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => r,
        Err(_) => bail!("a subscriber sent nothing for 30 s"),
    }
}

/// One subscriber: reports 0 once subscribed, then each event's latency,
/// until an event with an empty payload.
fn subscriber(
    client: &mut Client,
    name: &str,
    tx: mpsc::Sender<anyhow::Result<u64>>,
) -> anyhow::Result<()> {
    let mut sub = client.subscribe_signal(name, 4096)?;
    let _ = tx.send(Ok(0));
    loop {
        let event = match sub.recv()? {
            Received::Event(e) => e,
            Received::Missed(n) => bail!("a paced subscriber missed {n} events"),
        };
        let Ok(sent) = <[u8; 8]>::try_from(event.payload.as_slice()) else {
            return Ok(());
        };
        let ns = monotonic_ns().saturating_sub(u64::from_le_bytes(sent));
        if tx.send(Ok(ns)).is_err() {
            return Ok(());
        }
    }
}

/// Raises as fast as pipelining allows for the throughput budget while one
/// subscriber drains; returns events (received or reported missed) per
/// second, until the subscriber has accounted for them all, and the missed.
fn throughput(ctx: &Ctx<'_>, raiser: &mut Client, name: &str) -> anyhow::Result<(f64, u64)> {
    let budget = ctx.throughput_budget();
    let total = budget.count.min(200_000);
    let mut client = ctx.connect()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let name_owned = name.to_owned();
    let drain = thread::spawn(move || -> anyhow::Result<(u64, u64, Instant)> {
        let mut sub = client.subscribe_signal(&name_owned, 4096)?;
        let _ = ready_tx.send(());
        let (mut got, mut missed) = (0u64, 0u64);
        while got + missed < total {
            match sub.recv()? {
                Received::Event(_) => got += 1,
                Received::Missed(n) => missed += n,
            }
        }
        Ok((got, missed, Instant::now()))
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .context("the subscriber did not subscribe")?;
    let raise = Request::Kind {
        address: format!("signal:{name}"),
        op: ipc_client::KindOp::Signal(ipc_client::protocol::SignalOp::Raise {
            payload: Vec::new(),
        }),
    };
    let batch = vec![raise; ctx.opts.batch.max(1)];
    let start = Instant::now();
    let mut raised = 0u64;
    while raised < total {
        let n = (total - raised).min(batch.len() as u64) as usize;
        for answer in raiser.pipeline(&batch[..n]).context("pipelined raise")? {
            answer.context("raise")?;
        }
        raised += n as u64;
    }
    let (got, missed, end) = drain
        .join()
        .map_err(|_| anyhow::anyhow!("the subscriber panicked"))??;
    Ok((per_second(got + missed, end - start), missed))
}

/// `events` round trips (after a tenth as many untimed) of a real-time
/// signal between this thread and another, each queued with
/// `pthread_sigqueue` to the other and taken with `sigwait`.
fn sigqueue_ping_pong(events: u64) -> anyhow::Result<Samples> {
    let rtmin = libc::SIGRTMIN();
    let (ping, pong) = (rtmin + 6, rtmin + 7);
    let ping_set = sys::RawSigSet::of(&[ping])?;
    let pong_set = sys::RawSigSet::of(&[pong])?;
    let warmup = (events / 10).max(1);
    let total = warmup + events;
    // Blocked here first, so the other thread (which inherits the mask)
    // cannot take it either; it blocks its own signal before it says ready.
    pong_set.block_thread().context("block the pong signal")?;
    let me = nix::sys::pthread::pthread_self();
    let (ready_tx, ready_rx) = mpsc::channel();
    let other = thread::spawn(move || -> anyhow::Result<()> {
        ping_set.block_thread()?;
        let _ = ready_tx.send(nix::sys::pthread::pthread_self());
        for _ in 0..total {
            ping_set.wait()?;
            sys::thread_sigqueue(me, pong)?;
        }
        Ok(())
    });
    let them = ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the ping-pong thread did not start")?;
    let mut samples = Vec::with_capacity(events as usize);
    for i in 0..total {
        let t0 = Instant::now();
        sys::thread_sigqueue(them, ping).context("pthread_sigqueue")?;
        pong_set.wait().context("sigwait")?;
        if i >= warmup {
            samples.push(nanos(t0.elapsed()));
        }
    }
    other
        .join()
        .map_err(|_| anyhow::anyhow!("the ping-pong thread panicked"))??;
    pong_set
        .unblock_thread()
        .context("unblock the pong signal")?;
    Ok(Samples::new(samples))
}
