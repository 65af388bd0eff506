//! The heartbeat of the serving loop: `WATCHDOG=1` when the manager's
//! watchdog is on (`WatchdogSec=`, `$WATCHDOG_USEC`), and the `STATUS=` line
//! with the object and client counts kept current.
//!
//! `server::serve` calls [`Heartbeat::beat`] from its own `select!` loop, so
//! the pings stop when that loop is wedged, and the manager kills and
//! restarts the daemon once `WatchdogSec=` passes without one.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::notify;
use crate::shared::Shared;

/// How often the status line is refreshed without a watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Pings and status updates, on a timer the serving loop polls.
#[derive(Debug)]
pub struct Heartbeat {
    /// `None` outside a service manager: the timer never fires.
    timer: Option<tokio::time::Interval>,
    watchdog: bool,
}

impl Heartbeat {
    /// A heartbeat every half watchdog period (at least every second, for the
    /// status line); idle when no manager listens. Call within a runtime.
    pub fn new() -> Self {
        if !notify::under_manager() {
            return Heartbeat {
                timer: None,
                watchdog: false,
            };
        }
        let watchdog = sd_notify::watchdog_enabled();
        let every = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
        let every = every.max(Duration::from_millis(10));
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Heartbeat {
            timer: Some(timer),
            watchdog: watchdog.is_some(),
        }
    }

    /// Resolves at the next beat; never without a manager.
    pub async fn tick(&mut self) {
        match &mut self.timer {
            Some(timer) => {
                timer.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Pings the watchdog (if on) and sends the status line.
    pub fn beat(&self, shared: &Shared) {
        let status = status_line(shared);
        let ping = if self.watchdog { "WATCHDOG=1\n" } else { "" };
        // Once a second: a manager that went away is not worth a log line each time.
        let _ = notify::send(&format!("{ping}STATUS={status}\n"), &[]);
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

/// `STATUS=` text: what the daemon serves now.
pub fn status_line(shared: &Shared) -> String {
    let objects = shared.registry().len();
    let clients = shared.sessions.load(Ordering::Relaxed);
    format!(
        "{objects} object{}, {clients} client{}",
        plural(objects as u64),
        plural(u64::from(clients))
    )
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
