//! A private temporary directory for the raw FIFOs: created mode 0700 under a
//! fresh name (so nobody else can plant or open anything in it), removed with
//! everything in it on drop, and listed in a process-wide registry so that the
//! watchdog can still remove it when it has to exit without unwinding (see
//! [`super::cleanup`]).

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;

/// Directories this process created and has not removed yet.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Counter that makes directory names unique within this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Removes every directory this process created and has not removed yet. For
/// exit paths that skip destructors; errors are ignored.
pub fn remove_all_live() {
    let dirs = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A directory `$TMPDIR/ipcbench.<pid>.<n>`, removed on drop.
#[derive(Debug)]
pub struct PrivateDir {
    /// The directory; `None` once removed.
    path: Option<PathBuf>,
}

impl PrivateDir {
    /// Creates a fresh directory, mode 0700, in the system's temporary directory.
    pub fn create() -> anyhow::Result<Self> {
        Self::create_in(&std::env::temp_dir())
    }

    /// Creates a fresh directory, mode 0700, in `parent`. Fails rather than
    /// reuse a directory that exists already.
    pub fn create_in(parent: &Path) -> anyhow::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("ipcbench.{}.{n}", std::process::id()));
        // Registered first, so a watchdog exit right after creation cannot leak it.
        super::cleanup::register("private directories", remove_all_live);
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.clone());
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&path) {
            forget(&path);
            return Err(e).with_context(|| format!("cannot create {}", path.display()));
        }
        Ok(PrivateDir { path: Some(path) })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.path
            .as_deref()
            .expect("a PrivateDir has its path until removed")
    }

    /// Removes the directory and everything in it now; open files in it stay usable.
    pub fn remove(&mut self) -> anyhow::Result<()> {
        if let Some(path) = self.path.take() {
            forget(&path);
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Removes `path` from the registry of directories still to remove.
fn forget(path: &Path) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = live.iter().position(|p| p == path) {
        live.swap_remove(i);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn private_and_removed_on_drop() {
        let dir = PrivateDir::create().unwrap();
        let path = dir.path().to_owned();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(path.join("f"), b"x").unwrap();
        assert!(LIVE.lock().unwrap().contains(&path));
        drop(dir);
        assert!(!path.exists());
        assert!(!LIVE.lock().unwrap().contains(&path));
    }

    #[test]
    fn remove_early_keeps_open_files_usable() {
        use std::io::{Read as _, Write as _};
        let mut dir = PrivateDir::create().unwrap();
        let path = dir.path().join("f");
        let mut w = std::fs::File::create(&path).unwrap();
        let mut r = std::fs::File::open(&path).unwrap();
        dir.remove().unwrap();
        assert!(!path.exists());
        w.write_all(b"still here").unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "still here");
        dir.remove().unwrap();
    }

    #[test]
    fn a_missing_parent_is_an_error_and_leaves_no_registration() {
        let parent = Path::new("/nonexistent-ipcbench-parent");
        let err = PrivateDir::create_in(parent).unwrap_err();
        assert!(format!("{err:#}").contains("nonexistent"), "{err:#}");
        let live = LIVE.lock().unwrap();
        assert!(!live.iter().any(|p| p.starts_with(parent)));
    }
}
