//! Requests sent without waiting for their answers, for handles that keep
//! many in flight on a connection of their own (`QueueSender`,
//! `QueueReceiver`): submit, push out, and collect answers as they come.

use std::time::Instant;

use protocol::{ClientFrame, Outcome, Request, ServerFrame};

use super::{Client, Response};
use crate::error::{Error, Result};

impl Client {
    /// Queues `request` for sending and returns its id; it goes out with
    /// [`push_submitted`](Self::push_submitted) or while waiting for an answer.
    /// Collect its answer with [`next_answer`](Self::next_answer): on this
    /// connection, no other request may be sent while answers are owed.
    pub(crate) fn submit(&mut self, request: Request) -> Result<u64> {
        let id = self.next_id;
        self.conn
            .queue(&ClientFrame::Request { id, body: request })?;
        self.take_ids(1);
        Ok(id)
    }

    /// Writes what the socket takes of the submitted requests, without waiting.
    pub(crate) fn push_submitted(&mut self) -> Result<()> {
        self.conn.send_queued()
    }

    /// The next answer to a submitted request, in the order the daemon sends
    /// them, waiting until `deadline` (`None`: as long as it takes); `Ok(None)`
    /// when it passes, leaving the connection usable. Events met on the way
    /// are kept for [`take_events`](Self::take_events).
    pub(crate) fn next_answer(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<(u64, Result<Response>)>> {
        loop {
            let Some(frame) = self.conn.receive_by(deadline)? else {
                return Ok(None);
            };
            match frame {
                ServerFrame::Response { id, fds, result } => {
                    let fds = self.conn.take_fds(usize::from(fds))?;
                    let outcome = match result {
                        Outcome::Ok(reply) => Ok(Response { reply, fds }),
                        Outcome::Err(e) => Err(Error::Server(e)),
                    };
                    return Ok(Some((id, outcome)));
                }
                ServerFrame::Event(e) => self.remember(e),
                ServerFrame::Fatal(e) => return Err(self.conn.poison(Error::Fatal(e))),
                ServerFrame::Welcome(_) => {
                    return Err(self
                        .conn
                        .poison(Error::Protocol("a second welcome from the daemon".into())));
                }
            }
        }
    }
}
