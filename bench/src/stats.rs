//! Sample statistics for the benchmarks: nearest-rank percentiles, medians and rates.

use std::time::Duration;

/// Latency samples in nanoseconds, kept sorted so percentiles are lookups.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    sorted: Vec<u64>,
}

impl Samples {
    /// Takes ownership of raw samples (nanoseconds, in any order) and sorts them.
    pub fn new(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Samples { sorted: samples }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `p`-th percentile (0 < p ≤ 100) by the nearest-rank method: the smallest
    /// sample such that at least `p` % of all samples are ≤ it. `None` if empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.sorted.is_empty() {
            return None;
        }
        let n = self.sorted.len();
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
        Some(self.sorted[rank.clamp(1, n) - 1])
    }

    /// The median (50th percentile, nearest rank).
    pub fn p50(&self) -> Option<u64> {
        self.percentile(50.0)
    }

    /// The 99th percentile (nearest rank).
    pub fn p99(&self) -> Option<u64> {
        self.percentile(99.0)
    }
}

/// The median of `values`, averaging the two middle ones for an even count;
/// `None` if there are none. NaNs sort last.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Ratios of paired measurements: each pair is one value of mechanism 0 (the
/// baseline) and one of mechanism 1, taken back to back, in either order.
/// Pairing adjacent blocks cancels whatever changes slowly (CPU placement,
/// frequency, a VM neighbour), which is most of the noise on a VM.
#[derive(Debug, Clone, Default)]
pub struct PairRatios {
    /// The half of the current pair already seen, by mechanism.
    pending: [Option<f64>; 2],
    /// `value₁ / value₀` of each completed pair, in order.
    pub ratios: Vec<f64>,
}

impl PairRatios {
    /// Records `value` for mechanism `which` (0 or 1); completes a pair when
    /// the other mechanism's value is pending.
    pub fn record(&mut self, which: usize, value: f64) {
        self.pending[which] = Some(value);
        if let [Some(base), Some(other)] = self.pending {
            self.ratios.push(other / base);
            self.pending = [None, None];
        }
    }
}

/// A counted transfer: how many messages and bytes went through in how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Messages counted.
    pub messages: u64,
    /// Payload bytes counted.
    pub bytes: u64,
    /// Time they took.
    pub elapsed: Duration,
}

impl Rate {
    /// Messages per second; 0 if no time elapsed.
    pub fn per_second(&self) -> f64 {
        per_second(self.messages, self.elapsed)
    }

    /// Payload megabytes (10⁶ bytes) per second; 0 if no time elapsed.
    pub fn mb_per_second(&self) -> f64 {
        per_second(self.bytes, self.elapsed) / 1e6
    }
}

/// `count / elapsed` in events per second; 0 when `elapsed` is zero.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Nanoseconds in a [`Duration`], saturating at `u64::MAX` (584 years).
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let s = Samples::new((1..=100).rev().collect());
        assert_eq!(s.len(), 100);
        assert_eq!(s.p50(), Some(50));
        assert_eq!(s.p99(), Some(99));
        assert_eq!(s.percentile(100.0), Some(100));
        assert_eq!(s.percentile(0.0), Some(1));
        assert_eq!(s.percentile(0.5), Some(1));
    }

    #[test]
    fn percentiles_of_small_and_empty_sets() {
        assert_eq!(Samples::new(vec![]).p50(), None);
        let one = Samples::new(vec![7]);
        assert_eq!((one.p50(), one.p99()), (Some(7), Some(7)));
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten = Samples::new((1..=10).collect());
        assert_eq!((ten.p50(), ten.p99()), (Some(5), Some(10)));
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn pairs_complete_in_either_order() {
        let mut p = PairRatios::default();
        p.record(0, 2.0);
        p.record(1, 3.0);
        p.record(1, 4.0);
        assert_eq!(p.ratios, [1.5]);
        p.record(0, 8.0);
        assert_eq!(p.ratios, [1.5, 0.5]);
    }

    #[test]
    fn rates() {
        let r = Rate {
            messages: 1000,
            bytes: 4_096_000,
            elapsed: Duration::from_millis(10),
        };
        assert!((r.per_second() - 100_000.0).abs() < 1e-6);
        assert!((r.mb_per_second() - 409.6).abs() < 1e-9);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
        assert_eq!(nanos(Duration::from_micros(3)), 3000);
    }
}
