//! The `shm` kind: copies into and out of a shared-memory segment through
//! `ipc_client::SharedMemory` ([`write_at`](SharedMemory::write_at),
//! [`read_at`](SharedMemory::read_at)) versus raw copies through a mapping of
//! the same segment the bench makes itself ([`crate::sys::Mapping`], a
//! memmap2 `MmapRaw` of the descriptor the daemon handed over).
//!
//! One process, no peer: what is measured is the client's own cost per
//! access (bounds check, error path, the copy), not sharing. One segment
//! (`shm:ipcbench-<pid>-<n>`, [`SEGMENT`] bytes, lifetime session) is created
//! for the kind and deleted at its end. For each access size ([`SIZES`]) and
//! direction, both mechanisms take turns in blocks of about [`BLOCK_BYTES`]
//! in ABBA order, walking the segment from offset 0 in steps of the access
//! size and wrapping at its end, with the same private buffer; `vs raw` is
//! the median ratio of adjacent blocks' rates. Target: ≥ 0.9× raw.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipc_client::{Access, Client, SharedMemory, ShmOptions};

use crate::abba::{Budget, MECHANISMS, Mechanism, abba};
use crate::ctx::Ctx;
use crate::datapath::median_u64;
use crate::kind::KindBench;
use crate::objects;
use crate::report::{Row, Target};
use crate::stats::{PairRatios, Rate, median};
use crate::sys::Mapping;

/// Bytes of the segment (walked through by every block).
pub const SEGMENT: usize = 4 << 20;
/// Access sizes: 64 B, 4 KiB, 1 MiB.
pub const SIZES: [usize; 3] = [64, 4 << 10, 1 << 20];
/// Bytes one block copies.
const BLOCK_BYTES: u64 = 64 << 20;
/// Bytes one mechanism copies in one run (per size and direction), unless
/// `--duration` bounds the run.
const RUN_BYTES: u64 = 1 << 30;
/// Lowest ipc-client / raw rate that meets the target.
const MIN_RATIO: f64 = 0.9;

/// The `shm` entry of the kinds table.
pub struct Shm;

impl KindBench for Shm {
    fn name(&self) -> &'static str {
        "shm"
    }

    fn about(&self) -> &'static str {
        "shared-memory segments: SharedMemory write_at/read_at vs raw copies of the same mapping \
         (one process)"
    }

    fn placed(&self) -> bool {
        false
    }

    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
        let mut client = ctx.connect()?;
        let name = objects::unique_name();
        let opts = ShmOptions::new().size(SEGMENT as u64).session();
        client
            .create_shm(&name, &opts)
            .with_context(|| format!("cannot create shm:{name} ({SEGMENT} bytes)"))?;
        let rows = measure(ctx, &mut client, &name);
        let deleted = objects::delete_all(&mut client, "shm", &[name]);
        let rows = rows?;
        deleted?;
        Ok(rows)
    }
}

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// From a private buffer into the segment.
    Write,
    /// From the segment into a private buffer.
    Read,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Read => "read",
        }
    }
}

/// A mapping the loop copies through: the same code for both mechanisms.
trait Copies {
    /// Copies `data` into the segment at `offset`.
    fn put(&self, offset: usize, data: &[u8]) -> anyhow::Result<()>;
    /// Copies `buf.len()` bytes at `offset` into `buf`.
    fn get(&self, offset: usize, buf: &mut [u8]) -> anyhow::Result<()>;
}

impl Copies for SharedMemory {
    #[inline]
    fn put(&self, offset: usize, data: &[u8]) -> anyhow::Result<()> {
        Ok(self.write_at(offset, data)?)
    }

    #[inline]
    fn get(&self, offset: usize, buf: &mut [u8]) -> anyhow::Result<()> {
        Ok(self.read_at(offset, buf)?)
    }
}

impl Copies for Mapping {
    #[inline]
    fn put(&self, offset: usize, data: &[u8]) -> anyhow::Result<()> {
        self.write(offset, data);
        Ok(())
    }

    #[inline]
    fn get(&self, offset: usize, buf: &mut [u8]) -> anyhow::Result<()> {
        self.read(offset, buf);
        Ok(())
    }
}

/// One block: `n` accesses of `buf.len()` bytes, walking `len` bytes of
/// the mapping. Returns how long they took.
fn block<C: Copies>(m: &C, op: Op, buf: &mut [u8], len: usize, n: u64) -> anyhow::Result<Duration> {
    let size = buf.len();
    let mut offset = 0;
    let start = Instant::now();
    for _ in 0..n {
        match op {
            Op::Write => m.put(offset, black_box(&*buf))?,
            Op::Read => m.get(offset, black_box(&mut *buf))?,
        }
        offset += size;
        if offset + size > len {
            offset = 0;
        }
    }
    Ok(start.elapsed())
}

/// Accesses of `size` bytes per block.
fn block_len(size: usize) -> u64 {
    (BLOCK_BYTES / size as u64).max(1)
}

/// Both mappings of the segment.
struct Mappings {
    raw: Mapping,
    client: SharedMemory,
}

impl Mappings {
    /// One block of mechanism `m`.
    fn block(&self, m: Mechanism, op: Op, buf: &mut [u8], n: u64) -> anyhow::Result<Duration> {
        let len = self.client.len().min(self.raw.len());
        match m {
            Mechanism::Raw => block(&self.raw, op, buf, len, n),
            Mechanism::Client => block(&self.client, op, buf, len, n),
        }
    }
}

