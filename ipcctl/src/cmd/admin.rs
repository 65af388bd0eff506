//! Commands about the daemon and objects of any kind: ping, list, stat, create
//! and delete (`status` has its own module).

use std::io::IsTerminal as _;
use std::time::Instant;

use ipc_client::{Client, CreateSpec, ErrorCode, Kind, KindDetails, Lifetime};
use serde_json::json;

use super::objects;
use crate::cli::{CreateArgs, DeleteArgs};
use crate::errors::{Code, fail};
use crate::output;

/// `ipcctl ping`: one round trip, timed.
pub fn ping(client: &mut Client, json: bool) -> anyhow::Result<()> {
    let start = Instant::now();
    client.ping()?;
    let rtt = start.elapsed();
    let welcome = client.welcome();
    output::print(
        json,
        || {
            json!({
                "server": welcome.server,
                "version": welcome.version,
                "rtt_us": rtt.as_nanos() as f64 / 1e3,
            })
        },
        || {
            format!(
                "pong from {} in {:.3} ms",
                welcome.server,
                rtt.as_secs_f64() * 1e3
            )
        },
    )
}

/// `ipcctl list [KIND]`.
pub fn list(client: &mut Client, kind: Option<Kind>, json: bool) -> anyhow::Result<()> {
    let objects = client.list(kind)?;
    output::print(
        json,
        || objects.iter().map(objects::object_json).collect(),
        || {
            if objects.is_empty() {
                "no objects".to_owned()
            } else {
                objects::object_table(&objects)
            }
        },
    )
}

/// `ipcctl stat ADDR`.
pub fn stat(client: &mut Client, address: &str, json: bool) -> anyhow::Result<()> {
    let info = client.stat(address)?;
    output::print(
        json,
        || objects::object_json(&info),
        || objects::object_fields(&info),
    )
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
    output::print(
        json,
        || objects::object_json(&info),
        || {
            let verb = if args.adopt { "adopted" } else { "created" };
            let what = match &info.details {
                KindDetails::Pipe(d) => format!("anonymous pipe of {} bytes", d.capacity),
                KindDetails::Fifo(d) if d.buffered => format!("{}, buffered", d.path),
                KindDetails::Shm(d) => format!("{}, {} bytes", info.kernel_name, d.size),
                KindDetails::Ring(d) => format!(
                    "{}, {} slots of {} bytes",
                    info.kernel_name, d.slots, d.slot_size
                ),
                KindDetails::Sem(d) => format!("{}, value {}", info.kernel_name, d.value),
                KindDetails::Lock(d) if d.reentrant => "re-entrant".into(),
                KindDetails::Lock(_) => "not re-entrant".into(),
                KindDetails::Event(d) => if d.set { "set" } else { "clear" }.into(),
                KindDetails::Barrier(d) => format!("{} parties", d.parties),
                KindDetails::Signal(d) => super::signal::created(d),
                KindDetails::Queue(d) => super::queue::created(&info, d),
                KindDetails::Mq(_) | KindDetails::Fifo(_) => info.kernel_name.clone(),
            };
            format!("{verb} {} ({what})", info.address)
        },
    )?;
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
        return Err(fail(
            Code::DaemonGone,
            format!("{why}; {} (session lifetime) is gone", info.address),
        ));
    }
    Ok(())
}

/// `ipcctl delete ADDR…` or `--all [--kind K]` (the caller's own objects).
/// Prints what it deleted with `--all` or `--json`, even when one fails.
pub fn delete(
    client: &mut Client,
    args: &DeleteArgs,
    kind: Option<Kind>,
    json: bool,
) -> anyhow::Result<()> {
    let targets = if args.all {
        let uid = client.welcome().peer.uid;
        let objects = client.list(kind)?;
        objects
            .into_iter()
            .filter(|o| o.owner_uid == uid)
            .map(|o| o.address)
            .collect()
    } else {
        args.addresses.clone()
    };
    let mut deleted: Vec<String> = Vec::new();
    let mut failed = None;
    for address in targets {
        match client.delete(&address) {
            Ok(()) => deleted.push(address),
            // Deleted meanwhile by someone else: gone all the same.
            Err(e) if args.all && e.code() == Some(ErrorCode::NotFound) => {}
            Err(e) => {
                failed = Some(anyhow::Error::new(e).context(match deleted.as_slice() {
                    [] => format!("cannot delete {address}"),
                    done => format!(
                        "cannot delete {address} (after deleting {})",
                        done.join(", ")
                    ),
                }));
                break;
            }
        }
    }
    let printed = if args.all || json {
        output::print(
            json,
            || json!({ "deleted": deleted }),
            || match deleted.as_slice() {
                [] => "nothing to delete".to_owned(),
                done => done
                    .iter()
                    .map(|a| format!("deleted {a}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            },
        )
    } else {
        Ok(())
    };
    match failed {
        Some(e) => Err(e),
        None => printed,
    }
}
