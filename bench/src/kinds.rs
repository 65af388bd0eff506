//! The kinds table: everything `ipcctl bench` can measure, in one place.
//!
//! Each kind is one module under `kinds/` with one [`KindBench`] value; the
//! machinery (runs, ABBA blocks, the peer protocol, statistics, the report)
//! reaches kinds only through [`KINDS`]. A new kind is one file,
//! `kinds/<kind>.rs` (its [`crate::datapath::Channels`] for the bench's side and
//! [`KindBench::open_peer`] for the peer's), its `mod` line and one row here;
//! `queue` keeps its comparisons, yardsticks and memory rows under `kinds/queue/`.
//! `ring` and `ring-spin` share their machinery (`kinds/ring.rs`, with the raw
//! futex ring and the memcpy yardstick under `kinds/ring/`); `ring_spin.rs`
//! only says how `ring-spin` differs.

mod control;
mod fifo;
mod memory;
mod mq;
mod pipe;
mod queue;
mod ring;
mod ring_spin;
mod sem;
mod shm;
mod signal;
mod spawn;

use crate::kind::KindBench;

/// Every kind, in the order `--help` lists them.
pub const KINDS: &[&dyn KindBench] = &[
    &mq::Mq,
    &pipe::Pipe,
    &fifo::Fifo,
    &control::Control,
    &spawn::Spawn,
    &memory::Memory,
    &shm::Shm,
    &ring::RING,
    &ring_spin::RING_SPIN,
    &signal::SignalBench,
    &sem::Sem,
    &queue::Queue,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_companions_exist() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(
                KINDS[..i].iter().all(|o| o.name() != k.name()),
                "{}",
                k.name()
            );
            for w in k.with() {
                assert!(KINDS.iter().any(|o| o.name() == *w), "{w}");
            }
        }
        let mq = crate::kind::expand(KINDS, &["mq".to_owned()]).unwrap();
        let names: Vec<&str> = mq.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["mq", "control", "spawn"]);
    }

    #[test]
    fn shared_memory_kinds_are_listed() {
        for name in ["shm", "ring", "ring-spin"] {
            let kind = crate::kind::find(KINDS, name).unwrap();
            assert!(kind.with().is_empty(), "{name}");
        }
        // The rings run per placement with a peer; shm runs once, in-process.
        assert!(crate::kind::find(KINDS, "ring").unwrap().placed());
        assert!(!crate::kind::find(KINDS, "shm").unwrap().placed());
        let mut client = crate::peer::PeerClient::unconnected(None);
        let args = crate::peer::PeerArgs::new("shm", crate::channel::Role::Echo, 64);
        let shm = crate::kind::find(KINDS, "shm").unwrap();
        assert!(shm.open_peer(&args, &mut client).is_err());
    }

    #[test]
    fn the_queue_kind_is_listed_and_placed() {
        let queue = crate::kind::find(KINDS, "queue").unwrap();
        assert!(queue.placed() && queue.with().is_empty());
        // A relay peer needs the socket to listen on.
        let mut client = crate::peer::PeerClient::unconnected(None);
        let args = crate::peer::PeerArgs::new("queue", crate::channel::Role::Relay, 64);
        let err = queue.open_peer(&args, &mut client).err().unwrap();
        assert!(err.to_string().contains("relay:PATH"), "{err}");
    }
}
