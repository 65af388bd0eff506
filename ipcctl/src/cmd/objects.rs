//! An object's output, whatever its kind: JSON, `stat`'s fields and `list`'s
//! table, with the kind's own part from its module (`mq`, `pipe`, `fifo`,
//! `shm`, `ring`, the synchronization kinds, `signal`).

use ipc_client::{KindDetails, ObjectInfo};
use serde_json::{Value, json};

use super::{fifo, mq, pipe, queue, ring, shm, signal, sync};
use crate::output::{fields, kernel_name, lifetime, mode, table, timestamp};

/// An object as JSON: the common fields plus the kind's details, flattened.
pub fn object_json(o: &ObjectInfo) -> Value {
    let mut v = json!({
        "address": o.address,
        "kind": o.kind.as_str(),
        "kernel_name": kernel_name(o),
        "owner_uid": o.owner_uid,
        "owner_gid": o.owner_gid,
        "mode": mode(o.mode),
        "lifetime": lifetime(o.lifetime),
        "creator_pid": o.creator_pid,
        "created_at_ms": o.created_at_ms,
        "created_at": timestamp(o.created_at_ms),
        "opens": o.opens,
    });
    json_details(o, &mut v);
    v
}

/// An object's fields, one `label: value` per line.
pub fn object_fields(o: &ObjectInfo) -> String {
    let mut rows = vec![("address", o.address.clone()), ("kind", o.kind.to_string())];
    rows.extend(field_rows(o));
    rows.extend([
        ("owner", format!("uid {}, gid {}", o.owner_uid, o.owner_gid)),
        ("mode", mode(o.mode)),
        ("lifetime", lifetime(o.lifetime).to_owned()),
        ("creator pid", o.creator_pid.to_string()),
        ("created", timestamp(o.created_at_ms)),
        (
            "opens",
            format!("{} (descriptors handed out since ipcd started)", o.opens),
        ),
    ]);
    fields(&rows)
}

