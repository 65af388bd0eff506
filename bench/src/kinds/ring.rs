//! The `ring` kind: message rings in shared memory through `ipc_client::Ring`
//! versus the raw futex ring ([`raw::RawRing`]), between the bench and a
//! `bench-peer` (the runs and rows are [`crate::datapath`]'s, the loops
//! [`crate::loops`]'), plus 1 MiB messages against memcpy bandwidth
//! ([`memcpy`]) and the connect + hello + `open_ring` rows. Neither mechanism
//! spins before it sleeps; `ring-spin` ([`super::ring_spin`]) is the same
//! with both spinning, and shares everything here through [`Variant`].
//!
//! Raw rings are fresh per run: the bench makes each in a memfd and the peer
//! inherits the descriptor, as a child does from its parent. The client rings
//! (`ring:ipcbench-<pid>-<n>`, made through ipcd with lifetime session, so
//! they vanish if the bench dies) are created once per message size and
//! deleted after it; each run opens them afresh on both sides. Both have
//! slots of exactly the message size and the same number of them
//! ([`slots_for`]: the client's default, 256, fewer for large messages).
//!
//! Targets: 64 B one-way ≥ 5 M messages/s through ipc-client; 1 MiB
//! messages ≥ 0.5× memcpy bandwidth measured in the same run; `ring`
//! (blocking) within 1.2× raw (round trip ≤ 1.2× raw, throughput ≥ 1/1.2);
//! `ring-spin`: 64 B round trip p50 ≤ 1 µs across two CPUs (`split`).

mod memcpy;
mod raw;

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::time::Duration;

use anyhow::Context as _;
use ipc_client::{Client, Ring, RingOptions};

use crate::channel::{Role, Sides};
use crate::ctx::Ctx;
use crate::datapath::{self, BULK_SIZE, Channels, RatioTargets, Run, Shape};
use crate::fds::{self, Inherited};
use crate::kind::KindBench;
use crate::loops::{Endpoint, MessageSide, Messages};
use crate::peer::{PeerArgs, PeerClient};
use crate::peer_process::PeerProcess;
use crate::report::{Row, Target};
use crate::sys::{self, Mapping};
use crate::{connect, objects};

use raw::RawRing;

/// Slots of a ring when they fit in [`RING_BYTES`]: the client's default.
const SLOTS: u32 = 256;
/// Most bytes of slots per ring; larger messages get fewer slots. 1 MiB
/// messages get 4: with 16 (16 MiB) both mechanisms copy at the L3 cache's
/// pace, about 0.35× memcpy, against about 0.85× with 4 (BENCHMARKS.md).
const RING_BYTES: usize = 8 << 20;
/// Bytes per throughput block (at most [`MAX_BLOCK`] messages, at least 16).
const BLOCK_BYTES: u64 = 16 << 20;
/// Most messages in a throughput block.
const MAX_BLOCK: u64 = 20_000;
/// Most bytes one mechanism sends in one throughput run.
const MAX_RUN_BYTES: u64 = 1 << 30;

/// Lowest 64 B one-way rate through ipc-client that meets the target.
const MIN_ONE_WAY_64: f64 = 5e6;
/// Lowest ratio of 1 MiB messages through ipc-client to memcpy bandwidth.
const MIN_VS_MEMCPY: f64 = 0.5;

/// What tells `ring` and `ring-spin` apart.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// The kind's name (and the peer's `--kind`).
    pub name: &'static str,
    /// Its `--help` line.
    pub about: &'static str,
    /// How long both mechanisms spin before they sleep.
    pub spin: Duration,
    /// The ratio targets of its ipc-client rows, if any.
    pub ratios: Option<RatioTargets>,
    /// Highest 64 B round-trip p50 through ipc-client, µs.
    pub max_p50_us: Option<f64>,
    /// Whether its targets hold across two CPUs (`split`) only: spinning on
    /// the CPU the peer needs only delays it, so on one CPU they are not
    /// expected, and the rows are shown without them.
    pub split_only: bool,
    /// Whether to add the connect + hello + `open_ring` rows.
    pub setup_rows: bool,
}

/// A ring kind of the kinds table.
pub struct RingKind(pub Variant);

