//! Unit tests of the queue kind: order, waits, acknowledgements, redelivery,
//! dead letters and the frame bound, on the object itself.

use protocol::{
    KindOp, KindParams, KindReply, QueueDelivery, QueueItem, QueueOp, QueueOrder, QueueParams,
    QueueReply,
};

use super::*;
use crate::kinds::Pending;

use crate::kinds::test_asker as who;

fn queue(capacity: u64, max_deliveries: u32) -> QueueObject {
    let params = QueueParams {
        capacity,
        max_bytes: 1 << 20,
        order: QueueOrder::Fifo,
        max_deliveries,
        durable: None,
    };
    QueueObject::new(
        State::create(resolve(&KindParams::Queue(params)).unwrap(), None, None).unwrap(),
    )
}

fn put(
    q: &mut QueueObject,
    s: SessionId,
    bodies: &[&str],
    timeout_ms: Option<u64>,
) -> Result<OpAnswer, RequestError> {
    let items = bodies
        .iter()
        .map(|b| QueueItem {
            priority: 0,
            body: b.as_bytes().to_vec(),
        })
        .collect();
    q.operate(KindOp::Queue(QueueOp::Put { items, timeout_ms }), &who(s))
}

fn get(
    q: &mut QueueObject,
    s: SessionId,
    max: u32,
    timeout_ms: Option<u64>,
) -> Result<OpAnswer, RequestError> {
    q.operate(KindOp::Queue(QueueOp::Get { max, timeout_ms }), &who(s))
}

fn ack(q: &mut QueueObject, s: SessionId, ids: Vec<u64>) -> Result<OpAnswer, RequestError> {
    q.operate(KindOp::Queue(QueueOp::Ack { ids }), &who(s))
}

fn now(answer: Result<OpAnswer, RequestError>) -> QueueReply {
    match answer {
        Ok(OpAnswer::Now(KindReply::Queue(r))) => r,
        Ok(OpAnswer::Now(other)) => panic!("not a queue reply: {other:?}"),
        Ok(OpAnswer::Later { .. }) => panic!("expected an answer now"),
        Err(e) => panic!("{e}"),
    }
}

fn later(answer: Result<OpAnswer, RequestError>) -> Pending {
    match answer {
        Ok(OpAnswer::Later { wait, .. }) => wait,
        Ok(OpAnswer::Now(r)) => panic!("expected a wait, got {r:?}"),
        Err(e) => panic!("{e}"),
    }
}

fn got(reply: QueueReply) -> Vec<QueueDelivery> {
    match reply {
        QueueReply::Got(d) => d,
        other => panic!("expected deliveries, got {other:?}"),
    }
}

fn bodies(d: &[QueueDelivery]) -> Vec<String> {
    d.iter()
        .map(|d| String::from_utf8_lossy(&d.body).into_owned())
        .collect()
}

