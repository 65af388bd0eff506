//! Sequence numbers in every message the `queue` kind sends ([`Sequenced`]),
//! so that the consumer checks each one arrived exactly once, and counts
//! those that arrived out of order.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::bail;

use crate::loops::Endpoint;

/// Bytes of a message taken by its sequence number (the first ones).
pub const SEQUENCE_BYTES: usize = 8;

/// A channel end whose messages carry a sequence number in their first
/// [`SEQUENCE_BYTES`] bytes: stamped by the sender, checked by the
/// receiver, so that a message lost or repeated fails the run. Both
/// mechanisms of a comparison pay the same (a copy of the message and a
/// compare).
///
/// Messages may arrive out of order (the queue's prefetch can hand them
/// over so): they are counted ([`take_reordered`](Self::take_reordered)),
/// not refused. So that the loops' end marker cannot overtake the block's
/// last messages, it travels numbered too (the count of data messages
/// before it, with [`END`] set) and is handed to the loop as a zero-length
/// message only once every message before it has arrived.
pub struct Sequenced<E> {
    inner: E,
    /// The next number to stamp.
    sent: u64,
    /// The lowest number not received yet.
    expected: u64,
    /// Numbers above `expected` received already.
    ahead: BTreeSet<u64>,
    /// The end marker received, waiting for the messages before it.
    end_at: Option<u64>,
    /// Messages that arrived while an earlier one was missing.
    reordered: u64,
    /// The message being stamped.
    stamped: Vec<u8>,
}

/// The flag that makes a sequence number an end marker.
pub const END: u64 = 1 << 63;
/// How many messages may be missing at once before they count as lost.
const MAX_MISSING: usize = 1 << 20;
/// How long messages overtaken by their block's end marker may take to come.
const LOSS_TIMEOUT: Duration = Duration::from_secs(10);

impl<E> Sequenced<E> {
    /// Numbers the messages sent through `inner` and checks those received.
    pub fn new(inner: E) -> Self {
        Sequenced {
            inner,
            sent: 0,
            expected: 0,
            ahead: BTreeSet::new(),
            end_at: None,
            reordered: 0,
            stamped: Vec::new(),
        }
    }

    /// Messages that arrived out of order since the last call.
    pub fn take_reordered(&mut self) -> u64 {
        std::mem::take(&mut self.reordered)
    }
}

/// What [`Sequenced`] needs of a channel end besides [`Endpoint`].
pub trait Describe: Endpoint {
    /// A few words naming it, for errors.
    fn describe(&self) -> String;

    /// Sends a block's end marker: as any message, and then whatever the
    /// channel holds back goes out.
    fn send_end(&mut self, marker: &[u8]) -> anyhow::Result<()> {
        self.send(marker)
    }

    /// Receives one message, waiting up to `timeout` if the channel can
    /// reorder messages (`None` if none came); a channel that keeps their
    /// order waits as long as [`Endpoint::recv`] does.
    fn recv_within(&mut self, buf: &mut [u8], timeout: Duration) -> anyhow::Result<Option<usize>> {
        let _ = timeout;
        self.recv(buf).map(Some)
    }
}

impl<E: Describe> Endpoint for Sequenced<E> {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        if msg.is_empty() {
            return self.inner.send_end(&(END | self.sent).to_le_bytes());
        }
        if msg.len() < SEQUENCE_BYTES {
            bail!(
                "a {}-byte message has no room for a sequence number",
                msg.len()
            );
        }
        self.stamped.clear();
        self.stamped.extend_from_slice(msg);
        self.stamped[..SEQUENCE_BYTES].copy_from_slice(&self.sent.to_le_bytes());
        self.sent += 1;
        self.inner.send(&self.stamped)
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        loop {
            if self.end_at == Some(self.expected) {
                self.end_at = None;
                return Ok(0);
            }
            let n = if self.end_at.is_some() {
                // Only messages overtaken by the end marker are still to come.
                match self.inner.recv_within(buf, LOSS_TIMEOUT)? {
                    Some(n) => n,
                    None => bail!(
                        "message {} never arrived from {} (lost): the end marker of its block \
                         came {LOSS_TIMEOUT:?} ago",
                        self.expected,
                        self.inner.describe()
                    ),
                }
            } else {
                self.inner.recv(buf)?
            };
            let Some(head) = buf[..n].first_chunk::<SEQUENCE_BYTES>() else {
                bail!(
                    "a {n}-byte message arrived from {} without a sequence number",
                    self.inner.describe()
                );
            };
            let seq = u64::from_le_bytes(*head);
            if seq & END != 0 {
                self.end_marker(seq & !END)?;
                continue;
            }
            self.check(seq)?;
            return Ok(n);
        }
    }
}