/// Objects as a table, one row each.
pub fn object_table(objects: &[ObjectInfo]) -> String {
    let headers = [
        "ADDRESS",
        "QUEUED",
        "CAPACITY",
        "ENDS",
        "MODE",
        "OWNER",
        "LIFETIME",
        "KERNEL NAME",
    ];
    let rows = objects
        .iter()
        .map(|o| {
            let [queued, capacity, ends] = table_cells(o);
            vec![
                o.address.clone(),
                queued,
                capacity,
                ends,
                mode(o.mode),
                format!("{}:{}", o.owner_uid, o.owner_gid),
                lifetime(o.lifetime).to_owned(),
                kernel_name(o).unwrap_or("-").to_owned(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &headers,
        &rows,
        &[false, true, true, false, false, false, false, false],
    )
}

/// The kind's own JSON fields of an object, added to `v`.
fn json_details(o: &ObjectInfo, v: &mut Value) {
    match &o.details {
        KindDetails::Mq(d) => mq::json_details(d, v),
        KindDetails::Pipe(d) => pipe::json_details(d, v),
        KindDetails::Fifo(d) => fifo::json_details(d, v),
        KindDetails::Shm(d) => shm::json_details(d, v),
        KindDetails::Ring(d) => ring::json_details(d, v),
        KindDetails::Sem(d) => sync::sem_json(d, v),
        KindDetails::Lock(d) => sync::lock_json(d, v),
        KindDetails::Event(d) => sync::event_json(d, v),
        KindDetails::Barrier(d) => sync::barrier_json(d, v),
        KindDetails::Signal(d) => signal::json_details(d, v),
        KindDetails::Queue(d) => queue::json_details(o, d, v),
    }
}

/// The kind's own `stat` rows of an object.
fn field_rows(o: &ObjectInfo) -> Vec<(&'static str, String)> {
    match &o.details {
        KindDetails::Mq(d) => mq::field_rows(o, d),
        KindDetails::Pipe(d) => pipe::field_rows(o, d),
        KindDetails::Fifo(d) => fifo::field_rows(o, d),
        KindDetails::Shm(d) => shm::field_rows(o, d),
        KindDetails::Ring(d) => ring::field_rows(o, d),
        KindDetails::Sem(d) => sync::sem_rows(o, d),
        KindDetails::Lock(d) => sync::lock_rows(d),
        KindDetails::Event(d) => sync::event_rows(d),
        KindDetails::Barrier(d) => sync::barrier_rows(d),
        KindDetails::Signal(d) => signal::field_rows(d),
        KindDetails::Queue(d) => queue::field_rows(o, d),
    }
}

/// The kind's `list` cells of an object: QUEUED, CAPACITY, ENDS.
fn table_cells(o: &ObjectInfo) -> [String; 3] {
    match &o.details {
        KindDetails::Mq(d) => mq::table_cells(d),
        KindDetails::Pipe(d) => pipe::table_cells(d),
        KindDetails::Fifo(d) => fifo::table_cells(d),
        KindDetails::Shm(d) => shm::table_cells(o, d),
        KindDetails::Ring(d) => ring::table_cells(d),
        KindDetails::Sem(d) => sync::sem_cells(d),
        KindDetails::Lock(d) => sync::lock_cells(d),
        KindDetails::Event(d) => sync::event_cells(d),
        KindDetails::Barrier(d) => sync::barrier_cells(d),
        KindDetails::Signal(d) => signal::table_cells(d),
        KindDetails::Queue(d) => queue::table_cells(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_client::{FifoDetails, Kind, Lifetime, MqDetails, PipeDetails};

    fn info() -> ObjectInfo {
        ObjectInfo {
            address: "mq:jobs".into(),
            kind: Kind::Mq,
            kernel_name: "/ipcd.jobs".into(),
            owner_uid: 1000,
            owner_gid: 100,
            mode: 0o640,
            creator_pid: 42,
            created_at_ms: 1_700_000_000_123,
            lifetime: Lifetime::Persistent,
            opens: 3,
            details: KindDetails::Mq(MqDetails {
                capacity: 10,
                msg_size: 8192,
                depth: 2,
            }),
        }
    }

    #[test]
    fn objects_show_mode_in_octal_and_time_in_utc() {
        let text = object_fields(&info());
        assert!(text.contains("mode:         0640"), "{text}");
        assert!(
            text.contains("created:      2023-11-14T22:13:20Z"),
            "{text}"
        );
        assert!(text.contains("owner:        uid 1000, gid 100"), "{text}");
        let j = object_json(&info());
        assert_eq!(j["mode"], "0640");
        assert_eq!(j["depth"], 2);
        assert_eq!(j["lifetime"], "persistent");
    }

    #[test]
    fn object_tables_have_one_row_per_object() {
        let t = object_table(&[info(), info()]);
        assert_eq!(t.lines().count(), 3);
        assert!(
            t.starts_with(
                "ADDRESS  QUEUED     CAPACITY  ENDS  MODE  OWNER     LIFETIME    KERNEL NAME"
            ),
            "{t}"
        );
        assert!(
            t.contains("mq:jobs   2 msg  10 × 8192 B  -     0640"),
            "{t}"
        );
    }

    #[test]
    fn pipes_and_fifos_show_their_ends_and_buffers() {
        let mut pipe = info();
        pipe.address = "pipe:p".into();
        pipe.kind = Kind::Pipe;
        pipe.kernel_name = "(anonymous pipe)".into();
        pipe.details = KindDetails::Pipe(PipeDetails {
            capacity: 65536,
            buffered_bytes: 21,
            readers_opened: 2,
            writers_opened: 1,
            closed: true,
        });
        let mut fifo = info();
        fifo.address = "fifo:f".into();
        fifo.kind = Kind::Fifo;
        fifo.kernel_name = "/run/ipcd/fifo/ipcd.f".into();
        fifo.details = KindDetails::Fifo(FifoDetails {
            path: "/run/ipcd/fifo/ipcd.f".into(),
            buffered: true,
            buffered_bytes: 5,
            readers_opened: 0,
            writers_opened: 3,
        });
        let t = object_table(&[pipe.clone(), fifo.clone()]);
        assert!(
            t.contains("pipe:p     21 B   65536 B  2r 1w closed    0640"),
            "{t}"
        );
        assert!(
            t.contains("fifo:f      5 B         -  0r 3w buffered  0640"),
            "{t}"
        );

        let text = object_fields(&pipe);
        assert!(text.contains("buffered bytes: 21\n"), "{text}");
        assert!(text.contains("closed:         yes"), "{text}");
        assert!(text.contains("kernel name:    none (anonymous)"), "{text}");
        let j = object_json(&pipe);
        assert_eq!(
            (j["buffered_bytes"].as_u64(), j["closed"].as_bool()),
            (Some(21), Some(true))
        );
        // The daemon's placeholder (or an empty name) is no name at all.
        assert!(j["kernel_name"].is_null(), "{j}");
        assert!(t.lines().nth(1).unwrap().ends_with("persistent  -"), "{t}");
        pipe.kernel_name = String::new();
        assert!(object_json(&pipe)["kernel_name"].is_null());

        let text = object_fields(&fifo);
        assert!(
            text.contains("path:           /run/ipcd/fifo/ipcd.f"),
            "{text}"
        );
        assert!(text.contains("buffered bytes: 5\n"), "{text}");
        assert!(text.contains("buffered:       yes"), "{text}");
        let j = object_json(&fifo);
        assert_eq!(j["path"], "/run/ipcd/fifo/ipcd.f");
        assert_eq!(j["buffered"], true);
        assert_eq!(j["buffered_bytes"], 5);
    }
}
