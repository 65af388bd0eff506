//! `signal:` channels: create flags (`--bind`), `send` (raise), `watch`,
//! `subscribe`/`unsubscribe` a process, `kill`, and their `stat` rows, `list`
//! cells and JSON fields.

use std::time::Instant;

use ipc_client::protocol::kinds::signal::signal_name;
use ipc_client::protocol::{SignalDetails, SignalParams};
use ipc_client::{Client, ErrorCode, KindParams, Received, SignalEvent};
use serde_json::{Value, json};

use super::common::{Sent, no_message_flags, not_for};
use super::sync::no_sync_flags;
use crate::cli::{CreateArgs, KillArgs, SendArgs, SubscribeArgs, UnsubscribeArgs, WatchArgs};
use crate::errors::{fail, usage};
use crate::output::{self, Out, message_json, timestamp};
use crate::watch::show;

/// The channel's parameters from `create`'s flags.
pub fn create_params(args: &CreateArgs) -> anyhow::Result<KindParams> {
    no_message_flags(args, "not for signal channels")?;
    no_sync_flags(args, None)?;
    Ok(KindParams::Signal(SignalParams { bind: args.bind }))
}

/// `--bind` given to create another kind: a usage error.
pub fn no_bind(args: &CreateArgs) -> anyhow::Result<()> {
    match args.bind {
        Some(_) => Err(not_for(args, "--bind", "for signal: only")),
        None => Ok(()),
    }
}

/// The `send` flags that do not apply to a channel: usage errors.
pub fn check_send_flags(args: &SendArgs) -> anyhow::Result<()> {
    let refused = [
        (args.lines, "--lines"),
        (args.raw, "--raw"),
        (args.priority.is_some(), "--priority"),
        (args.timeout.is_some(), "--timeout"),
        (args.nonblock, "--nonblock"),
        (args.spin_us.is_some(), "--spin-us"),
    ];
    match refused.iter().find(|(given, _)| *given) {
        Some((_, flag)) => Err(usage(format!(
            "{flag} does not apply to {}: send raises the channel at once, with MESSAGE \
             (if given) as the event's payload",
            args.address
        ))),
        None => Ok(()),
    }
}

/// `ipcctl send signal:NAME [PAYLOAD]`: raises it (no PAYLOAD: an empty one;
/// standard input is not read).
pub fn send(client: &mut Client, args: &SendArgs) -> anyhow::Result<Sent> {
    let payload = args
        .message
        .as_ref()
        .map(|m| m.as_encoded_bytes().to_vec())
        .unwrap_or_default();
    client
        .signal_raise(&args.address, &payload)
        .map_err(|e| anyhow::Error::new(e).context(format!("raising {}", args.address)))?;
    let mut sent = Sent::default();
    sent.message(payload.len());
    Ok(sent)
}

/// An event as a line of text.
fn event_line(e: &SignalEvent) -> String {
    let mut line = format!(
        "#{} {} pid {} uid {}",
        e.seq,
        timestamp(e.time_ms),
        e.pid,
        e.uid
    );
    if let Some(s) = e.signal {
        line.push(' ');
        line.push_str(&signal_name(s));
    }
    if !e.payload.is_empty() {
        line.push_str(": ");
        line.push_str(&String::from_utf8_lossy(&e.payload));
    }
    line
}

/// An event as JSON.
fn event_json(e: &SignalEvent) -> Value {
    let mut v = json!({
        "seq": e.seq,
        "time_ms": e.time_ms,
        "time": timestamp(e.time_ms),
        "pid": e.pid,
        "uid": e.uid,
        "signal": e.signal.map(signal_name),
    });
    let payload = message_json(&e.payload, None);
    for key in ["message", "message_base64"] {
        if let Some(p) = payload.get(key) {
            let name = if key == "message" {
                "payload"
            } else {
                "payload_base64"
            };
            v[name] = p.clone();
        }
    }
    v
}

