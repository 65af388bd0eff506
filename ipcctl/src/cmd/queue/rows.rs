//! A queue's output: `stat` rows, `list` cells, JSON fields and what
//! `create` says of it.

use ipc_client::{ObjectInfo, QueueDetails, dead_letter_address};
use serde_json::{Value, json};

/// Bytes in words: `16 MiB`, `1500 B`.
fn bytes_text(n: u64) -> String {
    match n {
        0 => "0 B".to_owned(),
        n if n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// Deliveries held, in all.
fn in_flight(d: &QueueDetails) -> u64 {
    d.consumers.iter().map(|c| c.in_flight).sum()
}

/// The dead-letter queue of `o`, if it has one.
fn dead_letters(o: &ObjectInfo, d: &QueueDetails) -> Option<String> {
    (d.max_deliveries > 0).then(|| dead_letter_address(&o.address))
}

/// A queue's JSON fields.
pub fn json_details(o: &ObjectInfo, d: &QueueDetails, v: &mut Value) {
    v["order"] = d.order.to_string().into();
    v["capacity"] = d.capacity.into();
    v["max_bytes"] = d.max_bytes.into();
    v["max_deliveries"] = d.max_deliveries.into();
    v["dead_letters"] = json!(dead_letters(o, d));
    v["depth"] = d.depth.into();
    v["bytes"] = d.bytes.into();
    v["in_flight"] = in_flight(d).into();
    v["consumers"] = d
        .consumers
        .iter()
        .map(|c| json!({ "pid": c.pid, "uid": c.uid, "in_flight": c.in_flight }))
        .collect();
    v["put"] = d.put.into();
    v["acked"] = d.acked.into();
    v["redelivered"] = d.redelivered.into();
    v["dead"] = d.dead.into();
    v["put_rate"] = d.put_rate.into();
    v["ack_rate"] = d.ack_rate.into();
    v["getters"] = d.getters.into();
    v["putters"] = d.putters.into();
    v["joiners"] = d.joiners.into();
    v["journal"] = d.journal.as_ref().map_or(Value::Null, |j| {
        json!({
            "fsync": j.fsync.to_string(),
            "bytes": j.bytes,
            "compactions": j.compactions,
            "recovery": j.recovery,
        })
    });
}

/// A queue's `stat` rows.
pub fn field_rows(o: &ObjectInfo, d: &QueueDetails) -> Vec<(&'static str, String)> {
    let limit = |n: u64, unit: &str| {
        if n == 0 {
            "no limit".to_owned()
        } else {
            format!("{n} {unit}")
        }
    };
    let consumers: Vec<String> = d
        .consumers
        .iter()
        .map(|c| format!("pid {} (uid {}) ×{}", c.pid, c.uid, c.in_flight))
        .collect();
    vec![
        ("order", d.order.to_string()),
        ("depth", format!("{} waiting", d.depth)),
        (
            "in flight",
            match consumers.as_slice() {
                [] => "0".to_owned(),
                held => format!("{} ({})", in_flight(d), held.join(", ")),
            },
        ),
        (
            "bytes",
            format!(
                "{} of {} (each message counts 64 B besides its body)",
                bytes_text(d.bytes),
                bytes_text(d.max_bytes)
            ),
        ),
        ("capacity", limit(d.capacity, "messages")),
        (
            "max deliveries",
            match dead_letters(o, d) {
                Some(dead) => format!("{}, then to {dead}", d.max_deliveries),
                None => "no limit (redelivered forever)".to_owned(),
            },
        ),
        (
            "since start",
            format!(
                "{} put, {} acked, {} redelivered, {} dead",
                d.put, d.acked, d.redelivered, d.dead
            ),
        ),
        (
            "rates",
            format!("{} puts/s, {} acks/s", d.put_rate, d.ack_rate),
        ),
        (
            "waiting",
            format!(
                "{} getters, {} putters, {} joiners",
                d.getters, d.putters, d.joiners
            ),
        ),
        ("journal", journal_text(d)),
    ]
}

fn journal_text(d: &QueueDetails) -> String {
    match &d.journal {
        None => "none (held in memory: lost when ipcd stops)".to_owned(),
        Some(j) => {
            let mut text = format!(
                "fsync {}, {} bytes, {} compactions",
                j.fsync, j.bytes, j.compactions
            );
            if let Some(r) = &j.recovery {
                text.push_str(&format!("; last start cut: {r}"));
            }
            text
        }
    }
}

/// A queue's `list` cells: QUEUED, CAPACITY, ENDS (deliveries in flight).
pub fn table_cells(d: &QueueDetails) -> [String; 3] {
    [
        format!("{} msg", d.depth),
        if d.capacity == 0 {
            bytes_text(d.max_bytes)
        } else {
            format!("{} msg", d.capacity)
        },
        format!("{} in flight", in_flight(d)),
    ]
}

/// What `create` says of a new queue.
pub fn created(o: &ObjectInfo, d: &QueueDetails) -> String {
    let mut parts = vec![d.order.to_string()];
    if d.capacity > 0 {
        parts.push(format!("capacity {}", d.capacity));
    }
    parts.push(format!("at most {}", bytes_text(d.max_bytes)));
    if let Some(dead) = dead_letters(o, d) {
        parts.push(format!("{} deliveries, then {dead}", d.max_deliveries));
    }
    if let Some(j) = &d.journal {
        parts.push(format!("durable, fsync {}", j.fsync));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_in_the_largest_whole_unit() {
        assert_eq!(bytes_text(16 << 20), "16 MiB");
        assert_eq!(bytes_text(3 << 30), "3 GiB");
        assert_eq!(bytes_text(2048), "2 KiB");
        assert_eq!(bytes_text(264), "264 B");
        assert_eq!(bytes_text(0), "0 B");
    }
}
