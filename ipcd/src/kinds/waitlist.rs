//! The wait list shared by the synchronization kinds (`sem`, `lock`, `event`,
//! `barrier`): first come, first served, one `oneshot` per waiter and no
//! thread per wait. A wait is the [`Granted`] future; when it is dropped
//! unanswered (its connection closed, its timeout passed, the daemon stops)
//! it tells its object through [`Abandon`], under the object's lock, handing
//! back anything granted to it meanwhile — so no permit is lost in a channel
//! whose receiver is gone.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::{Holder, KindReply};
use tokio::sync::oneshot;

use super::Asker;
use crate::error::RequestError;
use crate::peer::SessionId;

/// What a waiter is answered with.
pub type Answer = Result<KindReply, RequestError>;

/// Milliseconds since the epoch, for [`Holder::since_ms`].
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new holder record for `who`, holding `count`.
pub fn holder(who: &Asker, count: u32) -> Holder {
    Holder {
        pid: who.peer.pid,
        uid: who.peer.uid,
        since_ms: now_ms(),
        count,
    }
}

/// Locks an object's state; a panic under the lock leaves it consistent
/// (each step is a single change), so poisoning is ignored.
pub fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Entry {
    id: u64,
    who: Asker,
    tx: oneshot::Sender<Answer>,
}

/// Waiters in order of arrival.
#[derive(Default)]
pub struct WaitList {
    next: u64,
    queue: VecDeque<Entry>,
}

impl std::fmt::Debug for WaitList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitList")
            .field("waiting", &self.queue.len())
            .finish()
    }
}

impl WaitList {
    /// Adds a waiter at the back; returns its id and where its answer comes.
    pub fn push(&mut self, who: Asker) -> (u64, oneshot::Receiver<Answer>) {
        let (tx, rx) = oneshot::channel();
        self.next += 1;
        self.queue.push_back(Entry {
            id: self.next,
            who,
            tx,
        });
        (self.next, rx)
    }

    /// Waiters now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes waiter `id` out; whether it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.queue.len();
        self.queue.retain(|e| e.id != id);
        self.queue.len() != before
    }

    /// Forgets the waiters of `session`; returns whether there were any (its
    /// waits are aborted when the connection closes, but an aborted task is
    /// dropped a moment later, possibly after this).
    pub fn forget_session(&mut self, session: SessionId) -> bool {
        let before = self.queue.len();
        self.queue.retain(|e| e.who.session != session);
        self.queue.len() != before
    }

    /// Answers the oldest waiter still listening with `answer(who)`; returns
    /// its id and who it is (the caller records what it now holds), `None` if
    /// nobody waits.
    pub fn grant(&mut self, answer: impl Fn(&Asker) -> Answer) -> Option<(u64, Asker)> {
        while let Some(e) = self.queue.pop_front() {
            if e.tx.send(answer(&e.who)).is_ok() {
                return Some((e.id, e.who));
            }
        }
        None
    }

    /// Answers every waiter, in order of arrival (`answer` gets the position).
    pub fn drain(&mut self, answer: impl Fn(u32) -> Answer) {
        for (i, e) in self.queue.drain(..).enumerate() {
            let _ = e.tx.send(answer(i as u32));
        }
    }
}

/// An answer a wait can be given: anything with a `not-found` for an object
/// deleted while waiting.
pub trait WaitAnswer: Send + 'static {
    /// The answer to a wait whose object was deleted.
    fn deleted() -> Self;
}

impl<T: Send + 'static> WaitAnswer for Result<T, RequestError> {
    fn deleted() -> Self {
        Err(RequestError::KernelObjectMissing(
            "the object was deleted while waiting".into(),
        ))
    }
}

/// An object state told about waits dropped before their answer was taken.
pub trait Abandon<A = Answer>: Send + 'static {
    /// Wait `id` of `who` is gone; `granted` is the answer it was sent but
    /// never took (give back what it grants), `None` if it was still waiting.
    fn abandon(&mut self, id: u64, who: &Asker, granted: Option<A>);
}

/// One wait: resolves to the answer sent to it; a dropped sender (the object
/// was deleted) is `not-found`.
pub struct Granted<S: Abandon<A>, A: WaitAnswer = Answer> {
    state: Arc<Mutex<S>>,
    id: u64,
    who: Asker,
    rx: oneshot::Receiver<A>,
    finished: bool,
}

impl<S: Abandon<A>, A: WaitAnswer> Granted<S, A> {
    /// The wait for entry `id` of `who` on `state`.
    pub fn new(state: Arc<Mutex<S>>, id: u64, who: Asker, rx: oneshot::Receiver<A>) -> Self {
        Granted {
            state,
            id,
            who,
            rx,
            finished: false,
        }
    }
}

impl<S: Abandon<A>, A: WaitAnswer> Future for Granted<S, A> {
    type Output = A;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<A> {
        let this = &mut *self;
        match Pin::new(&mut this.rx).poll(cx) {
            Poll::Ready(answer) => {
                this.finished = true;
                Poll::Ready(answer.unwrap_or_else(|_| A::deleted()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: Abandon<A>, A: WaitAnswer> Drop for Granted<S, A> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Under the object's lock, so no grant can slip in between.
        let mut state = lock(&self.state);
        self.rx.close();
        let granted = self.rx.try_recv().ok();
        state.abandon(self.id, &self.who, granted);
    }
}
