//! Daemon configuration: paths, limits and socket permissions, from the command
//! line, the environment and an optional TOML file (re-read on SIGHUP).

use std::path::{Path, PathBuf};

use protocol::Limits;
use serde::Deserialize;

use crate::budget::Budgets;
use crate::error::ConfigError;

/// Default kernel-name prefix for objects (`mq:jobs` is the queue `/ipcd.jobs`).
pub const DEFAULT_PREFIX: &str = "ipcd.";

/// The limits used when the config file says nothing.
pub const DEFAULT_LIMITS: Limits = Limits {
    max_frame: 1024 * 1024,
    max_message_size: 1024 * 1024,
    max_objects_per_uid: 1024,
    max_connections: 1024,
};

/// Everything the daemon library needs to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the listening socket lives (for status output and removal at exit).
    pub socket_path: PathBuf,
    /// Whether to remove the socket file at exit (not when it was inherited).
    pub remove_socket: bool,
    /// Where the registry is saved.
    pub state_dir: PathBuf,
    /// Where file-backed objects live (FIFOs in `<runtime_dir>/fifo`).
    pub runtime_dir: PathBuf,
    /// Prepended to object names to form kernel names.
    pub prefix: String,
    /// Settings that may change on SIGHUP.
    pub tunables: Tunables,
}

/// Settings from the config file; they may change while the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunables {
    /// Limits enforced per request and per connection.
    pub limits: Limits,
    /// Socket file mode (default `0o600`).
    pub socket_mode: u32,
    /// Group that owns the socket file, if set.
    pub socket_group: Option<String>,
    /// `tracing` filter directive, if set in the file.
    pub log_level: Option<String>,
    /// Per-uid budgets.
    pub budgets: Budgets,
    /// Capacity of a queue created without one (`None`: the kernel's
    /// `/proc/sys/fs/mqueue/msg_default`).
    pub mq_default_capacity: Option<u32>,
    /// Message size of a queue created without one (`None`: the kernel's
    /// `msgsize_default`, at most `max_message_size`).
    pub mq_default_msg_size: Option<u32>,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            limits: DEFAULT_LIMITS,
            socket_mode: 0o600,
            socket_group: None,
            log_level: None,
            budgets: Budgets::default(),
            mq_default_capacity: None,
            mq_default_msg_size: None,
        }
    }
}

/// The config file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    socket_mode: Option<String>,
    socket_group: Option<String>,
    log_level: Option<String>,
    max_frame: Option<u32>,
    max_message_size: Option<u64>,
    max_objects_per_uid: Option<u32>,
    max_connections: Option<u32>,
    max_connections_per_uid: Option<u32>,
    reserved_connections: Option<u32>,
    max_handshakes_per_uid: Option<u32>,
    max_handshakes: Option<u32>,
    max_waits_per_uid: Option<u32>,
    max_fds_per_uid: Option<u64>,
    mq_budget_bytes: Option<u64>,
    mq_bytes_per_uid: Option<u64>,
    shm_budget_bytes: Option<u64>,
    shm_bytes_per_uid: Option<u64>,
    max_subscriptions_per_uid: Option<u32>,
    queue_budget_bytes: Option<u64>,
    queue_bytes_per_uid: Option<u64>,
    mq_default_capacity: Option<u32>,
    mq_default_msg_size: Option<u32>,
}

/// Positive numbers only: a limit of 0 would lock everyone out.
fn at_least_one<T: PartialOrd + From<u8> + std::fmt::Display>(
    key: &str,
    v: Option<T>,
) -> Result<Option<T>, String> {
    match v {
        Some(v) if v < T::from(1) => Err(format!("{key} must be at least 1, got {v}")),
        v => Ok(v),
    }
}

