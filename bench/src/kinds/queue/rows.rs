//! The `queue` kind's rows from its one-way runs ([`OneWay`]), and the
//! relabelling of the shared round-trip and one-way rows of the relay
//! comparison ([`relabel_relay_rows`]).

use crate::abba::Mechanism;
use crate::ctx::Ctx;
use crate::datapath::Throughput;
use crate::report::Row;
use crate::stats::{Rate, median};

/// What the label of the raw slot of the shared rows becomes.
pub const RELAY: &str = "relay (one socket hop)";
/// What the label of the ipc-client slot becomes.
pub const QUEUE: &str = "queue ipc-client";

/// The runs of one comparison's one-way measurement.
#[derive(Debug, Default)]
pub struct OneWay {
    /// Each run's rate, by mechanism.
    rates: [Vec<Rate>; 2],
    /// Every pair ratio of every run (ipc-client / raw).
    pairs: Vec<f64>,
    /// The median pair ratio of each run.
    run_ratios: Vec<f64>,
    /// Messages that arrived out of order, by mechanism.
    reordered: [u64; 2],
}

impl OneWay {
    /// Adds one run.
    pub fn add(&mut self, run: Throughput) {
        for (all, rate) in self.rates.iter_mut().zip(run.rates) {
            all.push(rate);
        }
        for (all, n) in self.reordered.iter_mut().zip(run.reordered) {
            *all += n;
        }
        self.run_ratios.extend(median(&run.pairs));
        self.pairs.extend(run.pairs);
    }

    /// Messages that arrived out of order over all runs, by mechanism.
    pub fn reordered(&self) -> [u64; 2] {
        self.reordered
    }

    /// The row of mechanism `m`: the median rate over the runs; for the
    /// ipc-client slot, with `vs raw` (the median pair ratio) if `ratio`.
    pub fn row(&self, m: Mechanism, measure: &str, mechanism: &str, ratio: bool) -> Row {
        let runs = &self.rates[m.index()];
        let of = |f: fn(&Rate) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        let compared = ratio && m == Mechanism::Client;
        Row {
            measure: measure.into(),
            mechanism: mechanism.into(),
            size: Some(super::SIZE),
            per_second: of(Rate::per_second),
            mb_per_second: of(Rate::mb_per_second),
            vs_raw: compared.then(|| median(&self.pairs)).flatten(),
            runs: runs.len(),
            operations: crate::datapath::median_u64(runs.iter().map(|r| r.messages)),
            per_run: runs.iter().map(Rate::per_second).collect(),
            per_run_vs_raw: if compared {
                self.run_ratios.clone()
            } else {
                Vec::new()
            },
            ..Row::default()
        }
    }
}

/// Notes how many messages of `runs` arrived out of order, by mechanism
/// (`labels`: raw, ipc-client), as [`crate::datapath::note_reordered`] does
/// for the shared rows.
pub fn note_reordered(ctx: &Ctx<'_>, runs: &OneWay, labels: [&str; 2]) {
    for (label, n) in labels.into_iter().zip(runs.reordered()) {
        if n > 0 {
            ctx.note(format!(
                "{label} ({}): {n} messages arrived out of order in the one-way runs of {} B \
                 (their sequence numbers showed none lost or repeated)",
                ctx.placement.name,
                super::SIZE
            ));
        }
    }
}

/// Names the shared rows' mechanisms after what they are (the raw slot is
/// the relay; the ipc-client slot's one-way rows are labelled `one_way`)
/// and their targets after what they compare with.
pub fn relabel_relay_rows(rows: &mut [Row], one_way: &str) {
    let raw = format!("{} raw", super::pairs::KIND);
    let client = format!("{} ipc-client", super::pairs::KIND);
    for row in rows {
        if row.mechanism == raw {
            row.mechanism = RELAY.into();
        } else if row.mechanism == client {
            row.mechanism = if row.measure == "one-way" {
                one_way.into()
            } else {
                QUEUE.into()
            };
        }
        if let Some(t) = &mut row.target {
            t.goal = t.goal.replace("raw", "relay");
        }
    }
}

/// Renames the ipc-client slot in the notes the shared runs made (see
/// [`crate::datapath::note_reordered`]) as [`relabel_relay_rows`] renames
/// the one-way row.
pub fn relabel_relay_notes(ctx: &Ctx<'_>, one_way: &str) {
    let shared = format!("{} ipc-client (", super::pairs::KIND);
    for note in ctx.notes.borrow_mut().iter_mut() {
        if let Some(rest) = note.strip_prefix(&shared) {
            *note = format!("{one_way} ({rest}");
        }
    }
}

/// The rows of a comparison that could not run: no figures, the reason in
/// the mechanism's label.
pub fn skipped(measure: &str, mechanisms: &[&str], why: &str) -> Vec<Row> {
    mechanisms
        .iter()
        .map(|m| Row {
            measure: measure.into(),
            mechanism: format!("{m} (skipped: {why})"),
            size: Some(super::SIZE),
            ..Row::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::Target;

    #[test]
    fn one_way_rows_take_medians_and_ratios() {
        let rate = |messages| Rate {
            messages,
            bytes: messages * 64,
            elapsed: Duration::from_secs(1),
        };
        let run = |rates, pairs, reordered| Throughput {
            rates,
            pairs,
            reordered,
        };
        let mut w = OneWay::default();
        w.add(run([rate(100), rate(80)], vec![0.5, 1.0], [0, 2]));
        w.add(run([rate(200), rate(120)], vec![0.25], [0, 0]));
        w.add(run([rate(300), rate(500)], vec![1.5], [0, 3]));
        assert_eq!(w.reordered(), [0, 5]);
        let raw = w.row(Mechanism::Raw, "one-way", "relay", true);
        assert_eq!((raw.per_second, raw.vs_raw), (Some(200.0), None));
        let client = w.row(Mechanism::Client, "one-way", "queue", true);
        assert_eq!(client.per_second, Some(120.0));
        assert_eq!(client.vs_raw, Some(0.75));
        assert_eq!(client.per_run_vs_raw, [0.75, 0.25, 1.5]);
        assert_eq!((client.runs, client.operations), (3, 120));
        assert_eq!(w.row(Mechanism::Client, "x", "y", false).vs_raw, None);
    }

    #[test]
    fn shared_rows_name_the_relay() {
        let mut rows = [
            Row {
                measure: "round trip".into(),
                mechanism: "queue raw".into(),
                ..Row::default()
            },
            Row {
                measure: "round trip".into(),
                mechanism: "queue ipc-client".into(),
                ..Row::default()
            },
            Row {
                measure: "one-way".into(),
                mechanism: "queue ipc-client".into(),
                target: Some(Target::at_least("≥ 0.80× raw", "vs_raw", 0.8, 0.9)),
                ..Row::default()
            },
        ];
        relabel_relay_rows(&mut rows, "corked");
        assert_eq!(rows[0].mechanism, RELAY);
        assert_eq!(rows[1].mechanism, QUEUE);
        assert_eq!(rows[2].mechanism, "corked");
        assert_eq!(rows[2].target.as_ref().unwrap().goal, "≥ 0.80× relay");
        let s = skipped("one-way", &["redis"], "redis-server not installed");
        assert_eq!(
            s[0].mechanism,
            "redis (skipped: redis-server not installed)"
        );
        assert_eq!(s[0].per_second, None);
    }
}
