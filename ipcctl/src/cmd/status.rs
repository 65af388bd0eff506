//! `ipcctl status`: the daemon's status, counters and limits, then what the
//! caller's uid holds in it against its shares (`Request::Usage`).

use ipc_client::protocol::UsageInfo;
use ipc_client::{Client, Reply, Request, StatusInfo};
use serde_json::{Value, json};

use crate::errors::{Code, fail};
use crate::output;

/// `ipcctl status`.
pub fn status(client: &mut Client, json: bool) -> anyhow::Result<()> {
    let status = client.status()?;
    let usage = match client.request(Request::Usage)?.reply {
        Reply::Usage(usage) => usage,
        other => {
            return Err(fail(
                Code::Protocol,
                format!("unexpected answer to a usage request: {other:?}"),
            ));
        }
    };
    let reserved = queue_memory(client, usage.uid);
    output::print(
        json,
        || {
            let mut v = status_json(&status);
            v["usage"] = usage_json(&usage);
            v["usage"]["queue_memory_reserved"] = reserved.into();
            v
        },
        || {
            let mut usage = usage_fields(&usage);
            if let Some(bytes) = reserved {
                usage.push_str(&format!(
                    "\n  work-queue memory:       {bytes} bytes reserved by your queue: objects \
                     (their --max-bytes; your share is ipcd's queue_bytes_per_uid)"
                ));
            }
            format!("{}\n\n{usage}", status_fields(&status))
        },
    )
}

/// What `uid`'s work queues reserve (their `max_bytes`), which the usage
/// answer cannot carry (its shape is fixed); `None` if they cannot be listed.
fn queue_memory(client: &mut Client, uid: u32) -> Option<u64> {
    let queues = client.list(Some(ipc_client::Kind::Queue)).ok()?;
    Some(
        queues
            .iter()
            .filter(|o| o.owner_uid == uid)
            .filter_map(|o| match &o.details {
                ipc_client::KindDetails::Queue(q) => Some(q.max_bytes),
                _ => None,
            })
            .sum(),
    )
}

/// The daemon's status as JSON.
fn status_json(s: &StatusInfo) -> Value {
    let c = &s.counters;
    let l = &s.limits;
    json!({
        "server": s.server,
        "pid": s.pid,
        "uptime_ms": s.uptime_ms,
        "socket": s.socket,
        "prefix": s.prefix,
        "objects": s.objects,
        "sessions": s.sessions,
        "counters": {
            "connections": c.connections,
            "requests": c.requests,
            "errors": c.errors,
            "created": c.created,
            "deleted": c.deleted,
            "capabilities": c.capabilities,
        },
        "limits": {
            "max_frame": l.max_frame,
            "max_message_size": l.max_message_size,
            "max_objects_per_uid": l.max_objects_per_uid,
            "max_connections": l.max_connections,
        },
    })
}

/// The daemon's status, one `label: value` per line.
fn status_fields(s: &StatusInfo) -> String {
    let c = &s.counters;
    let l = &s.limits;
    output::fields(&[
        ("server", format!("{} (pid {})", s.server, s.pid)),
        ("uptime", output::uptime(s.uptime_ms)),
        ("socket", s.socket.clone()),
        ("prefix", s.prefix.clone()),
        ("objects", s.objects.to_string()),
        ("sessions", s.sessions.to_string()),
        (
            "counters",
            format!(
                "{} connections, {} requests, {} errors, {} created, {} deleted, {} capabilities",
                c.connections, c.requests, c.errors, c.created, c.deleted, c.capabilities
            ),
        ),
        (
            "limits",
            format!(
                "frames up to {} bytes, messages up to {} bytes, {} objects per user, {} connections",
                l.max_frame, l.max_message_size, l.max_objects_per_uid, l.max_connections
            ),
        ),
    ])
}

/// A share as JSON: `null` when no per-uid share applies (`u64::MAX`).
fn share_json(max: u64) -> Value {
    if max == u64::MAX {
        Value::Null
    } else {
        max.into()
    }
}

