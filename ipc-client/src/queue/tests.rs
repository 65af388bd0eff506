//! `QueueSender` and `QueueReceiver` against the scripted fake daemon of
//! [`crate::testing`]: windows, batches, late errors, prefetch, limits and
//! acknowledgement batches, as the requests that reach the socket show them.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use protocol::{
    ErrorCode, KindOp, KindReply, Outcome, QueueDelivery, QueueOp, QueueReply, Reply, Request,
    WireError,
};

use super::*;
use crate::testing::{FakePeer, fake_daemon, respond};

/// A fake daemon running `script` on its first connection, and a way to
/// wait for the script's result.
fn fake<T: Send + 'static>(
    script: impl FnOnce(FakePeer) -> T + Send + 'static,
) -> (std::path::PathBuf, Finished<T>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (path, handle) = fake_daemon(move |peer| {
        let _ = tx.send(script(peer));
    });
    (path, Finished { rx, handle })
}

/// The fake daemon's script, to be waited for.
struct Finished<T> {
    rx: std::sync::mpsc::Receiver<T>,
    handle: std::thread::JoinHandle<()>,
}

impl<T> Finished<T> {
    /// The script's result (its panic, if it panicked).
    fn join(self) -> std::thread::Result<T> {
        self.handle.join()?;
        Ok(self.rx.recv().expect("the script returned"))
    }
}

/// The queue operation a request carries (the test fails on anything else).
fn queue_op(body: Request) -> QueueOp {
    match body {
        Request::Kind {
            address,
            op: KindOp::Queue(op),
        } => {
            assert_eq!(address, "queue:q");
            op
        }
        other => panic!("expected a queue operation, got {other:?}"),
    }
}

fn answer(peer: &mut FakePeer, id: u64, reply: QueueReply) {
    peer.write(&respond(
        id,
        Outcome::Ok(Reply::Kind(KindReply::Queue(reply))),
    ));
}

fn refuse(peer: &mut FakePeer, id: u64, code: ErrorCode) {
    peer.write(&respond(id, Outcome::Err(WireError::new(code, "refused"))));
}

/// An in-memory queue serving one connection, parking Gets while it is empty.
#[derive(Debug, Default)]
struct FakeQueue {
    messages: VecDeque<Vec<u8>>,
    next_delivery: u64,
    held: HashSet<u64>,
    parked: VecDeque<(u64, u32)>,
    /// The most Gets parked at once.
    most_parked: usize,
    /// Messages every Get asked for, in all.
    asked: u64,
    /// Ack requests and the ids they carried.
    acks: Vec<Vec<u64>>,
}

impl FakeQueue {
    /// Answers the handshake, then serves until the client hangs up.
    fn serve(self, mut peer: FakePeer) -> FakeQueue {
        peer.handshake();
        self.serve_requests(peer)
    }

    /// Serves until the client hangs up (the handshake done already).
    fn serve_requests(mut self, mut peer: FakePeer) -> FakeQueue {
        peer.serve(|peer, id, body| match queue_op(body) {
            QueueOp::Put { items, .. } => {
                let count = items.len() as u32;
                self.messages.extend(items.into_iter().map(|i| i.body));
                answer(peer, id, QueueReply::Put { count });
                while !self.messages.is_empty()
                    && let Some((get, max)) = self.parked.pop_front()
                {
                    self.deliver(peer, get, max);
                }
            }
            QueueOp::Get { max, timeout_ms } => {
                self.asked += u64::from(max);
                if !self.messages.is_empty() {
                    self.deliver(peer, id, max);
                } else if timeout_ms == Some(0) {
                    refuse(peer, id, ErrorCode::WouldBlock);
                } else {
                    self.parked.push_back((id, max));
                    self.most_parked = self.most_parked.max(self.parked.len());
                }
            }
            QueueOp::Ack { ids } => {
                if ids.iter().all(|i| self.held.contains(i)) {
                    for i in &ids {
                        self.held.remove(i);
                    }
                    answer(
                        peer,
                        id,
                        QueueReply::Acked {
                            count: ids.len() as u32,
                        },
                    );
                    self.acks.push(ids);
                } else {
                    refuse(peer, id, ErrorCode::InvalidArgument);
                }
            }
            QueueOp::Join { .. } | QueueOp::AckGet { .. } => panic!("not sent by the handles"),
        });
        self
    }

