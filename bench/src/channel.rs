//! The two halves of one mechanism's channels in one run, as the shared runs
//! see them: [`Ends`] in the bench, [`Blocks`] in its peer. A kind hands over
//! its channels wrapped in one of the machinery's framings
//! ([`super::loops::Messages`] for message queues, [`super::streams::Bytes`]
//! for byte streams), so a kind never writes a measuring loop.
//!
//! Dynamic dispatch happens once per block; the loops inside are generic and
//! monomorphised for each kind's handle types.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::abba::Budget;
use super::stats::{Rate, nanos};

/// What a peer does with the messages it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Send each message back on the mechanism's `--*-tx` channel.
    Echo,
    /// Count them and time the stream.
    Sink,
    /// Run no blocks: copy messages between two connections, a stand-in
    /// for a daemon hop that the kind measures its own against (`queue`).
    Relay,
}

/// One mechanism's ends in the bench for one run.
pub trait Ends {
    /// One round-trip block: `lead_in` untimed exchanges, then timed ones
    /// until `budget` is spent, then the end marker. Returns nanoseconds per
    /// timed exchange.
    fn round_trip(&mut self, size: usize, lead_in: u64, budget: Budget)
    -> anyhow::Result<Vec<u64>>;
    /// One throughput block: data messages until `budget` is spent, then the
    /// end marker. Returns how many data messages were sent.
    fn stream(&mut self, size: usize, budget: Budget) -> anyhow::Result<u64>;
}

/// One mechanism's channels on the peer's side.
pub trait Blocks {
    /// Runs one block of `role` on these channels and reports on it.
    fn block(&mut self, role: Role, size: usize) -> anyhow::Result<PeerReport>;
}

/// The peer's two mechanisms, indexed by [`super::abba::Mechanism::index`];
/// `None` for one the bench named no channels of.
pub type Sides = [Option<Box<dyn Blocks>>; 2];

/// What a peer prints after each block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    /// Messages echoed (role echo) or counted after the clock started (role sink).
    pub messages: u64,
    /// Payload bytes counted (role sink).
    pub bytes: u64,
    /// Nanoseconds from the first message (queues) or the first read (streams)
    /// to the end marker (role sink).
    pub elapsed_ns: u64,
    /// Role sink: messages received in all, the end marker included.
    #[serde(default)]
    pub received: u64,
    /// Messages that arrived while an earlier one was still missing (kinds
    /// whose messages carry sequence numbers; 0 for the others).
    #[serde(default)]
    pub reordered: u64,
}

impl PeerReport {
    /// The report of an echo block.
    pub fn echoed(messages: u64) -> Self {
        PeerReport {
            messages,
            bytes: 0,
            elapsed_ns: 0,
            received: 0,
            reordered: 0,
        }
    }

    /// The report of a sink block that received `received` messages in all
    /// (the end marker included) and timed `rate`.
    pub fn sunk(received: u64, rate: Rate) -> Self {
        PeerReport {
            messages: rate.messages,
            bytes: rate.bytes,
            elapsed_ns: nanos(rate.elapsed),
            received,
            reordered: 0,
        }
    }

    /// The throughput the report describes.
    pub fn rate(&self) -> Rate {
        Rate {
            messages: self.messages,
            bytes: self.bytes,
            elapsed: Duration::from_nanos(self.elapsed_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_one_json_line() {
        let r = PeerReport {
            messages: 3,
            bytes: 192,
            elapsed_ns: 1000,
            received: 4,
            reordered: 0,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<PeerReport>(&line).unwrap(), r);
        assert_eq!(r.rate().messages, 3);
        let old = r#"{"messages":3,"bytes":0,"elapsed_ns":0}"#;
        assert_eq!(serde_json::from_str::<PeerReport>(old).unwrap().received, 0);
    }
}
