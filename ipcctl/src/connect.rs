//! Connecting to ipcd, and what to check when that fails: whether it runs,
//! whether the path is its socket, who may connect, and whether it answers in
//! time (a stopped or overloaded ipcd must not hang ipcctl).

use std::io;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;
use std::time::Duration;

use ipc_client::{Client, ErrorCode};

use crate::errors::{Code, fail, usage};
use crate::parse::parse_duration;
use crate::watch::show;

/// Where the socket comes from, for hints.
const SOCKET_FROM: &str = "its socket is set with --socket or IPCD_SOCKET";

/// How long connecting and the handshake may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The variable that sets the connect timeout (below `--connect-timeout`).
pub const TIMEOUT_ENV: &str = "IPCCTL_CONNECT_TIMEOUT";

/// The connect timeout: `--connect-timeout`, else `$IPCCTL_CONNECT_TIMEOUT`
/// (empty counts as unset), else [`DEFAULT_TIMEOUT`]. Zero is a usage error.
pub fn timeout(flag: Option<Duration>) -> anyhow::Result<Duration> {
    let timeout = match (flag, std::env::var_os(TIMEOUT_ENV)) {
        (Some(t), _) => t,
        (None, Some(v)) if !v.is_empty() => {
            let v = v.to_string_lossy();
            parse_duration(&v).map_err(|e| usage(format!("{TIMEOUT_ENV}='{v}': {e}")))?
        }
        (None, _) => DEFAULT_TIMEOUT,
    };
    if timeout.is_zero() {
        return Err(usage(
            "the connect timeout must be more than 0 (--connect-timeout, IPCCTL_CONNECT_TIMEOUT)",
        ));
    }
    Ok(timeout)
}

/// Connects to ipcd at `socket`; a failure says what to check. Connecting and
/// the handshake take at most `timeout`; later requests have no limit of
/// their own (a `recv --timeout 1h` or a `wait-for` is bounded by its flags).
pub fn connect(socket: &Path, timeout: Duration) -> anyhow::Result<Client> {
    // The builder's timeout bounds connect(2) (which waits while ipcd's queue
    // of connections not yet accepted is full) and the handshake.
    let connected = Client::builder()
        .name("ipcctl")
        .socket(socket)
        .timeout(timeout)
        .connect();
    let mut client = connected.map_err(|e| match &e {
        ipc_client::Error::Connect { source, .. } if source.kind() == io::ErrorKind::TimedOut => {
            not_answering(socket, timeout, "accept the connection")
        }
        ipc_client::Error::Connect { source, .. } => connect_error(socket, source, &e.to_string()),
        ipc_client::Error::TimedOut => not_answering(socket, timeout, "answer the handshake"),
        _ => e.into(),
    })?;
    client.set_timeout(None);
    Ok(client)
}

/// ipcd at `socket` did not `what` (answer the handshake …) within `timeout`.
fn not_answering(socket: &Path, timeout: Duration, what: &str) -> anyhow::Error {
    fail(
        Code::NotAnswering,
        format!(
            "ipcd at {} did not {what} within {} (is it overloaded or stopped with SIGSTOP? \
             --connect-timeout waits longer)",
            socket.display(),
            show(timeout)
        ),
    )
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
