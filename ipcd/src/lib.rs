//! ipcd, the daemon library: hosts named IPC objects for unrelated processes and
//! hands out capabilities (file descriptors) to use them.
//!
//! `main.rs` parses arguments, sets up logging and signals, and calls [`run`].
//! The library installs no signal handlers, so tests can run it in-process and
//! drive it through the [`Control`] channel.

pub mod access;
pub mod config;
pub mod error;
pub mod handler;
pub mod kinds;
pub mod persist;
pub mod registry;
pub mod server;
pub mod session;
pub mod shared;
pub mod socket;
pub mod sys;

use std::sync::Arc;

pub use config::Config;
pub use error::DaemonError;
pub use server::Control;
use tokio::sync::mpsc;

/// Loads the registry (re-adopting surviving objects) and serves `listener` until
/// [`Control::Shutdown`] arrives or `control` closes.
///
/// `listener` must be non-blocking. Call from within a tokio runtime.
pub async fn run(
    listener: std::os::unix::net::UnixListener,
    config: Config,
    control: mpsc::Receiver<Control>,
) -> Result<(), DaemonError> {
    let state_path = persist::state_path(&config.state_dir);
    let state_err = |message: String| DaemonError::State {
        path: state_path.clone(),
        message,
    };
    std::fs::create_dir_all(&config.state_dir).map_err(|e| state_err(e.to_string()))?;
    let registry = registry::Registry::load(
        config.state_dir.clone(),
        config.runtime_dir.clone(),
        config.prefix.clone(),
    )
    .map_err(state_err)?;
    let listener =
        tokio::net::UnixListener::from_std(listener).map_err(|source| DaemonError::Io {
            context: "registering the listener".into(),
            source,
        })?;
    let shared = Arc::new(shared::Shared::new(config, registry));
    server::serve(listener, shared, control).await;
    Ok(())
}
