//! The registry of named objects: who owns what, under which kernel name, with
//! which permissions and lifetime. Kind-generic; kind specifics live in `kinds`.
//!
//! Invariant: every change to the set of objects is saved to the state file
//! before the request that made it is answered.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::{Access, Address, CreateSpec, Kind, Lifetime, Limits, ObjectInfo};
use tracing::{info, warn};

use crate::access;
use crate::error::RequestError;
use crate::kinds::{self, CreateArgs, Handle};
use crate::persist::{self, StoredObject};
use crate::session::{Peer, SessionId};

/// One registered object.
#[derive(Debug)]
pub struct Object {
    /// Its address.
    pub address: Address,
    /// Kernel name or path.
    pub kernel_name: String,
    /// Owner uid.
    pub owner_uid: u32,
    /// Owner gid.
    pub owner_gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Creator's pid.
    pub creator_pid: i32,
    /// Creation time, ms since the epoch.
    pub created_at_ms: u64,
    /// The creating connection, for `session` lifetime objects.
    pub session: Option<SessionId>,
    /// Capabilities handed out since the daemon started.
    pub opens: u64,
    /// The daemon's live handle on the kernel object.
    pub handle: Handle,
}

impl Object {
    fn info(&self) -> Result<ObjectInfo, RequestError> {
        let details = self.handle.details(&self.kernel_name)?;
        Ok(ObjectInfo {
            address: self.address.to_string(),
            kind: self.address.kind,
            kernel_name: self.kernel_name.clone(),
            owner_uid: self.owner_uid,
            owner_gid: self.owner_gid,
            mode: self.mode,
            creator_pid: self.creator_pid,
            created_at_ms: self.created_at_ms,
            lifetime: if self.session.is_some() {
                Lifetime::Session
            } else {
                Lifetime::Persistent
            },
            opens: self.opens,
            details,
        })
    }

    fn stored(&self) -> StoredObject {
        StoredObject {
            address: self.address.to_string(),
            kernel_name: self.kernel_name.clone(),
            owner_uid: self.owner_uid,
            owner_gid: self.owner_gid,
            mode: self.mode,
            creator_pid: self.creator_pid,
            created_at_ms: self.created_at_ms,
            session: self.session.is_some(),
            buffered: self.handle.is_buffered(),
        }
    }
}

/// All registered objects, keyed by address.
#[derive(Debug)]
pub struct Registry {
    objects: BTreeMap<Address, Object>,
    state_dir: PathBuf,
    runtime_dir: PathBuf,
    prefix: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Registry {
    /// Loads the state file and re-adopts every recorded object that still exists.
    ///
    /// Objects of `session` lifetime belonged to connections of a previous run, so
    /// their kernel objects are removed. Vanished objects are logged and dropped.
    pub fn load(state_dir: PathBuf, runtime_dir: PathBuf, prefix: String) -> Result<Self, String> {
        let mut reg = Registry {
            objects: BTreeMap::new(),
            state_dir,
            runtime_dir,
            prefix,
        };
        let Some(file) = persist::load(&reg.state_dir)? else {
            return Ok(reg);
        };
        for rec in file.objects {
            let address = match Address::parse(&rec.address) {
                Ok(a) => a,
                Err(e) => {
                    warn!(address = %rec.address, "dropping unreadable record: {e}");
                    continue;
                }
            };
            if rec.session {
                info!(%address, "removing session object left by a previous run");
                if let Err(e) = kinds::unlink(address.kind, &rec.kernel_name) {
                    warn!(%address, "cannot remove: {e}");
                }
                continue;
            }
            match kinds::reopen(address.kind, &rec.kernel_name, rec.buffered) {
                Ok(Some(handle)) => {
                    info!(%address, kernel_name = %rec.kernel_name, "re-adopted");
                    reg.objects.insert(
                        address.clone(),
                        Object {
                            address,
                            kernel_name: rec.kernel_name,
                            owner_uid: rec.owner_uid,
                            owner_gid: rec.owner_gid,
                            mode: rec.mode,
                            creator_pid: rec.creator_pid,
                            created_at_ms: rec.created_at_ms,
                            session: None,
                            opens: 0,
                            handle,
                        },
                    );
                }
                Ok(None) if address.kind == Kind::Pipe => {
                    info!(%address, "an anonymous pipe dies with the daemon process; forgetting it")
                }
                Ok(None) => {
                    warn!(%address, kernel_name = %rec.kernel_name, "vanished while ipcd was down; forgetting it")
                }
                Err(e) => warn!(%address, "cannot re-adopt, forgetting it: {e}"),
            }
        }
        reg.save().map_err(|e| format!("cannot save: {e}"))?;
        Ok(reg)
    }

    /// Writes the registry to the state file (persistent objects and session ones,
    /// so a crash lets the next start clean the latter up).
    pub fn save(&self) -> std::io::Result<()> {
        persist::save(
            &self.state_dir,
            &self.prefix,
            self.objects.values().map(Object::stored).collect(),
        )
    }

    /// Number of registered objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether no object is registered.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    fn get(&self, address: &Address, peer: &Peer) -> Result<&Object, RequestError> {
        match self.objects.get(address) {
            Some(obj) if access::may_see(peer, obj) => Ok(obj),
            Some(_) => Err(RequestError::PermissionDenied(format!(
                "uid {} has no access to '{address}'",
                peer.uid
            ))),
            None => Err(RequestError::NotFound(address.to_string())),
        }
    }

