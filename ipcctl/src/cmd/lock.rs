//! `lock:` objects: `acquire` and `release` (a lock is held by the
//! connection; `ipcctl with` holds one while a command runs), and the words of
//! a wait that did not end in time, which the other synchronization kinds share.

use std::time::Duration;

use ipc_client::{Client, ErrorCode};
use serde_json::json;

use crate::errors::fail;
use crate::output;
use crate::watch::show;

/// An error of an operation on `address` that waited up to `wait`: a wait
/// that timed out, or would have blocked, in words; any other with what was
/// being done.
pub fn wait_error(
    e: ipc_client::Error,
    address: &str,
    wait: Option<Duration>,
    doing: &str,
) -> anyhow::Error {
    match (e.code(), wait) {
        (Some(ErrorCode::WouldBlock), _) => fail(
            ErrorCode::WouldBlock,
            format!("{address} is not free now (nothing waited)"),
        ),
        (Some(ErrorCode::TimedOut), Some(t)) if t.is_zero() => {
            fail(ErrorCode::WouldBlock, format!("{doing} {address}: not now"))
        }
        (Some(ErrorCode::TimedOut), t) => fail(
            ErrorCode::TimedOut,
            format!(
                "{doing} {address}: not within {}",
                show(t.unwrap_or_default())
            ),
        ),
        _ => anyhow::Error::new(e).context(format!("{doing} {address}")),
    }
}

/// `ipcctl acquire lock:NAME`: takes the lock (held until ipcctl exits).
pub fn acquire(
    client: &mut Client,
    address: &str,
    wait: Option<Duration>,
    json: bool,
) -> anyhow::Result<()> {
    let depth = client
        .lock_acquire(address, wait)
        .map_err(|e| wait_error(e, address, wait, "acquiring"))?;
    output::print(
        json,
        || json!({ "acquired": address, "depth": depth }),
        || format!("acquired {address} (given back as ipcctl exits)"),
    )
}

/// `ipcctl release lock:NAME`: only a holder may (this connection never is).
pub fn release(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    let depth = client
        .lock_release(address)
        .map_err(|e| anyhow::Error::new(e).context(format!("releasing {address}")))?;
    output::print(
        json,
        || json!({ "released": address, "depth": depth }),
        || format!("released {address}"),
    )
}
