//! The daemon's process as `/proc` shows it: its resident memory, the CPUs it
//! may run on, and the CPU time it used. The pid comes from the daemon
//! itself (`Client::status`); if this process cannot see it under that pid
//! (another pid namespace), every reading is `None` and the report says so.

use std::path::PathBuf;

use super::placement::parse_cpu_list;

/// ipcd's process, by pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daemon {
    /// The pid the daemon reported.
    pub pid: i32,
}

impl Daemon {
    /// The daemon at `pid`, if `/proc/<pid>` is an ipcd process (its command
    /// name starts with `ipcd`).
    pub fn at(pid: i32) -> Option<Self> {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        comm.starts_with("ipcd").then_some(Daemon { pid })
    }

    /// `/proc/<pid>/<file>`.
    fn proc(&self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{file}", self.pid))
    }

    /// A field of `/proc/<pid>/status`, e.g. `VmRSS`.
    fn status_field(&self, field: &str) -> Option<String> {
        let status = std::fs::read_to_string(self.proc("status")).ok()?;
        status_field(&status, field).map(str::to_owned)
    }

    /// Resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        let v = self.status_field("VmRSS")?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    }

    /// The CPUs the daemon's main thread may run on (`Cpus_allowed_list`).
    pub fn cpus(&self) -> Option<Vec<usize>> {
        parse_cpu_list(&self.status_field("Cpus_allowed_list")?)
    }

    /// User plus system CPU time so far, in clock ticks.
    pub fn cpu_ticks(&self) -> Option<u64> {
        proc_ticks(&self.proc("stat"))
    }
}

/// The value of `field` in a `/proc/<pid>/status` text.
fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == field).then_some(v.trim())
    })
}

/// User plus system time (clock ticks) from a `/proc/<pid>/stat` file.
pub fn proc_ticks(path: &std::path::Path) -> Option<u64> {
    stat_ticks(&std::fs::read_to_string(path).ok()?)
}

/// User plus system time (clock ticks) from a `/proc/<pid>/stat` line: the
/// 14th and 15th fields, counted after the command name, which is in
/// parentheses and may contain spaces.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_stat_fields() {
        let status = "Name:\tipcd\nVmRSS:\t   12345 kB\nCpus_allowed_list:\t0-1\n";
        assert_eq!(status_field(status, "VmRSS"), Some("12345 kB"));
        assert_eq!(status_field(status, "Cpus_allowed_list"), Some("0-1"));
        assert_eq!(status_field(status, "Vm"), None);
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0";
        assert_eq!(stat_ticks(stat), Some(10));
    }

    #[test]
    fn this_process_reads_as_a_process() {
        let me = Daemon {
            pid: std::process::id() as i32,
        };
        assert!(me.rss_kib().unwrap() > 0);
        assert!(!me.cpus().unwrap().is_empty());
        assert!(me.cpu_ticks().is_some());
        assert_eq!(Daemon::at(-1), None);
    }
}
