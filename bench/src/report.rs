//! The results of a bench: one [`Row`] per measured thing, printed as a table or
//! as one JSON document.

use std::fmt::Write as _;

use serde::Serialize;

use super::load::Load;

/// One line of results. Every figure is the median over the repeated runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// What was measured, e.g. `round trip`, `one-way`, `stat pipelined`.
    pub measure: String,
    /// How, e.g. `mq raw`, `mq ipc-client`.
    pub mechanism: String,
    /// Message size in bytes, where it applies.
    pub size: Option<usize>,
    /// Where the processes ran: `same` (one CPU), `split` (two CPUs), `any`
    /// (unpinned), `ipcd any` (the bench pinned, ipcd not), or empty where
    /// placement does not apply.
    pub placement: String,
    /// Median latency, microseconds.
    pub p50_us: Option<f64>,
    /// 99th-percentile latency, microseconds.
    pub p99_us: Option<f64>,
    /// Messages (or operations) per second.
    pub per_second: Option<f64>,
    /// Payload megabytes (10⁶ bytes) per second.
    pub mb_per_second: Option<f64>,
    /// An amount of memory, KiB.
    pub kib: Option<f64>,
    /// This mechanism's figure divided by the raw mechanism's: the median over
    /// all pairs of adjacent blocks (same processes, back to back) of the
    /// ratio of their p50s (latency rows) or their rates (throughput rows).
    pub vs_raw: Option<f64>,
    /// The goal this row is held to, if any.
    pub target: Option<Target>,
    /// Further goals the same figures are held to (an absolute rate besides
    /// a ratio, say), shown after `target`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Target>,
    /// Repeated runs the figures are the median of.
    pub runs: usize,
    /// Timed operations in one run (median over the runs).
    pub operations: u64,
    /// The row's main figure for each run, in run order: p50 µs for latency
    /// rows, per-second rates for throughput rows. Shows the spread.
    pub per_run: Vec<f64>,
    /// For rows compared with raw: the median pair ratio of each run, in run order.
    pub per_run_vs_raw: Vec<f64>,
    /// What else the machine was doing while the row's runs ran.
    pub load: Option<Load>,
}

impl Row {
    /// Every goal the row is held to: `target`, then `also`.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.target.iter().chain(&self.also)
    }

    /// Adds a goal: as `target` if the row has none yet, else to `also`.
    pub fn hold_to(&mut self, target: Target) {
        if self.target.is_none() {
            self.target = Some(target);
        } else {
            self.also.push(target);
        }
    }
}

/// A goal a figure is held to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Human-readable goal, e.g. `≤ 1.10× raw`.
    pub goal: String,
    /// Which figure is compared: `vs_raw`, `per_second` or `p50_us`.
    pub figure: &'static str,
    /// The threshold.
    pub threshold: f64,
    /// Whether the measured figure must be at most (`true`) or at least the threshold.
    pub at_most: bool,
    /// The measured figure.
    pub measured: f64,
    /// Whether the goal is met.
    pub met: bool,
}

impl Target {
    /// A goal that `measured` must not exceed `threshold`.
    pub fn at_most(
        goal: impl Into<String>,
        figure: &'static str,
        threshold: f64,
        measured: f64,
    ) -> Self {
        Target {
            goal: goal.into(),
            figure,
            threshold,
            at_most: true,
            measured,
            met: measured <= threshold,
        }
    }

    /// A goal that `measured` must reach `threshold`.
    pub fn at_least(
        goal: impl Into<String>,
        figure: &'static str,
        threshold: f64,
        measured: f64,
    ) -> Self {
        Target {
            goal: goal.into(),
            figure,
            threshold,
            at_most: false,
            measured,
            met: measured >= threshold,
        }
    }
}

/// A latency in microseconds, as `420 ns`, `52.3 µs` or `3.21 ms`.
pub fn fmt_time(us: f64) -> String {
    if us < 1.0 {
        format!("{:.0} ns", us * 1000.0)
    } else if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// A rate, as `812`, `41.2 k` or `1.23 M`.
pub fn fmt_rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.1} k", per_second / 1e3)
    } else {
        format!("{per_second:.0}")
    }
}

/// A message size, as `64 B` or `4 KiB`.
pub fn fmt_size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// The table columns: header and whether the column is right-aligned.
const COLUMNS: [(&str, bool); 12] = [
    ("measure", false),
    ("mechanism", false),
    ("size", true),
    ("placement", false),
    ("p50", true),
    ("p99", true),
    ("msgs/s", true),
    ("MB/s", true),
    ("KiB", true),
    ("vs raw", true),
    ("target", false),
    ("result", false),
];

/// The columns shown whatever the rows hold.
const ALWAYS: usize = 2;

