//! Object addresses: `KIND:NAME`, e.g. `mq:jobs`.

use std::fmt;
use std::str::FromStr;

use crate::error::{ErrorCode, WireError};

/// The longest name allowed, in characters (all names are ASCII).
pub const MAX_NAME_LEN: usize = 200;

/// The rule names must follow, quoted in every `InvalidName` error.
pub const NAME_RULE: &str =
    "names are 1-200 characters of A-Z a-z 0-9 . _ - and must not start with '.'";

/// The kinds of object ipcd hosts.
///
/// Encoded on the wire by position: variants are append-only and each names the
/// protocol version that introduced it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, bincode::Encode, bincode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Kind {
    /// A POSIX message queue (`mq_open(3)`). Since version 1.
    Mq,
    /// An anonymous pipe held by the daemon, ends passed as descriptors. Since version 2.
    Pipe,
    /// A named pipe (`mkfifo(3)`) in the daemon's runtime directory. Since version 2.
    Fifo,
    /// A POSIX shared-memory segment (`shm_open(3)`), mapped by clients. Since version 4.
    Shm,
    /// A message ring in a shared-memory segment, mapped by clients. Since version 4.
    Ring,
    /// A POSIX named semaphore (`sem_open(3)`). Since version 5.
    Sem,
    /// A mutex hosted by the daemon. Since version 5.
    Lock,
    /// An event flag hosted by the daemon. Since version 5.
    Event,
    /// A barrier for N parties hosted by the daemon. Since version 5.
    Barrier,
    /// A channel of events fanned out to subscribers (and real signals). Since version 6.
    Signal,
    /// A work queue hosted by the daemon, with acknowledgements. Since version 7.
    Queue,
}

impl Kind {
    /// Every kind, in wire order.
    pub const ALL: &'static [Kind] = &[
        Kind::Mq,
        Kind::Pipe,
        Kind::Fifo,
        Kind::Shm,
        Kind::Ring,
        Kind::Sem,
        Kind::Lock,
        Kind::Event,
        Kind::Barrier,
        Kind::Signal,
        Kind::Queue,
    ];

    /// The protocol version that introduced this kind; older peers cannot decode it.
    pub fn since_version(self) -> u16 {
        match self {
            Kind::Mq => 1,
            Kind::Pipe | Kind::Fifo => 2,
            Kind::Shm | Kind::Ring => 4,
            Kind::Sem | Kind::Lock | Kind::Event | Kind::Barrier => 5,
            Kind::Signal => 6,
            Kind::Queue => 7,
        }
    }

    /// The prefix used in addresses (`mq` in `mq:jobs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mq => "mq",
            Kind::Pipe => "pipe",
            Kind::Fifo => "fifo",
            Kind::Shm => "shm",
            Kind::Ring => "ring",
            Kind::Sem => "sem",
            Kind::Lock => "lock",
            Kind::Event => "event",
            Kind::Barrier => "barrier",
            Kind::Signal => "signal",
            Kind::Queue => "queue",
        }
    }

    fn known_list() -> String {
        Kind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = WireError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                WireError::new(
                    ErrorCode::UnknownKind,
                    format!("unknown kind '{s}' (known kinds: {})", Kind::known_list()),
                )
            })
    }
}

/// A validated object name (see [`NAME_RULE`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Validates `s` against [`NAME_RULE`].
    pub fn new(s: &str) -> Result<Self, WireError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_NAME_LEN
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if ok {
            Ok(Name(s.to_owned()))
        } else {
            let shown: String = s.chars().take(40).collect();
            let more = if s.chars().count() > 40 { "…" } else { "" };
            Err(WireError::new(
                ErrorCode::InvalidName,
                format!(
                    "invalid name '{shown}{more}' ({} chars): {NAME_RULE}",
                    s.chars().count()
                ),
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed `KIND:NAME` address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// What kind of object.
    pub kind: Kind,
    /// Its name, unique within the kind.
    pub name: Name,
}

impl Address {
    /// Builds an address from parts.
    pub fn new(kind: Kind, name: Name) -> Self {
        Address { kind, name }
    }

    /// Parses `KIND:NAME`, checking the kind and the name.
    pub fn parse(s: &str) -> Result<Self, WireError> {
        let Some((kind, name)) = s.split_once(':') else {
            return Err(WireError::new(
                ErrorCode::InvalidAddress,
                format!("invalid address '{s}': expected KIND:NAME, e.g. mq:jobs"),
            ));
        };
        Ok(Address {
            kind: kind.parse()?,
            name: Name::new(name)?,
        })
    }
}

impl FromStr for Address {
    type Err = WireError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_parse() {
        let a = Address::parse("mq:jobs-1.a_b").unwrap();
        assert_eq!(a.kind, Kind::Mq);
        assert_eq!(a.to_string(), "mq:jobs-1.a_b");
        assert!(Name::new(&"x".repeat(200)).is_ok());
    }

    #[test]
    fn bad_names_say_the_rule() {
        for bad in ["", "../x", "a/b", ".hidden", "sp ace", "é"] {
            let e = Name::new(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidName, "{bad}");
            assert!(e.message.contains("1-200 characters"), "{}", e.message);
        }
        let e = Name::new(&"x".repeat(201)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidName);
        assert!(e.message.contains("201 chars"));
    }

    #[test]
    fn bad_kinds_and_shapes() {
        assert_eq!(
            Address::parse("nope:x").unwrap_err().code,
            ErrorCode::UnknownKind
        );
        assert_eq!(
            Address::parse("jobs").unwrap_err().code,
            ErrorCode::InvalidAddress
        );
        assert_eq!(
            Address::parse("mq:").unwrap_err().code,
            ErrorCode::InvalidName
        );
    }
}
