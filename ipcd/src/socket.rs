//! The listening socket: refuse to start beside a live daemon, replace a stale
//! socket file, and set the file's mode and group.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::unistd::{Group, chown};

use crate::config::Tunables;
use crate::error::DaemonError;

/// Binds the socket at `path`, creating its directory if needed.
///
/// Fails if another process answers on it; removes a stale socket file left by a
/// daemon that died. The returned listener is non-blocking.
pub fn bind(path: &Path, tunables: &Tunables) -> Result<UnixListener, DaemonError> {
    let listen_err = |error| DaemonError::Listen {
        path: path.to_owned(),
        error,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // A directory made here is 0755 at most: others may reach the socket
        // (its own mode decides who may connect) but not replace it.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(listen_err)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(DaemonError::AlreadyRunning(path.to_owned())),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing stale socket");
                std::fs::remove_file(path).map_err(listen_err)?;
            }
            Err(e) => return Err(listen_err(e)),
        },
        Ok(_) => {
            return Err(listen_err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                "the path exists and is not a socket; remove it or choose another --socket",
            )));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(listen_err(e)),
    }
    let listener = UnixListener::bind(path).map_err(listen_err)?;
    if let Err(e) = apply_permissions(path, tunables) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    listener.set_nonblocking(true).map_err(listen_err)?;
    Ok(listener)
}

/// Sets the socket file's mode and (if configured) group.
pub fn apply_permissions(path: &Path, tunables: &Tunables) -> Result<(), DaemonError> {
    let io = |context: String, error| DaemonError::Io { context, error };
    if let Some(name) = &tunables.socket_group {
        let group = Group::from_name(name)
            .map_err(|e| io(format!("looking up group {name}"), e.into()))?
            .ok_or_else(|| {
                io(
                    format!("socket_group {name}"),
                    std::io::Error::new(ErrorKind::NotFound, "no such group"),
                )
            })?;
        chown(path, None, Some(group.gid))
            .map_err(|e| io(format!("chown {}", path.display()), e.into()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(tunables.socket_mode))
        .map_err(|e| io(format!("chmod {}", path.display()), e))
}
