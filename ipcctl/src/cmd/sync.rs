//! The synchronization kinds (`sem:`, `lock:`, `event:`, `barrier:`): create
//! flags, and their `stat` rows, `list` cells and JSON fields.

use ipc_client::protocol::{
    BarrierDetails, BarrierParams, EventDetails, EventParams, Holder, LockDetails, LockParams,
    SemDetails, SemParams,
};
use ipc_client::{Kind, KindParams, ObjectInfo};
use serde_json::{Value, json};

use super::common::{no_message_flags, not_for};
use crate::cli::CreateArgs;
use crate::errors::usage;

/// Refuses the flags of the message kinds (size, capacity, …) for `kind`.
fn no_channel_flags(args: &CreateArgs) -> anyhow::Result<()> {
    no_message_flags(args, "for channels only, not synchronization objects")
}

/// Refuses the synchronization flags for every kind but `kind` (which takes them).
pub fn no_sync_flags(args: &CreateArgs, kind: Option<Kind>) -> anyhow::Result<()> {
    let sem = kind == Some(Kind::Sem);
    if !sem && args.initial.is_some() {
        return Err(not_for(args, "--initial", "for sem: only"));
    }
    if !sem && args.max.is_some() {
        return Err(not_for(args, "--max", "for sem: only"));
    }
    if kind != Some(Kind::Lock) && args.reentrant {
        return Err(not_for(args, "--reentrant", "for lock: only"));
    }
    if kind != Some(Kind::Event) && args.set {
        return Err(not_for(args, "--set", "for event: only"));
    }
    if kind != Some(Kind::Barrier) && args.parties.is_some() {
        return Err(not_for(args, "--parties", "for barrier: only"));
    }
    Ok(())
}

/// The parameters of a synchronization kind from `create`'s flags.
pub fn create_params(args: &CreateArgs, kind: Kind) -> anyhow::Result<KindParams> {
    no_channel_flags(args)?;
    no_sync_flags(args, Some(kind))?;
    Ok(match kind {
        Kind::Sem => KindParams::Sem(SemParams {
            initial: args.initial.unwrap_or(if args.adopt { 0 } else { 1 }),
            max: args.max,
        }),
        Kind::Lock => KindParams::Lock(LockParams {
            reentrant: args.reentrant,
        }),
        Kind::Event => KindParams::Event(EventParams { set: args.set }),
        Kind::Barrier => KindParams::Barrier(BarrierParams {
            parties: args
                .parties
                .ok_or_else(|| usage("a barrier needs --parties N"))?,
        }),
        Kind::Mq
        | Kind::Pipe
        | Kind::Fifo
        | Kind::Shm
        | Kind::Ring
        | Kind::Signal
        | Kind::Queue => {
            return Err(usage(format!(
                "{} is no synchronization object",
                args.address
            )));
        }
    })
}

fn holder_json(h: &Holder) -> Value {
    json!({ "pid": h.pid, "uid": h.uid, "since_ms": h.since_ms, "count": h.count })
}

fn holders_text(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return "none".into();
    }
    holders
        .iter()
        .map(|h| format!("pid {} (uid {}) ×{}", h.pid, h.uid, h.count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A semaphore's JSON fields.
pub fn sem_json(d: &SemDetails, v: &mut Value) {
    v["value"] = d.value.into();
    v["max"] = d.max.into();
    v["holders"] = d.holders.iter().map(holder_json).collect::<Vec<_>>().into();
    v["waiters"] = d.waiters.into();
}

/// A lock's JSON fields.
pub fn lock_json(d: &LockDetails, v: &mut Value) {
    v["reentrant"] = d.reentrant.into();
    v["owner"] = d.owner.as_ref().map_or(Value::Null, holder_json);
    v["waiters"] = d.waiters.into();
}

/// An event's JSON fields.
pub fn event_json(d: &EventDetails, v: &mut Value) {
    v["set"] = d.set.into();
    v["waiters"] = d.waiters.into();
}

/// A barrier's JSON fields.
pub fn barrier_json(d: &BarrierDetails, v: &mut Value) {
    v["parties"] = d.parties.into();
    v["waiting"] = d.waiting.into();
    v["broken"] = d.broken.into();
    v["passed"] = d.passed.into();
}

/// A semaphore's `stat` rows.
pub fn sem_rows(o: &ObjectInfo, d: &SemDetails) -> Vec<(&'static str, String)> {
    vec![
        ("kernel name", o.kernel_name.clone()),
        ("value", d.value.to_string()),
        ("max", d.max.map_or("none".into(), |m| m.to_string())),
        ("holders", holders_text(&d.holders)),
        ("waiters", d.waiters.to_string()),
    ]
}

/// A lock's `stat` rows.
pub fn lock_rows(d: &LockDetails) -> Vec<(&'static str, String)> {
    vec![
        ("reentrant", if d.reentrant { "yes" } else { "no" }.into()),
        ("held by", holders_text(d.owner.as_slice())),
        ("waiters", d.waiters.to_string()),
    ]
}

/// An event's `stat` rows.
pub fn event_rows(d: &EventDetails) -> Vec<(&'static str, String)> {
    vec![
        ("state", if d.set { "set" } else { "clear" }.into()),
        ("waiters", d.waiters.to_string()),
    ]
}

/// A barrier's `stat` rows.
pub fn barrier_rows(d: &BarrierDetails) -> Vec<(&'static str, String)> {
    vec![
        ("parties", d.parties.to_string()),
        ("waiting", d.waiting.to_string()),
        ("broken", if d.broken { "yes" } else { "no" }.into()),
        ("passed", d.passed.to_string()),
    ]
}

/// `list` cells (QUEUED, CAPACITY, ENDS): value/holders/waiters and alike.
pub fn sem_cells(d: &SemDetails) -> [String; 3] {
    [
        format!("{} free", d.value),
        d.max.map_or("-".into(), |m| format!("max {m}")),
        format!("{}h {}w", d.holders.len(), d.waiters),
    ]
}

/// A lock's `list` cells.
pub fn lock_cells(d: &LockDetails) -> [String; 3] {
    [
        d.owner
            .map_or("free".into(), |h| format!("held by {}", h.pid)),
        if d.reentrant { "reentrant" } else { "-" }.into(),
        format!("{}w", d.waiters),
    ]
}

/// An event's `list` cells.
pub fn event_cells(d: &EventDetails) -> [String; 3] {
    [
        if d.set { "set" } else { "clear" }.into(),
        "-".into(),
        format!("{}w", d.waiters),
    ]
}

/// A barrier's `list` cells.
pub fn barrier_cells(d: &BarrierDetails) -> [String; 3] {
    [
        format!("{}/{}", d.waiting, d.parties),
        if d.broken { "broken" } else { "-" }.into(),
        format!("{} opened", d.passed),
    ]
}