/// The `ring` entry of the kinds table: both mechanisms sleep at once.
pub const RING: RingKind = RingKind(Variant {
    name: "ring",
    about: "message rings in shared memory through ipc-client vs a raw futex ring \
            (blocking), and 1 MiB messages vs memcpy",
    spin: Duration::ZERO,
    ratios: Some(RatioTargets {
        max_round_trip: 1.2,
        min_throughput: 1.0 / 1.2,
    }),
    max_p50_us: None,
    split_only: false,
    setup_rows: true,
});

impl KindBench for RingKind {
    fn name(&self) -> &'static str {
        self.0.name
    }

    fn about(&self) -> &'static str {
        self.0.about
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        let mut rings = RingChannels {
            client: ctx.connect()?,
            variant: self.0,
            current: None,
        };
        let rows = datapath::measure(ctx, &mut rings);
        let deleted = rings.delete();
        let mut rows = rows?;
        deleted?;
        let copy = memcpy::row(ctx, BULK_SIZE);
        hold_to_targets(ctx, &self.0, &mut rows, copy.mb_per_second);
        rows.push(copy);
        if self.0.setup_rows {
            rows.extend(setup_rows(ctx, &mut rings.client)?);
        }
        Ok(rows)
    }

    fn open_peer(&self, args: &PeerArgs, client: &mut PeerClient) -> anyhow::Result<Sides> {
        let spin = self.0.spin;
        let raw = match &args.raw_rx {
            Some(rx) => Some(Box::new(MessageSide {
                rx: inherited(rx, spin)?,
                tx: args
                    .raw_tx
                    .as_deref()
                    .map(|tx| inherited(tx, spin))
                    .transpose()?,
            }) as _),
            None => None,
        };
        let through_client = match &args.client_rx {
            Some(rx) => {
                let c = client.get()?;
                Some(Box::new(MessageSide {
                    rx: open(c, rx, spin)?,
                    tx: args
                        .client_tx
                        .as_deref()
                        .map(|tx| open(c, tx, spin))
                        .transpose()?,
                }) as _)
            }
            None => None,
        };
        Ok([raw, through_client])
    }
}

/// Adds the absolute targets to the rows `datapath` made: 64 B one-way,
/// the 64 B round trip of a variant that has one, and 1 MiB against
/// `memcpy_mb`. A `split_only` variant gets them only across two CPUs.
fn hold_to_targets(ctx: &Ctx<'_>, v: &Variant, rows: &mut [Row], memcpy_mb: Option<f64>) {
    if v.split_only && ctx.placement.name != "split" {
        ctx.note(format!(
            "{}: its targets are for two CPUs (`split`); under `{}` both processes may \
             share one, where a spinning side holds the CPU its peer needs, so those rows \
             have no target",
            v.name, ctx.placement.name
        ));
        return;
    }
    let client = format!("{} ipc-client", v.name);
    for row in rows.iter_mut().filter(|r| r.mechanism == client) {
        let target = match (row.measure.as_str(), row.size) {
            ("one-way", Some(64)) => row
                .per_second
                .map(|rate| Target::at_least("≥ 5 M msgs/s", "per_second", MIN_ONE_WAY_64, rate)),
            ("round trip", Some(64)) => v
                .max_p50_us
                .zip(row.p50_us)
                .map(|(max, p50)| Target::at_most(format!("p50 ≤ {max} µs"), "p50_us", max, p50)),
            ("bulk", Some(BULK_SIZE)) => row.mb_per_second.zip(memcpy_mb).map(|(mb, copy)| {
                let goal = format!("≥ {MIN_VS_MEMCPY:.2}× memcpy");
                Target::at_least(goal, "mb_per_second / memcpy", MIN_VS_MEMCPY, mb / copy)
            }),
            _ => None,
        };
        if let Some(t) = target {
            row.hold_to(t);
        }
    }
}

/// The connect + hello + `open_ring` rows, on a ring made for them.
fn setup_rows(ctx: &Ctx<'_>, client: &mut Client) -> anyhow::Result<Vec<Row>> {
    let name = objects::unique_name();
    create(client, &name, 64)?;
    let rows = connect::rows(ctx, "open_ring", |c| {
        open(c, &name, Duration::ZERO).map(drop)
    });
    let deleted = objects::delete_all(client, "ring", &[name]);
    let rows = rows?;
    deleted?;
    Ok(rows)
}

