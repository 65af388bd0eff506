//! `fifo:` — named pipes with a path: create flags, opening the ends (a writer
//! waits for a reader), `path`, and their output rows (send and recv are `stream`'s).

use ipc_client::{
    Client, ErrorCode, FifoDetails, FifoParams, FifoReader, FifoWriter, KindDetails, KindParams,
    ObjectInfo,
};
use serde_json::{Value, json};

use super::common::{described, no_ring_flags, not_for};
use crate::cli::CreateArgs;
use crate::errors::fail;
use crate::output;
use crate::watch::{Wait, show};

/// The FIFO's parameters from `create`'s flags.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    no_ring_flags(args)?;
    if args.capacity.is_some() {
        return Err(not_for(args, "--capacity", "for mq: and pipe: only"));
    }
    if args.msg_size.is_some() {
        return Err(not_for(args, "--msg-size", "for mq: only"));
    }
    if args.size.is_some() {
        return Err(not_for(args, "--size", "for shm: only"));
    }
    Ok(KindParams::Fifo(FifoParams {
        buffered: args.buffered,
    }))
}

/// Opens the FIFO's write end, waiting as `wait` says for a reader.
pub fn open_writer(client: &mut Client, address: &str, wait: Wait) -> anyhow::Result<FifoWriter> {
    let timeout = wait.as_timeout();
    match client.open_fifo_writer(address, timeout) {
        Ok(w) => Ok(w),
        Err(ipc_client::Error::WouldBlock) => Err(fail(
            ErrorCode::WouldBlock,
            format!("no reader has {address} open"),
        )),
        Err(ipc_client::Error::TimedOut) => Err(fail(
            ErrorCode::TimedOut,
            format!(
                "no reader opened {address} within {}",
                show(timeout.unwrap_or_default())
            ),
        )),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot open {address} for writing"))),
    }
}

/// Opens the FIFO's read end (that never waits).
pub fn open_reader(client: &mut Client, address: &str) -> anyhow::Result<FifoReader> {
    Ok(client.open_fifo_reader(address)?)
}

/// `ipcctl path ADDR`: a FIFO's path.
pub fn path(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    let info = client.stat(address)?;
    // main checked the address's kind; this is ipcd's answer about it.
    let KindDetails::Fifo(d) = &info.details else {
        return Err(fail(
            ErrorCode::WrongKind,
            format!(
                "path takes fifo: only; {address} is {}",
                described(info.kind)
            ),
        ));
    };
    output::print(
        json,
        || json!({ "address": info.address, "path": d.path }),
        || d.path.clone(),
    )
}

/// A FIFO's own JSON fields.
pub fn json_details(d: &FifoDetails, v: &mut Value) {
    v["path"] = d.path.clone().into();
    v["buffered"] = d.buffered.into();
    v["buffered_bytes"] = d.buffered_bytes.into();
    v["readers_opened"] = d.readers_opened.into();
    v["writers_opened"] = d.writers_opened.into();
}

/// A FIFO's own `stat` rows.
pub fn field_rows(_: &ObjectInfo, d: &FifoDetails) -> Vec<(&'static str, String)> {
    let mut rows = vec![("path", d.path.clone())];
    if d.buffered {
        rows.extend([
            ("buffered", "yes: ipcd holds it open".to_owned()),
            ("buffered bytes", d.buffered_bytes.to_string()),
        ]);
    } else {
        rows.push(("buffered", "no: writers wait for a reader".to_owned()));
    }
    rows.extend([
        ("read ends", format!("{} handed out", d.readers_opened)),
        ("write ends", format!("{} handed out", d.writers_opened)),
    ]);
    rows
}

/// A FIFO's `list` cells: QUEUED, CAPACITY, ENDS.
pub fn table_cells(d: &FifoDetails) -> [String; 3] {
    [
        if d.buffered {
            format!("{} B", d.buffered_bytes)
        } else {
            "-".to_owned()
        },
        "-".to_owned(),
        format!(
            "{}r {}w{}",
            d.readers_opened,
            d.writers_opened,
            if d.buffered { " buffered" } else { "" }
        ),
    ]
}
