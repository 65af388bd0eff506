//! Connecting to ipcd, and what to check when that fails: whether it runs,
//! whether the path is its socket, and who may connect.

use std::io;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use ipc_client::{Client, ErrorCode};

use crate::errors::{Code, fail};

/// Where the socket comes from, for hints.
const SOCKET_FROM: &str = "its socket is set with --socket or IPCD_SOCKET";

/// Connects to ipcd at `socket`; a failure says what to check.
pub fn connect(socket: &Path) -> anyhow::Result<Client> {
    Client::builder()
        .name("ipcctl")
        .socket(socket)
        .connect()
        .map_err(|e| match &e {
            ipc_client::Error::Connect { source, .. } => {
                connect_error(socket, source, &e.to_string())
            }
            _ => e.into(),
        })
}

/// Why connecting to `socket` failed (`what` names it), with a hint that fits.
fn connect_error(socket: &Path, source: &io::Error, what: &str) -> anyhow::Error {
    // connect(2) says "connection refused" for a path that is no socket at all.
    if let Ok(meta) = std::fs::metadata(socket)
        && !meta.file_type().is_socket()
    {
        let is = if meta.is_dir() {
            "a directory"
        } else if meta.is_file() {
            "a regular file"
        } else {
            "something else"
        };
        return fail(
            Code::NotASocket,
            format!("{what}: it is {is}, not a socket ({SOCKET_FROM}; give the socket's own path)"),
        );
    }
    let message = format!("{what}: {source}");
    match source.kind() {
        io::ErrorKind::NotFound => fail(
            Code::NotRunning,
            format!("{message}; is ipcd running? ({SOCKET_FROM})"),
        ),
        io::ErrorKind::ConnectionRefused => fail(
            Code::NotRunning,
            format!(
                "{message}: nothing listens on it (an ipcd that stopped without removing it?); \
                 is ipcd running? ({SOCKET_FROM})"
            ),
        ),
        io::ErrorKind::PermissionDenied => fail(
            ErrorCode::PermissionDenied,
            format!(
                "{message}; ipcd's config file says who may connect: socket_mode (e.g. \"0660\") \
                 and socket_group (a group you are in)"
            ),
        ),
        _ => fail(ErrorCode::Os, message),
    }
}
