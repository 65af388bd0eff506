//! `sig-counter SIGNAL…`: a process that counts the real signals it gets,
//! for the signal-channel tests. It blocks the signals named (HUP, USR1, …),
//! prints `ready PID`, then takes them with `sigwait` and prints `NAME N`
//! for each (N counts that signal), flushing every line; it ends when its
//! standard input closes (or it is killed).

use std::io::{Read, Write};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};

fn main() {
    let mut set = SigSet::empty();
    for name in std::env::args().skip(1) {
        let full = format!("SIG{}", name.trim_start_matches("SIG"));
        let signal: Signal = full.parse().unwrap_or_else(|_| {
            eprintln!("sig-counter: unknown signal {name}");
            std::process::exit(2)
        });
        set.add(signal);
    }
    // Blocked in this thread before any other starts, so every thread
    // inherits the mask and the signals wait for sigwait.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).expect("sigprocmask");
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
    let mut out = std::io::stdout();
    writeln!(out, "ready {}", std::process::id()).expect("stdout");
    out.flush().expect("stdout");
    let mut counts = std::collections::HashMap::new();
    loop {
        let signal = set.wait().expect("sigwait");
        let n = counts.entry(signal).or_insert(0u64);
        *n += 1;
        let name = signal.as_str().trim_start_matches("SIG");
        if writeln!(out, "{name} {n}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}
