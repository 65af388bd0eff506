//! `ring:` — a message ring in a shared-memory segment: creation parameters,
//! details, and the [`layout`] every participant agrees on. The daemon creates
//! the segment and writes its header; messages then go from producer to
//! consumer through the mapped slots without touching the daemon.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// Ring parameters; `None` takes the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct RingParams {
    /// Number of slots, a power of two in 2..=[`layout::MAX_SLOTS`]
    /// (default [`layout::DEFAULT_SLOTS`]): messages that can wait at once.
    pub slots: Option<u32>,
    /// Largest message in bytes, 1..=[`layout::MAX_SLOT_SIZE`]
    /// (default [`layout::DEFAULT_SLOT_SIZE`]).
    pub slot_size: Option<u32>,
}

/// A ring's state, read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct RingDetails {
    /// Number of slots.
    pub slots: u32,
    /// Largest message in bytes.
    pub slot_size: u32,
    /// Bytes of the shared segment (header and slots).
    pub segment_size: u64,
    /// Messages claimed by producers and not yet by consumers (a snapshot).
    pub depth: u64,
    /// Processes attached now (live entries of the participant table).
    pub attached: u32,
}

/// The ring's shared-memory layout (version [`layout::VERSION`]); PROTOCOL.md
/// describes the same bytes and the slot protocol for other languages. All
/// integers are little-endian and naturally aligned; every word that more
/// than one process writes is accessed atomically.
pub mod layout {
    /// Bytes 0..8 of the segment.
    pub const MAGIC: [u8; 8] = *b"IPCDRING";
    /// The layout version at offset 8; a reader refuses any other.
    pub const VERSION: u32 = 1;
    /// Bytes before the first slot.
    pub const HEADER_SIZE: usize = 4096;

    /// `u32` layout version.
    pub const OFF_VERSION: usize = 8;
    /// `u32` number of slots (a power of two).
    pub const OFF_SLOTS: usize = 12;
    /// `u32` payload bytes per slot.
    pub const OFF_SLOT_SIZE: usize = 16;
    /// `u32` bytes from one slot to the next.
    pub const OFF_SLOT_STRIDE: usize = 20;
    /// `u32` offset of slot 0 ([`HEADER_SIZE`]).
    pub const OFF_SLOTS_AT: usize = 24;
    /// `u32` offset of the participant table ([`PARTICIPANTS_AT`]).
    pub const OFF_PARTICIPANTS_AT: usize = 28;
    /// `u32` entries in the participant table ([`PARTICIPANTS_MAX`]).
    pub const OFF_PARTICIPANTS_MAX: usize = 32;
    /// `u64` next position a producer claims (own cache line).
    pub const OFF_ENQUEUE_POS: usize = 64;
    /// `u64` next position a consumer claims (own cache line).
    pub const OFF_DEQUEUE_POS: usize = 128;
    /// `u32` futex word consumers sleep on; bumped after a commit that
    /// swapped a non-zero [`OFF_CONSUMERS_WAITING`] to 0.
    pub const OFF_NOT_EMPTY: usize = 192;
    /// `u32` consumers that announced a sleep since the last wake-up; a
    /// waker swaps it to 0 (waiters never decrement it).
    pub const OFF_CONSUMERS_WAITING: usize = 196;
    /// `u32` futex word producers sleep on; bumped after a release that
    /// swapped a non-zero [`OFF_PRODUCERS_WAITING`] to 0.
    pub const OFF_NOT_FULL: usize = 256;
    /// `u32` producers that announced a sleep since the last wake-up; a
    /// waker swaps it to 0 (waiters never decrement it).
    pub const OFF_PRODUCERS_WAITING: usize = 260;

    /// Offset of the participant table.
    pub const PARTICIPANTS_AT: usize = 1024;
    /// Bytes per participant entry: `u64` word (low 32 bits pid, 0 = free;
    /// high 32 bits generation), then `u64` start time of that process in
    /// clock ticks since boot (`/proc/PID/stat` field 22; 0 = not yet written).
    pub const PARTICIPANT_SIZE: usize = 16;
    /// Entries in the participant table: processes (handles) attached at once.
    pub const PARTICIPANTS_MAX: u32 = 128;