fn details(q: &QueueObject) -> protocol::QueueDetails {
    match q.details().unwrap() {
        KindDetails::Queue(d) => *d,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_waiting_get_is_woken_by_a_put_and_acks_finish_a_join() {
    let mut q = queue(0, 0);
    let w = later(get(&mut q, 2, 10, None));
    let join_now = q.operate(KindOp::Queue(QueueOp::Join { timeout_ms: None }), &who(1));
    assert_eq!(now(join_now), QueueReply::Joined, "nothing put yet");
    now(put(&mut q, 1, &["a", "b"], None));
    let join = later(q.operate(KindOp::Queue(QueueOp::Join { timeout_ms: None }), &who(1)));
    let d = match w.await.unwrap() {
        KindReply::Queue(r) => got(r),
        other => panic!("{other:?}"),
    };
    assert_eq!(bodies(&d), ["a", "b"]);
    assert_eq!(details(&q).consumers[0].in_flight, 2);
    assert!(matches!(
        ack(&mut q, 3, vec![d[0].id]),
        Err(RequestError::InvalidArgument(_))
    ));
    assert_eq!(
        now(ack(&mut q, 2, vec![d[0].id, d[1].id])),
        QueueReply::Acked { count: 2 }
    );
    assert_eq!(join.await.unwrap(), KindReply::Queue(QueueReply::Joined));
    assert!(matches!(
        ack(&mut q, 2, vec![d[0].id]),
        Err(RequestError::InvalidArgument(_))
    ));
    let s = details(&q);
    assert_eq!((s.put, s.acked, s.depth, s.bytes), (2, 2, 0, 0));
}

#[tokio::test]
async fn a_full_queue_holds_puts_until_an_ack_makes_room() {
    let mut q = queue(2, 0);
    now(put(&mut q, 1, &["a", "b"], None));
    assert!(matches!(
        put(&mut q, 1, &["c"], Some(0)),
        Err(RequestError::WouldBlock(_))
    ));
    assert!(matches!(
        put(&mut q, 1, &["x", "y", "z"], None),
        Err(RequestError::TooLarge(_))
    ));
    let waiting = later(put(&mut q, 1, &["c"], None));
    // A get moves a message into flight: it still counts against capacity.
    let d = got(now(get(&mut q, 2, 1, None)));
    assert_eq!(details(&q).putters, 1);
    now(ack(&mut q, 2, vec![d[0].id]));
    assert_eq!(
        waiting.await.unwrap(),
        KindReply::Queue(QueueReply::Put { count: 1 })
    );
    assert_eq!(bodies(&got(now(get(&mut q, 2, 9, None)))), ["b", "c"]);
}

#[tokio::test]
async fn a_closed_consumer_s_deliveries_return_to_the_head_then_go_dead() {
    let mut q = queue(0, 2);
    now(put(&mut q, 1, &["a", "b", "c"], None));
    let first = got(now(get(&mut q, 2, 2, None)));
    assert_eq!(bodies(&first), ["a", "b"]);
    q.session_ended(2);
    let again = got(now(get(&mut q, 3, 9, None)));
    assert_eq!(bodies(&again), ["a", "b", "c"]);
    assert_eq!(
        again.iter().map(|d| d.deliveries).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    assert_eq!(details(&q).redelivered, 2);
    // "a" and "b" reach their second delivery unacknowledged: dead letters.
    now(ack(&mut q, 3, vec![again[2].id]));
    q.session_ended(3);
    let spill = q.spill().expect("dead letters");
    assert_eq!(spill.suffix, ".dead");
    assert_eq!(spill.items.len(), 2);
    let s = details(&q);
    assert_eq!((s.dead, s.depth, s.bytes), (2, 0, 0));
    let mut dead = queue(1, 0);
    assert_eq!(dead.take_spill(spill.items), 1, "one did not fit");
}

#[tokio::test]
async fn an_abandoned_get_gives_its_messages_back_uncounted() {
    let mut q = queue(0, 0);
    let w = later(get(&mut q, 2, 10, None));
    now(put(&mut q, 1, &["a"], None));
    drop(w); // granted, never read: the connection closed
    let d = got(now(get(&mut q, 3, 10, None)));
    assert_eq!((bodies(&d), d[0].deliveries), (vec!["a".to_string()], 1));
    assert_eq!(details(&q).redelivered, 0);
}

#[tokio::test]
async fn an_answer_stays_within_the_frame_limit() {
    let mut q = queue(0, 0);
    let big = "x".repeat(3000);
    now(put(&mut q, 1, &[&big, &big, &big], None));
    let mut small = who(2);
    small.max_frame = 8192;
    let r = q.operate(
        KindOp::Queue(QueueOp::Get {
            max: 10,
            timeout_ms: None,
        }),
        &small,
    );
    assert_eq!(got(now(r)).len(), 2);
}

#[test]
fn priorities_only_on_priority_queues_and_settings_round_trip() {
    let mut q = queue(0, 0);
    let items = vec![QueueItem {
        priority: 3,
        body: b"a".to_vec(),
    }];
    let r = q.operate(
        KindOp::Queue(QueueOp::Put {
            items,
            timeout_ms: None,
        }),
        &who(1),
    );
    assert!(matches!(r, Err(RequestError::InvalidArgument(_))));
    let saved = q.state();
    assert!(saved.get("journal_uid").is_none(), "{saved}");
    let back = state::params_from_json(&saved).unwrap();
    assert_eq!(back, lock(&q.state).params);
}

#[test]
fn ack_get_acknowledges_then_gets_and_refuses_both_for_a_bad_id() {
    let mut q = queue(0, 0);
    now(put(&mut q, 1, &["a", "b", "c"], None));
    let first = got(now(get(&mut q, 2, 1, None)));
    let ack_get = |q: &mut QueueObject, s, ack| {
        q.operate(
            KindOp::Queue(QueueOp::AckGet {
                ack,
                max: 1,
                timeout_ms: Some(0),
            }),
            &who(s),
        )
    };
    // Another connection's delivery: refused, and nothing got.
    assert!(matches!(
        ack_get(&mut q, 3, vec![first[0].id]),
        Err(RequestError::InvalidArgument(_))
    ));
    assert_eq!(details(&q).depth, 2);
    let second = got(now(ack_get(&mut q, 2, vec![first[0].id])));
    assert_eq!(bodies(&second), ["b"]);
    assert_eq!(details(&q).acked, 1);
    let third = got(now(ack_get(&mut q, 2, vec![second[0].id])));
    // Empty now: the ack is made, the get would block.
    let r = ack_get(&mut q, 2, vec![third[0].id]);
    assert!(
        matches!(r, Err(RequestError::WouldBlock(_))),
        "{:?}",
        r.is_ok()
    );
    let s = details(&q);
    assert_eq!((s.acked, s.bytes), (3, 0));
}
