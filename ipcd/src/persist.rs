//! The registry on disk: a JSON file in the state directory, replaced atomically
//! (temp file, fsync, rename, fsync of the directory) on every change.
//!
//! These record types exist only for the file; the registry converts at the edge.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the registry inside the state directory.
pub const STATE_FILE: &str = "registry.json";

/// Bumped when the file's shape changes incompatibly.
const FORMAT_VERSION: u32 = 2;

/// The oldest format this build still reads (format 1 kept a FIFO's `buffered`
/// flag at the top level of the record; format 2 keeps kind fields in `state`).
const OLDEST_FORMAT: u32 = 1;

/// The whole file.
#[derive(Debug, Serialize, Deserialize)]
pub struct StateFile {
    /// Format version.
    pub format: u32,
    /// The kernel-name prefix the objects were created with.
    pub prefix: String,
    /// Every registered object.
    pub objects: Vec<StoredObject>,
}

/// One object as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredObject {
    /// `KIND:NAME`.
    pub address: String,
    /// Kernel name or path, as created (checked against the one the namespace
    /// gives on load; `None` for objects with no name outside the daemon).
    #[serde(default, deserialize_with = "kernel_name_or_placeholder")]
    pub kernel_name: Option<String>,
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
    /// `true` when removed at the end of the creating connection.
    pub session: bool,
    /// The kind's own fields (`KindObject::state`), opaque to everything but the kind.
    #[serde(default)]
    pub state: serde_json::Value,
}

/// Format 1 wrote a placeholder for objects without a kernel name.
fn kernel_name_or_placeholder<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let name = Option::<String>::deserialize(d)?;
    Ok(name.filter(|n| !n.is_empty() && !n.starts_with('(')))
}

/// Path of the state file in `dir`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Loads the state file; a missing file is an empty registry.
pub fn load(dir: &Path) -> Result<Option<StateFile>, String> {
    let path = state_path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    parse(&text).map(Some)
}

/// Parses the state file's text: checks the format version and moves format
/// 1's fields where format 2 keeps them. Pure (no I/O), so it can be fuzzed;
/// any text gives a file or an error, never a panic.
pub fn parse(text: &str) -> Result<StateFile, String> {
    let mut doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("cannot parse: {e}"))?;
    let format = doc["format"].as_u64().unwrap_or(0);
    if !(u64::from(OLDEST_FORMAT)..=u64::from(FORMAT_VERSION)).contains(&format) {
        return Err(format!(
            "unsupported format {format} (this ipcd reads {OLDEST_FORMAT} to {FORMAT_VERSION})"
        ));
    }
    if format == 1 {
        upgrade_format_1(&mut doc);
    }
    serde_json::from_value(doc).map_err(|e| format!("cannot parse: {e}"))
}

/// Format 1 kept a FIFO's one field, `buffered`, at the top of the record;
/// format 2 keeps every kind's own fields in `state`.
fn upgrade_format_1(doc: &mut serde_json::Value) {
    let Some(objects) = doc["objects"].as_array_mut() else {
        return;
    };
    for rec in objects.iter_mut().filter_map(|r| r.as_object_mut()) {
        if let Some(buffered) = rec.remove("buffered") {
            rec.insert("state".into(), serde_json::json!({ "buffered": buffered }));
        }
    }
}

/// Saves the objects atomically: a reader (or a crash) sees the old file or the
/// new one. A failed save (a full disk) leaves the old file and no temp file.
pub fn save(dir: &Path, prefix: &str, objects: Vec<StoredObject>) -> std::io::Result<()> {
    let file = StateFile {
        format: FORMAT_VERSION,
        prefix: prefix.to_owned(),
        objects,
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, state_path(dir))) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// File of records set aside at load (unreadable, outside the namespace, not ours).
pub const REJECTED_FILE: &str = "registry.rejected.json";

/// Appends records the loader would not trust to [`REJECTED_FILE`], with why,
/// so nothing is silently lost (they are neither deleted nor adopted).
pub fn set_aside(dir: &Path, rejected: &[(StoredObject, String)]) -> std::io::Result<()> {
    if rejected.is_empty() {
        return Ok(());
    }
    let path = dir.join(REJECTED_FILE);
    let mut all: Vec<serde_json::Value> = fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for (rec, why) in rejected {
        all.push(serde_json::json!({ "record": rec, "why": why }));
    }
    let bytes = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?
        .write_all(&bytes)
}

/// Why the state directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock.
    InUse,
    /// The directory or lock file could not be made or opened.
    Io(String),
}

/// Creates the state directory if needed and takes an exclusive lock on
/// `<dir>/lock` for as long as the returned guard lives, so two daemons never
/// share (and overwrite) one registry.
pub fn lock(dir: &Path) -> Result<nix::fcntl::Flock<File>, LockError> {
    if dir.exists() && !dir.is_dir() {
        return Err(LockError::Io(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    // The state directory is the daemon's alone, whatever the umask.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| LockError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LockError::Io(format!("cannot open {}: {e}", path.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
        |(_, errno)| match errno {
            nix::errno::Errno::EWOULDBLOCK => LockError::InUse,
            e => LockError::Io(format!("cannot lock {}: {e}", path.display())),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_file_moves_the_fifo_flag_into_the_kind_state() {
        let text = r#"{"format":1,"prefix":"ipcd.","objects":[
            {"address":"fifo:f","kernel_name":"/run/ipcd/fifo/ipcd.f","owner_uid":0,
             "owner_gid":0,"mode":384,"creator_pid":1,"created_at_ms":0,"session":false,
             "buffered":true},
            {"address":"pipe:p","kernel_name":"(anonymous pipe)","owner_uid":0,
             "owner_gid":0,"mode":384,"creator_pid":1,"created_at_ms":0,"session":false}]}"#;
        let file = parse(text).unwrap();
        assert_eq!(
            file.objects[0].state,
            serde_json::json!({ "buffered": true })
        );
        assert_eq!(file.objects[1].state, serde_json::Value::Null);
        assert_eq!(
            file.objects[1].kernel_name, None,
            "the placeholder is no name"
        );
        assert!(parse(r#"{"format":9,"prefix":"x","objects":[]}"#).is_err());
    }
}