/// The cells of one row, in [`COLUMNS`] order; `-` where a figure does not apply.
fn cells(row: &Row) -> [String; 12] {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    [
        row.measure.clone(),
        row.mechanism.clone(),
        or_dash(row.size.map(fmt_size)),
        or_dash((!row.placement.is_empty()).then(|| row.placement.clone())),
        or_dash(row.p50_us.map(fmt_time)),
        or_dash(row.p99_us.map(fmt_time)),
        or_dash(row.per_second.map(fmt_rate)),
        or_dash(row.mb_per_second.map(|v| format!("{v:.1}"))),
        or_dash(row.kib.map(|v| format!("{v:.1}"))),
        or_dash(row.vs_raw.map(|v| format!("{v:.2}×"))),
        or_dash(join(row.targets().map(|t| t.goal.as_str()), "; ")),
        or_dash(join(
            row.targets().map(|t| if t.met { "pass" } else { "FAIL" }),
            " ",
        )),
    ]
}

/// The parts joined by `sep`; `None` if there are none.
fn join<'a>(parts: impl Iterator<Item = &'a str>, sep: &str) -> Option<String> {
    let parts: Vec<&str> = parts.collect();
    (!parts.is_empty()).then(|| parts.join(sep))
}

/// The rows as an aligned plain-text table, with a header line. A column
/// no row has a figure in is left out.
pub fn table(rows: &[Row]) -> String {
    let body: Vec<[String; 12]> = rows.iter().map(cells).collect();
    let shown: Vec<usize> = (0..COLUMNS.len())
        .filter(|&i| i < ALWAYS || body.iter().any(|r| r[i] != "-"))
        .collect();
    let mut widths = COLUMNS.map(|(h, _)| h.chars().count());
    for r in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header = COLUMNS.map(|(h, _)| h.to_owned());
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&body) {
        let mut line = String::new();
        for (n, &i) in shown.iter().enumerate() {
            let (cell, w, right) = (&r[i], widths[i], COLUMNS[i].1);
            if n > 0 {
                line.push_str("  ");
            }
            if right {
                let _ = write!(line, "{cell:>w$}");
            } else {
                let _ = write!(line, "{cell:<w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_time(52.34), "52.3 µs");
        assert_eq!(fmt_time(3210.0), "3.21 ms");
        assert_eq!(fmt_time(0.42), "420 ns");
        assert_eq!(fmt_rate(812.4), "812");
        assert_eq!(fmt_rate(41_234.0), "41.2 k");
        assert_eq!(fmt_rate(1_234_000.0), "1.23 M");
        assert_eq!(fmt_size(64), "64 B");
        assert_eq!(fmt_size(4096), "4 KiB");
        assert_eq!(fmt_size(1000), "1000 B");
    }

    #[test]
    fn targets_compare_in_the_right_direction() {
        assert!(Target::at_most("≤ 1.10× raw", "vs_raw", 1.1, 1.05).met);
        assert!(!Target::at_most("≤ 1.10× raw", "vs_raw", 1.1, 1.2).met);
        assert!(Target::at_least("≥ 50 k/s", "per_second", 50e3, 60e3).met);
        assert!(!Target::at_least("≥ 50 k/s", "per_second", 50e3, 40e3).met);
    }

    #[test]
    fn table_is_aligned_and_marks_failures() {
        let rows = [
            Row {
                measure: "round trip".into(),
                mechanism: "mq raw".into(),
                size: Some(64),
                p50_us: Some(52.0),
                p99_us: Some(80.0),
                ..Row::default()
            },
            Row {
                measure: "round trip".into(),
                mechanism: "mq ipc-client".into(),
                size: Some(4096),
                p50_us: Some(60.0),
                p99_us: Some(1200.0),
                vs_raw: Some(1.154),
                target: Some(Target::at_most("≤ 1.10× raw", "vs_raw", 1.1, 1.154)),
                ..Row::default()
            },
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("measure     mechanism"), "{t}");
        // No row has a rate, an amount of memory or a placement.
        let header = lines[0];
        assert!(
            !header.contains("msgs/s") && !header.contains("KiB") && !header.contains("placement")
        );
        assert!(
            lines[2].contains("1.15×") && lines[2].ends_with("FAIL"),
            "{t}"
        );
        // Right-aligned p50 column: both values end at the same character column.
        let end = |l: &str, pat: &str| l.find(pat).map(|i| l[..i + pat.len()].chars().count());
        assert_eq!(end(lines[1], "52.0 µs"), end(lines[2], "60.0 µs"));
        assert!(lines[1].ends_with('-'), "{t}");
        let mut both = rows[1].clone();
        both.hold_to(Target::at_least("≥ 5 M msgs/s", "per_second", 5e6, 6e6));
        assert_eq!(both.targets().count(), 2);
        let t = table(&[both]);
        assert!(
            t.contains("≤ 1.10× raw; ≥ 5 M msgs/s") && t.contains("FAIL pass"),
            "{t}"
        );
        let placed = [Row {
            placement: "same".into(),
            kib: Some(12.25),
            ..rows[0].clone()
        }];
        let t = table(&placed);
        assert!(
            t.contains("placement") && t.contains("same") && t.contains("12.2"),
            "{t}"
        );
    }
}
