//! `shm:` — a POSIX shared-memory segment: creation parameters, details,
//! operations and replies. The bytes never travel through the daemon: `Open`
//! passes the segment's descriptor and the client maps it.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// The largest segment the daemon creates or grows to (1 TiB of address space;
/// the per-uid byte budget is usually far smaller).
pub const SHM_MAX_SIZE: u64 = 1 << 40;

/// Shared-memory segment parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct ShmParams {
    /// Size in bytes (`ftruncate`); required when creating (1..=[`SHM_MAX_SIZE`]),
    /// ignored when adopting (the segment keeps its size).
    pub size: Option<u64>,
}

/// A segment's state as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct ShmDetails {
    /// Size in bytes (`fstat`).
    pub size: u64,
    /// Processes that have it mapped now, counted from `/proc/*/maps` where the
    /// daemon may read them; `None` when it could not look.
    pub mapped_by: Option<u32>,
}

/// Operations on a segment beyond create/open/stat/delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum ShmOp {
    /// Grow the segment to `size` bytes (new bytes read as zero); needs the
    /// write bit. Shrinking is refused (`invalid-argument`): another process's
    /// mapping past the new end would fault. Answered by [`ShmReply::Resized`].
    /// Since version 4.
    Resize {
        /// The new size in bytes, at least the current one.
        size: u64,
    },
}

/// Answers to [`ShmOp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum ShmReply {
    /// The segment now has `size` bytes. Since version 4.
    Resized {
        /// The size after the operation.
        size: u64,
    },
}
