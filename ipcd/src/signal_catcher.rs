//! The binary's half of bound signals (the library installs no handler):
//! catches each signal a channel is bound to with signal-hook, from the
//! moment the daemon asks (`ipcd::bound::Catcher`), and reports each one
//! received, with the pid and uid of its sender, to the daemon's
//! `SignalSink`. Real signals coalesce: several arriving before the task
//! reads them raise the channel once.

use std::sync::Arc;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook_tokio::{Handle, SignalsInfo};
use tokio::task::JoinHandle;

/// Catches signals through one signal-hook stream.
#[derive(Debug)]
struct Catcher(Handle);

impl ipcd::bound::Catcher for Catcher {
    fn catch(&self, signal: i32) -> Result<(), String> {
        // signal-hook panics on the signals it forbids; the daemon never asks
        // for them, and they are refused here again.
        if let Some(why) = protocol::kinds::signal::bindable(signal) {
            return Err(why);
        }
        self.0.add_signal(signal).map_err(|e| e.to_string())
    }
}

/// Lets `daemon` bind channels to signals; the task it returns raises them.
pub fn start(daemon: &ipcd::Daemon) -> Result<JoinHandle<()>> {
    let mut signals = SignalsInfo::<WithOrigin>::new(std::iter::empty::<i32>())
        .context("installing the bound-signal catcher")?;
    let sink = daemon.catch_signals(Arc::new(Catcher(signals.handle())));
    Ok(tokio::spawn(async move {
        while let Some(origin) = signals.next().await {
            let sender = origin.process.map(|p| (p.pid, p.uid));
            sink.arrived(origin.signal, sender);
        }
    }))
}
