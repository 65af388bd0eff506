//! The bench's dealings with ipcd that every kind shares: connecting, naming
//! the objects it creates, and deleting them again.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use ipc_client::Client;

/// Counter that makes [`unique_name`] unique within this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh ipcd object name, `ipcbench-<pid>-<n>`.
pub fn unique_name() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("ipcbench-{}-{n}", std::process::id())
}

/// Connects (and shakes hands) with the daemon at `socket`, or where the
/// client library looks by default.
pub fn connect(socket: Option<&Path>) -> anyhow::Result<Client> {
    let client = match socket {
        Some(path) => Client::connect_to(path),
        None => Client::connect(),
    };
    Ok(client?)
}

/// Deletes `<kind>:<name>` for each of `names` (every one is tried; the first
/// error is returned).
pub fn delete_all(client: &mut Client, kind: &str, names: &[String]) -> anyhow::Result<()> {
    let mut first_error = None;
    for name in names {
        let address = format!("{kind}:{name}");
        if let Err(e) = client.delete(&address) {
            first_error
                .get_or_insert(anyhow::Error::new(e).context(format!("cannot delete {address}")));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Creates three objects of `kind` under fresh names (a kind's ping, pong and
/// stream channels) with `create`; if one fails, removes those already made.
pub fn create_three(
    client: &mut Client,
    kind: &str,
    mut create: impl FnMut(&mut Client, &str) -> ipc_client::Result<()>,
) -> anyhow::Result<[String; 3]> {
    use anyhow::Context as _;
    let names = [(); 3].map(|()| unique_name());
    for (i, name) in names.iter().enumerate() {
        let made = create(client, name).with_context(|| format!("cannot create {kind}:{name}"));
        if let Err(e) = made {
            let _ = delete_all(client, kind, &names[..i]);
            return Err(e);
        }
    }
    Ok(names)
}

/// The channels this process uses for `role`, of a kind's three (ping, pong,
/// stream): it sends on the first and, for role echo, receives on the second
/// (a relay sends nothing of its own: it is given the stream's, unused).
pub fn for_role<T>([ping, pong, stream]: [T; 3], role: crate::channel::Role) -> (T, Option<T>) {
    match role {
        crate::channel::Role::Echo => (ping, Some(pong)),
        crate::channel::Role::Sink | crate::channel::Role::Relay => (stream, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_carry_the_pid() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("ipcbench-{}-", std::process::id())));
    }
}
