//! `barrier:` objects: `wait` (prints the arrival index) and `reset`.

use std::time::Duration;

use ipc_client::Client;
use serde_json::json;

use super::lock::wait_error;
use crate::output;

/// `ipcctl wait barrier:NAME`: arrives, waits for the other parties.
pub fn wait(
    client: &mut Client,
    address: &str,
    timeout: Option<Duration>,
    json: bool,
) -> anyhow::Result<()> {
    let index = client
        .barrier_wait(address, timeout)
        .map_err(|e| wait_error(e, address, timeout, "waiting at"))?;
    output::print(
        json,
        || json!({ "address": address, "index": index }),
        || index.to_string(),
    )
}

/// `ipcctl reset barrier:NAME`.
pub fn reset(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    client
        .barrier_reset(address)
        .map_err(|e| anyhow::Error::new(e).context(format!("resetting {address}")))?;
    output::print_json_only(json, || json!({ "reset": address }))
}
