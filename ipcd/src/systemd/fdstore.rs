//! The service manager's fd store (`FDSTORE=1`, `FileDescriptorStoreMax=`):
//! descriptors ipcd alone holds — both ends of a hosted pipe, a buffered
//! FIFO's held end — are handed to the manager, which keeps them across a
//! restart of ipcd and passes them back at the next start (`LISTEN_FDS`,
//! named by `LISTEN_FDNAMES`), so the pipe and the bytes in it survive.
//!
//! Each descriptor is stored under `FDNAME=<kind>.<role>.<name>` (an fd name
//! may not contain `:`), e.g. `pipe.r.logs`, `pipe.w.logs`, `fifo.hold.box`;
//! `FDSTOREREMOVE=1` with the same name drops it when the object is deleted
//! or the role goes (a pipe closed for writing drops its `w`). The registry
//! calls [`FdStore::offer`] when an object comes in, [`FdStore::refresh`]
//! after an operation and [`FdStore::forget`] when it goes.

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};

use protocol::{Address, Kind};
use tracing::{debug, info, warn};

use super::notify;

/// The fd name of `address`'s descriptor in `role`.
pub fn fd_name(address: &Address, role: &str) -> String {
    format!("{}.{role}.{}", address.kind.as_str(), address.name.as_str())
}

/// The address and role an fd name stands for, if it is one of ours.
pub fn parse_fd_name(name: &str) -> Option<(Address, String)> {
    let (kind, rest) = name.split_once('.')?;
    let (role, object) = rest.split_once('.')?;
    if !Kind::ALL.iter().any(|k| k.as_str() == kind) || role.is_empty() {
        return None;
    }
    let address = Address::parse(&format!("{kind}:{object}")).ok()?;
    Some((address, role.to_owned()))
}

/// Descriptors the manager passed back at start, by object and role.
#[derive(Debug, Default)]
pub struct Stored {
    fds: HashMap<Address, Vec<(String, OwnedFd)>>,
}

impl Stored {
    /// Files a descriptor the manager passed under `name`; `false` if the name
    /// is not one of ours (the caller closes it).
    pub fn add(&mut self, name: &str, fd: OwnedFd) -> bool {
        match parse_fd_name(name) {
            Some((address, role)) => {
                self.fds.entry(address).or_default().push((role, fd));
                true
            }
            None => false,
        }
    }

    /// How many descriptors came back.
    pub fn len(&self) -> usize {
        self.fds.values().map(Vec::len).sum()
    }

    /// Whether none came back.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Takes `address`'s descriptors, by role.
    pub fn take(&mut self, address: &Address) -> Vec<(String, OwnedFd)> {
        self.fds.remove(address).unwrap_or_default()
    }

    /// What nothing took, as fd names (to be removed from the store).
    pub fn leftover_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .fds
            .iter()
            .flat_map(|(address, fds)| fds.iter().map(|(role, _)| fd_name(address, role)))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// What ipcd has in the manager's fd store, kept in step with the registry.
#[derive(Debug, Default)]
pub struct FdStore {
    /// At most this many descriptors (`FileDescriptorStoreMax=`); 0: off.
    max: usize,
    /// The roles stored per object.
    sent: HashMap<Address, Vec<&'static str>>,
    /// Descriptors stored, all objects together.
    count: usize,
    /// Whether "the store is full" was logged since it last had room.
    full_logged: bool,
}

impl FdStore {
    /// A store of at most `max` descriptors; off when `max` is 0 or no
    /// manager listens (`$NOTIFY_SOCKET` unset).
    pub fn new(max: usize) -> Self {
        FdStore {
            max: if notify::under_manager() { max } else { 0 },
            ..FdStore::default()
        }
    }

    /// Whether descriptors are stored at all.
    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    /// Descriptors stored now.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Records that the manager already holds `address`'s `roles` (passed
    /// back at start), so they are not sent again.
    pub fn adopted(&mut self, address: &Address, roles: &[&'static str]) {
        if !self.enabled() || roles.is_empty() {
            return;
        }
        self.count += roles.len();
        self.sent.insert(address.clone(), roles.to_vec());
    }

    /// Stores the descriptors of `address` the manager does not hold yet.
    pub fn offer(&mut self, address: &Address, fds: &[(&'static str, BorrowedFd<'_>)]) {
        if !self.enabled() {
            return;
        }
        for (role, fd) in fds {
            if self.sent.get(address).is_some_and(|r| r.contains(role)) {
                continue;
            }
            if self.count >= self.max {
                if !self.full_logged {
                    warn!(max = self.max, %address,
                        "the fd store is full (FileDescriptorStoreMax=): this object will not survive a restart");
                    self.full_logged = true;
                }
                return;
            }
            let name = fd_name(address, role);
            match notify::send(&format!("FDSTORE=1\nFDNAME={name}\n"), &[*fd]) {
                Ok(()) => {
                    debug!(fdname = %name, "descriptor stored with the service manager");
                    self.sent.entry(address.clone()).or_default().push(role);
                    self.count += 1;
                }
                Err(e) => {
                    warn!(fdname = %name, "cannot store the descriptor with the service manager: {e}")
                }
            }
        }
    }

    /// Brings `address`'s stored roles in line with `fds` (what it holds now):
    /// drops roles it no longer has, stores new ones.
    pub fn refresh(&mut self, address: &Address, fds: &[(&'static str, BorrowedFd<'_>)]) {
        if !self.enabled() {
            return;
        }
        let gone: Vec<&'static str> = self
            .sent
            .get(address)
            .into_iter()
            .flatten()
            .filter(|role| !fds.iter().any(|(r, _)| r == *role))
            .copied()
            .collect();
        for role in gone {
            self.remove_role(address, role);
        }
        self.offer(address, fds);
    }

    /// Drops everything stored for `address` (deleted, or gone with its session).
    pub fn forget(&mut self, address: &Address) {
        let roles = self.sent.get(address).cloned().unwrap_or_default();
        for role in roles {
            self.remove_role(address, role);
        }
    }

    fn remove_role(&mut self, address: &Address, role: &'static str) {
        remove_names(&[fd_name(address, role)]);
        if let Some(roles) = self.sent.get_mut(address) {
            roles.retain(|r| *r != role);
            if roles.is_empty() {
                self.sent.remove(address);
            }
        }
        self.count = self.count.saturating_sub(1);
        self.full_logged = false;
    }
}

/// Asks the manager to close and forget the descriptors stored under `names`.
pub fn remove_names(names: &[String]) {
    for name in names {
        match notify::send(&format!("FDSTOREREMOVE=1\nFDNAME={name}\n"), &[]) {
            Ok(()) => info!(fdname = %name, "descriptor removed from the fd store"),
            Err(e) => warn!(fdname = %name, "cannot remove the descriptor from the fd store: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_names_round_trip_and_foreign_names_are_refused() {
        let address = Address::parse("pipe:logs.v2-a_b").unwrap();
        let name = fd_name(&address, "w");
        assert_eq!(name, "pipe.w.logs.v2-a_b");
        assert!(!name.contains(':'), "fd names may not contain ':'");
        assert_eq!(parse_fd_name(&name), Some((address, "w".into())));
        assert_eq!(parse_fd_name("ipcd.socket"), None);
        assert_eq!(parse_fd_name("stored"), None);
        assert_eq!(parse_fd_name("nokind.r.x"), None);
        assert_eq!(parse_fd_name("pipe..x"), None);
    }
}
