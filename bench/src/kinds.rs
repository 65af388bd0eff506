//! The kinds table: everything `ipcctl bench` can measure, in one place.
//!
//! Each kind is one module under `kinds/` with one [`KindBench`] value; the
//! machinery (runs, ABBA blocks, the peer protocol, statistics, the report)
//! reaches kinds only through [`KINDS`]. A new kind, say `shm`, is one file,
//! `kinds/shm.rs` (its [`crate::datapath::Channels`] for the bench's side and
//! [`KindBench::open_peer`] for the peer's), its `mod` line and one row here.

mod control;
mod fifo;
mod memory;
mod mq;
mod pipe;
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
}
