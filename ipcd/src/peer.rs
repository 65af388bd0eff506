//! Who is on the other end of a connection: credentials and the connection's id.
//! A leaf module: everything above it may use these types, it uses nothing.

/// A connection's id, unique for the daemon's life.
pub type SessionId = u64;

/// A client's credentials as the kernel reports them for its socket (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Process id at connect time.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl Peer {
    /// Whether this peer is root, who may do anything.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}