    fn deliver(&mut self, peer: &mut FakePeer, id: u64, max: u32) {
        let n = (max.max(1) as usize).min(self.messages.len());
        let got = self
            .messages
            .drain(..n)
            .map(|body| {
                self.next_delivery += 1;
                self.held.insert(self.next_delivery);
                QueueDelivery {
                    id: self.next_delivery,
                    priority: 0,
                    deliveries: 1,
                    body,
                }
            })
            .collect();
        answer(peer, id, QueueReply::Got(got));
    }
}

fn numbered(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| i.to_string().into_bytes()).collect()
}

#[test]
fn a_sender_batches_and_reports_a_refused_put_late_without_losing_it() {
    let (path, daemon) = fake(|mut peer| {
        peer.handshake();
        // Nothing is answered until the sender stopped sending: its batches
        // fill while the first Put is in flight.
        peer.0
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut puts = Vec::new();
        while let Some(protocol::ClientFrame::Request { id, body }) = peer.read() {
            let QueueOp::Put { items, timeout_ms } = queue_op(body) else {
                panic!("puts only")
            };
            assert_eq!(timeout_ms, Some(0));
            puts.push((id, items.into_iter().map(|i| i.body).collect::<Vec<_>>()));
        }
        for (n, (id, bodies)) in puts.iter().enumerate() {
            if n == 2 {
                refuse(&mut peer, *id, ErrorCode::WouldBlock);
            } else {
                let count = bodies.len() as u32;
                answer(&mut peer, *id, QueueReply::Put { count });
            }
        }
        peer.0.set_read_timeout(None).unwrap();
        FakeQueue::default().serve_requests(peer);
        puts.into_iter().map(|(_, b)| b).collect::<Vec<_>>()
    });
    let client = Client::connect_to(&path).unwrap();
    let mut tx = QueueSender::new(client, "q")
        .batch(2)
        .timeout(Some(Duration::ZERO));
    for body in numbered(10) {
        tx.send(&body).unwrap();
    }
    let e = tx.flush().expect_err("the refusal is reported");
    assert_eq!(e.code(), Some(ErrorCode::WouldBlock));
    assert_eq!((tx.confirmed(), tx.refused(), tx.pending()), (8, 2, 0));
    // Reported once; and a send after it goes through.
    tx.send(b"after").unwrap();
    tx.flush().unwrap();
    drop(tx);
    let seen = daemon.join().unwrap();
    let sizes: Vec<usize> = seen.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [1, 2, 2, 2, 2, 1],
        "the first alone, then batches of 2"
    );
    assert_eq!(seen[2], numbered(10)[3..5]);
}

#[test]
fn a_batching_sender_sends_at_once_when_nothing_is_in_flight() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let puts = Arc::new(AtomicUsize::new(0));
    let seen = puts.clone();
    let (path, daemon) = fake(move |mut peer| {
        peer.handshake();
        peer.serve(|peer, id, body| {
            let QueueOp::Put { items, .. } = queue_op(body) else {
                panic!("puts only")
            };
            seen.fetch_add(1, Ordering::SeqCst);
            answer(
                peer,
                id,
                QueueReply::Put {
                    count: items.len() as u32,
                },
            );
        });
    });
    let client = Client::connect_to(&path).unwrap();
    let mut tx = QueueSender::new(client, "q").batch(64);
    for n in 1..=3 {
        tx.send(b"lone").unwrap();
        // Answered meanwhile, so the next one does not wait for a batch.
        eventually(|| puts.load(Ordering::SeqCst) == n);
    }
    tx.flush().unwrap();
    assert_eq!(tx.confirmed(), 3);
    drop(tx);
    daemon.join().unwrap();
}

