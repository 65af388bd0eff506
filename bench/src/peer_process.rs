//! The bench's handle on its peer process (`ipcctl bench-peer`, see
//! [`super::peer`]): starting it, telling it which mechanism the next block
//! runs on, reading its reports, and the watchdog that ends the bench if the
//! peer dies mid-run (the bench would otherwise block in a receive nobody
//! answers).

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::OwnedFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::abba::Mechanism;
use super::channel::PeerReport;
use super::peer::{PeerArgs, READY, value_name};
use super::{cleanup, fds, load};

/// Exit status of a bench whose peer died (ipcctl's status for "any other error").
const EXIT_ERROR: i32 = 2;

/// How long a peer may take to open its queues before the bench gives up on it.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the watchdog looks at the peer. Rare enough not to disturb the
/// measurement (one wake-up per 50 ms against tens of thousands of messages).
const WATCH_INTERVAL: Duration = Duration::from_millis(50);

/// Flags shared between the parent's thread and the watchdog.
#[derive(Debug, Default)]
struct Shared {
    /// The peer printed `ready`.
    ready: AtomicBool,
    /// The parent no longer waits on the peer; the watchdog should stop.
    done: AtomicBool,
}

/// The parent's handle on a running peer; kills it on drop if still running.
pub struct PeerProcess {
    /// The child, shared with the watchdog.
    child: Arc<Mutex<Child>>,
    /// The child's stdin: one mechanism name per block; closed to end the peer.
    stdin: Option<ChildStdin>,
    /// The child's stdout: `ready`, then one report per block.
    stdout: BufReader<ChildStdout>,
    /// Flags shared with the watchdog.
    shared: Arc<Shared>,
    /// The watchdog thread.
    watchdog: Option<JoinHandle<()>>,
    /// The child's pid (its CPU time is the bench's, see [`load`]).
    pid: u32,
}

impl PeerProcess {
    /// Starts `current_exe() bench-peer <args>` and its watchdog, and waits
    /// until the peer has opened its channels.
    pub fn spawn(args: &PeerArgs) -> anyhow::Result<Self> {
        Self::spawn_inheriting(args, Vec::new())
    }

    /// Like [`spawn`](Self::spawn), and the peer inherits `fds` under their
    /// numbers (`args` names them); this process's copies are closed once
    /// the peer has started.
    pub fn spawn_inheriting(args: &PeerArgs, fds: Vec<OwnedFd>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the ipcctl executable")?;
        for fd in &fds {
            fds::inheritable(fd)?;
        }
        let spawned = Command::new(&exe)
            .arg("bench-peer")
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        // The peer has its copies now; holding ours would hide its exit from
        // the other end (no end of file, no EPIPE).
        drop(fds);
        let mut child =
            spawned.with_context(|| format!("cannot start {} bench-peer", exe.display()))?;
        let pid = child.id();
        load::peer_started(pid);
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let child = Arc::new(Mutex::new(child));
        let shared = Arc::new(Shared::default());
        let watchdog = {
            let (child, shared) = (Arc::clone(&child), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("bench-watchdog".into())
                .spawn(move || watch(&child, &shared))
                .context("cannot start the watchdog thread")?
        };
        let mut peer = PeerProcess {
            child,
            stdin,
            stdout,
            shared,
            watchdog: Some(watchdog),
            pid,
        };
        let line = peer.read_line()?;
        if line != READY {
            bail!("bench peer said {line:?} instead of {READY:?}");
        }
        peer.shared.ready.store(true, Ordering::SeqCst);
        Ok(peer)
    }

    /// Tells the peer that the next block runs on `mechanism`. The block's
    /// report follows with [`report`](Self::report) once the parent's half is done.
    pub fn start(&mut self, mechanism: Mechanism) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the bench peer's stdin is closed")?;
        writeln!(stdin, "{}", value_name(&mechanism))
            .and_then(|()| stdin.flush())
            .context("cannot write to the bench peer")
    }

    /// Reads the report of the block just run.
    pub fn report(&mut self) -> anyhow::Result<PeerReport> {
        let line = self.read_line()?;
        serde_json::from_str(&line)
            .with_context(|| format!("bench peer sent a malformed report {line:?}"))
    }

    /// Ends the peer (end of its stdin) and waits for it to exit successfully.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.shared.done.store(true, Ordering::SeqCst);
        drop(self.stdin.take());
        let status = lock(&self.child).wait();
        load::peer_reaped(self.pid);
        let status = status.context("cannot wait for the bench peer")?;
        if !status.success() {
            bail!("bench peer failed ({status})");
        }
        Ok(())
    }

    /// One line of the peer's stdout, without its newline.
    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .context("cannot read from the bench peer")?;
        if n == 0 {
            self.shared.done.store(true, Ordering::SeqCst);
            let status = lock(&self.child).wait();
            load::peer_reaped(self.pid);
            let status = status.context("cannot wait for the bench peer")?;
            bail!("bench peer exited early ({status}); see its error above");
        }
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::SeqCst);
        drop(self.stdin.take());
        {
            let mut child = lock(&self.child);
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        load::peer_reaped(self.pid);
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
    }
}

/// Locks the child, ignoring poisoning (the data is a process handle).
fn lock(child: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(|e| e.into_inner())
}

/// The watchdog: if the peer dies (or never gets ready) while the parent still
/// depends on it, the parent may be blocked in a receive for good; unlink what
/// is left, say why and exit. Objects created through ipcd go with the
/// connection (lifetime session).
fn watch(child: &Mutex<Child>, shared: &Shared) {
    let started = Instant::now();
    loop {
        std::thread::sleep(WATCH_INTERVAL);
        if shared.done.load(Ordering::SeqCst) {
            return;
        }
        let status = {
            let mut child = lock(child);
            match child.try_wait() {
                Ok(None) => {
                    if !shared.ready.load(Ordering::SeqCst) && started.elapsed() > READY_TIMEOUT {
                        let _ = child.kill();
                    }
                    continue;
                }
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => status.to_string(),
                Err(e) => e.to_string(),
            }
        };
        // Give the parent's own error path the chance to report first.
        std::thread::sleep(Duration::from_secs(1));
        if shared.done.load(Ordering::SeqCst) {
            return;
        }
        cleanup::run_all();
        eprintln!("ipcctl: bench peer died mid-run ({status}); giving up (os-error)");
        std::process::exit(EXIT_ERROR);
    }
}
