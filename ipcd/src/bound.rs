//! Real signals bound to signal channels (`ipcctl create signal:usr2 --bind
//! SIGUSR2`). The library installs no signal handler itself: the binary
//! hands the daemon a [`Catcher`] (`Daemon::catch_signals`), which makes the
//! process catch a signal the moment a channel is bound to it (before the
//! create is answered, so the signal never meets its default action), and
//! feeds the signals it receives to the [`SignalSink`] it gets back.
//! A caught signal stays caught until ipcd exits, even once no channel is
//! bound to it (it is then logged and ignored).

use std::sync::Arc;

use protocol::kinds::signal::signal_name;
use tracing::info;

use crate::peer::Peer;
use crate::shared::Shared;

/// Makes the process catch a signal and deliver it to the [`SignalSink`].
pub trait Catcher: Send + Sync + std::fmt::Debug {
    /// Starts catching `signal` (a no-op if it is caught already).
    fn catch(&self, signal: i32) -> Result<(), String>;
}

/// Where the binary reports the bound signals ipcd receives.
#[derive(Debug, Clone)]
pub struct SignalSink {
    shared: Arc<Shared>,
}

impl SignalSink {
    /// The sink of the daemon sharing `shared`.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SignalSink { shared }
    }

    /// ipcd received `signal`, sent by `origin` (pid and uid) if the kernel
    /// said: raises every channel bound to it. Returns how many.
    pub fn arrived(&self, signal: i32, origin: Option<(i32, u32)>) -> usize {
        let peer = origin.map(|(pid, uid)| Peer { pid, uid, gid: 0 });
        let told = self.shared.registry().signal_arrived(signal, peer);
        let (pid, uid) = origin.unwrap_or((0, 0));
        if told.is_empty() {
            info!(signal = %signal_name(signal), pid, uid, "a bound signal arrived, but no channel is bound to it now");
        } else {
            info!(signal = %signal_name(signal), pid, uid, channels = ?told, "a bound signal raised its channels");
        }
        told.len()
    }
}