/// Polls `check` for up to 5 s.
fn eventually(mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_sender_keeps_at_most_its_window_in_flight() {
    const WINDOW: usize = 4;
    let (path, daemon) = fake(|mut peer| {
        peer.handshake();
        peer.0
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut rounds = 0;
        loop {
            let mut ids = Vec::new();
            while let Some(frame) = peer.read() {
                let protocol::ClientFrame::Request { id, .. } = frame else {
                    panic!("requests only")
                };
                ids.push(id);
            }
            if ids.is_empty() {
                return rounds;
            }
            // Nothing is answered until the sender stopped sending: it has
            // the whole window out and waits.
            assert_eq!(ids.len(), WINDOW, "round {rounds}");
            for id in ids {
                answer(&mut peer, id, QueueReply::Put { count: 1 });
            }
            rounds += 1;
        }
    });
    let client = Client::connect_to(&path).unwrap();
    let mut tx = QueueSender::new(client, "queue:q").window(WINDOW);
    for body in numbered(3 * WINDOW) {
        tx.send(&body).unwrap();
    }
    tx.flush().unwrap();
    assert_eq!(tx.confirmed(), 3 * WINDOW as u64);
    drop(tx);
    assert_eq!(daemon.join().unwrap(), 3);
}

#[test]
fn a_corked_sender_holds_requests_until_the_cork_fills_or_a_flush() {
    let (path, daemon) = fake(|mut peer| {
        peer.handshake();
        peer.0
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Three requests are corked: nothing arrives.
        assert!(peer.read().is_none(), "a corked request was written");
        peer.0.set_read_timeout(None).unwrap();
        // The flush writes them; the fake serves them as they come.
        FakeQueue::default().serve_requests(peer)
    });
    let client = Client::connect_to(&path).unwrap();
    let mut tx = QueueSender::new(client, "q").cork(4);
    for body in numbered(3) {
        tx.send(&body).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    tx.flush().unwrap();
    drop(tx);
    let q = daemon.join().unwrap();
    assert_eq!(q.messages, numbered(3));
}

#[test]
fn a_receiver_prefetches_hands_out_in_order_and_batches_its_acks() {
    let (path, daemon) = fake(|peer| {
        FakeQueue {
            messages: numbered(10).into(),
            ..FakeQueue::default()
        }
        .serve(peer)
    });
    let client = Client::connect_to(&path).unwrap();
    let mut rx = QueueReceiver::new(client, "q")
        .prefetch(3)
        .gets(2)
        .ack_batch(4)
        .ack_delay(Duration::from_secs(60));
    for expected in numbered(10) {
        let d = rx.recv().unwrap();
        assert_eq!(d.body, expected);
        rx.ack(d.id).unwrap();
        // An id it no longer holds is refused here, not sent.
        let e = rx.ack(d.id).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::InvalidArgument));
    }
    // The queue is empty now: a wait that times out leaves the Gets in flight.
    assert_eq!(rx.recv_timeout(Duration::from_millis(20)).unwrap(), None);
    rx.flush().unwrap();
    assert_eq!((rx.received(), rx.acked(), rx.held()), (10, 10, 0));
    drop(rx);
    let q = daemon.join().unwrap();
    assert!(q.held.is_empty(), "unacknowledged: {:?}", q.held);
    assert!(q.most_parked <= 2, "{} Gets waited at once", q.most_parked);
    // Batches of four (or fewer, sent when the receiver had to wait).
    assert!(q.acks.iter().all(|a| a.len() <= 4), "{:?}", q.acks);
    assert!(q.acks.len() < 10, "acknowledged one by one: {:?}", q.acks);
}

#[test]
fn deliveries_keep_the_order_of_their_gets_whatever_order_the_answers_come_in() {
    let (path, daemon) = fake(|mut peer| {
        peer.handshake();
        let mut gets = Vec::new();
        while gets.len() < 2 {
            let Some(protocol::ClientFrame::Request { id, body }) = peer.read() else {
                panic!("two Gets")
            };
            assert!(matches!(queue_op(body), QueueOp::Get { .. }));
            gets.push(id);
        }
        // ipcd serves waiting Gets oldest first, but may write the answers
        // in any order.
        for (n, &id) in gets.iter().enumerate().rev() {
            let d = QueueDelivery {
                id: n as u64 + 1,
                priority: 0,
                deliveries: 1,
                body: vec![n as u8],
            };
            answer(&mut peer, id, QueueReply::Got(vec![d]));
        }
        FakeQueue::default().serve_requests(peer)
    });
    let client = Client::connect_to(&path).unwrap();
    let mut rx = QueueReceiver::new(client, "q").gets(2);
    assert_eq!(rx.recv().unwrap().body, [0]);
    assert_eq!(rx.recv().unwrap().body, [1]);
    drop(rx);
    daemon.join().unwrap();
}

#[test]
fn a_limited_receiver_never_asks_for_more_than_its_limit() {
    let (path, daemon) = fake(|peer| {
        FakeQueue {
            messages: numbered(20).into(),
            ..FakeQueue::default()
        }
        .serve(peer)
    });
    let client = Client::connect_to(&path).unwrap();
    let mut rx = QueueReceiver::new(client, "q").prefetch(3).limit(5);
    for expected in &numbered(5) {
        let d = rx.recv().unwrap();
        assert_eq!(&d.body, expected);
        rx.ack(d.id).unwrap();
    }
    assert_eq!(rx.recv_timeout(Duration::ZERO).unwrap(), None);
    assert_eq!(rx.try_recv().unwrap(), None);
    let e = rx.recv().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument));
    rx.flush().unwrap();
    drop(rx);
    let q = daemon.join().unwrap();
    assert_eq!(q.asked, 5);
    assert_eq!(q.messages.len(), 15);
}

