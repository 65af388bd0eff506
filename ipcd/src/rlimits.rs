//! Resource limits the daemon raises at start: open files to the hard limit,
//! and the queue byte budget (`RLIMIT_MSGQUEUE`) to the configured size when it
//! may. What it got is the [`Granted`] that per-uid shares are cut from.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tracing::{info, warn};

use crate::budget::Granted;

/// Raises the limits and reports what the daemon holds now.
pub fn raise(mq_budget_bytes: u64) -> Granted {
    Granted {
        nofile: raise_nofile(),
        mq_bytes: raise_msgqueue(mq_budget_bytes),
        daemon_uid: nix::unistd::geteuid().as_raw(),
    }
}

fn raise_nofile() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                info!(from = soft, to = hard, "raised the open-file limit");
                hard
            }
            Err(e) => {
                warn!(soft, hard, "cannot raise the open-file limit: {e}");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            warn!("cannot read the open-file limit: {e}");
            1024
        }
    }
}

fn raise_msgqueue(wanted: u64) -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_MSGQUEUE) else {
        return 819_200;
    };
    if soft >= wanted {
        return soft;
    }
    // Raising the hard limit needs CAP_SYS_RESOURCE; try it, then settle for the hard limit.
    if setrlimit(Resource::RLIMIT_MSGQUEUE, wanted, wanted.max(hard)).is_ok() {
        info!(
            from = soft,
            to = wanted,
            "raised the queue byte budget (RLIMIT_MSGQUEUE)"
        );
        return wanted;
    }
    let got = hard.min(wanted);
    if got > soft && setrlimit(Resource::RLIMIT_MSGQUEUE, got, hard).is_ok() {
        warn!(
            wanted,
            got,
            "queue byte budget (RLIMIT_MSGQUEUE) raised only to the hard limit; \
            raising it further needs CAP_SYS_RESOURCE (systemd: LimitMSGQUEUE=, shell: ulimit -q)"
        );
        return got;
    }
    warn!(
        wanted,
        got = soft,
        "cannot raise the queue byte budget (RLIMIT_MSGQUEUE); \
        it needs CAP_SYS_RESOURCE (systemd: LimitMSGQUEUE=, shell: ulimit -q)"
    );
    soft
}
