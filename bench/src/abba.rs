//! Raw against ipc-client in the same run: the two [`Mechanism`]s take turns
//! in blocks, in ABBA order, and each pair of adjacent blocks gives one ratio.
//!
//! Nothing here knows what a channel is: a kind's runs call [`abba`] (or
//! [`round_trip_blocks`]) with a closure that runs one block.

use std::time::{Duration, Instant};

use super::stats::{PairRatios, Samples};

/// How a channel is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mechanism {
    /// The kernel mechanism used directly (`mq_open`, `pipe2`, `mkfifo`).
    Raw,
    /// The object made and handed over by ipcd, used through `ipc_client`.
    Client,
}

/// Both mechanisms, in the order results are kept: raw first, then ipc-client.
pub const MECHANISMS: [Mechanism; 2] = [Mechanism::Raw, Mechanism::Client];

impl Mechanism {
    /// Index of this mechanism in [`MECHANISMS`].
    pub fn index(self) -> usize {
        match self {
            Mechanism::Raw => 0,
            Mechanism::Client => 1,
        }
    }
}

/// When a measured run stops: after `count` operations or after `time`,
/// whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most operations to time.
    pub count: u64,
    /// Longest the run may take, if bounded.
    pub time: Option<Duration>,
}

impl Budget {
    /// Exactly `count` operations, however long they take.
    pub const fn count(count: u64) -> Self {
        Budget { count, time: None }
    }

    /// Whether a run that started at `start` and has done `done` operations is over.
    #[inline]
    pub fn spent(&self, done: u64, start: Instant) -> bool {
        done >= self.count || self.time.is_some_and(|t| start.elapsed() >= t)
    }
}

/// Runs `block(mechanism, n)` for the two mechanisms of `pair` alternately in
/// blocks of at most `block_len` operations, in ABBA order (A B, B A, A B, …) so
/// that a steady drift favours neither. Stops after a whole pair once each
/// mechanism has done `budget.count` operations or, if `budget.time` is set,
/// once the blocks together took twice that (it bounds each mechanism).
pub fn abba<M: Copy>(
    pair: [M; 2],
    budget: Budget,
    block_len: u64,
    mut block: impl FnMut(M, u64) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut done = 0u64;
    let mut round = 0u64;
    while done < budget.count && budget.time.is_none_or(|t| start.elapsed() < 2 * t) {
        let n = block_len.min(budget.count - done);
        let [a, b] = pair;
        let order = if round.is_multiple_of(2) {
            [a, b]
        } else {
            [b, a]
        };
        for m in order {
            block(m, n)?;
        }
        done += n;
        round += 1;
    }
    Ok(())
}

/// Drives round-trip blocks for both mechanisms: one untimed warm-up block of
/// `warmup` exchanges each, then timed blocks of `block_len` in ABBA order (see
/// [`abba`]). `block(mechanism, budget, lead_in)` runs one block and returns its
/// nanoseconds per exchange. Returns those samples per mechanism and, per pair
/// of adjacent blocks, the ratio of their p50s (ipc-client / raw).
pub fn round_trip_blocks(
    warmup: u64,
    budget: Budget,
    block_len: u64,
    lead_in: u64,
    mut block: impl FnMut(Mechanism, Budget, u64) -> anyhow::Result<Vec<u64>>,
) -> anyhow::Result<([Vec<u64>; 2], Vec<f64>)> {
    for m in MECHANISMS {
        block(m, Budget::count(warmup), 0)?;
    }
    let mut samples: [Vec<u64>; 2] = Default::default();
    let mut pairs = PairRatios::default();
    abba(MECHANISMS, budget, block_len, |m, n| {
        let s = block(m, Budget::count(n), lead_in)?;
        let p50 = Samples::new(s.clone()).p50().unwrap_or(0);
        pairs.record(m.index(), p50 as f64);
        samples[m.index()].extend(s);
        Ok(())
    })?;
    Ok((samples, pairs.ratios))
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    #[test]
    fn abba_alternates_and_splits_the_count() {
        let mut calls = Vec::new();
        let budget = Budget {
            count: 25,
            time: None,
        };
        abba(['a', 'b'], budget, 10, |m, n| {
            calls.push((m, n));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            calls,
            [
                ('a', 10),
                ('b', 10),
                ('b', 10),
                ('a', 10),
                ('a', 5),
                ('b', 5)
            ]
        );
    }

    #[test]
    fn abba_stops_on_time_after_a_whole_pair() {
        let mut calls = 0;
        let budget = Budget {
            count: u64::MAX,
            time: Some(Duration::from_millis(10)),
        };
        abba([1, 2], budget, 1, |_, _| {
            calls += 1;
            std::thread::sleep(Duration::from_millis(3));
            Ok(())
        })
        .unwrap();
        assert!(calls % 2 == 0 && (6..=10).contains(&calls), "{calls}");
    }

    #[test]
    fn round_trip_blocks_warm_up_then_pair_adjacent_blocks() {
        let mut calls = Vec::new();
        let (samples, ratios) = round_trip_blocks(3, Budget::count(4), 2, 1, |m, b, lead| {
            calls.push((m, b.count, lead));
            let ns = if m == Mechanism::Raw { 100 } else { 150 };
            Ok(vec![ns; b.count as usize])
        })
        .unwrap();
        assert_eq!(
            calls[..2],
            [(Mechanism::Raw, 3, 0), (Mechanism::Client, 3, 0)]
        );
        assert_eq!(calls.len(), 6);
        assert_eq!(samples.map(|s| s.len()), [4, 4]);
        assert_eq!(ratios, [1.5, 1.5]);
    }

    #[test]
    fn mechanisms_parse_back_from_their_names() {
        for m in MECHANISMS {
            let name = m.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(Mechanism::from_str(&name, false), Ok(m));
        }
    }
}
