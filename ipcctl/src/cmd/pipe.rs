//! `pipe:` — anonymous pipes ipcd holds: create flags, opening the ends,
//! `close`, and their output rows (send and recv are `stream`'s).

use ipc_client::{Client, KindParams, ObjectInfo, PipeDetails, PipeParams, PipeReader, PipeWriter};
use serde_json::{Value, json};

use super::common::{no_ring_flags, not_for};
use crate::cli::CreateArgs;
use crate::output::{self, kernel_name};

/// The pipe's parameters from `create`'s flags.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    no_ring_flags(args)?;
    if args.msg_size.is_some() {
        return Err(not_for(
            args,
            "--msg-size",
            "for mq: only (a pipe is a byte stream; its messages are lines \
             of at most 4096 bytes)",
        ));
    }
    if args.buffered {
        return Err(not_for(
            args,
            "--buffered",
            "for fifo: only (a pipe always buffers)",
        ));
    }
    if args.size.is_some() {
        return Err(not_for(args, "--size", "for shm: only"));
    }
    if args.adopt {
        return Err(not_for(
            args,
            "--adopt",
            "for mq: and fifo: only (an anonymous pipe has no name outside ipcd to adopt)",
        ));
    }
    Ok(KindParams::Pipe(PipeParams {
        capacity: args.capacity,
    }))
}

/// Opens the pipe's write end.
pub fn open_writer(client: &mut Client, address: &str) -> anyhow::Result<PipeWriter> {
    client
        .open_pipe_writer(address)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot open {address} for writing")))
}

/// Opens the pipe's read end.
pub fn open_reader(client: &mut Client, address: &str) -> anyhow::Result<PipeReader> {
    Ok(client.open_pipe_reader(address)?)
}

/// `ipcctl close ADDR`: the daemon drops a pipe's write end.
pub fn close(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    client.close(address)?;
    output::print_json_only(json, || json!({ "closed": address }))
}

/// A pipe's own JSON fields.
pub fn json_details(d: &PipeDetails, v: &mut Value) {
    v["capacity"] = d.capacity.into();
    // Same key and meaning as for FIFOs: bytes waiting to be read.
    v["buffered_bytes"] = d.buffered_bytes.into();
    v["readers_opened"] = d.readers_opened.into();
    v["writers_opened"] = d.writers_opened.into();
    v["closed"] = d.closed.into();
}

/// A pipe's own `stat` rows.
pub fn field_rows(o: &ObjectInfo, d: &PipeDetails) -> Vec<(&'static str, String)> {
    vec![
        (
            "kernel name",
            kernel_name(o).unwrap_or("none (anonymous)").to_owned(),
        ),
        ("buffered bytes", d.buffered_bytes.to_string()),
        ("capacity", format!("{} bytes", d.capacity)),
        ("read ends", format!("{} handed out", d.readers_opened)),
        ("write ends", format!("{} handed out", d.writers_opened)),
        (
            "closed",
            if d.closed {
                "yes: no new writers; readers see end of file once drained".to_owned()
            } else {
                "no".to_owned()
            },
        ),
    ]
}

/// A pipe's `list` cells: QUEUED, CAPACITY, ENDS.
pub fn table_cells(d: &PipeDetails) -> [String; 3] {
    [
        format!("{} B", d.buffered_bytes),
        format!("{} B", d.capacity),
        format!(
            "{}r {}w{}",
            d.readers_opened,
            d.writers_opened,
            if d.closed { " closed" } else { "" }
        ),
    ]
}
