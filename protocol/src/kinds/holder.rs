//! Who holds a synchronization object: shared by the `sem`, `lock` kinds'
//! details (and shown by `stat`).

#[cfg(test)]
use proptest_derive::Arbitrary;

/// One connection holding permits of a semaphore, or a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct Holder {
    /// The holding process (`SO_PEERCRED` of its connection).
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
    /// When it took its first permit still held, milliseconds since the epoch.
    pub since_ms: u64,
    /// Permits it holds (a semaphore), or the re-entry depth (a lock).
    pub count: u32,
}
