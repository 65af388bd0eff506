//! The budget of semaphore helper threads. A semaphore whose acquisitions
//! wait in the daemon is served by one thread blocked in `sem_timedwait` (the
//! kernel object offers nothing to poll), so threads are a resource a user
//! can make ipcd hold: one per semaphore with daemon-side waiters. Each
//! thread is charged to the uid whose acquire started it, until it ends;
//! a uid other than root may have [`PER_UID`] at once, everybody together
//! [`IN_ALL`].

use crate::error::RequestError;
use crate::kinds::uid_share::{Share, Shares, Spent};

/// Helper threads one uid (not root) may have started and running at once.
pub const PER_UID: u32 = 16;
/// Helper threads running at once, for all uids.
pub const IN_ALL: u32 = 256;

/// Running helper threads per uid that started them.
static RUNNING: Shares = Shares::new(PER_UID, IN_ALL);

/// A running helper's charge; released when dropped (the thread ends).
#[derive(Debug)]
pub struct Charge {
    _share: Share,
}

impl Charge {
    /// Charges one more helper thread to `uid`, or says which budget is spent.
    pub fn take(uid: u32) -> Result<Charge, RequestError> {
        RUNNING
            .take(uid)
            .map(|share| Charge { _share: share })
            .map_err(|spent| {
                RequestError::LimitExceeded(match spent {
                    Spent::InAll => format!(
                        "ipcd serves waiters on at most {IN_ALL} semaphores at once; retry later \
                     or acquire with --nonblock (a timeout of 0)"
                    ),
                    Spent::PerUid => format!(
                        "uid {uid} already waits in ipcd on {PER_UID} semaphores, its share; \
                     acquire with --nonblock (a timeout of 0), or wait on fewer at once"
                    ),
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_gets_its_share_and_gets_it_back() {
        let uid = 4_000_000 + std::process::id() % 1000;
        let held: Vec<Charge> = (0..PER_UID).map(|_| Charge::take(uid).unwrap()).collect();
        let err = Charge::take(uid).unwrap_err();
        assert!(matches!(err, RequestError::LimitExceeded(_)), "{err}");
        assert!(err.to_string().contains("its share"), "{err}");
        drop(held);
        Charge::take(uid).unwrap();
    }

    #[test]
    fn root_is_held_only_to_the_whole() {
        let charges: Vec<Charge> = (0..PER_UID + 1).map(|_| Charge::take(0).unwrap()).collect();
        assert_eq!(charges.len() as u32, PER_UID + 1);
    }
}
