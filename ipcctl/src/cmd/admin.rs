//! Commands about the daemon and objects of any kind: ping, status, list, stat,
//! create and delete.

use std::io::IsTerminal as _;
use std::time::Instant;

use ipc_client::{Client, CreateSpec, Kind, KindDetails, Lifetime};
use serde_json::json;

use crate::cli::CreateArgs;
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
        params: super::create_params(args)?,
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
