//! Where the daemon's socket is: the resolution order shared by ipcd and its clients.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the daemon's socket.
pub const SOCKET_ENV: &str = "IPCD_SOCKET";

/// The system-wide socket path, used when nothing else applies.
pub const SYSTEM_SOCKET: &str = "/run/ipcd/ipcd.sock";

/// The socket path to use when none is given explicitly.
///
/// The first of these that is set and non-empty wins:
///
/// 1. `$IPCD_SOCKET`;
/// 2. `$XDG_RUNTIME_DIR/ipcd/ipcd.sock` (a per-user daemon);
/// 3. `/run/ipcd/ipcd.sock` (the system daemon).
///
/// An explicit path, when a program has one, comes before all of them; see
/// [`resolve_socket_path`].
///
/// ```
/// let path = ipc_client::default_socket_path();
/// assert!(path.ends_with("ipcd.sock") || std::env::var_os("IPCD_SOCKET").is_some());
/// ```
pub fn default_socket_path() -> PathBuf {
    socket_path_from(
        std::env::var_os(SOCKET_ENV),
        std::env::var_os("XDG_RUNTIME_DIR"),
    )
}

/// `explicit` if given, otherwise [`default_socket_path`].
///
/// ```
/// use std::path::Path;
/// let p = ipc_client::resolve_socket_path(Some(Path::new("/tmp/x.sock")));
/// assert_eq!(p, Path::new("/tmp/x.sock"));
/// ```
pub fn resolve_socket_path(explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => default_socket_path(),
    }
}

fn socket_path_from(ipcd_socket: Option<OsString>, xdg_runtime_dir: Option<OsString>) -> PathBuf {
    if let Some(p) = ipcd_socket.filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(dir) = xdg_runtime_dir.filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("ipcd").join("ipcd.sock");
    }
    PathBuf::from(SYSTEM_SOCKET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(s.into())
    }

    #[test]
    fn env_var_beats_runtime_dir() {
        assert_eq!(
            socket_path_from(os("/a.sock"), os("/run/user/1")),
            Path::new("/a.sock")
        );
    }

    #[test]
    fn runtime_dir_beats_system_path() {
        assert_eq!(
            socket_path_from(None, os("/run/user/1")),
            Path::new("/run/user/1/ipcd/ipcd.sock")
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert_eq!(socket_path_from(os(""), os("")), Path::new(SYSTEM_SOCKET));
        assert_eq!(socket_path_from(None, None), Path::new(SYSTEM_SOCKET));
    }
}
