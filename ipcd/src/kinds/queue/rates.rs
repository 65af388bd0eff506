//! Rates over the last few seconds, from running totals: two snapshots, the
//! older at least [`WINDOW`] back, are enough; no per-event bookkeeping.

use std::time::{Duration, Instant};

/// The shortest span a rate is measured over.
const WINDOW: Duration = Duration::from_secs(5);

/// A rate meter over one running total.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    /// The snapshot rates are measured from.
    from: (Instant, u64),
    /// A newer snapshot, which becomes `from` once it is a window old.
    next: (Instant, u64),
}

impl Meter {
    /// A meter starting now at `total`.
    pub fn new(total: u64) -> Self {
        let now = Instant::now();
        Meter {
            from: (now, total),
            next: (now, total),
        }
    }

    /// Notes the running total (cheap: call it on every change).
    pub fn note(&mut self, total: u64) {
        let now = Instant::now();
        if now.duration_since(self.next.0) >= WINDOW {
            self.from = self.next;
            self.next = (now, total);
        }
    }

    /// Events per second from the older snapshot to `total` now, over at
    /// least a second (a burst just after a start is not a rate).
    pub fn rate(&self, total: u64) -> u64 {
        let secs = self.from.0.elapsed().as_secs_f64().max(1.0);
        (total.saturating_sub(self.from.1) as f64 / secs) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_counts_from_the_older_snapshot() {
        let mut m = Meter::new(0);
        m.from.0 -= Duration::from_secs(10);
        m.next.0 -= Duration::from_secs(6);
        m.note(500);
        // The 10-second-old snapshot moved on to the 6-second-old one.
        let r = m.rate(600);
        assert!((95..=101).contains(&r), "{r}");
        // Four events just after a start are four a second, not hundreds.
        assert_eq!(Meter::new(0).rate(4), 4);
    }
}