    /// Creates (or adopts) an object owned by the caller.
    pub fn create(
        &mut self,
        address: Address,
        spec: &CreateSpec,
        peer: &Peer,
        session: SessionId,
        limits: &Limits,
    ) -> Result<ObjectInfo, RequestError> {
        if self.objects.contains_key(&address) {
            return Err(RequestError::AlreadyExists(address.to_string()));
        }
        let mode = spec.mode.unwrap_or(0o600);
        if mode > 0o777 {
            return Err(RequestError::InvalidArgument(format!(
                "mode {mode:04o} has bits outside 0777"
            )));
        }
        let owned = self
            .objects
            .values()
            .filter(|o| o.owner_uid == peer.uid)
            .count();
        if owned >= limits.max_objects_per_uid as usize {
            return Err(RequestError::LimitExceeded(format!(
                "uid {} owns {owned} objects, the maximum (max_objects_per_uid)",
                peer.uid
            )));
        }
        let kernel_name = kinds::kernel_name(&address, &self.prefix, &self.runtime_dir);
        let handle = kinds::create(
            address.kind,
            &CreateArgs {
                kernel_name: &kernel_name,
                params: &spec.params,
                mode,
                adopt: spec.adopt,
                peer,
                max_message_size: limits.max_message_size,
            },
        )?;
        let obj = Object {
            address: address.clone(),
            kernel_name,
            owner_uid: peer.uid,
            owner_gid: peer.gid,
            mode,
            creator_pid: peer.pid,
            created_at_ms: now_ms(),
            session: (spec.lifetime == Lifetime::Session).then_some(session),
            opens: 0,
            handle,
        };
        let info = obj.info()?;
        self.objects.insert(address.clone(), obj);
        if let Err(e) = self.save() {
            let obj = self.objects.remove(&address).expect("just inserted");
            let _ = obj.handle.remove(&obj.kernel_name);
            return Err(RequestError::os(
                format!("saving the registry in {}", self.state_dir.display()),
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            ));
        }
        info!(%address, uid = peer.uid, pid = peer.pid, "created");
        Ok(info)
    }

