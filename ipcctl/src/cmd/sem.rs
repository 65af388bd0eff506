//! `sem:` objects: `acquire` (a permit held by ipcctl's connection, given
//! back when it exits), `take` (a permit consumed) and `release` (a post).

use std::time::Duration;

use ipc_client::Client;
use serde_json::json;

use super::lock::wait_error;
use crate::output;

/// `ipcctl acquire sem:NAME`: takes a permit (held until ipcctl exits).
pub fn acquire(
    client: &mut Client,
    address: &str,
    wait: Option<Duration>,
    json: bool,
) -> anyhow::Result<()> {
    let free = client
        .sem_acquire(address, wait)
        .map_err(|e| wait_error(e, address, wait, "acquiring"))?;
    report(
        json,
        ("acquired", "acquired"),
        address,
        free,
        "; given back as ipcctl exits",
    )
}

/// `ipcctl take sem:NAME`: consumes a permit (not given back).
pub fn take(
    client: &mut Client,
    address: &str,
    wait: Option<Duration>,
    json: bool,
) -> anyhow::Result<()> {
    let free = client
        .sem_take(address, wait)
        .map_err(|e| wait_error(e, address, wait, "taking"))?;
    report(json, ("taken", "took"), address, free, "")
}

/// Prints what was done: `{KEY:ADDRESS,"free":N}`, or `SAID ADDRESS (N free NOTE)`.
fn report(
    json: bool,
    (key, said): (&str, &str),
    address: &str,
    free: u32,
    note: &str,
) -> anyhow::Result<()> {
    output::print(
        json,
        || json!({ key: address, "free": free }),
        || format!("{said} {address} ({free} free{note})"),
    )
}

/// `ipcctl release sem:NAME`: posts a permit.
pub fn release(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    let free = client
        .sem_release(address)
        .map_err(|e| anyhow::Error::new(e).context(format!("releasing {address}")))?;
    report(json, ("released", "released"), address, free, "")
}
