//! What can go wrong, and how it is reported: every error has a code (the
//! daemon's, or one of ipcctl's own), which picks the exit status and ends the
//! `ipcctl: MESSAGE (code)` line, or fills `{"error":{…}}` with `--json`.

use std::io::{self, Write as _};
use std::process::ExitCode;

use ipc_client::ErrorCode;
use serde_json::json;

use crate::output::StdoutClosed;

/// Exit status: the wait ran out, there was nothing to receive / no room to
/// send, or a pipe was at end of file.
pub const EXIT_NOTHING: u8 = 1;
/// Exit status: any other error.
pub const EXIT_ERROR: u8 = 2;
/// Exit status: the command line was wrong (`EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
/// Exit status of `exec` when the command does not exist (as shells use it).
pub const EXIT_NOT_FOUND: u8 = 127;
/// Exit status of `exec` when the command exists but cannot run.
pub const EXIT_CANNOT_RUN: u8 = 126;

/// The code of an error: the daemon's, or ipcctl's own for what happens on
/// this side of the socket. Shown as a slug; the daemon's have a number too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A code the daemon uses too (some are found on this side as well:
    /// `timed-out`, `would-block`, `too-large`, `wrong-kind`, …).
    Wire(ErrorCode),
    /// The command line is wrong (exit status 64).
    Usage,
    /// Nothing listens at the socket path: ipcd is not running there.
    NotRunning,
    /// The socket path is something else (a directory, a regular file).
    NotASocket,
    /// ipcd did not accept the connection or answer the handshake in time
    /// (`--connect-timeout`): it is stopped (SIGSTOP) or overloaded.
    NotAnswering,
    /// The connection to ipcd ended while the command needed it: ipcd stopped.
    DaemonGone,
    /// A pipe or FIFO has no reader left (writing failed with `EPIPE`).
    ReaderGone,
    /// A pipe is at end of file (closed or deleted, and drained) with nothing to receive.
    EndOfFile,
    /// ipcd answered something ipcctl does not understand.
    Protocol,
    /// `exec`: the command does not exist (exit status 127).
    CommandNotFound,
    /// `exec`: the command exists but cannot run (exit status 126).
    CannotRun,
}

impl Code {
    /// The code as it is printed: `not-found`, `daemon-gone`, …
    pub fn slug(self) -> &'static str {
        match self {
            Code::Wire(c) => c.slug(),
            Code::Usage => "usage",
            Code::NotRunning => "not-running",
            Code::NotASocket => "not-a-socket",
            Code::NotAnswering => "not-answering",
            Code::DaemonGone => "daemon-gone",
            Code::ReaderGone => "reader-gone",
            Code::EndOfFile => "end-of-file",
            Code::Protocol => "protocol-error",
            Code::CommandNotFound => "command-not-found",
            Code::CannotRun => "cannot-run",
        }
    }

    /// The daemon's stable number for the code, if it is one of the daemon's.
    pub fn number(self) -> Option<u16> {
        match self {
            Code::Wire(c) => Some(c.as_u16()),
            _ => None,
        }
    }

    /// The exit status an error with this code ends ipcctl with.
    pub fn exit_status(self) -> u8 {
        match self {
            Code::Usage => EXIT_USAGE,
            Code::Wire(ErrorCode::TimedOut | ErrorCode::WouldBlock) | Code::EndOfFile => {
                EXIT_NOTHING
            }
            Code::CommandNotFound => EXIT_NOT_FOUND,
            Code::CannotRun => EXIT_CANNOT_RUN,
            _ => EXIT_ERROR,
        }
    }
}

impl From<ErrorCode> for Code {
    fn from(c: ErrorCode) -> Self {
        Code::Wire(c)
    }
}

/// An error ipcctl found itself, with its code; the message has no code in it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failed {
    /// What kind of failure.
    pub code: Code,
    /// What happened, lowercase, naming the object.
    pub message: String,
}

/// An error with `code` and `message`.
pub fn fail(code: impl Into<Code>, message: impl Into<String>) -> anyhow::Error {
    Failed {
        code: code.into(),
        message: message.into(),
    }
    .into()
}

/// A usage error (exit status 64).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    fail(Code::Usage, message)
}

/// The client error inside `e`, if any.
pub fn client_error(e: &anyhow::Error) -> Option<&ipc_client::Error> {
    e.chain()
        .find_map(|c| c.downcast_ref::<ipc_client::Error>())
}

/// The stable code of the client error inside `e`, if any.
pub fn client_code(e: &anyhow::Error) -> Option<ErrorCode> {
    client_error(e).and_then(ipc_client::Error::code)
}

/// The code of any error: ipcctl's own, else the client library's, else
/// `os-error` (a failed system call or read on this side).
pub fn code_of(e: &anyhow::Error) -> Code {
    if let Some(f) = e.chain().find_map(|c| c.downcast_ref::<Failed>()) {
        return f.code;
    }
    match client_error(e) {
        Some(ce) => client_code_of(ce),
        None => Code::Wire(ErrorCode::Os),
    }
}