/// `ipcctl watch signal:NAME`.
pub fn watch(client: &mut Client, args: &WatchArgs, json: bool) -> anyhow::Result<()> {
    let address = &args.address;
    let deadline = args.timeout.and_then(|t| Instant::now().checked_add(t));
    let mut sub = client
        .subscribe_signal(address, args.buffer.unwrap_or(0))
        .map_err(|e| anyhow::Error::new(e).context(format!("watching {address}")))?;
    sub.set_deadline(deadline);
    let limit = args.count.unwrap_or(u64::MAX);
    let mut out = Out::new();
    let mut events = 0;
    while events < limit {
        let Some(received) = sub.next() else {
            break;
        };
        let received = received.map_err(|e| match e.code() {
            Some(ErrorCode::NotFound) => fail(
                ErrorCode::NotFound,
                format!("{address} was deleted while watching it"),
            ),
            _ => anyhow::Error::new(e).context(format!("watching {address}")),
        })?;
        // --count counts events; a missed count is reported, not counted.
        match (received, json) {
            (Received::Event(e), false) => {
                out.line(event_line(&e))?;
                events += 1;
            }
            (Received::Event(e), true) => {
                out.json(&event_json(&e))?;
                events += 1;
            }
            (Received::Missed(n), false) => out.line(format!("missed {n} events"))?,
            (Received::Missed(n), true) => out.json(&json!({ "missed": n }))?,
        }
        out.flush()?;
    }
    let short = match args.count {
        Some(n) => events < n,
        None => events == 0,
    };
    match args.timeout {
        Some(t) if short => Err(fail(
            ErrorCode::TimedOut,
            format!(
                "{address}: {events} of {} events within {}",
                args.count.map_or("any".into(), |n| n.to_string()),
                show(t)
            ),
        )),
        _ => Ok(()),
    }
}

/// `ipcctl subscribe signal:NAME --pid PID --deliver SIGNAL`.
pub fn subscribe(client: &mut Client, args: &SubscribeArgs, json: bool) -> anyhow::Result<()> {
    let (address, pid, signal) = (&args.address, args.pid, args.deliver);
    client.signal_deliver(address, pid, signal).map_err(|e| {
        anyhow::Error::new(e).context(format!("subscribing pid {pid} to {address}"))
    })?;
    output::print(
        json,
        || json!({ "subscribed": address, "pid": pid, "signal": signal_name(signal) }),
        || {
            format!(
                "pid {pid} gets {} on every event of {address}",
                signal_name(signal)
            )
        },
    )
}

/// `ipcctl unsubscribe signal:NAME --pid PID`.
pub fn unsubscribe(client: &mut Client, args: &UnsubscribeArgs, json: bool) -> anyhow::Result<()> {
    let (address, pid) = (&args.address, args.pid);
    client.signal_undeliver(address, pid).map_err(|e| {
        anyhow::Error::new(e).context(format!("unsubscribing pid {pid} from {address}"))
    })?;
    output::print_json_only(json, || json!({ "unsubscribed": address, "pid": pid }))
}

/// `ipcctl kill PID SIGNAL`.
pub fn kill(client: &mut Client, args: &KillArgs, json: bool) -> anyhow::Result<()> {
    let (pid, signal) = (args.pid, args.signal);
    client.kill(pid, signal).map_err(|e| {
        anyhow::Error::new(e).context(format!("sending {} to pid {pid}", signal_name(signal)))
    })?;
    output::print_json_only(
        json,
        || json!({ "killed": pid, "signal": signal_name(signal) }),
    )
}

/// A channel's `stat` rows.
pub fn field_rows(d: &SignalDetails) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        (
            "bound to",
            d.bind.map_or("no real signal".into(), signal_name),
        ),
        ("events", format!("{} since ipcd started", d.seq)),
        ("watchers", d.subscribers.to_string()),
    ];
    let procs: Vec<String> = d
        .deliveries
        .iter()
        .map(|p| {
            format!(
                "pid {} (uid {}) gets {}, sent {}",
                p.pid,
                p.uid,
                signal_name(p.signal),
                p.sent
            )
        })
        .collect();
    rows.push((
        "signalled",
        if procs.is_empty() {
            "no process".into()
        } else {
            procs.join("; ")
        },
    ));
    rows
}

/// A channel's `list` cells: QUEUED (events so far), CAPACITY (-), ENDS (watchers, processes).
pub fn table_cells(d: &SignalDetails) -> [String; 3] {
    [
        format!("{} ev", d.seq),
        d.bind.map_or("-".into(), signal_name),
        format!("{}w {}p", d.subscribers, d.deliveries.len()),
    ]
}

/// A channel's JSON fields.
pub fn json_details(d: &SignalDetails, v: &mut Value) {
    v["bind"] = json!(d.bind.map(signal_name));
    v["seq"] = json!(d.seq);
    v["watchers"] = json!(d.subscribers);
    v["signalled"] = d
        .deliveries
        .iter()
        .map(|p| json!({ "pid": p.pid, "uid": p.uid, "signal": signal_name(p.signal), "sent": p.sent }))
        .collect();
}

/// What `create` says of a new channel.
pub fn created(d: &SignalDetails) -> String {
    match d.bind {
        Some(s) => format!("raised by {} sent to ipcd", signal_name(s)),
        None => "no real signal bound".into(),
    }
}