/// Slots of both mechanisms' rings for messages of `size` bytes: [`SLOTS`],
/// or the largest power of two whose slots fit in [`RING_BYTES`] (at least 2).
pub fn slots_for(size: usize) -> u32 {
    let stride = (16 + size).div_ceil(64) * 64;
    let fit = u32::try_from(RING_BYTES / stride)
        .unwrap_or(u32::MAX)
        .max(2);
    SLOTS.min(1 << (31 - fit.leading_zeros()))
}

/// Messages per throughput block for messages of `size` bytes.
fn block_len(size: usize) -> u64 {
    (BLOCK_BYTES / size as u64).clamp(16, MAX_BLOCK)
}

/// The kind's state: its connection and the client rings of the current size.
struct RingChannels {
    /// The connection that creates the rings (lifetime session: they go with it).
    client: Client,
    /// Which ring kind.
    variant: Variant,
    /// The message size the client rings are for, and their names: ping,
    /// pong, stream.
    current: Option<(usize, [String; 3])>,
}

impl RingChannels {
    /// The client rings for messages of `size`, made now if need be.
    fn rings_for(&mut self, size: usize) -> anyhow::Result<[String; 3]> {
        if let Some((s, names)) = &self.current
            && *s == size
        {
            return Ok(names.clone());
        }
        self.delete()?;
        let names = objects::create_three(&mut self.client, "ring", |c, name| {
            let opts = RingOptions::new()
                .slots(slots_for(size))
                .slot_size(size as u32)
                .session();
            c.create_ring(name, &opts).map(drop)
        })?;
        self.current = Some((size, names.clone()));
        Ok(names)
    }

    /// Deletes the client rings, if any.
    fn delete(&mut self) -> anyhow::Result<()> {
        match self.current.take() {
            Some((_, names)) => objects::delete_all(&mut self.client, "ring", &names),
            None => Ok(()),
        }
    }
}

impl Channels for RingChannels {
    fn name(&self) -> &'static str {
        self.variant.name
    }

    fn shape(&self) -> Shape {
        Shape {
            block: block_len,
            max_run_bytes: Some(MAX_RUN_BYTES),
            bulk: true,
            targets: self.variant.ratios,
        }
    }

    fn start_run(&mut self, ctx: &Ctx<'_>, role: Role, size: usize) -> anyhow::Result<Run> {
        let (tx_name, rx_name) = objects::for_role(self.rings_for(size)?, role);
        let spin = self.variant.spin;
        let (tx_fd, tx) = raw_ring(size, spin)?;
        let (rx_fd, rx) = match rx_name {
            Some(_) => {
                let (fd, ring) = raw_ring(size, spin)?;
                (Some(fd), Some(ring))
            }
            None => (None, None),
        };
        let c = &mut self.client;
        let client = Messages {
            tx: open(c, &tx_name, spin)?,
            rx: rx_name.as_deref().map(|n| open(c, n, spin)).transpose()?,
        };
        let args = PeerArgs {
            raw_rx: Some(tx_fd.as_raw_fd().to_string()),
            raw_tx: rx_fd.as_ref().map(|fd| fd.as_raw_fd().to_string()),
            client_rx: Some(tx_name),
            client_tx: rx_name,
            ..ctx.peer_args(self.variant.name, role, size)
        };
        let inherited = std::iter::once(tx_fd).chain(rx_fd).collect();
        let peer = PeerProcess::spawn_inheriting(&args, inherited)?;
        Ok(Run {
            peer,
            ends: [Box::new(Messages { tx, rx }), Box::new(client)],
        })
    }
}

/// A fresh raw ring for messages of `size` bytes, in a memfd of its own:
/// the descriptor (for the peer) and this process's handle.
fn raw_ring(size: usize, spin: Duration) -> anyhow::Result<(OwnedFd, RawRing)> {
    let slots = slots_for(size);
    let fd = sys::memfd("ring", raw::segment_size(slots, size))?;
    let mut ring = RawRing::create(&fd, slots, size)?;
    ring.set_spin(spin);
    Ok((fd, ring))
}

/// The raw ring in the memfd the bench passed as descriptor number `n`.
fn inherited(n: &str, spin: Duration) -> anyhow::Result<RawRing> {
    let fd = n
        .parse()
        .with_context(|| format!("{n:?} is not a descriptor number"))?;
    let fd = fds::take_inherited(fd, Inherited::Memfd)?;
    let mut ring = RawRing::attach(Mapping::map(&fd)?)?;
    ring.set_spin(spin);
    Ok(ring)
}