/// The caller's usage as JSON: the wire fields, `max_*` `null` when unlimited.
fn usage_json(u: &UsageInfo) -> Value {
    json!({
        "uid": u.uid,
        "privileged": u.privileged,
        "connections": u.connections,
        "max_connections": share_json(u.max_connections),
        "objects": u.objects,
        "max_objects": share_json(u.max_objects),
        "fds": u.fds,
        "max_fds": share_json(u.max_fds),
        "waits": u.waits,
        "max_waits": share_json(u.max_waits),
        "mq_bytes": u.mq_bytes,
        "max_mq_bytes": share_json(u.max_mq_bytes),
        "mq_budget_bytes": u.mq_budget_bytes,
        "nofile": u.nofile,
    })
}

/// `used / share`, the share `unlimited` when no per-uid share applies.
fn used_of(used: u64, max: u64) -> String {
    if max == u64::MAX {
        format!("{used} / unlimited")
    } else {
        format!("{used} / {max}")
    }
}

/// The caller's usage: a heading, then one indented `label: used / share` per line.
fn usage_fields(u: &UsageInfo) -> String {
    let heading = if u.privileged {
        format!(
            "your usage (uid {}, privileged: only the daemon-wide limits apply):",
            u.uid
        )
    } else {
        format!("your usage (uid {}):", u.uid)
    };
    let rows = output::fields(&[
        ("connections", used_of(u.connections, u.max_connections)),
        ("objects", used_of(u.objects, u.max_objects)),
        ("daemon-held descriptors", used_of(u.fds, u.max_fds)),
        ("waits", used_of(u.waits, u.max_waits)),
        ("mq queue bytes", used_of(u.mq_bytes, u.max_mq_bytes)),
        (
            "mq byte budget",
            format!(
                "{} bytes (ipcd's RLIMIT_MSGQUEUE, all users together)",
                u.mq_budget_bytes
            ),
        ),
        (
            "open-file limit",
            format!("{} (ipcd's RLIMIT_NOFILE)", u.nofile),
        ),
    ]);
    let mut text = heading;
    for row in rows.lines() {
        text.push_str("\n  ");
        text.push_str(row);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(privileged: bool, max: u64) -> UsageInfo {
        UsageInfo {
            uid: if privileged { 0 } else { 1000 },
            privileged,
            connections: 1,
            max_connections: max,
            objects: 2,
            max_objects: 256,
            fds: 3,
            max_fds: max,
            waits: 0,
            max_waits: max,
            mq_bytes: 1088,
            max_mq_bytes: max,
            mq_budget_bytes: 819_200,
            nofile: 20_000,
        }
    }

    #[test]
    fn usage_shows_each_holding_against_its_share() {
        let text = usage_fields(&usage(false, 64));
        assert!(
            text.starts_with("your usage (uid 1000):\n  connections: "),
            "{text}"
        );
        assert!(
            text.contains("\n  mq queue bytes:          1088 / 64\n"),
            "{text}"
        );
        assert!(text.contains("daemon-held descriptors: 3 / 64"), "{text}");
        assert!(
            text.contains("mq byte budget:          819200 bytes"),
            "{text}"
        );
        let j = usage_json(&usage(false, 64));
        assert_eq!(
            (j["mq_bytes"].as_u64(), j["max_mq_bytes"].as_u64()),
            (Some(1088), Some(64))
        );
    }

    #[test]
    fn the_privileged_have_no_share() {
        let text = usage_fields(&usage(true, u64::MAX));
        assert!(text.starts_with("your usage (uid 0, privileged"), "{text}");
        assert!(
            text.contains("connections:             1 / unlimited"),
            "{text}"
        );
        // The object limit applies to everyone.
        assert!(text.contains("objects:                 2 / 256"), "{text}");
        let j = usage_json(&usage(true, u64::MAX));
        assert!(j["max_fds"].is_null(), "{j}");
        assert_eq!(j["max_objects"], 256);
    }
}
