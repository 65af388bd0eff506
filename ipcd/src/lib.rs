//! ipcd, the daemon library: hosts named IPC objects for unrelated processes and
//! hands out capabilities (file descriptors) to use them.
//!
//! `main.rs` parses arguments, sets up logging and signals, and calls [`run`].
//! The library installs no signal handlers, so tests can run it in-process and
//! drive it through the [`Control`] channel.

#![deny(unsafe_code)]

pub mod access;
pub mod bound;
pub mod budget;
pub mod changes;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod intent;
pub mod kinds;
pub mod peer;
pub mod persist;
pub mod registry;
pub mod rlimits;
pub mod server;
pub mod session;
pub mod shared;
pub mod socket;
#[allow(unsafe_code)]
pub mod sys;
pub mod systemd;

use std::sync::Arc;

pub use config::Config;
pub use error::DaemonError;
pub use server::Control;
use tokio::sync::mpsc;
use tracing::info;

/// A daemon that has locked its state directory and loaded its registry, ready
/// to serve. Starting and serving are separate so `main` can report readiness
/// (and clean up the socket on failure) in between.
pub struct Daemon {
    listener: tokio::net::UnixListener,
    shared: Arc<shared::Shared>,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Daemon {
    /// Locks the state directory, loads the registry (re-adopting surviving
    /// objects) and takes over `listener`, which must be non-blocking. Call from
    /// within a tokio runtime.
    pub fn start(
        listener: std::os::unix::net::UnixListener,
        config: Config,
    ) -> Result<Self, DaemonError> {
        Self::start_with(listener, config, systemd::Setup::default())
    }

    /// [`Daemon::start`] with what a service manager passed: descriptors
    /// its fd store kept, and how many it may keep (`systemd::Setup`).
    pub fn start_with(
        listener: std::os::unix::net::UnixListener,
        config: Config,
        setup: systemd::Setup,
    ) -> Result<Self, DaemonError> {
        let state_path = persist::state_path(&config.state_dir);
        let state_err = |message: String| DaemonError::State {
            path: state_path.clone(),
            message,
        };
        let lock = persist::lock(&config.state_dir).map_err(|e| match e {
            persist::LockError::InUse => DaemonError::StateInUse(config.state_dir.clone()),
            persist::LockError::Io(message) => state_err(message),
        })?;
        // Before re-adopting objects, which holds descriptors and queue bytes.
        let granted = rlimits::raise(config.tunables.budgets.mq_budget_bytes);
        info!(
            nofile = granted.nofile,
            mq_budget_bytes = granted.mq_bytes,
            "resource limits"
        );
        let namespace = kinds::Namespace {
            prefix: config.prefix.clone(),
            runtime_dir: config.runtime_dir.clone(),
            state_dir: config.state_dir.clone(),
        };
        let store = changes::Store::load_with(config.state_dir.clone(), namespace, setup)
            .map_err(state_err)?;
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|error| DaemonError::Io {
                context: "registering the listener".into(),
                error,
            })?;
        let shared = Arc::new(shared::Shared::new(config, store, granted));
        Ok(Daemon {
            listener,
            shared,
            _lock: lock,
        })
    }

    /// Lets the daemon bind channels to real signals: `catcher` makes the
    /// process catch one; every signal a channel is bound to now (loaded from
    /// the registry) is caught before this returns. Feed the signals caught
    /// to the returned sink. Without this call, binding is refused.
    pub fn catch_signals(&self, catcher: Arc<dyn bound::Catcher>) -> bound::SignalSink {
        for signal in self.shared.registry().bound_signals() {
            if let Err(e) = catcher.catch(signal) {
                tracing::warn!(signal, "cannot catch a bound signal: {e}");
            }
        }
        self.shared.set_catcher(catcher);
        bound::SignalSink::new(self.shared.clone())
    }

    /// The service status line (`STATUS=`): objects and clients now.
    pub fn status_line(&self) -> String {
        systemd::watchdog::status_line(&self.shared)
    }

    /// Serves until [`Control::Shutdown`] arrives or `control` closes, then shuts
    /// down gracefully (see [`server::serve`]).
    pub async fn serve(self, control: mpsc::Receiver<Control>) {
        server::serve(self.listener, self.shared, control).await;
    }
}

/// [`Daemon::start`] then [`Daemon::serve`].
pub async fn run(
    listener: std::os::unix::net::UnixListener,
    config: Config,
    control: mpsc::Receiver<Control>,
) -> Result<(), DaemonError> {
    Daemon::start(listener, config)?.serve(control).await;
    Ok(())
}