    /// Hands out descriptors for `access` to an object the caller may use that way.
    pub fn open(
        &mut self,
        address: &Address,
        access: Access,
        peer: &Peer,
    ) -> Result<(ObjectInfo, Vec<OwnedFd>), RequestError> {
        let obj = self.get(address, peer)?;
        if !access::may_open(peer, obj, access.reads(), access.writes()) {
            return Err(RequestError::PermissionDenied(format!(
                "uid {} may not open '{address}' for {} (mode {:04o}, owner uid {})",
                peer.uid,
                match access {
                    Access::Read => "reading",
                    Access::Write => "writing",
                    Access::ReadWrite => "reading and writing",
                },
                obj.mode,
                obj.owner_uid
            )));
        }
        let obj = self.objects.get_mut(address).expect("checked above");
        let fds = obj.handle.open(&obj.kernel_name, access)?;
        obj.opens += 1;
        Ok((obj.info()?, fds))
    }

    /// Closes the daemon's write end of a pipe; needs write access.
    pub fn close(&mut self, address: &Address, peer: &Peer) -> Result<(), RequestError> {
        let obj = self.get(address, peer)?;
        if !access::may_open(peer, obj, false, true) {
            return Err(RequestError::PermissionDenied(format!(
                "uid {} may not write to '{address}', so may not close it",
                peer.uid
            )));
        }
        let obj = self.objects.get_mut(address).expect("checked above");
        if obj.handle.close()? {
            info!(%address, uid = peer.uid, "closed for writing");
        }
        Ok(())
    }

    /// One object's details.
    pub fn stat(&self, address: &Address, peer: &Peer) -> Result<ObjectInfo, RequestError> {
        self.get(address, peer)?.info()
    }

    /// Every object the caller may see, optionally of one kind, sorted by address.
    ///
    /// Kinds newer than the caller's protocol `version` are left out: it could not decode them.
    pub fn list(&self, kind: Option<Kind>, peer: &Peer, version: u16) -> Vec<ObjectInfo> {
        self.objects
            .values()
            .filter(|o| kind.is_none_or(|k| o.address.kind == k) && access::may_see(peer, o))
            .filter(|o| o.address.kind.since_version() <= version)
            .filter_map(|o| match o.info() {
                Ok(i) => Some(i),
                Err(e) => {
                    warn!(address = %o.address, "cannot stat: {e}");
                    None
                }
            })
            .collect()
    }

    /// Removes an object the caller owns, and its kernel object.
    pub fn delete(&mut self, address: &Address, peer: &Peer) -> Result<(), RequestError> {
        let obj = self
            .objects
            .get(address)
            .ok_or_else(|| RequestError::NotFound(address.to_string()))?;
        if !access::may_delete(peer, obj) {
            return Err(RequestError::PermissionDenied(format!(
                "only the owner (uid {}) or root may delete '{address}'",
                obj.owner_uid
            )));
        }
        let obj = self.objects.remove(address).expect("checked above");
        self.save_or_warn();
        info!(%address, uid = peer.uid, "deleted");
        obj.handle.remove(&obj.kernel_name)
    }

    /// Removes every object of `session` lifetime created by `session`; returns how many.
    pub fn end_session(&mut self, session: SessionId) -> usize {
        let doomed: Vec<Address> = self
            .objects
            .values()
            .filter(|o| o.session == Some(session))
            .map(|o| o.address.clone())
            .collect();
        for address in &doomed {
            let obj = self.objects.remove(address).expect("listed above");
            info!(%address, "session ended; removing");
            if let Err(e) = obj.handle.remove(&obj.kernel_name) {
                warn!(%address, "cannot remove: {e}");
            }
        }
        if !doomed.is_empty() {
            self.save_or_warn();
        }
        doomed.len()
    }

    fn save_or_warn(&self) {
        if let Err(e) = self.save() {
            warn!(
                "cannot save the registry in {}: {e}",
                self.state_dir.display()
            );
        }
    }

    /// Addresses and kernel names, for the status dump.
    pub fn summary(&self) -> Vec<String> {
        self.objects
            .values()
            .map(|o| {
                format!(
                    "{} -> {} (owner {}, mode {:04o}, opens {})",
                    o.address, o.kernel_name, o.owner_uid, o.mode, o.opens
                )
            })
            .collect()
    }
}
