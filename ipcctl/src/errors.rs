//! What can go wrong, and how it is reported: the error kinds that pick an exit
//! status, and the `ipcctl: MESSAGE (code)` line on standard error.

use std::io::{self, Write as _};
use std::process::ExitCode;

use ipc_client::ErrorCode;

use crate::output::StdoutClosed;

/// Exit status: the wait ran out, or there was nothing to receive / no room to send.
pub const EXIT_NOTHING: u8 = 1;
/// Exit status: any other error.
pub const EXIT_ERROR: u8 = 2;
/// Exit status: the command line was wrong (`EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;

/// Nothing happened in time: no message to receive, or no room to send. Exit status 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NothingInTime(pub String);

/// The command line asks for something that does not apply to the object's
/// kind. Exit status 64, like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The stable code of the client error inside `e`, if any.
pub fn client_code(e: &anyhow::Error) -> Option<ErrorCode> {
    e.chain()
        .find_map(|c| c.downcast_ref::<ipc_client::Error>())
        .and_then(ipc_client::Error::code)
}

/// Prints `ipcctl: MESSAGE (code)` and picks the exit status; a closed stdout is quiet.
pub fn report(e: &anyhow::Error) -> ExitCode {
    if e.chain().any(|c| c.is::<StdoutClosed>()) {
        return ExitCode::SUCCESS;
    }
    let client_error = e
        .chain()
        .find_map(|c| c.downcast_ref::<ipc_client::Error>());
    let nothing = e.chain().any(|c| c.is::<NothingInTime>())
        || client_error.is_some_and(ipc_client::Error::is_timeout_or_would_block);
    let usage = e.chain().any(|c| c.is::<Usage>());
    // Daemon errors name their code already; add it for the client's own.
    let slug = match client_error {
        Some(ipc_client::Error::Server(_) | ipc_client::Error::Fatal(_)) | None => None,
        Some(ce) => ce.code().map(|c| c.slug()),
    };
    let mut msg = format!("ipcctl: {e:#}");
    if let Some(slug) = slug {
        msg.push_str(&format!(" ({slug})"));
    }
    if let Some(ipc_client::Error::Connect { source, .. }) = client_error
        && matches!(
            source.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
        )
    {
        msg.push_str("; is ipcd running? (its socket is set with --socket or IPCD_SOCKET)");
    }
    let _ = writeln!(io::stderr(), "{msg}");
    ExitCode::from(if usage {
        EXIT_USAGE
    } else if nothing {
        EXIT_NOTHING
    } else {
        EXIT_ERROR
    })
}