impl Tunables {
    /// Reads tunables from a TOML file; missing keys take defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses tunables from TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: FileConfig =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        let mut t = Tunables::default();
        if let Some(mode) = file.socket_mode {
            t.socket_mode = parse_mode(&mode)?;
        }
        t.socket_group = file.socket_group;
        t.log_level = file.log_level;
        let l = &mut t.limits;
        if let Some(v) = file.max_frame {
            if !(protocol::MIN_MAX_FRAME..=protocol::HARD_MAX_FRAME).contains(&v) {
                return Err(format!(
                    "max_frame must be between {} and {} bytes, got {v}",
                    protocol::MIN_MAX_FRAME,
                    protocol::HARD_MAX_FRAME
                ));
            }
            l.max_frame = v;
        }
        if let Some(v) = file.max_message_size {
            l.max_message_size = v;
        }
        if let Some(v) = file.max_objects_per_uid {
            l.max_objects_per_uid = v;
        }
        if let Some(v) = at_least_one("max_connections", file.max_connections)? {
            l.max_connections = v;
        }
        let b = &mut t.budgets;
        let set = |dst: &mut u32, key: &str, v: Option<u32>| -> Result<(), String> {
            if let Some(v) = at_least_one(key, v)? {
                *dst = v;
            }
            Ok(())
        };
        set(
            &mut b.max_connections_per_uid,
            "max_connections_per_uid",
            file.max_connections_per_uid,
        )?;
        set(
            &mut b.max_handshakes_per_uid,
            "max_handshakes_per_uid",
            file.max_handshakes_per_uid,
        )?;
        set(&mut b.max_handshakes, "max_handshakes", file.max_handshakes)?;
        set(
            &mut b.max_waits_per_uid,
            "max_waits_per_uid",
            file.max_waits_per_uid,
        )?;
        set(
            &mut b.max_subscriptions_per_uid,
            "max_subscriptions_per_uid",
            file.max_subscriptions_per_uid,
        )?;
        if let Some(v) = file.reserved_connections {
            b.reserved_connections = v;
        }
        b.max_fds_per_uid = at_least_one("max_fds_per_uid", file.max_fds_per_uid)?;
        b.mq_bytes_per_uid = at_least_one("mq_bytes_per_uid", file.mq_bytes_per_uid)?;
        if let Some(v) = at_least_one("mq_budget_bytes", file.mq_budget_bytes)? {
            b.mq_budget_bytes = v;
        }
        b.shm_bytes_per_uid = at_least_one("shm_bytes_per_uid", file.shm_bytes_per_uid)?;
        if let Some(v) = at_least_one("shm_budget_bytes", file.shm_budget_bytes)? {
            b.shm_budget_bytes = v;
        }
        b.queue_bytes_per_uid = at_least_one("queue_bytes_per_uid", file.queue_bytes_per_uid)?;
        if let Some(v) = at_least_one("queue_budget_bytes", file.queue_budget_bytes)? {
            b.queue_budget_bytes = v;
        }
        t.mq_default_capacity = at_least_one("mq_default_capacity", file.mq_default_capacity)?;
        t.mq_default_msg_size = at_least_one("mq_default_msg_size", file.mq_default_msg_size)?;
        Ok(t)
    }

    /// Lines describing what differs from `old`, for the reload log.
    pub fn changes_from(&self, old: &Tunables) -> Vec<String> {
        let mut out = Vec::new();
        let mut diff = |what: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{what}: {a} -> {b}"));
            }
        };
        diff(
            "max_frame",
            old.limits.max_frame.to_string(),
            self.limits.max_frame.to_string(),
        );
        diff(
            "max_message_size",
            old.limits.max_message_size.to_string(),
            self.limits.max_message_size.to_string(),
        );
        diff(
            "max_objects_per_uid",
            old.limits.max_objects_per_uid.to_string(),
            self.limits.max_objects_per_uid.to_string(),
        );
        diff(
            "max_connections",
            old.limits.max_connections.to_string(),
            self.limits.max_connections.to_string(),
        );
        diff(
            "mq defaults (capacity, msg_size)",
            format!("{:?}", (old.mq_default_capacity, old.mq_default_msg_size)),
            format!("{:?}", (self.mq_default_capacity, self.mq_default_msg_size)),
        );
        diff(
            "budgets",
            format!("{:?}", old.budgets),
            format!("{:?}", self.budgets),
        );
        diff(
            "socket_mode",
            format!("{:04o}", old.socket_mode),
            format!("{:04o}", self.socket_mode),
        );
        diff(
            "socket_group",
            format!("{:?}", old.socket_group),
            format!("{:?}", self.socket_group),
        );
        diff(
            "log_level",
            format!("{:?}", old.log_level),
            format!("{:?}", self.log_level),
        );
        out
    }
}

/// Parses an octal permission string such as `0660` or `660`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "invalid mode '{s}': expected octal permission bits such as 0660"
        )),
    }
}

/// Checks a kernel-name prefix: up to 50 characters of `A-Z a-z 0-9 . _ -`.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 50
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid prefix '{prefix}': 1-50 characters of A-Z a-z 0-9 . _ - (kernel names are \
             system-wide, so an empty prefix could clash with other software)"
        ))
    }
}

/// Resolves the socket path: explicit > `$IPCD_SOCKET` > `$XDG_RUNTIME_DIR/ipcd/ipcd.sock`
/// > `/run/ipcd/ipcd.sock`.
pub fn resolve_socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_owned();
    }
    if let Some(p) = std::env::var_os("IPCD_SOCKET").filter(|v| !v.is_empty()) {
        return p.into();
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Path::new(&dir).join("ipcd/ipcd.sock");
    }
    PathBuf::from("/run/ipcd/ipcd.sock")
}

/// Resolves the state directory: explicit > `$IPCD_STATE_DIR` > `$XDG_STATE_HOME/ipcd`
/// > `~/.local/state/ipcd` (when not root) > `/var/lib/ipcd`.
pub fn resolve_state_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_owned();
    }
    if let Some(p) = std::env::var_os("IPCD_STATE_DIR").filter(|v| !v.is_empty()) {
        return p.into();
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Path::new(&dir).join("ipcd");
    }
    // A user's daemon (not root) keeps state where XDG says state goes by default.
    if !nix::unistd::geteuid().is_root()
        && let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty())
    {
        return Path::new(&home).join(".local/state/ipcd");
    }
    PathBuf::from("/var/lib/ipcd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_override_defaults() {
        let t = Tunables::parse("socket_mode = \"0660\"\nmax_connections = 3\n").unwrap();
        assert_eq!(t.socket_mode, 0o660);
        assert_eq!(t.limits.max_connections, 3);
        assert_eq!(t.limits.max_frame, DEFAULT_LIMITS.max_frame);
        assert_eq!(t.changes_from(&Tunables::default()).len(), 2);
    }

    #[test]
    fn bad_files_are_explained() {
        assert!(Tunables::parse("nope = 1").unwrap_err().contains("nope"));
        assert!(
            Tunables::parse("max_frame = 10")
                .unwrap_err()
                .contains("max_frame")
        );
        assert!(parse_mode("999").is_err());
        let zero = Tunables::parse("max_connections = 0").unwrap_err();
        assert!(zero.contains("at least 1"), "{zero}");
        assert!(Tunables::parse("max_waits_per_uid = 0").is_err());
        assert!(check_prefix("a/b").is_err());
    }
}
