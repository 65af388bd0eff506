//! The accept loop and graceful shutdown.
//!
//! Shutdown: stop accepting, tell sessions (they finish the request in hand and
//! close), wait for them a bounded time, save the registry, remove the socket.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::budget::{ConnLimits, ConnTicket};
use crate::config::Tunables;
use crate::error::FatalError;
use crate::peer::Peer;
use crate::shared::{AtomicCounters, Shared};
use crate::socket;

/// How long sessions get to finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the outside world (signals, tests) can ask of a running daemon.
#[derive(Debug)]
pub enum Control {
    /// Stop gracefully.
    Shutdown,
    /// Apply new tunables (re-read config file).
    Reload(Box<Tunables>),
    /// Log a status dump.
    DumpStatus,
}

/// Serves `listener` until `Control::Shutdown` arrives or the control channel closes.
pub async fn serve(
    listener: UnixListener,
    shared: Arc<Shared>,
    mut control: mpsc::Receiver<Control>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    let mut accept_errors = Throttled::new("accept failed");
    let mut trim = Trimmer::default();
    let mut trim_tick = tokio::time::interval(TRIM_EVERY);
    let mut refusals = Throttled::new("connection refused");
    // Watchdog pings and the status line come from this loop: a wedged loop stops them.
    let mut heartbeat = crate::systemd::watchdog::Heartbeat::new();
    info!(socket = %shared.config.socket_path.display(), prefix = %shared.config.prefix, "ipcd ready");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    AtomicCounters::bump(&shared.counters.connections, 1);
                    if let Some((peer, ticket)) = admit(&shared, &stream, &mut refusals) {
                        shared.sessions.fetch_add(1, Ordering::Relaxed);
                        let session =
                            crate::session::run(shared.clone(), stream, peer, ticket, stop_rx.clone());
                        sessions.spawn(session);
                        trim.saw(sessions.len());
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off and keep serving; log at most once a second.
                    accept_errors.note(&e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(e) = done {
                    error!("a session task failed: {e}");
                }
            }
            _ = trim_tick.tick() => trim.check(sessions.len()),
            _ = heartbeat.tick() => heartbeat.beat(&shared),
            cmd = control.recv() => match cmd {
                Some(Control::Shutdown) | None => break,
                Some(Control::Reload(tunables)) => reload(&shared, *tunables),
                Some(Control::DumpStatus) => dump_status(&shared),
            },
        }
    }
    drop(listener);
    info!(
        sessions = sessions.len(),
        "shutting down: no longer accepting"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(done) = sessions.join_next().await {
            if let Err(e) = done {
                error!("a session task failed: {e}");
            }
        }
    })
    .await;
    if drained.is_err() {
        warn!(
            left = sessions.len(),
            "sessions did not finish in time; aborting them"
        );
        sessions.shutdown().await;
    }
    if let Err(e) = shared.store().save_now() {
        error!("cannot save the registry: {e}");
    }
    if shared.config.remove_socket {
        let _ = std::fs::remove_file(&shared.config.socket_path);
    }
    info!("stopped");
}

/// How often the connection count is checked for a burst that has passed.
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Gives memory back after a burst: once connections fall to half of the
/// most seen since the last trim (and that peak was more than a handful), the
/// allocator returns its free pages, so RSS comes back near the idle figure.
#[derive(Default)]
struct Trimmer {
    peak: usize,
}

impl Trimmer {
    fn saw(&mut self, now: usize) {
        self.peak = self.peak.max(now);
    }

    fn check(&mut self, now: usize) {
        if self.peak >= 64 && now * 2 <= self.peak {
            crate::sys::mem::give_back_free_memory();
            info!(
                peak = self.peak,
                now, "connections fell after a burst; gave free memory back"
            );
            self.peak = now;
        }
    }
}

/// Logs a repeated error at most once a second, with how many were not logged.
struct Throttled {
    what: &'static str,
    last: Option<Instant>,
    quiet: u64,
}

impl Throttled {
    fn new(what: &'static str) -> Self {
        Throttled {
            what,
            last: None,
            quiet: 0,
        }
    }

    fn note(&mut self, e: &dyn std::fmt::Display) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            self.quiet += 1;
            return;
        }
        let quiet = std::mem::take(&mut self.quiet);
        warn!(repeated = quiet, "{}: {e}", self.what);
        self.last = Some(Instant::now());
    }
}

/// Admits a new connection under the per-uid budgets, or refuses it with a
/// `Fatal` frame written without waiting (a refused peer gets no task).
fn admit(
    shared: &Arc<Shared>,
    stream: &UnixStream,
    refusals: &mut Throttled,
) -> Option<(Peer, ConnTicket)> {
    let peer = match stream.peer_cred() {
        Ok(c) => Peer {
            pid: c.pid().unwrap_or(0),
            uid: c.uid(),
            gid: c.gid(),
        },
        Err(e) => {
            refusals.note(&format_args!("cannot read peer credentials: {e}"));
            return None;
        }
    };
    let t = shared.tunables();
    let limits = ConnLimits {
        max_connections: t.limits.max_connections,
        budgets: &t.budgets,
    };
    match shared
        .ledger
        .admit_connection(peer.uid, shared.privileged(&peer), limits)
    {
        Ok(ticket) => Some((peer, ticket)),
        Err(why) => {
            refusals.note(&format_args!("uid {} pid {}: {why}", peer.uid, peer.pid));
            let fatal = FatalError::TooManyConnections(why);
            let frame = protocol::ServerFrame::Fatal(fatal.to_wire());
            if let Ok(payload) = protocol::encode_server(&frame)
                && let Ok(bytes) = protocol::frame::frame(&payload, protocol::HARD_MAX_FRAME)
            {
                let _ = stream.try_write(&bytes);
            }
            None
        }
    }
}

fn reload(shared: &Shared, new: Tunables) {
    let old = shared.set_tunables(new.clone());
    let changes = new.changes_from(&old);
    if changes.is_empty() {
        info!("configuration re-read: nothing changed");
    }
    for change in &changes {
        info!("configuration changed: {change}");
    }
    // An inherited socket (socket activation) is the manager's to set up.
    if shared.config.remove_socket
        && (old.socket_mode, &old.socket_group) != (new.socket_mode, &new.socket_group)
        && let Err(e) = socket::apply_permissions(&shared.config.socket_path, &new)
    {
        warn!("cannot apply new socket permissions: {e}");
    }
}

fn dump_status(shared: &Shared) {
    let s = shared.status();
    info!(
        objects = s.objects,
        sessions = s.sessions,
        uptime_ms = s.uptime_ms,
        connections = s.counters.connections,
        requests = s.counters.requests,
        errors = s.counters.errors,
        created = s.counters.created,
        deleted = s.counters.deleted,
        capabilities = s.counters.capabilities,
        "status"
    );
    for line in shared.registry().summary() {
        info!("object {line}");
    }
}
