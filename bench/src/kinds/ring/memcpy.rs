//! The yardstick of the rings' 1 MiB rows: memcpy bandwidth on this machine,
//! measured in the same bench, on the bench's CPU. One thread copies a
//! 1 MiB private buffer into another (`copy_from_slice`, which is `memcpy`)
//! over and over: no second process, no shared memory, no synchronisation.
//! A message through a ring is copied twice (into the slot, out of it), so
//! on one CPU half this bandwidth is the most a ring can reach; across two
//! CPUs the copies overlap.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::ctx::Ctx;
use crate::datapath::median_u64;
use crate::report::Row;
use crate::stats::{Rate, median};

/// Bytes copied per run.
const RUN_BYTES: u64 = 1 << 30;
/// Untimed copies before each run.
const WARMUP: u64 = 16;

/// The memcpy row for copies of `size` bytes: `--repeat` runs of 1 GiB.
pub fn row(ctx: &Ctx<'_>, size: usize) -> Row {
    ctx.progress.inc_length(ctx.opts.repeat as u64);
    let runs: Vec<Rate> = (1..=ctx.opts.repeat)
        .map(|round| {
            ctx.step(format!("memcpy, {size} B, run {round}"));
            let rate = copies(size, RUN_BYTES / size as u64);
            ctx.done();
            rate
        })
        .collect();
    let of = |f: fn(&Rate) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Row {
        measure: "bulk".into(),
        mechanism: "memcpy, one thread (yardstick)".into(),
        size: Some(size),
        per_second: of(Rate::per_second),
        mb_per_second: of(Rate::mb_per_second),
        runs: runs.len(),
        operations: median_u64(runs.iter().map(|r| r.messages)),
        per_run: runs.iter().map(Rate::per_second).collect(),
        ..Row::default()
    }
}

/// Copies a `size`-byte buffer into another `n` times (after a warm-up).
fn copies(size: usize, n: u64) -> Rate {
    let src: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut dst = vec![0u8; size];
    for _ in 0..WARMUP {
        black_box(&mut dst).copy_from_slice(black_box(&src));
    }
    let start = Instant::now();
    for _ in 0..n {
        black_box(&mut dst).copy_from_slice(black_box(&src));
    }
    let elapsed: Duration = start.elapsed();
    Rate {
        messages: n,
        bytes: n * size as u64,
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_counted() {
        let r = copies(4096, 100);
        assert_eq!((r.messages, r.bytes), (100, 409_600));
        assert!(r.mb_per_second() > 0.0);
    }
}