#[test]
fn try_recv_asks_the_daemon_once_and_an_empty_queue_is_no_error() {
    let (path, daemon) = fake(|peer| {
        FakeQueue {
            messages: numbered(1).into(),
            ..FakeQueue::default()
        }
        .serve(peer)
    });
    let client = Client::connect_to(&path).unwrap();
    let mut rx = QueueReceiver::new(client, "q");
    let d = rx.try_recv().unwrap().expect("the message waiting");
    assert_eq!(d.body, b"0");
    assert_eq!(rx.try_recv().unwrap(), None);
    assert_eq!(rx.held(), 1);
    // Dropped unacknowledged: the fake still holds it, as ipcd would until
    // the connection closes.
    drop(rx);
    assert_eq!(daemon.join().unwrap().held.len(), 1);
}

#[test]
fn a_refused_get_is_returned_after_the_deliveries_already_here() {
    let (path, daemon) = fake(|mut peer| {
        peer.handshake();
        peer.serve(|peer, id, body| match queue_op(body) {
            QueueOp::Get { .. } if id % 2 == 1 => {
                let got = (0..2)
                    .map(|n| QueueDelivery {
                        id: id * 10 + n,
                        priority: 0,
                        deliveries: 2,
                        body: vec![n as u8],
                    })
                    .collect();
                answer(peer, id, QueueReply::Got(got));
            }
            QueueOp::Get { .. } => refuse(peer, id, ErrorCode::NotFound),
            other => panic!("unexpected {other:?}"),
        });
    });
    let client = Client::connect_to(&path).unwrap();
    let mut rx = QueueReceiver::new(client, "q").gets(2);
    let first = rx.recv().unwrap();
    assert_eq!((first.body.as_slice(), first.deliveries), (&[0u8][..], 2));
    assert_eq!(rx.recv().unwrap().body, [1]);
    let e = rx.recv().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    drop(rx);
    daemon.join().unwrap();
}

#[test]
fn a_delivery_that_comes_after_a_timed_out_wait_is_kept_for_the_next_call() {
    let (path, daemon) = fake(|mut peer| {
        peer.handshake();
        let Some(protocol::ClientFrame::Request { id, body }) = peer.read() else {
            panic!("a Get")
        };
        assert!(matches!(
            queue_op(body),
            QueueOp::Get {
                timeout_ms: None,
                ..
            }
        ));
        std::thread::sleep(Duration::from_millis(150));
        let late = QueueDelivery {
            id: 7,
            priority: 0,
            deliveries: 1,
            body: b"late".to_vec(),
        };
        answer(&mut peer, id, QueueReply::Got(vec![late]));
        FakeQueue::default().serve_requests(peer)
    });
    let client = Client::connect_to(&path).unwrap();
    let mut rx = QueueReceiver::new(client, "q").gets(1);
    assert_eq!(rx.recv_timeout(Duration::from_millis(20)).unwrap(), None);
    let d = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!((d.id, d.body.as_slice()), (7, &b"late"[..]));
    drop(rx);
    daemon.join().unwrap();
}

#[test]
fn options_make_the_spec_and_names_make_addresses() {
    let spec = QueueOptions::new()
        .capacity(5)
        .max_bytes(1 << 20)
        .order(QueueOrder::Lifo)
        .max_deliveries(3)
        .durable(Fsync::Always)
        .mode(0o640)
        .session()
        .to_spec();
    assert_eq!(spec.mode, Some(0o640));
    assert_eq!(spec.lifetime, Lifetime::Session);
    let KindParams::Queue(p) = spec.params else {
        panic!("queue params")
    };
    assert_eq!(
        (
            p.capacity,
            p.max_bytes,
            p.order,
            p.max_deliveries,
            p.durable
        ),
        (5, 1 << 20, QueueOrder::Lifo, 3, Some(Fsync::Always))
    );
    assert_eq!(queue_address("jobs"), "queue:jobs");
    assert_eq!(queue_address("queue:jobs"), "queue:jobs");
    assert_eq!(dead_letter_address("jobs"), "queue:jobs.dead");
    assert_eq!(dead_letter_address("queue:jobs"), "queue:jobs.dead");
}
