//! Pipes and FIFOs through the client library: created and opened via ipcd,
//! then read and written through the library's handles ([`PipeReader`],
//! [`PipeWriter`], [`FifoReader`], [`FifoWriter`]) with `std::io::Read` and
//! `Write`, exactly as an application would.
//!
//! The handles keep their descriptors non-blocking and wait in `poll(2)`
//! (so that every operation can take a timeout); that is the one thing they
//! do differently from a raw descriptor, and what the bench measures.

use std::time::Duration;

use anyhow::Context as _;
use ipc_client::{
    Client, FifoOptions, FifoReader, FifoWriter, PipeOptions, PipeReader, PipeWriter,
};

/// Creates `pipe:<name>` with lifetime session (it vanishes if the bench
/// dies) and the kernel's default capacity, as a raw pipe has.
pub fn create_pipe(client: &mut Client, name: &str) -> anyhow::Result<()> {
    client
        .create_pipe(name, &PipeOptions::new().session())
        .with_context(|| format!("cannot create pipe:{name}"))?;
    Ok(())
}

/// Creates `fifo:<name>` with lifetime session and standard (unbuffered)
/// semantics, as a raw FIFO has.
pub fn create_fifo(client: &mut Client, name: &str) -> anyhow::Result<()> {
    client
        .create_fifo(name, &FifoOptions::new().session())
        .with_context(|| format!("cannot create fifo:{name}"))?;
    Ok(())
}

/// Opens the read end of `pipe:<name>`.
pub fn open_pipe_reader(client: &mut Client, name: &str) -> anyhow::Result<PipeReader> {
    client
        .open_pipe_reader(name)
        .with_context(|| format!("cannot open pipe:{name} for reading"))
}

/// Opens the write end of `pipe:<name>`.
pub fn open_pipe_writer(client: &mut Client, name: &str) -> anyhow::Result<PipeWriter> {
    client
        .open_pipe_writer(name)
        .with_context(|| format!("cannot open pipe:{name} for writing"))
}

/// Opens `fifo:<name>` for reading (never waits).
pub fn open_fifo_reader(client: &mut Client, name: &str) -> anyhow::Result<FifoReader> {
    client
        .open_fifo_reader(name)
        .with_context(|| format!("cannot open fifo:{name} for reading"))
}

/// Opens `fifo:<name>` for writing, waiting up to `timeout` for a reader.
pub fn open_fifo_writer(
    client: &mut Client,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<FifoWriter> {
    client
        .open_fifo_writer(name, Some(timeout))
        .with_context(|| format!("cannot open fifo:{name} for writing"))
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
