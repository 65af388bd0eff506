//! What else the machine was doing while the bench measured.
//!
//! A [`Sampler`] thread reads `/proc/stat` every [`INTERVAL`] and splits the
//! CPU time of the interval into the bench's own (this process, its peers and
//! the children it has reaped), ipcd's, steal time (the hypervisor running
//! someone else on our vCPUs) and the rest: *others*, what unrelated processes
//! took. Each part of the report then gets the min/median/max of the samples
//! taken while it ran, and the 1-minute load average at its start and end.
//! Figures are in % of one CPU (2 CPUs fully busy: 200 %). `/proc` counts in
//! ticks of 10 ms, so one 200 ms sample resolves about ±5 % per CPU.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use serde::Serialize;

use super::daemon::{Daemon, proc_ticks};
use super::stats::median;

/// How often the sampler reads `/proc`.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// Clock ticks per second of `/proc/stat` and `/proc/<pid>/stat` (`USER_HZ`,
/// 100 on every Linux architecture this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// Pids of the peers running now (their CPU time is the bench's).
static PEERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Counts `pid`'s CPU time as the bench's from now on.
pub fn peer_started(pid: u32) {
    PEERS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

/// Stops reading `pid` (once reaped, its time is in this process's children's).
pub fn peer_reaped(pid: u32) {
    PEERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
}

/// One interval's split of CPU time, in % of one CPU.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// When the interval ended.
    at: Instant,
    /// Busy time of processes other than the bench, its peers and ipcd.
    others: f64,
    /// Steal time.
    steal: f64,
}

/// Smallest, median and largest of some samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, `None` if there are none.
    fn of(values: &[f64]) -> Option<Self> {
        Some(Spread {
            min: values.iter().copied().reduce(f64::min)?,
            median: median(values)?,
            max: values.iter().copied().reduce(f64::max)?,
        })
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0}/{:.0}/{:.0} %", self.min, self.median, self.max)
    }
}

/// The load while one part of the bench ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    /// Samples taken while it ran.
    pub samples: usize,
    /// Other processes' CPU time, % of one CPU (min/median/max over the samples).
    pub others_pct: Option<Spread>,
    /// Steal time, % of one CPU.
    pub steal_pct: Option<Spread>,
    /// 1-minute load average when it started.
    pub load_average_start: Option<f64>,
    /// 1-minute load average when it ended.
    pub load_average_end: Option<f64>,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_q = |s: Option<Spread>| s.map_or_else(|| "?".to_owned(), |s| s.to_string());
        let avg = |a: Option<f64>| a.map_or_else(|| "?".to_owned(), |a| format!("{a:.2}"));
        write!(
            f,
            "others {}, steal {}, load average {} → {} ({} samples)",
            or_q(self.others_pct),
            or_q(self.steal_pct),
            avg(self.load_average_start),
            avg(self.load_average_end),
            self.samples
        )
    }
}

/// The 1-minute load average now.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The background thread that samples the machine's CPU time.
pub struct Sampler {
    /// Samples so far, oldest first.
    samples: Arc<Mutex<Vec<Sample>>>,
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
    /// The thread.
    thread: Option<JoinHandle<()>>,
}

/// A window of time the bench measured something in.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When it started.
    start: Instant,
    /// The load average then.
    load_average: Option<f64>,
}

impl Sampler {
    /// Starts sampling; ipcd's CPU time (if `daemon` is known) is not counted
    /// as others'.
    pub fn start(daemon: Option<Daemon>) -> anyhow::Result<Self> {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("bench-load".into())
                .spawn(move || sample_loop(daemon, &samples, &stop))?
        };
        Ok(Sampler {
            samples,
            stop,
            thread: Some(thread),
        })
    }

    /// Opens a window now.
    pub fn open(&self) -> Window {
        Window {
            start: Instant::now(),
            load_average: load_average(),
        }
    }

    /// The load over `window`, which ends now: the samples whose interval
    /// lies mostly inside it. Waits for the sample that covers its end.
    pub fn close(&self, window: Window) -> Load {
        let end = Instant::now();
        self.wait_past(end + INTERVAL / 2);
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= window.start + INTERVAL / 2 && s.at <= end + INTERVAL / 2)
            .collect();
        let spread =
            |f: fn(&Sample) -> f64| Spread::of(&inside.iter().map(|s| f(s)).collect::<Vec<_>>());
        Load {
            samples: inside.len(),
            others_pct: spread(|s| s.others),
            steal_pct: spread(|s| s.steal),
            load_average_start: window.load_average,
            load_average_end: load_average(),
        }
    }

    /// Waits (at most 3 intervals) until a sample taken after `t` exists.
    fn wait_past(&self, t: Instant) {
        let deadline = Instant::now() + 3 * INTERVAL;
        while Instant::now() < deadline {
            let done = {
                let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
                samples.last().is_some_and(|s| s.at >= t)
            };
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Cumulative CPU times at one moment, in seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    /// All CPUs' busy time (user, nice, system, irq, softirq).
    busy: f64,
    /// All CPUs' steal time.
    steal: f64,
    /// The bench's processes.
    ours: f64,
    /// ipcd.
    daemon: f64,
}

/// Reads the cumulative times now; `None` if `/proc/stat` cannot be read.
fn read(daemon: Option<Daemon>) -> Option<Reading> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let field = |i: usize| cpu.get(i).copied().unwrap_or(0) as f64 / TICKS_PER_SECOND;
    let secs = |ticks: Option<u64>| ticks.unwrap_or(0) as f64 / TICKS_PER_SECOND;
    let peers: f64 = {
        let pids = PEERS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        pids.iter()
            .map(|p| secs(proc_ticks(std::path::Path::new(&format!("/proc/{p}/stat")))))
            .sum()
    };
    let children = getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        tv(u.user_time()) + tv(u.system_time())
    });
    Some(Reading {
        // user, nice, system, (idle, iowait), irq, softirq
        busy: field(0) + field(1) + field(2) + field(5) + field(6),
        steal: field(7),
        ours: secs(proc_ticks(std::path::Path::new("/proc/self/stat"))) + children + peers,
        daemon: secs(daemon.and_then(|d| d.cpu_ticks())),
    })
}

/// The sampler thread: one [`Sample`] per interval until told to stop.
fn sample_loop(daemon: Option<Daemon>, samples: &Mutex<Vec<Sample>>, stop: &AtomicBool) {
    let (mut last, mut last_at) = (read(daemon), Instant::now());
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(INTERVAL);
        let (now, at) = (read(daemon), Instant::now());
        if let (Some(a), Some(b)) = (last, now) {
            let wall = (at - last_at).as_secs_f64();
            let pct = |v: f64| (v / wall * 100.0).max(0.0);
            let others = (b.busy - a.busy) - (b.ours - a.ours) - (b.daemon - a.daemon);
            samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Sample {
                    at,
                    others: pct(others),
                    steal: pct(b.steal - a.steal),
                });
        }
        (last, last_at) = (now, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        assert_eq!(Spread::of(&[]), None);
        let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 10.0));
        assert_eq!(s.to_string(), "1/2/10 %");
    }

    #[test]
    fn a_window_gets_the_samples_taken_in_it() {
        let sampler = Sampler::start(None).unwrap();
        let w = sampler.open();
        std::thread::sleep(INTERVAL * 3);
        let load = sampler.close(w);
        assert!((2..=4).contains(&load.samples), "{load:?}");
        let others = load.others_pct.unwrap();
        assert!(others.min >= 0.0 && others.max < 100.0 * 64.0, "{others:?}");
        assert!(load.to_string().starts_with("others "), "{load}");
    }
}