/// The code of a client library error.
fn client_code_of(e: &ipc_client::Error) -> Code {
    match e {
        ipc_client::Error::Connect { source, .. } => match source.kind() {
            io::ErrorKind::PermissionDenied => Code::Wire(ErrorCode::PermissionDenied),
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => Code::NotRunning,
            _ => Code::Wire(ErrorCode::Os),
        },
        ipc_client::Error::Io(_) | ipc_client::Error::Closed => Code::DaemonGone,
        ipc_client::Error::Protocol(_) | ipc_client::Error::BadMessage { .. } => Code::Protocol,
        ipc_client::Error::ReaderGone { .. } => Code::ReaderGone,
        e => e.code().map_or(Code::Wire(ErrorCode::Os), Code::Wire),
    }
}

/// The message of `e` (its context chain), without a trailing `(slug)` the
/// daemon's errors carry.
pub fn message_of(e: &anyhow::Error, code: Code) -> String {
    let text = format!("{e:#}");
    let suffix = format!(" ({})", code.slug());
    match text.strip_suffix(&suffix) {
        Some(bare) => bare.to_owned(),
        None => text,
    }
}

/// `{"error":{"code":SLUG,"number":N|null,"message":TEXT}}`.
pub fn error_json(code: Code, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code.slug(), "number": code.number(), "message": message } })
}

/// Prints the error on standard error, as `ipcctl: MESSAGE (code)` or (with
/// `json`) one JSON document, and picks the exit status. A closed standard
/// output is not an error: the command just stops.
pub fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    if e.chain().any(|c| c.is::<StdoutClosed>()) {
        return ExitCode::SUCCESS;
    }
    let code = code_of(e);
    print_error(code, &message_of(e, code), json);
    ExitCode::from(code.exit_status())
}

/// Prints one error line (or JSON document) on standard error.
pub fn print_error(code: Code, message: &str, json: bool) {
    let line = if json {
        error_json(code, message).to_string()
    } else {
        format!("ipcctl: {message} ({})", code.slug())
    };
    let _ = writeln!(io::stderr(), "{line}");
}

/// A command-line error from clap, in ipcctl's shape: `ipcctl: MESSAGE (usage)`
/// (then clap's usage line and tips), or one JSON document. Help and version
/// are printed as they are.
pub fn report_clap(e: &clap::Error, json: bool) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let (first, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
    let message = first.trim().strip_prefix("error: ").unwrap_or(first.trim());
    if json {
        print_error(Code::Usage, message, true);
    } else {
        let _ = write!(
            io::stderr(),
            "ipcctl: {message} (usage)\n\n{}",
            rest.trim_start()
        );
    }
    ExitCode::from(EXIT_USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_pick_the_exit_status() {
        assert_eq!(Code::Usage.exit_status(), 64);
        assert_eq!(Code::Wire(ErrorCode::TimedOut).exit_status(), 1);
        assert_eq!(Code::Wire(ErrorCode::WouldBlock).exit_status(), 1);
        assert_eq!(Code::EndOfFile.exit_status(), 1);
        assert_eq!(Code::Wire(ErrorCode::WrongKind).exit_status(), 2);
        assert_eq!(Code::DaemonGone.exit_status(), 2);
        assert_eq!(Code::NotRunning.exit_status(), 2);
        // A daemon that does not answer is an error, not "nothing to receive".
        assert_eq!(Code::NotAnswering.exit_status(), 2);
    }

    #[test]
    fn the_daemon_s_slug_is_not_repeated() {
        let e = anyhow::Error::new(ipc_client::Error::Server(ipc_client::WireError::new(
            ErrorCode::NotFound,
            "no object 'mq:x'",
        )))
        .context("cannot open mq:x");
        let code = code_of(&e);
        assert_eq!(code, Code::Wire(ErrorCode::NotFound));
        assert_eq!(message_of(&e, code), "cannot open mq:x: no object 'mq:x'");
    }

    #[test]
    fn ipcctl_s_own_errors_keep_their_code_under_context() {
        let e = fail(ErrorCode::WouldBlock, "mq:q is full").context("stopped at line 1");
        let code = code_of(&e);
        assert_eq!(code.slug(), "would-block");
        assert_eq!(message_of(&e, code), "stopped at line 1: mq:q is full");
        assert_eq!(
            error_json(code, "m"),
            json!({"error": {"code": "would-block", "number": ErrorCode::WouldBlock.as_u16(), "message": "m"}})
        );
        assert_eq!(
            error_json(Code::DaemonGone, "m").to_string(),
            r#"{"error":{"code":"daemon-gone","message":"m","number":null}}"#
        );
    }

    #[test]
    fn a_lost_connection_is_the_daemon_gone() {
        let e = anyhow::Error::new(ipc_client::Error::Closed);
        assert_eq!(code_of(&e), Code::DaemonGone);
        let e = anyhow::Error::new(io::Error::other("read failed"));
        assert_eq!(code_of(&e), Code::Wire(ErrorCode::Os));
    }
}
