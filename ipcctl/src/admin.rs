//! Commands about the daemon and its objects: ping, status, list, stat, create,
//! delete, close and path.

use std::io::IsTerminal as _;
use std::time::Instant;

use ipc_client::{
    Client, CreateSpec, FifoParams, Kind, KindDetails, KindParams, Lifetime, MqParams, PipeParams,
};
use serde_json::json;

use crate::cli::CreateArgs;
use crate::data::{Usage, kind_of};
use crate::output::{self, Out};

/// `ipcctl ping`: one round trip, timed.
pub fn ping(client: &mut Client, json: bool) -> anyhow::Result<()> {
    let start = Instant::now();
    client.ping()?;
    let rtt = start.elapsed();
    let server = &client.welcome().server;
    let mut out = Out::new();
    if json {
        out.json(&json!({
            "server": server,
            "version": client.welcome().version,
            "rtt_us": rtt.as_nanos() as f64 / 1e3,
        }))?;
    } else {
        out.line(format!(
            "pong from {server} in {:.3} ms",
            rtt.as_secs_f64() * 1e3
        ))?;
    }
    out.flush()
}

/// `ipcctl status`.
pub fn status(client: &mut Client, json: bool) -> anyhow::Result<()> {
    let status = client.status()?;
    let mut out = Out::new();
    if json {
        out.json_pretty(&output::status_json(&status))?;
    } else {
        out.line(output::status_fields(&status))?;
    }
    out.flush()
}

/// `ipcctl list [KIND]`.
pub fn list(client: &mut Client, kind: Option<Kind>, json: bool) -> anyhow::Result<()> {
    let objects = client.list(kind)?;
    let mut out = Out::new();
    if json {
        out.json_pretty(&objects.iter().map(output::object_json).collect())?;
    } else if objects.is_empty() {
        out.line("no objects")?;
    } else {
        out.line(output::object_table(&objects))?;
    }
    out.flush()
}

/// `ipcctl stat ADDR`.
pub fn stat(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    let info = client.stat(address)?;
    let mut out = Out::new();
    if json {
        out.json_pretty(&output::object_json(&info))?;
    } else {
        out.line(output::object_fields(&info))?;
    }
    out.flush()
}

/// `ipcctl create ADDR …`; with `--session`, stays connected until the daemon
/// closes the connection (an error: the object is gone) or ipcctl is interrupted.
pub fn create(client: &mut Client, args: &CreateArgs, json: bool) -> anyhow::Result<()> {
    let spec = CreateSpec {
        mode: args.mode,
        lifetime: if args.session {
            Lifetime::Session
        } else {
            Lifetime::Persistent
        },
        adopt: args.adopt,
        params: create_params(args)?,
    };
    let info = client.create(&args.address, spec)?;
    let mut out = Out::new();
    if json {
        out.json_pretty(&output::object_json(&info))?;
    } else {
        let verb = if args.adopt { "adopted" } else { "created" };
        let what = match &info.details {
            KindDetails::Pipe(d) => format!("anonymous pipe of {} bytes", d.capacity),
            KindDetails::Fifo(d) if d.buffered => format!("{}, buffered", d.path),
            _ => info.kernel_name.clone(),
        };
        out.line(format!("{verb} {} ({what})", info.address))?;
    }
    out.flush()?;
    if args.session {
        if std::io::stderr().is_terminal() {
            eprintln!(
                "{} lives until ipcctl exits: press Ctrl-C to remove it",
                info.address
            );
        }
        // The daemon never ends a healthy connection by itself: it stopped or
        // died, and the object went with it (or with its registry entry).
        let why = match client.wait_closed() {
            Ok(()) if client.shutting_down() => "ipcd shut down and closed the connection".into(),
            Ok(()) => "ipcd closed the connection".into(),
            Err(e) => format!("lost the connection to ipcd ({e})"),
        };
        anyhow::bail!("{why}; {} (session lifetime) is gone", info.address);
    }
    Ok(())
}

/// The kind's parameters from `create`'s flags; a flag for another kind is a
/// usage error.
fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    let kind = kind_of(&args.address)?;
    let not_for = |flag: &str, what: &str| -> anyhow::Error {
        Usage(format!("{flag} is {what}; {} is a {kind}", args.address)).into()
    };
    Ok(match kind {
        Kind::Mq => {
            if args.buffered {
                return Err(not_for("--buffered", "for fifo: only"));
            }
            KindParams::Mq(MqParams {
                capacity: args.capacity,
                msg_size: args.msg_size,
            })
        }
        Kind::Pipe => {
            if args.msg_size.is_some() {
                return Err(not_for(
                    "--msg-size",
                    "for mq: only (a pipe is a byte stream; its messages are lines \
                     of at most 4096 bytes)",
                ));
            }
            if args.buffered {
                return Err(not_for(
                    "--buffered",
                    "for fifo: only (a pipe always buffers)",
                ));
            }
            KindParams::Pipe(PipeParams {
                capacity: args.capacity,
            })
        }
        Kind::Fifo => {
            if args.capacity.is_some() {
                return Err(not_for("--capacity", "for mq: and pipe: only"));
            }
            if args.msg_size.is_some() {
                return Err(not_for("--msg-size", "for mq: only"));
            }
            KindParams::Fifo(FifoParams {
                buffered: args.buffered,
            })
        }
    })
}

/// `ipcctl close ADDR`: the daemon drops a pipe's write end.
pub fn close(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    client.close(address)?;
    if json {
        let mut out = Out::new();
        out.json(&json!({ "closed": address }))?;
        out.flush()?;
    }
    Ok(())
}

/// `ipcctl path ADDR`: a FIFO's path.
pub fn path(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    let info = client.stat(address)?;
    let KindDetails::Fifo(d) = &info.details else {
        anyhow::bail!(
            "{address} has no path: only fifo: objects are files (a {} is reached through \
             ipcctl send, recv and exec, or ipc-client) (wrong-kind)",
            info.kind
        );
    };
    let mut out = Out::new();
    if json {
        out.json(&json!({ "address": info.address, "path": d.path }))?;
    } else {
        out.line(&d.path)?;
    }
    out.flush()
}

/// `ipcctl delete ADDR`.
pub fn delete(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    client.delete(address)?;
    if json {
        let mut out = Out::new();
        out.json(&json!({ "deleted": address }))?;
        out.flush()?;
    }
    Ok(())
}