/// All runs of the kind: per size and direction, `--repeat` runs.
fn measure(ctx: &Ctx<'_>, client: &mut Client, name: &str) -> anyhow::Result<Vec<Row>> {
    let shm = client
        .open_shm(name, Access::ReadWrite)
        .with_context(|| format!("cannot open shm:{name}"))?;
    let maps = Mappings {
        raw: Mapping::map(&shm).context("cannot map the segment for the raw copies")?,
        client: shm,
    };
    ctx.progress
        .inc_length((SIZES.len() * 2 * ctx.opts.repeat) as u64);
    let mut rows = Vec::new();
    for size in SIZES {
        for op in [Op::Write, Op::Read] {
            let mut runs = Vec::new();
            for round in 1..=ctx.opts.repeat {
                ctx.step(format!("shm {}, {size} B, run {round}", op.name()));
                runs.push(one_run(ctx, &maps, op, size)?);
                ctx.done();
            }
            rows.extend(rows_of(op, size, &runs));
        }
    }
    Ok(rows)
}

/// One run: an untimed block of each mechanism, then ABBA blocks. Returns
/// the totals of each mechanism and the ratio of each adjacent pair.
fn one_run(
    ctx: &Ctx<'_>,
    maps: &Mappings,
    op: Op,
    size: usize,
) -> anyhow::Result<([Rate; 2], Vec<f64>)> {
    let mut buf: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let n = block_len(size);
    for m in MECHANISMS {
        maps.block(m, op, &mut buf, n)?;
    }
    let mut totals = [Rate {
        messages: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    }; 2];
    let mut pairs = PairRatios::default();
    let budget = Budget {
        count: RUN_BYTES / size as u64,
        time: ctx.opts.duration,
    };
    abba(MECHANISMS, budget, n, |m, n| {
        let elapsed = maps.block(m, op, &mut buf, n)?;
        let rate = Rate {
            messages: n,
            bytes: n * size as u64,
            elapsed,
        };
        pairs.record(m.index(), rate.per_second());
        let t = &mut totals[m.index()];
        t.messages += n;
        t.bytes += rate.bytes;
        t.elapsed += elapsed;
        Ok(())
    })?;
    Ok((totals, pairs.ratios))
}

/// The raw and ipc-client rows of one size and direction.
fn rows_of(op: Op, size: usize, runs: &[([Rate; 2], Vec<f64>)]) -> Vec<Row> {
    let pairs: Vec<f64> = runs.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let vs_raw = median(&pairs);
    MECHANISMS
        .map(|m| {
            let rates: Vec<Rate> = runs.iter().map(|(r, _)| r[m.index()]).collect();
            let of = |f: fn(&Rate) -> f64| median(&rates.iter().map(f).collect::<Vec<_>>());
            let client = m == Mechanism::Client;
            Row {
                measure: op.name().into(),
                mechanism: match m {
                    Mechanism::Raw => "shm raw (own mapping)".into(),
                    Mechanism::Client => "shm ipc-client".into(),
                },
                size: Some(size),
                per_second: of(Rate::per_second),
                mb_per_second: of(Rate::mb_per_second),
                vs_raw: vs_raw.filter(|_| client),
                target: vs_raw.filter(|_| client).map(|r| {
                    Target::at_least(format!("≥ {MIN_RATIO:.2}× raw"), "vs_raw", MIN_RATIO, r)
                }),
                runs: rates.len(),
                operations: median_u64(rates.iter().map(|r| r.messages)),
                per_run: rates.iter().map(Rate::per_second).collect(),
                per_run_vs_raw: if client {
                    runs.iter().filter_map(|(_, p)| median(p)).collect()
                } else {
                    Vec::new()
                },
                ..Row::default()
            }
        })
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd_pair() -> Mappings {
        let fd = crate::sys::memfd("shm-test", SEGMENT).unwrap();
        Mappings {
            raw: Mapping::map(&fd).unwrap(),
            client: SharedMemory::from_fd(fd, true).unwrap(),
        }
    }

    #[test]
    fn both_mechanisms_copy_the_same_bytes() {
        let maps = memfd_pair();
        let mut data: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
        // Three writes walk offsets 0, 4096, 8192.
        maps.block(Mechanism::Client, Op::Write, &mut data, 3)
            .unwrap();
        let mut got = vec![0u8; 4096];
        maps.raw.read(8192, &mut got);
        assert_eq!(got, data);
        maps.block(Mechanism::Raw, Op::Read, &mut got, 1).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn blocks_wrap_at_the_end_of_the_segment() {
        let maps = memfd_pair();
        let mut big = vec![7u8; 1 << 20];
        // Ten 1 MiB accesses in a 4 MiB segment.
        maps.block(Mechanism::Raw, Op::Write, &mut big, 10).unwrap();
        maps.block(Mechanism::Client, Op::Read, &mut big, 10)
            .unwrap();
        assert_eq!(block_len(64), 1 << 20);
        assert_eq!(block_len(1 << 20), 64);
    }

    #[test]
    fn rows_carry_the_ratio_and_target() {
        let rate = |messages| Rate {
            messages,
            bytes: messages * 64,
            elapsed: Duration::from_secs(1),
        };
        let runs = [([rate(100), rate(95)], vec![0.95, 0.97])];
        let rows = rows_of(Op::Read, 64, &runs);
        assert_eq!(rows[0].vs_raw, None);
        assert_eq!(rows[1].vs_raw, Some(0.96));
        assert!(rows[1].target.as_ref().unwrap().met);
        assert_eq!(rows[1].per_second, Some(95.0));
    }
}
