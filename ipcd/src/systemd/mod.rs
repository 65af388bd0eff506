//! Running as a service under systemd: the inherited listener
//! ([`activation`]), notifications — readiness, reload, stop, the status line
//! ([`notify`]) —, the watchdog heartbeat of the serving loop ([`watchdog`]),
//! the fd store that keeps hosted pipes across a restart ([`fdstore`]), and
//! whether logs go to the journal ([`journal`]). Each is a no-op outside a
//! service manager, so the same binary runs by hand.

pub mod activation;
pub mod fdstore;
pub mod journal;
pub mod notify;
pub mod watchdog;

/// What a start under a service manager brings to [`crate::Daemon`].
#[derive(Debug, Default)]
pub struct Setup {
    /// Descriptors the fd store gave back.
    pub stored: fdstore::Stored,
    /// At most this many descriptors go to the fd store (0: none).
    pub fd_store_max: usize,
}