/// Creates `ring:<name>` for messages of `size` bytes, lifetime session.
fn create(client: &mut Client, name: &str, size: usize) -> anyhow::Result<()> {
    let opts = RingOptions::new()
        .slots(slots_for(size))
        .slot_size(u32::try_from(size).context("message size too large")?)
        .session();
    client
        .create_ring(name, &opts)
        .with_context(|| format!("cannot create ring:{name}"))?;
    Ok(())
}

/// Opens the existing `ring:<name>`, spinning up to `spin` before sleeping.
fn open(client: &mut Client, name: &str, spin: Duration) -> anyhow::Result<Ring> {
    let ring = client
        .open_ring(name)
        .with_context(|| format!("cannot open ring:{name}"))?;
    ring.set_spin(spin);
    Ok(ring)
}

impl Endpoint for Ring {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        Ring::send(self, msg).with_context(|| format!("send on {}", self.address()))
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        match self.recv_into(buf) {
            Ok(n) => Ok(n),
            Err(e) => Err(anyhow::Error::new(e).context(format!("receive on {}", self.address()))),
        }
    }
}

impl Endpoint for RawRing {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        RawRing::send(self, msg)
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        RawRing::recv(self, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client ring in a memfd of its own (the header as ipcd writes it),
    /// two handles on it.
    fn client_pair(slots: u32, size: usize) -> (Ring, Ring) {
        use ipc_client::protocol::kinds::ring::layout::Geometry;
        let g = Geometry::new(slots, size as u32).unwrap();
        let fd = sys::memfd("ring-test", g.segment_size() as usize).unwrap();
        Mapping::map(&fd).unwrap().write(0, &g.header());
        let other = fd.try_clone().unwrap();
        (Ring::from_fd(fd).unwrap(), Ring::from_fd(other).unwrap())
    }

    /// Runs a round-trip block and a stream block through `ping`/`pong`
    /// and `stream` with a peer thread on the other ends, as the bench does.
    fn both_blocks<E: Endpoint + Send + 'static>(
        (ping, ping_peer): (E, E),
        (pong_peer, pong): (E, E),
        (tx, rx): (E, E),
    ) {
        use crate::abba::Budget;
        use crate::channel::{Blocks as _, Ends as _};
        let mut echo = MessageSide {
            rx: ping_peer,
            tx: Some(pong_peer),
        };
        let peer = std::thread::spawn(move || echo.block(Role::Echo, 64).unwrap());
        let mut ends = Messages {
            tx: ping,
            rx: Some(pong),
        };
        assert_eq!(
            ends.round_trip(64, 5, Budget::count(300)).unwrap().len(),
            300
        );
        assert_eq!(peer.join().unwrap().messages, 305);
        let mut sink = MessageSide::<E> { rx, tx: None };
        let peer = std::thread::spawn(move || sink.block(Role::Sink, 64).unwrap());
        let mut ends = Messages::<E, E> { tx, rx: None };
        assert_eq!(ends.stream(64, Budget::count(20_000)).unwrap(), 20_000);
        assert_eq!(peer.join().unwrap().received, 20_001);
    }

    #[test]
    fn both_mechanisms_carry_the_bench_loops() {
        let raw = || {
            let (fd, a) = raw_ring(64, Duration::ZERO).unwrap();
            (a, RawRing::attach(Mapping::map(&fd).unwrap()).unwrap())
        };
        both_blocks(raw(), raw(), raw());
        let spin = Duration::from_micros(20);
        let client = || {
            let (a, b) = client_pair(slots_for(64), 64);
            a.set_spin(spin);
            b.set_spin(spin);
            (a, b)
        };
        both_blocks(client(), client(), client());
    }

    #[test]
    fn slots_shrink_for_large_messages_only() {
        assert_eq!(slots_for(64), 256);
        assert_eq!(slots_for(4096), 256);
        assert_eq!(slots_for(1 << 20), 4);
        assert_eq!(slots_for(64 << 20), 2);
        assert_eq!(block_len(64), 20_000);
        assert_eq!(block_len(1 << 20), 16);
    }
}