    /// Bytes before a slot's payload: `u64` ctrl word, `u32` length, `u32` zero.
    pub const SLOT_HEADER: usize = 16;
    /// Slot strides are multiples of this (one cache line).
    pub const SLOT_ALIGN: usize = 64;
    /// The length of a slot a producer gave up (or died in): consumers skip it.
    pub const LEN_SKIPPED: u32 = u32::MAX;

    /// Default slot count.
    pub const DEFAULT_SLOTS: u32 = 256;
    /// Default payload bytes per slot.
    pub const DEFAULT_SLOT_SIZE: u32 = 1024;
    /// Most slots a ring may have.
    pub const MAX_SLOTS: u32 = 1 << 20;
    /// Largest payload per slot (64 MiB).
    pub const MAX_SLOT_SIZE: u32 = 64 << 20;

    /// Slot state: free for the producer of this lap.
    pub const STATE_EMPTY: u32 = 0;
    /// Slot state: a producer (the owner) is writing it.
    pub const STATE_WRITING: u32 = 1;
    /// Slot state: holds a message for the consumer of this lap.
    pub const STATE_FULL: u32 = 2;
    /// Slot state: a consumer (the owner) is reading it.
    pub const STATE_READING: u32 = 3;
    /// Bits of the generation kept in an owner field.
    pub const OWNER_GEN_BITS: u32 = 23;

    /// A slot's ctrl word: `lap` in bits 32..64, `state` in bits 30..32,
    /// `owner` (from [`owner`]) in bits 0..30.
    pub fn ctrl(lap: u32, state: u32, owner: u32) -> u64 {
        (u64::from(lap) << 32) | (u64::from(state & 3) << 30) | u64::from(owner & 0x3FFF_FFFF)
    }

    /// The lap of a ctrl word.
    pub fn ctrl_lap(ctrl: u64) -> u32 {
        (ctrl >> 32) as u32
    }

    /// The state of a ctrl word.
    pub fn ctrl_state(ctrl: u64) -> u32 {
        ((ctrl >> 30) & 3) as u32
    }

    /// The owner field of a ctrl word.
    pub fn ctrl_owner(ctrl: u64) -> u32 {
        (ctrl & 0x3FFF_FFFF) as u32
    }

    /// An owner field: participant `index` (bits 0..7) and the low
    /// [`OWNER_GEN_BITS`] bits of that entry's generation (bits 7..30).
    pub fn owner(index: u32, generation: u32) -> u32 {
        ((generation & ((1 << OWNER_GEN_BITS) - 1)) << 7) | (index & 0x7F)
    }

    /// The participant index of an owner field.
    pub fn owner_index(owner: u32) -> u32 {
        owner & 0x7F
    }

    /// The generation bits of an owner field.
    pub fn owner_generation(owner: u32) -> u32 {
        owner >> 7
    }

