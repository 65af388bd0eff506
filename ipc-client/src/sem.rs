//! `sem:NAME` — a POSIX named semaphore. Permits taken through the daemon
//! are held by this connection and given back if it closes (crash safety).
//! [`Client::open_sem`] gives the direct path, [`DirectSem`], on the mapped
//! semaphore itself, as do plain `sem_open(3)` programs
//! (`/dev/shm/sem.<prefix>NAME`): much faster, without that safety.

use std::borrow::Cow;
use std::os::fd::AsFd;
use std::time::Duration;

use protocol::{
    Access, KindOp, KindParams, KindReply, Lifetime, ObjectInfo, SemOp, SemParams, SemReply,
};

use crate::client::{Client, unexpected_kind};
use crate::error::{Error, Result};
use crate::lock::{millis, spec};
use crate::sys::sem_map::{MappedSem, Taken};

/// `sem:NAME` for `NAME` (an address is returned as it is).
pub fn sem_address(name: &str) -> Cow<'_, str> {
    crate::client::kind_address(protocol::Kind::Sem, name)
}

impl Client {
    /// Creates a semaphore with `initial` permits, bounded by `max` if given.
    pub fn create_sem(
        &mut self,
        name: &str,
        initial: u32,
        max: Option<u32>,
        mode: Option<u32>,
    ) -> Result<ObjectInfo> {
        let params = KindParams::Sem(SemParams { initial, max });
        self.create(&sem_address(name), spec(params, mode, Lifetime::Persistent))
    }

    /// Takes a permit, held by this connection, waiting up to `timeout`
    /// (first come, first served among the daemon's waiters). Returns the
    /// permits left free.
    pub fn sem_acquire(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
        let op = KindOp::Sem(SemOp::Acquire {
            timeout_ms: millis(timeout),
        });
        match self.operate(&sem_address(name), op)? {
            KindReply::Sem(SemReply::Acquired { value }) => Ok(value),
            other => Err(unexpected_kind("Acquired", &other)),
        }
    }

    /// Takes a permit only if one is free now (`would-block` otherwise).
    pub fn sem_try_acquire(&mut self, name: &str) -> Result<u32> {
        self.sem_acquire(name, Some(Duration::ZERO))
    }

    /// Takes a permit for good, waiting up to `timeout`: as
    /// [`sem_acquire`](Client::sem_acquire), but the permit is consumed, not
    /// held, so it is not given back when this connection closes — a consumer
    /// taking an item a producer posted. Returns the permits left free.
    pub fn sem_take(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
        let op = KindOp::Sem(SemOp::Take {
            timeout_ms: millis(timeout),
        });
        match self.operate(&sem_address(name), op)? {
            KindReply::Sem(SemReply::Acquired { value }) => Ok(value),
            other => Err(unexpected_kind("Acquired", &other)),
        }
    }

    /// Gives a permit back: one this connection holds if it holds any, else a
    /// plain post (a producer's item, a signal, a permit a direct user lost);
    /// returns the permits free after it.
    pub fn sem_release(&mut self, name: &str) -> Result<u32> {
        match self.operate(&sem_address(name), KindOp::Sem(SemOp::Release))? {
            KindReply::Sem(SemReply::Released { value }) => Ok(value),
            other => Err(unexpected_kind("Released", &other)),
        }
    }

    /// Opens the semaphore's kernel object for the direct path: a
    /// [`DirectSem`] that waits and posts on the mapped `sem_t` itself, without
    /// a round trip to the daemon (needs the read and write bits).
    ///
    /// **No crash safety, no bound:** a permit taken directly is held by
    /// nobody the daemon knows, so it is not given back if this process dies,
    /// and a direct post is not checked against the semaphore's maximum. Use
    /// [`sem_acquire`](Client::sem_acquire) where a holder may crash.
    ///
    /// ```no_run
    /// use ipc_client::Client;
    /// let mut client = Client::connect()?;
    /// let sem = client.open_sem("jobs")?;
    /// sem.wait()?;
    /// // ... use what the permit guards ...
    /// sem.post()?;
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn open_sem(&mut self, name: &str) -> Result<DirectSem> {
        let address = sem_address(name).into_owned();
        let (_, mut fds) = self.open(&address, Access::ReadWrite)?;
        let Some(fd) = fds.pop() else {
            return Err(Error::Protocol(format!(
                "opening {address} brought no descriptor"
            )));
        };
        let sem = MappedSem::map(fd.as_fd()).map_err(|errno| Error::Os {
            op: "mmap",
            address: address.clone(),
            errno,
        })?;
        Ok(DirectSem { sem, address })
    }
}

/// A semaphore used in place through its mapped `sem_t` (see
/// [`Client::open_sem`]): the speed of `sem_wait(3)`/`sem_post(3)`, the
/// daemon not involved, and none of its crash safety. The handle keeps the
/// mapping, not the daemon connection; it may be shared between threads.
#[derive(Debug)]
pub struct DirectSem {
    sem: MappedSem,
    address: String,
}

impl DirectSem {
    /// The semaphore's address, e.g. `sem:jobs`.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn os(&self, op: &'static str, errno: nix::errno::Errno) -> Error {
        Error::Os {
            op,
            address: self.address.clone(),
            errno,
        }
    }

    /// Takes a permit, waiting as long as it takes.
    #[inline]
    pub fn wait(&self) -> Result<()> {
        self.sem.wait().map_err(|e| self.os("sem_wait", e))
    }

    /// Takes a permit if one is free now ([`Error::WouldBlock`] otherwise).
    #[inline]
    pub fn try_wait(&self) -> Result<()> {
        match self.sem.try_wait() {
            Ok(Taken::Yes) => Ok(()),
            Ok(Taken::No) => Err(Error::WouldBlock),
            Err(e) => Err(self.os("sem_trywait", e)),
        }
    }

    /// Takes a permit, waiting up to `timeout` ([`Error::TimedOut`] after it).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        match self.sem.timed_wait(timeout) {
            Ok(Taken::Yes) => Ok(()),
            Ok(Taken::No) => Err(Error::TimedOut),
            Err(e) => Err(self.os("sem_timedwait", e)),
        }
    }

    /// Gives a permit (not checked against the semaphore's maximum).
    #[inline]
    pub fn post(&self) -> Result<()> {
        self.sem.post().map_err(|e| self.os("sem_post", e))
    }

    /// Permits free now (0 while some wait).
    pub fn value(&self) -> Result<u32> {
        self.sem.value().map_err(|e| self.os("sem_getvalue", e))
    }
}
