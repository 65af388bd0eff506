//! Loading the registry at start: re-adopting recorded objects, finishing the
//! changes a crash interrupted (every pending intent, one by one), and setting
//! aside records that cannot be trusted.

use std::path::PathBuf;

use protocol::Address;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{Object, Registry};
use crate::access::Permissions;
use crate::intent::Intent;
use crate::kinds::{self, Namespace, Reopened};
use crate::persist::{self, StoredObject};
use crate::systemd::Setup;
use crate::systemd::fdstore::{self, FdStore, Stored};

impl Registry {
    /// Loads the state file and re-adopts every recorded object that still exists.
    ///
    /// Objects of `session` lifetime belonged to connections of a previous run, so
    /// their kernel objects are removed. Vanished objects are logged and dropped.
    /// Kernel names are recomputed from the namespace, never trusted from the file.
    /// Then each of the `pending` intents (the journal's records) is finished,
    /// and the result saved; the caller blanks the journal after.
    pub fn load(state_dir: PathBuf, ns: Namespace, pending: &[Intent]) -> Result<Self, String> {
        Self::load_with(state_dir, ns, pending, Setup::default())
    }

    /// [`Registry::load`] under a service manager: objects whose descriptors
    /// the fd store gave back (`setup.stored`) are reopened with them, and
    /// from now on the store is kept in step (at most `setup.fd_store_max`).
    pub fn load_with(
        state_dir: PathBuf,
        ns: Namespace,
        pending: &[Intent],
        setup: Setup,
    ) -> Result<Self, String> {
        let mut reg = Registry::empty(state_dir, ns);
        reg.fdstore = FdStore::new(setup.fd_store_max);
        let mut stored = setup.stored;
        let mut rejected = Vec::new();
        if let Some(file) = persist::load(&reg.state_dir)? {
            for rec in file.objects {
                if let Err(why) = reg.load_record(&rec, &mut stored) {
                    warn!(address = %rec.address, "record set aside, neither adopted nor removed: {why}");
                    rejected.push((rec, why));
                }
            }
        }
        for intent in pending {
            reg.finish_intent(intent);
        }
        // Descriptors of objects no record names any more.
        fdstore::remove_names(&stored.leftover_names());
        if let Err(e) = persist::set_aside(&reg.state_dir, &rejected) {
            error!(
                "cannot write the set-aside records to {}: {e}",
                persist::REJECTED_FILE
            );
        }
        if let Err(e) = reg.save() {
            error!(
                "cannot save the registry in {}: {e}; creates and deletes will be refused \
                 until the registry can be saved (free some space)",
                reg.state_dir.display()
            );
        }
        Ok(reg)
    }

    /// Completes what a crash interrupted: the object the intent names is
    /// either registered (the change finished) or its kernel object is removed.
    fn finish_intent(&mut self, intent: &Intent) {
        let Ok(address) = Address::parse(&intent.address) else {
            warn!(address = %intent.address, "unreadable address in the intent record");
            return;
        };
        if self.objects.contains_key(&address) || intent.op == "adopt" {
            // Finished, or an adopt: the kernel object was the caller's before.
            return;
        }
        let module = kinds::module(address.kind);
        let Some(name) = module.kernel_name(&self.ns, &address.name) else {
            return;
        };
        match module.owner(&name) {
            Some(uid) if uid == self.daemon_uid || uid == intent.uid => {
                info!(%address, kernel_name = %name, op = %intent.op,
                    "removing a kernel object an interrupted change left unregistered");
                if let Err(e) = module.unlink(&name) {
                    warn!(%address, "cannot remove: {e}");
                }
            }
            Some(uid) => warn!(%address, kernel_name = %name, owner = uid,
                "an interrupted change names a kernel object owned by another uid; leaving it"),
            None => {}
        }
    }

    /// Whether a kernel object's owner is one the record allows: the daemon
    /// (objects it created) or the record's owner (adopted queues, FIFOs a root
    /// daemon chowned to their creator).
    fn ours(&self, owner: Option<u32>, rec: &StoredObject) -> Result<(), String> {
        match owner {
            Some(uid) if uid != self.daemon_uid && uid != rec.owner_uid => Err(format!(
                "the kernel object belongs to uid {uid}, neither ipcd's nor the record's owner's"
            )),
            _ => Ok(()),
        }
    }

    /// Re-adopts one record; `Err` says why it is set aside instead.
    fn load_record(&mut self, rec: &StoredObject, stored: &mut Stored) -> Result<(), String> {
        let address =
            Address::parse(&rec.address).map_err(|e| format!("unreadable address: {e}"))?;
        let kept = stored.take(&address);
        let passed: Vec<String> = kept.iter().map(|(role, _)| role.clone()).collect();
        let loaded = self.reopen_record(&address, rec, kept);
        // What the store kept and the object does not hold now goes.
        let held: Vec<&'static str> = self
            .objects
            .get(&address)
            .filter(|_| loaded.is_ok())
            .map(|o| o.handle.stored_fds().iter().map(|(r, _)| *r).collect())
            .unwrap_or_default();
        let adopted: Vec<&'static str> = held
            .iter()
            .copied()
            .filter(|r| passed.iter().any(|p| p == r))
            .collect();
        self.fdstore.adopted(&address, &adopted);
        if let Some(obj) = self.objects.get(&address) {
            self.fdstore.offer(&address, &obj.handle.stored_fds());
        }
        let unused: Vec<String> = passed
            .iter()
            .filter(|p| !held.contains(&p.as_str()))
            .map(|r| fdstore::fd_name(&address, r))
            .collect();
        fdstore::remove_names(&unused);
        loaded
    }

    /// Re-adopts one record, with the descriptors the fd store `kept` for it.
    fn reopen_record(
        &mut self,
        address: &Address,
        rec: &StoredObject,
        kept: Vec<(String, std::os::fd::OwnedFd)>,
    ) -> Result<(), String> {
        let address = address.clone();
        if rec.mode > 0o777 {
            return Err(format!("mode {:o} has bits outside 0777", rec.mode));
        }
        let module = kinds::module(address.kind);
        let kernel_name = module.kernel_name(&self.ns, &address.name);
        if rec.kernel_name.is_some() && rec.kernel_name != kernel_name {
            return Err(format!(
                "it names {:?}, outside this daemon's namespace (expected {kernel_name:?})",
                rec.kernel_name
            ));
        }
        if let Some(name) = &kernel_name {
            self.ours(module.owner(name), rec)?;
        }
        if rec.session {
            info!(%address, "removing session object left by a previous run");
            if let Some(name) = &kernel_name
                && let Err(e) = module.unlink(name)
            {
                warn!(%address, "cannot remove: {e}");
            }
            return Ok(());
        }
        match module.reopen_stored(kernel_name.as_deref(), &rec.state, kept) {
            Ok(Reopened::Alive(handle)) => {
                info!(%address, kernel_name = ?kernel_name, "re-adopted");
                let obj = Object {
                    address: address.clone(),
                    kernel_name,
                    perms: Permissions {
                        owner_uid: rec.owner_uid,
                        owner_gid: rec.owner_gid,
                        mode: rec.mode,
                    },
                    creator_pid: rec.creator_pid,
                    created_at_ms: rec.created_at_ms,
                    session: None,
                    opens: 0,
                    handle,
                    gone: watch::Sender::new(()),
                };
                self.objects.insert(address, obj);
            }
            Ok(Reopened::Gone(why)) => info!(%address, "forgetting it: {why}"),
            Err(e) => return Err(format!("cannot re-adopt: {e}")),
        }
        Ok(())
    }
}