    /// A ring's shape: what the header's first 36 bytes say.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Geometry {
        /// Number of slots (a power of two).
        pub slots: u32,
        /// Payload bytes per slot.
        pub slot_size: u32,
        /// Bytes from one slot to the next.
        pub stride: u32,
    }

    impl Geometry {
        /// Checks `slots` and `slot_size`, explaining what is wrong.
        pub fn new(slots: u32, slot_size: u32) -> Result<Geometry, String> {
            if !(2..=MAX_SLOTS).contains(&slots) || !slots.is_power_of_two() {
                return Err(format!(
                    "slots must be a power of two from 2 to {MAX_SLOTS}, not {slots}"
                ));
            }
            if !(1..=MAX_SLOT_SIZE).contains(&slot_size) {
                return Err(format!(
                    "slot size must be 1 to {MAX_SLOT_SIZE} bytes (64 MiB), not {slot_size}"
                ));
            }
            let stride = (SLOT_HEADER + slot_size as usize).div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
            let stride = u32::try_from(stride).map_err(|_| "slot too large".to_owned())?;
            Ok(Geometry {
                slots,
                slot_size,
                stride,
            })
        }

        /// Total bytes of the segment.
        pub fn segment_size(&self) -> u64 {
            HEADER_SIZE as u64 + u64::from(self.slots) * u64::from(self.stride)
        }

        /// Offset of slot `index`'s ctrl word.
        pub fn slot_at(&self, index: u32) -> usize {
            HEADER_SIZE + index as usize * self.stride as usize
        }

        /// The header's first 36 bytes; everything else in a new segment is zero
        /// (every slot starts as `EMPTY` of lap 0, both positions at 0).
        pub fn header(&self) -> [u8; 36] {
            let mut h = [0u8; 36];
            h[0..8].copy_from_slice(&MAGIC);
            let words = [
                (OFF_VERSION, VERSION),
                (OFF_SLOTS, self.slots),
                (OFF_SLOT_SIZE, self.slot_size),
                (OFF_SLOT_STRIDE, self.stride),
                (OFF_SLOTS_AT, HEADER_SIZE as u32),
                (OFF_PARTICIPANTS_AT, PARTICIPANTS_AT as u32),
                (OFF_PARTICIPANTS_MAX, PARTICIPANTS_MAX),
            ];
            for (at, v) in words {
                h[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            h
        }

        /// Reads and checks a header (at least 36 bytes) against a segment of
        /// `segment_size` bytes.
        pub fn parse(header: &[u8], segment_size: u64) -> Result<Geometry, String> {
            if header.len() < 36 || header[0..8] != MAGIC {
                return Err("not an ipcd ring (bad magic)".to_owned());
            }
            let word = |at: usize| {
                let mut b = [0u8; 4];
                b.copy_from_slice(&header[at..at + 4]);
                u32::from_le_bytes(b)
            };
            let version = word(OFF_VERSION);
            if version != VERSION {
                return Err(format!(
                    "ring layout version {version}; this side speaks {VERSION}"
                ));
            }
            let g = Geometry::new(word(OFF_SLOTS), word(OFF_SLOT_SIZE))?;
            let fixed = [
                (OFF_SLOT_STRIDE, g.stride, "slot stride"),
                (OFF_SLOTS_AT, HEADER_SIZE as u32, "slot offset"),
                (
                    OFF_PARTICIPANTS_AT,
                    PARTICIPANTS_AT as u32,
                    "participant offset",
                ),
                (OFF_PARTICIPANTS_MAX, PARTICIPANTS_MAX, "participant count"),
            ];
            for (at, want, what) in fixed {
                if word(at) != want {
                    return Err(format!(
                        "ring header has {what} {}, expected {want}",
                        word(at)
                    ));
                }
            }
            if segment_size < g.segment_size() {
                return Err(format!(
                    "ring segment is {segment_size} bytes, its header needs {}",
                    g.segment_size()
                ));
            }
            Ok(g)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ctrl_fields_round_trip() {
            let o = owner(127, 0x7F_FFFF);
            let c = ctrl(u32::MAX, STATE_READING, o);
            assert_eq!(ctrl_lap(c), u32::MAX);
            assert_eq!(ctrl_state(c), STATE_READING);
            assert_eq!(ctrl_owner(c), o);
            assert_eq!(owner_index(o), 127);
            assert_eq!(owner_generation(o), 0x7F_FFFF);
            assert_eq!(
                ctrl(0, STATE_EMPTY, 0),
                0,
                "a zeroed slot is EMPTY of lap 0"
            );
        }

        #[test]
        fn geometry_checks_and_round_trips() {
            let g = Geometry::new(8, 100).unwrap();
            assert_eq!(g.stride, 128);
            assert_eq!(g.segment_size(), 4096 + 8 * 128);
            assert_eq!(Geometry::parse(&g.header(), g.segment_size()), Ok(g));
            assert!(Geometry::parse(&g.header(), 4096).is_err());
            assert!(Geometry::new(3, 8).is_err());
            assert!(Geometry::new(1, 8).is_err());
            assert!(Geometry::new(4, 0).is_err());
            assert!(Geometry::new(4, MAX_SLOT_SIZE + 1).is_err());
            let mut bad = g.header();
            bad[0] = b'X';
            assert!(
                Geometry::parse(&bad, 1 << 20)
                    .unwrap_err()
                    .contains("magic")
            );
            let mut v2 = g.header();
            v2[OFF_VERSION] = 2;
            assert!(
                Geometry::parse(&v2, 1 << 20)
                    .unwrap_err()
                    .contains("version 2")
            );
            assert!(PARTICIPANTS_AT + PARTICIPANT_SIZE * PARTICIPANTS_MAX as usize <= HEADER_SIZE);
        }
    }
}
