//! What `ipcctl bench` prints: the table with its footer (what the figures
//! are medians of, where the processes ran, the load meanwhile, notes, the
//! machine), or one JSON document with the same.

use serde::Serialize;

use super::abba::Budget;
use super::ctx::Options;
use super::load::Load;
use super::placement::Placement;
use super::report::{self, Row};

/// The load while one kind ran under one placement.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// The kind, e.g. `mq`.
    pub kind: &'static str,
    /// The placement label, e.g. `same`; empty for a kind whose figures do
    /// not depend on placement.
    pub placement: &'static str,
    /// The load meanwhile.
    pub load: Load,
}

/// Everything a report says besides the rows.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// Where it ran.
    pub machine: Machine,
    /// How it ran.
    pub settings: Settings,
    /// What each placement label means (none if no row has one).
    pub placements: Vec<String>,
    /// The load just before the first measurement.
    pub load_before: Load,
    /// The load while each part ran.
    pub parts: Vec<Part>,
    /// The load just after the last measurement.
    pub load_after: Load,
    /// Fallbacks and limits worth knowing about.
    pub notes: Vec<String>,
}

/// The JSON document printed by `ipcctl bench --json`.
#[derive(Serialize)]
struct Document<'a> {
    /// `ipcctl <version>`.
    tool: &'static str,
    /// Machine, settings, placements, load, notes.
    #[serde(flatten)]
    context: &'a Context,
    /// One entry per table row.
    results: &'a [Row],
    /// Whether every target was met.
    targets_met: bool,
}

/// The report as one JSON document (one line).
pub fn json(context: &Context, rows: &[Row], missed: usize) -> serde_json::Result<String> {
    let doc = Document {
        tool: concat!("ipcctl ", env!("CARGO_PKG_VERSION")),
        context,
        results: rows,
        targets_met: missed == 0,
    };
    Ok(serde_json::to_string(&doc)? + "\n")
}

/// The report as a table and its footer.
pub fn text(c: &Context, rows: &[Row], missed: usize) -> String {
    let runs = match c.settings.repeat {
        1 => "1 run".to_owned(),
        n => format!("{n} runs"),
    };
    let mut out = format!(
        "{}\n{missed} target(s) missed · figures are medians of {runs}; `vs raw` is the median \
         ratio of adjacent raw/ipc-client blocks\n",
        report::table(rows),
    );
    if !c.placements.is_empty() {
        out.push_str(&format!("placement: {}\n", c.placements.join(" · ")));
    }
    out.push_str(
        "load (others: CPU taken by processes other than the bench, its peers and ipcd; \
         % of one CPU, min/median/max of 200 ms samples):\n",
    );
    let width = c
        .parts
        .iter()
        .map(|p| p.kind.len() + p.placement.len() + 2)
        .max()
        .unwrap_or(0)
        .max("before".len());
    let mut line = |what: String, load: &Load| {
        out.push_str(&format!("  {what:<width$}  {load}\n"));
    };
    line("before".into(), &c.load_before);
    for p in &c.parts {
        match p.placement {
            "" => line(p.kind.to_owned(), &p.load),
            placement => line(format!("{}, {placement}", p.kind), &p.load),
        }
    }
    line("after".into(), &c.load_after);
    for note in &c.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    let m = &c.machine;
    let load = m.load_average.map_or_else(String::new, |l| {
        format!(" · load average {l:.2} at the start")
    });
    out.push_str(&format!(
        "{} CPUs · {} · Linux {}{load}\n",
        m.cpus, m.cpu_model, m.kernel
    ));
    out
}

/// The settings of a bench, as recorded in its JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Round trips per run (`null`: bounded by time only).
    iterations: Option<u64>,
    /// Messages per throughput run (`null`: bounded by time only).
    messages: Option<u64>,
    /// Time limit per run, milliseconds.
    duration_ms: Option<u128>,
    /// Message sizes.
    sizes: Vec<usize>,
    /// Runs per measurement.
    repeat: usize,
    /// Queue capacity.
    capacity: u32,
    /// Processes per command (spawn).
    spawns: u64,
    /// Requests per pipelined batch (control).
    batch: usize,
    /// Connections timed per run (setup rows).
    connects: u64,
    /// Idle connections held (memory).
    connections: u64,
}

impl Settings {
    /// The effective settings of `opts`.
    pub fn of(opts: &Options) -> Self {
        let finite = |b: Budget| (b.count != u64::MAX).then_some(b.count);
        Settings {
            iterations: finite(opts.round_trip_budget()),
            messages: finite(opts.throughput_budget()),
            duration_ms: opts.duration.map(|d| d.as_millis()),
            sizes: opts.sizes.clone(),
            repeat: opts.repeat,
            capacity: opts.capacity,
            spawns: opts.spawns,
            batch: opts.batch,
            connects: opts.connects,
            connections: opts.connections,
        }
    }
}

/// What each placement in `placements` means.
pub fn describe(placements: &[Placement]) -> Vec<String> {
    placements.iter().map(Placement::describe).collect()
}

/// The machine a bench ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs available to this process.
    cpus: usize,
    /// `model name` from /proc/cpuinfo.
    cpu_model: String,
    /// The kernel release.
    kernel: String,
    /// The 1-minute load average when the bench started.
    load_average: Option<f64>,
}

impl Machine {
    /// Reads what it can; unknown parts are `?`.
    pub fn probe() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "?".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".to_owned());
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel,
            load_average: super::load::load_average(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Spread;

    fn context() -> Context {
        let load = Load {
            samples: 3,
            others_pct: Some(Spread {
                min: 0.0,
                median: 1.0,
                max: 5.0,
            }),
            steal_pct: None,
            load_average_start: Some(0.5),
            load_average_end: Some(0.75),
        };
        Context {
            machine: Machine::probe(),
            settings: Settings::of(&Options {
                iterations: None,
                messages: Some(10),
                duration: None,
                sizes: vec![64],
                repeat: 1,
                capacity: 10,
                spawns: 5,
                batch: 8,
                connects: 20,
                connections: 100,
            }),
            placements: vec!["same: bench and peer on CPU 0".into()],
            load_before: load.clone(),
            parts: vec![Part {
                kind: "mq",
                placement: "same",
                load: load.clone(),
            }],
            load_after: load,
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn the_footer_has_placement_load_and_notes() {
        let t = text(&context(), &[], 0);
        assert!(t.contains("figures are medians of 1 run;"), "{t}");
        assert!(
            t.contains("placement: same: bench and peer on CPU 0"),
            "{t}"
        );
        assert!(
            t.contains("  mq, same  others 0/1/5 %, steal ?, load average 0.50 → 0.75"),
            "{t}"
        );
        assert!(t.contains("note: a note\n"), "{t}");
    }

    #[test]
    fn json_is_one_line_with_the_context_flattened() {
        let j = json(&context(), &[], 0).unwrap();
        assert_eq!(j.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["settings"]["iterations"], 5000);
        assert_eq!(v["parts"][0]["load"]["others_pct"]["max"], 5.0);
        assert_eq!(v["targets_met"], true);
    }
}