impl<E: Describe> Sequenced<E> {
    /// Takes in the end marker that follows `count` data messages.
    fn end_marker(&mut self, count: u64) -> anyhow::Result<()> {
        let last = self.ahead.last().map_or(self.expected, |&a| a + 1);
        if self.end_at.is_some() || count < last {
            bail!(
                "an end marker after {count} messages arrived from {} after message {} \
                 (repeated, or the sender's count is wrong)",
                self.inner.describe(),
                last.saturating_sub(1)
            );
        }
        if count != self.expected {
            self.reordered += 1;
        }
        self.end_at = Some(count);
        Ok(())
    }

    /// Takes in data message `seq`.
    fn check(&mut self, seq: u64) -> anyhow::Result<()> {
        if seq < self.expected || self.ahead.contains(&seq) {
            bail!("message {seq} arrived from {} twice", self.inner.describe());
        }
        if self.end_at.is_some_and(|end| seq >= end) {
            bail!(
                "message {seq} arrived from {} after the end marker that closed its block",
                self.inner.describe()
            );
        }
        if seq != self.expected {
            self.reordered += 1;
            self.ahead.insert(seq);
            if self.ahead.len() > MAX_MISSING {
                bail!(
                    "message {} never arrived from {} (lost): {MAX_MISSING} later ones did",
                    self.expected,
                    self.inner.describe()
                );
            }
            return Ok(());
        }
        self.expected += 1;
        while self.ahead.first() == Some(&self.expected) {
            self.ahead.pop_first();
            self.expected += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use anyhow::Context as _;

    use super::*;

    /// A channel that can lose or repeat a message on purpose.
    #[derive(Default)]
    struct Loopback(VecDeque<Vec<u8>>);

    impl Describe for Loopback {
        fn describe(&self) -> String {
            "the loopback".into()
        }

        fn recv_within(&mut self, buf: &mut [u8], _: Duration) -> anyhow::Result<Option<usize>> {
            if self.0.is_empty() {
                return Ok(None);
            }
            self.recv(buf).map(Some)
        }
    }

    impl Endpoint for Loopback {
        fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
            self.0.push_back(msg.to_vec());
            Ok(())
        }

        fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
            let msg = self.0.pop_front().context("empty")?;
            buf[..msg.len()].copy_from_slice(&msg);
            Ok(msg.len())
        }
    }

    #[test]
    fn sequence_numbers_catch_repeats_and_count_reordering() {
        let mut end = Sequenced::new(Loopback::default());
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            end.send(&[7u8; 64]).unwrap();
        }
        end.send(&[]).unwrap();
        for _ in 0..3 {
            assert_eq!(end.recv(&mut buf).unwrap(), 64);
            assert_eq!(buf[SEQUENCE_BYTES..], [7u8; 64 - SEQUENCE_BYTES]);
        }
        assert_eq!(end.recv(&mut buf).unwrap(), 0);
        assert_eq!(end.take_reordered(), 0);
        // 3, 4 and the end marker, received as end marker, 4, 3: the marker
        // waits for both.
        end.send(&[0u8; 64]).unwrap();
        end.send(&[0u8; 64]).unwrap();
        end.send(&[]).unwrap();
        end.inner.0.make_contiguous().reverse();
        assert_eq!(end.recv(&mut buf).unwrap(), 64);
        assert_eq!(buf[..8], 4u64.to_le_bytes());
        assert_eq!(end.recv(&mut buf).unwrap(), 64);
        assert_eq!(end.recv(&mut buf).unwrap(), 0);
        assert_eq!(end.take_reordered(), 2);
        // A repeat of an earlier one.
        end.send(&[0u8; 64]).unwrap();
        let again = end.inner.0[0].clone();
        end.inner.0.push_back(again);
        end.recv(&mut buf).unwrap();
        let err = end.recv(&mut buf).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        assert!(end.send(&[1, 2, 3]).is_err());
    }

    #[test]
    fn a_message_missing_at_the_end_marker_is_lost() {
        let mut end = Sequenced::new(Loopback::default());
        let mut buf = [0u8; 64];
        end.send(&[0u8; 64]).unwrap();
        end.send(&[]).unwrap();
        end.inner.0.pop_front();
        let err = end.recv(&mut buf).unwrap_err();
        assert!(
            err.to_string().contains("message 0 never arrived"),
            "{err:#}"
        );
        assert_eq!(end.end_at, Some(1));
    }

    #[test]
    fn a_second_end_marker_is_an_error() {
        let mut end = Sequenced::new(Loopback::default());
        let mut buf = [0u8; 64];
        end.send(&[0u8; 64]).unwrap();
        end.send(&[]).unwrap();
        // The message is lost; the marker says one came before it.
        end.inner.0.pop_front();
        end.inner.0.push_back((END | 5).to_le_bytes().to_vec());
        let err = end.recv(&mut buf).unwrap_err();
        assert!(err.to_string().contains("end marker"), "{err}");
    }
}
