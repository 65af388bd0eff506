//! Where the bench's processes run, so that every figure describes one regime.
//!
//! On a VM with few vCPUs a blocking round trip between two processes costs
//! about 6 µs when both share a vCPU and about 55 µs when they do not (waking
//! a halted vCPU); left to the scheduler, a run lands in either regime, and a
//! median over runs mixes the two. So each measurement runs once per
//! [`Placement`]: `same` (the bench and its peer pinned to one CPU) and
//! `split` (pinned to two different CPUs), with `sched_setaffinity`. The bench
//! pins the thread that measures; the peer pins itself (`bench-peer --cpu`).
//!
//! ipcd is not the bench's to move. For figures that involve it (control
//! plane, connect), the bench reads the daemon's CPU affinity: if ipcd is
//! pinned to one CPU, the bench pins itself to that CPU (`same`) or to another
//! (`split`); otherwise the rows say `ipcd any`.

use anyhow::{Context as _, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// `--placement`: which placements to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlacementArg {
    /// Both processes on one CPU.
    Same,
    /// The two processes on two different CPUs.
    Split,
    /// `same`, then `split`.
    Both,
    /// Unpinned: wherever the scheduler puts them (figures may mix regimes).
    Any,
}

/// One placement of the bench and its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// `same`, `split` or `any`: the label of its rows.
    pub name: &'static str,
    /// The CPU the bench's measuring thread is pinned to, if any.
    pub bench: Option<usize>,
    /// The CPU the peer pins itself to, if any.
    pub peer: Option<usize>,
}

impl Placement {
    /// Unpinned.
    pub const ANY: Placement = Placement {
        name: "any",
        bench: None,
        peer: None,
    };

    /// What the label means, for the report's footer.
    pub fn describe(&self) -> String {
        match (self.bench, self.peer) {
            (Some(b), Some(p)) if b == p => format!("{}: bench and peer on CPU {b}", self.name),
            (Some(b), Some(p)) => format!("{}: bench on CPU {b}, peer on CPU {p}", self.name),
            _ => format!("{}: not pinned (either regime, or both)", self.name),
        }
    }
}

/// The placements to measure given `arg` and the CPUs this process may use,
/// with a note for each one that cannot be had.
pub fn plan(arg: PlacementArg, allowed: &[usize]) -> (Vec<Placement>, Vec<String>) {
    let Some(&first) = allowed.first() else {
        return (
            vec![Placement::ANY],
            vec!["no CPU affinity known: not pinned".into()],
        );
    };
    let same = Placement {
        name: "same",
        bench: Some(first),
        peer: Some(first),
    };
    let split = allowed.get(1).map(|&second| Placement {
        name: "split",
        bench: Some(first),
        peer: Some(second),
    });
    let no_split = || {
        format!(
            "only CPU {first} is available to the bench: `split` placement skipped, \
             figures are for `same` only"
        )
    };
    match (arg, split) {
        (PlacementArg::Any, _) => (vec![Placement::ANY], Vec::new()),
        (PlacementArg::Same, _) => (vec![same], Vec::new()),
        (PlacementArg::Split, Some(split)) => (vec![split], Vec::new()),
        (PlacementArg::Both, Some(split)) => (vec![same, split], Vec::new()),
        (PlacementArg::Split | PlacementArg::Both, None) => (vec![same], vec![no_split()]),
    }
}

/// Where the bench runs for rows that talk to ipcd under `placement`, and
/// those rows' label. `daemon` is the set of CPUs ipcd may run on, if known.
pub fn towards_daemon(
    placement: &Placement,
    daemon: Option<&[usize]>,
    allowed: &[usize],
) -> (Option<usize>, String) {
    let Some(bench) = placement.bench else {
        return (None, Placement::ANY.name.to_owned());
    };
    let Some(&[d]) = daemon else {
        return (Some(bench), "ipcd any".to_owned());
    };
    let other = allowed.iter().copied().find(|&c| c != d);
    match (placement.name, allowed.contains(&d), other) {
        ("same", true, _) => (Some(d), "same".to_owned()),
        (_, _, Some(c)) => (Some(c), "split".to_owned()),
        (_, _, None) => (Some(d), "same".to_owned()),
    }
}

/// The CPUs this thread may run on (inherited by its threads and children).
pub fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Pins the calling thread to `cpu`, or lets it run on all of `allowed` again.
pub fn pin(cpu: Option<usize>, allowed: &[usize]) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    let one;
    let cpus = match cpu {
        Some(c) => {
            one = [c];
            &one[..]
        }
        None => allowed,
    };
    if cpus.is_empty() {
        bail!("no CPU to run on");
    }
    for &c in cpus {
        set.set(c)
            .with_context(|| format!("CPU {c} is out of range"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .with_context(|| format!("cannot pin the bench to CPU(s) {cpus:?}"))
}

/// Parses a CPU list as `/proc/<pid>/status` gives it (`Cpus_allowed_list`):
/// `0-3,5,7-8`.
pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_is_same_then_split_on_the_first_two_cpus() {
        let (p, notes) = plan(PlacementArg::Both, &[1, 3]);
        assert!(notes.is_empty());
        assert_eq!(
            p.iter()
                .map(|p| (p.name, p.bench, p.peer))
                .collect::<Vec<_>>(),
            [("same", Some(1), Some(1)), ("split", Some(1), Some(3))]
        );
        assert_eq!(p[1].describe(), "split: bench on CPU 1, peer on CPU 3");
    }

    #[test]
    fn one_cpu_falls_back_to_same_with_a_note() {
        for arg in [PlacementArg::Both, PlacementArg::Split] {
            let (p, notes) = plan(arg, &[0]);
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].name, "same");
            assert!(notes[0].contains("only CPU 0"), "{notes:?}");
        }
        assert_eq!(plan(PlacementArg::Any, &[0, 1]).0, [Placement::ANY]);
    }

    #[test]
    fn rows_with_ipcd_follow_its_affinity() {
        let (p, _) = plan(PlacementArg::Both, &[0, 1]);
        let (same, split) = (&p[0], &p[1]);
        assert_eq!(
            towards_daemon(same, Some(&[1]), &[0, 1]),
            (Some(1), "same".into())
        );
        assert_eq!(
            towards_daemon(split, Some(&[1]), &[0, 1]),
            (Some(0), "split".into())
        );
        assert_eq!(
            towards_daemon(same, Some(&[0, 1]), &[0, 1]),
            (Some(0), "ipcd any".into())
        );
        assert_eq!(
            towards_daemon(same, None, &[0, 1]),
            (Some(0), "ipcd any".into())
        );
        assert_eq!(
            towards_daemon(&Placement::ANY, Some(&[1]), &[0, 1]).1,
            "any"
        );
        // The bench may not leave ipcd's CPU: everything is `same`.
        assert_eq!(
            towards_daemon(split, Some(&[0]), &[0]),
            (Some(0), "same".into())
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn pinning_this_thread_and_back() {
        let allowed = allowed_cpus().unwrap();
        let last = *allowed.last().unwrap();
        std::thread::spawn(move || {
            pin(Some(last), &allowed).unwrap();
            assert_eq!(allowed_cpus().unwrap(), [last]);
            pin(None, &allowed).unwrap();
            assert_eq!(allowed_cpus().unwrap(), allowed);
        })
        .join()
        .unwrap();
    }
}
