//! The notification socket (`$NOTIFY_SOCKET`, `sd_notify(3)`): readiness,
//! reloading, stopping, the status line, watchdog pings and descriptors for
//! the fd store. Outside a service manager every call is a no-op.
//!
//! Messages are sent without waiting (`MSG_DONTWAIT`): a manager that does
//! not read never stalls the daemon; what cannot be sent is reported to the
//! caller, which logs it.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, sendmsg, socket,
};

/// The manager's socket, if the daemon runs under one.
fn address() -> Option<nix::Result<UnixAddr>> {
    let path = std::env::var_os("NOTIFY_SOCKET")?;
    let bytes = path.as_bytes();
    Some(match bytes.strip_prefix(b"@") {
        Some(abstract_name) => UnixAddr::new_abstract(abstract_name),
        None => UnixAddr::new(bytes),
    })
}

/// Whether `$NOTIFY_SOCKET` is set.
pub fn under_manager() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// Sends `lines` (`KEY=value` lines) and `fds` to the manager; `Ok` and
/// nothing sent when there is none.
pub fn send(lines: &str, fds: &[BorrowedFd<'_>]) -> nix::Result<()> {
    let Some(addr) = address() else {
        return Ok(());
    };
    let addr = addr?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    sendmsg(
        sock.as_raw_fd(),
        &[IoSlice::new(lines.as_bytes())],
        cmsgs,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        Some(&addr),
    )?;
    Ok(())
}

/// Sends `lines`, logging (at debug level) a failure: notifications are advice
/// to the manager, and the daemon serves the same without them.
pub fn tell(lines: &str) {
    if let Err(e) = send(lines, &[]) {
        tracing::debug!("cannot notify the service manager ({lines:?}): {e}");
    }
}

/// `READY=1` with the status line.
pub fn ready(status: &str) {
    tell(&format!("READY=1\nSTATUS={status}\n"));
}

/// `RELOADING=1`, stamped with `CLOCK_MONOTONIC` as `Type=notify-reload` wants.
pub fn reloading() {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as i128 * 1_000_000 + t.tv_nsec() as i128 / 1_000)
        .unwrap_or(0);
    tell(&format!(
        "RELOADING=1\nMONOTONIC_USEC={now}\nSTATUS=reloading the configuration\n"
    ));
}

/// `STOPPING=1`.
pub fn stopping() {
    tell("STOPPING=1\nSTATUS=stopping\n");
}
