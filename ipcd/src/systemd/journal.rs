//! Whether stderr is the journal: systemd sets `$JOURNAL_STREAM` to the
//! device and inode of the stream it connected to a service's stderr, and
//! logs should then go to journald natively, with structured fields.

use std::os::fd::AsFd;

/// Whether stderr is still the journal stream `$JOURNAL_STREAM` names (not
/// redirected since, e.g. by a shell a service started).
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    nix::sys::stat::fstat(std::io::stderr().as_fd())
        .is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
}

/// A `tracing` layer writing to journald with structured fields (each event's
/// fields as `IPCD_<FIELD>=`, the level as syslog's `PRIORITY=` — error 3,
/// warn 4, info 6, debug and trace 7 —, `SYSLOG_IDENTIFIER=ipcd`),
/// when stderr is the journal; `None` otherwise or if journald cannot be
/// reached (logs then go to stderr as text).
pub fn layer() -> Option<tracing_journald::Layer> {
    if !stderr_is_journal() {
        return None;
    }
    tracing_journald::layer().ok().map(|layer| {
        use tracing_journald::{Priority, PriorityMappings};
        layer
            .with_field_prefix(Some("IPCD".into()))
            .with_syslog_identifier("ipcd".into())
            .with_priority_mappings(PriorityMappings {
                info: Priority::Informational,
                debug: Priority::Debug,
                trace: Priority::Debug,
                ..PriorityMappings::new()
            })
    })
}
