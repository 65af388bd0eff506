//! `event:` objects: `set`, `clear` and `wait`.

use std::time::Duration;

use ipc_client::Client;
use serde_json::json;

use super::lock::wait_error;
use crate::output;

/// `ipcctl set event:NAME`.
pub fn set(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    client
        .event_set(address)
        .map_err(|e| anyhow::Error::new(e).context(format!("setting {address}")))?;
    output::print_json_only(json, || json!({ "set": address }))
}

/// `ipcctl clear event:NAME`.
pub fn clear(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    client
        .event_clear(address)
        .map_err(|e| anyhow::Error::new(e).context(format!("clearing {address}")))?;
    output::print_json_only(json, || json!({ "cleared": address }))
}

/// `ipcctl wait event:NAME`: until it is set.
pub fn wait(
    client: &mut Client,
    address: &str,
    timeout: Option<Duration>,
    json: bool,
) -> anyhow::Result<()> {
    client
        .event_wait(address, timeout)
        .map_err(|e| wait_error(e, address, timeout, "waiting for"))?;
    output::print_json_only(json, || json!({ "address": address, "set": true }))
}
