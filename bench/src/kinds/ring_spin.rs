//! The `ring-spin` kind: the `ring` kind ([`super::ring`]) with both
//! mechanisms spinning for [`SPIN`] before they sleep on the futex
//! (`Ring::set_spin` and the raw ring's equivalent), the mode for the lowest
//! latency when the two processes run on different CPUs.
//!
//! Targets, across two CPUs (`split`) only: 64 B round trip p50 ≤ 1 µs
//! through ipc-client, 64 B one-way ≥ 5 M messages/s, 1 MiB messages
//! ≥ 0.5× memcpy. On one CPU a spinning side only delays the peer it waits
//! for, so `same` rows carry no target (a note says so). The ratios to the
//! raw ring are shown, not held to a target.

use std::time::Duration;

use super::ring::{RingKind, Variant};

/// How long both mechanisms spin before they sleep: longer than a wake-up
/// across two vCPUs (25–30 µs here), so a busy peer never has to wake us.
pub const SPIN: Duration = Duration::from_micros(50);

/// The `ring-spin` entry of the kinds table.
pub const RING_SPIN: RingKind = RingKind(Variant {
    name: "ring-spin",
    about: "ring with both mechanisms spinning 50 µs before they sleep",
    spin: SPIN,
    ratios: None,
    max_p50_us: Some(1.0),
    split_only: true,
    setup_rows: false,
});
