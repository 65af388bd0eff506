//! Work queues end to end through `ipc-client`: fifo, lifo and priority
//! order; a full queue (deliveries not yet acknowledged count) makes a put
//! wait until a get *and* an ack free room; put and get timeouts and
//! would-block; acknowledgements only from the connection that got the
//! delivery; a closed consumer's deliveries back at the head, counted;
//! dead letters after `max_deliveries`; join; a deleted queue wakes its
//! waiters; `QueueSender` and `QueueReceiver` keep order and report
//! refusals; another uid and a version 6 client are kept out.
//! (`queue_load` has many producers and consumers, `queue_cli` ipcctl.)

use std::thread;
use std::time::{Duration, Instant};

use ipc_client::{
    Client, Error, ErrorCode, QueueDelivery, QueueDetails, QueueItem, QueueOptions, QueueOrder,
    QueueReceiver, QueueSender, dead_letter_address,
};
use ipcd_tests::{TestDaemon, eventually};

use crate::permissions::as_nobody;

/// The queue's details.
pub(crate) fn details(c: &mut Client, address: &str) -> QueueDetails {
    match c.stat(address).unwrap().details {
        ipc_client::KindDetails::Queue(d) => *d,
        other => panic!("{address} is no queue: {other:?}"),
    }
}

fn bodies(ds: &[QueueDelivery]) -> Vec<String> {
    ds.iter()
        .map(|d| String::from_utf8_lossy(&d.body).into_owned())
        .collect()
}

fn items(bodies: &[(&str, u32)]) -> Vec<QueueItem> {
    bodies
        .iter()
        .map(|&(b, priority)| QueueItem {
            priority,
            body: b.as_bytes().to_vec(),
        })
        .collect()
}

fn ack_all(c: &mut Client, name: &str, ds: &[QueueDelivery]) {
    let ids: Vec<u64> = ds.iter().map(|d| d.id).collect();
    assert_eq!(c.queue_ack(name, &ids).unwrap() as usize, ids.len());
}

#[test]
fn fifo_lifo_and_priority_queues_deliver_in_their_order() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    let plain = [("a", 0), ("b", 0), ("c", 0), ("d", 0)];
    for (name, order, expected) in [
        ("f", QueueOrder::Fifo, ["a", "b", "c", "d"]),
        ("l", QueueOrder::Lifo, ["d", "c", "b", "a"]),
    ] {
        c.create_queue(name, &QueueOptions::new().order(order))
            .unwrap();
        // One at a time and as a batch alike.
        c.queue_put(name, b"a", None).unwrap();
        assert_eq!(
            c.queue_put_batch(name, items(&plain[1..]), None).unwrap(),
            3
        );
        let got = c.queue_get(name, 10, Some(Duration::ZERO)).unwrap();
        assert_eq!(bodies(&got), expected, "{order}");
        assert!(got.iter().all(|g| g.deliveries == 1 && g.priority == 0));
        ack_all(&mut c, name, &got);
    }
    c.create_queue("p", &QueueOptions::new().order(QueueOrder::Priority))
        .unwrap();
    let mixed = [
        ("low", 1),
        ("top1", 7),
        ("mid", 3),
        ("top2", 7),
        ("zero", 0),
    ];
    c.queue_put_batch("p", items(&mixed), None).unwrap();
    let got = c.queue_get("p", 2, None).unwrap();
    assert_eq!(bodies(&got), ["top1", "top2"]);
    assert_eq!(got[0].priority, 7);
    let rest = c.queue_get("p", 0, None).unwrap();
    assert_eq!(bodies(&rest), ["mid"], "max 0 counts as 1");
    let rest = c.queue_get("p", 10, None).unwrap();
    assert_eq!(bodies(&rest), ["low", "zero"]);
    // A priority on a queue of another order is refused, and nothing is put.
    let e = c.queue_put_batch("f", items(&mixed), None).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{e}");
    assert_eq!(details(&mut c, "queue:f").depth, 0);
    for q in ["queue:f", "queue:l", "queue:p"] {
        c.delete(q).unwrap();
    }
}

#[test]
fn a_full_queue_makes_a_put_wait_until_a_get_and_an_ack_free_room() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("full", &QueueOptions::new().capacity(2))
        .unwrap();
    c.queue_put_batch("full", items(&[("1", 0), ("2", 0)]), None)
        .unwrap();
    let e = c.queue_put("full", b"3", Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::WouldBlock), "{e}");
    let started = Instant::now();
    let e = c
        .queue_put("full", b"3", Some(Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TimedOut), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(90));
    // A batch that can never fit is refused at once.
    let e = c
        .queue_put_batch("full", items(&[("a", 0), ("b", 0), ("c", 0)]), None)
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TooLarge), "{e}");

    let putter = {
        let mut p = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || {
            p.queue_put("full", b"3", Some(Duration::from_secs(10)))
                .map(|()| Instant::now())
        })
    };
    eventually("the put to wait", || {
        details(&mut c, "queue:full").putters == 1
    });
    // Taken but not acknowledged: still held, still no room.
    let got = c.queue_get("full", 1, None).unwrap();
    assert_eq!(bodies(&got), ["1"]);
    thread::sleep(Duration::from_millis(100));
    let q = details(&mut c, "queue:full");
    assert_eq!((q.putters, q.depth, q.consumers.len()), (1, 1, 1));
    assert_eq!(q.consumers[0].in_flight, 1);
    assert_eq!(q.consumers[0].pid, std::process::id() as i32);
    let acked_at = Instant::now();
    ack_all(&mut c, "full", &got);
    let put_at = putter.join().unwrap().unwrap();
    assert!(put_at >= acked_at, "the put went in before the ack");
    let rest = c.queue_get("full", 5, None).unwrap();
    assert_eq!(bodies(&rest), ["2", "3"]);
    ack_all(&mut c, "full", &rest);

    // Bytes bound a queue too: each message counts its body plus 64.
    c.create_queue("bytes", &QueueOptions::new().max_bytes(300))
        .unwrap();
    c.queue_put("bytes", &[7; 100], None).unwrap();
    let e = c
        .queue_put("bytes", &[7; 100], Some(Duration::ZERO))
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::WouldBlock), "{e}");
    assert_eq!(details(&mut c, "queue:bytes").bytes, 164);
    let e = c.queue_put("bytes", &[7; 300], None).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TooLarge), "{e}");
    c.delete("queue:full").unwrap();
    c.delete("queue:bytes").unwrap();
}

#[test]
fn a_get_waits_times_out_or_would_block_and_a_put_wakes_it() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("g", &QueueOptions::new()).unwrap();
    let e = c.queue_get("g", 1, Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::WouldBlock), "{e}");
    let started = Instant::now();
    let e = c
        .queue_get("g", 1, Some(Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TimedOut), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(90));
    let getter = {
        let mut g = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || {
            let got = g.queue_get("g", 10, Some(Duration::from_secs(10)))?;
            ack_all(&mut g, "g", &got);
            Ok::<_, Error>(bodies(&got))
        })
    };
    eventually("the get to wait", || {
        details(&mut c, "queue:g").getters == 1
    });
    c.queue_put("g", b"wake", None).unwrap();
    assert_eq!(getter.join().unwrap().unwrap(), ["wake"]);
    // Waits on a deleted queue end with not-found: a get (the queue is
    // empty) and a join (a message is held, not acknowledged).
    c.queue_put("g", b"held", None).unwrap();
    let mut holder = Client::connect_to(&d.socket).unwrap();
    assert_eq!(holder.queue_get("g", 1, None).unwrap().len(), 1);
    let getter = {
        let mut g = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || g.queue_get("g", 1, None))
    };
    let joiner = {
        let mut j = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || j.queue_join("g", None))
    };
    eventually("the get and the join to wait", || {
        let q = details(&mut c, "queue:g");
        q.getters == 1 && q.joiners == 1
    });
    c.delete("queue:g").unwrap();
    for e in [
        getter.join().unwrap().unwrap_err(),
        joiner.join().unwrap().unwrap_err(),
    ] {
        assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
    }
}

#[test]
fn only_the_connection_that_got_a_delivery_may_acknowledge_it() {
    let d = TestDaemon::start();
    let mut a = Client::connect_to(&d.socket).unwrap();
    let mut b = Client::connect_to(&d.socket).unwrap();
    a.create_queue("own", &QueueOptions::new()).unwrap();
    a.queue_put_batch("own", items(&[("x", 0), ("y", 0)]), None)
        .unwrap();
    let got = a.queue_get("own", 2, None).unwrap();
    let e = b.queue_ack("own", &[got[0].id]).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{e}");
    // All or none: one foreign id spoils the batch.
    let e = a.queue_ack("own", &[got[0].id, 999_999]).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{e}");
    assert_eq!(details(&mut a, "queue:own").consumers[0].in_flight, 2);
    ack_all(&mut a, "own", &got);
    let e = a.queue_ack("own", &[got[0].id]).unwrap_err();
    assert_eq!(
        e.code(),
        Some(ErrorCode::InvalidArgument),
        "acked twice: {e}"
    );
    let q = details(&mut a, "queue:own");
    assert_eq!((q.acked, q.depth, q.consumers.len()), (2, 0, 0));
    a.delete("queue:own").unwrap();
}

#[test]
fn a_closed_consumer_s_deliveries_go_back_to_the_head_and_are_counted() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("back", &QueueOptions::new()).unwrap();
    c.queue_put_batch("back", items(&[("1", 0), ("2", 0), ("3", 0)]), None)
        .unwrap();
    {
        let mut consumer = Client::connect_to(&d.socket).unwrap();
        let got = consumer.queue_get("back", 2, None).unwrap();
        assert_eq!(bodies(&got), ["1", "2"]);
        // One done, one not: only the second comes back.
        consumer.queue_ack("back", &[got[0].id]).unwrap();
    }
    eventually("the delivery to come back", || {
        details(&mut c, "queue:back").redelivered == 1
    });
    let got = c.queue_get("back", 10, None).unwrap();
    assert_eq!(bodies(&got), ["2", "3"], "given back to the head");
    assert_eq!(got.iter().map(|g| g.deliveries).collect::<Vec<_>>(), [2, 1]);
    ack_all(&mut c, "back", &got);
    let q = details(&mut c, "queue:back");
    assert_eq!((q.put, q.acked, q.redelivered, q.dead), (3, 3, 1, 0));
    c.delete("queue:back").unwrap();
}

#[test]
fn a_message_delivered_max_deliveries_times_goes_to_the_dead_letters() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("jobs", &QueueOptions::new().max_deliveries(2))
        .unwrap();
    let dead = dead_letter_address("jobs");
    assert_eq!(dead, "queue:jobs.dead");
    assert_eq!(details(&mut c, &dead).depth, 0, "created with the queue");
    c.queue_put_batch("jobs", items(&[("poison", 0), ("fine", 0)]), None)
        .unwrap();
    for attempt in 1..=2 {
        let mut crashing = Client::connect_to(&d.socket).unwrap();
        let got = crashing.queue_get("jobs", 1, None).unwrap();
        assert_eq!(bodies(&got), ["poison"]);
        assert_eq!(got[0].deliveries, attempt);
        drop(crashing);
        eventually("the consumer's end to be seen", || {
            details(&mut c, "queue:jobs").consumers.is_empty()
        });
    }
    let got = c.queue_get("jobs", 10, None).unwrap();
    assert_eq!(bodies(&got), ["fine"], "the poison message is gone");
    ack_all(&mut c, "jobs", &got);
    let q = details(&mut c, "queue:jobs");
    assert_eq!((q.redelivered, q.dead, q.max_deliveries), (1, 1, 2));
    let letters = c.queue_get(&dead, 10, None).unwrap();
    assert_eq!(bodies(&letters), ["poison"]);
    assert_eq!(
        letters[0].deliveries, 1,
        "a fresh delivery in the dead letters"
    );
    ack_all(&mut c, &dead, &letters);
    c.queue_join("jobs", Some(Duration::ZERO)).unwrap();
    c.delete("queue:jobs").unwrap();
    let e = c.stat(&dead).unwrap_err();
    assert_eq!(
        e.code(),
        Some(ErrorCode::NotFound),
        "deleted with its queue: {e}"
    );
}

#[test]
fn join_waits_until_every_message_put_is_acknowledged() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("j", &QueueOptions::new()).unwrap();
    c.queue_join("j", Some(Duration::ZERO)).unwrap();
    c.queue_put_batch("j", items(&[("1", 0), ("2", 0), ("3", 0)]), None)
        .unwrap();
    let e = c.queue_join("j", Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::WouldBlock), "{e}");
    let e = c
        .queue_join("j", Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TimedOut), "{e}");
    let joiner = {
        let mut j = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || {
            j.queue_join("j", Some(Duration::from_secs(20)))
                .map(|()| Instant::now())
        })
    };
    eventually("the join to wait", || {
        details(&mut c, "queue:j").joiners == 1
    });
    let two = c.queue_get("j", 2, None).unwrap();
    ack_all(&mut c, "j", &two);
    // The last one is got and given back (its consumer closes): not done.
    let mut quitter = Client::connect_to(&d.socket).unwrap();
    assert_eq!(quitter.queue_get("j", 1, None).unwrap().len(), 1);
    drop(quitter);
    eventually("the delivery to come back", || {
        details(&mut c, "queue:j").depth == 1
    });
    assert!(
        !joiner.is_finished(),
        "joined with a message unacknowledged"
    );
    let last = c.queue_get("j", 1, None).unwrap();
    let acked_at = Instant::now();
    ack_all(&mut c, "j", &last);
    let joined_at = joiner.join().unwrap().unwrap();
    assert!(joined_at >= acked_at);
    c.delete("queue:j").unwrap();
}

#[test]
fn a_sender_and_a_receiver_keep_order_through_a_small_queue() {
    const N: u64 = 20_000;
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    // Small: the pipelined puts wait for room most of the time.
    c.create_queue("pipe", &QueueOptions::new().capacity(100))
        .unwrap();
    let producer = {
        let client = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || {
            let mut tx = QueueSender::new(client, "pipe").batch(8).cork(4);
            for n in 0..N {
                tx.send(&n.to_le_bytes()).unwrap();
            }
            tx.flush().unwrap();
            (tx.confirmed(), tx.refused())
        })
    };
    let client = Client::connect_to(&d.socket).unwrap();
    let mut rx = QueueReceiver::new(client, "pipe").prefetch(16);
    for n in 0..N {
        let got = rx.recv().unwrap();
        assert_eq!(got.body, n.to_le_bytes(), "message {n}");
        assert_eq!(got.deliveries, 1);
        rx.ack(got.id).unwrap();
    }
    assert_eq!(producer.join().unwrap(), (N, 0));
    rx.flush().unwrap();
    assert_eq!((rx.received(), rx.acked(), rx.held()), (N, N, 0));
    c.queue_join("pipe", Some(Duration::from_secs(10))).unwrap();
    let q = details(&mut c, "queue:pipe");
    assert_eq!((q.put, q.acked, q.redelivered), (N, N, 0));
    drop(rx);
    c.delete("queue:pipe").unwrap();
}

#[test]
fn a_sender_reports_refused_puts_and_a_receiver_a_deleted_queue() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("ten", &QueueOptions::new().capacity(10))
        .unwrap();
    let client = Client::connect_to(&d.socket).unwrap();
    let mut tx = QueueSender::new(client, "ten").timeout(Some(Duration::ZERO));
    let mut send_errors = Vec::new();
    for n in 0..20u8 {
        if let Err(e) = tx.send(&[n]) {
            send_errors.push(e);
        }
    }
    let flushed = tx.flush();
    let errors: Vec<&Error> = send_errors.iter().chain(flushed.as_ref().err()).collect();
    assert!(!errors.is_empty(), "no refusal reported");
    assert!(
        errors
            .iter()
            .all(|e| e.code() == Some(ErrorCode::WouldBlock))
    );
    // A send that returned an error did not take its message.
    assert_eq!(
        tx.confirmed() + tx.refused() + send_errors.len() as u64,
        20,
        "{errors:?}"
    );
    assert_eq!(tx.confirmed(), 10);
    let got = c.queue_get("ten", 20, None).unwrap();
    assert_eq!(
        got.iter().map(|g| g.body[0]).collect::<Vec<_>>(),
        (0..10).collect::<Vec<u8>>()
    );

    let client = Client::connect_to(&d.socket).unwrap();
    let mut rx = QueueReceiver::new(client, "ten");
    assert!(
        rx.recv_timeout(Duration::from_millis(50))
            .unwrap()
            .is_none()
    );
    c.delete("queue:ten").unwrap();
    let e = rx.recv().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
}

#[test]
fn another_uid_is_kept_out_of_a_private_queue_and_a_version_6_client_sees_none() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "queue:private"]);
    d.ipcctl_ok(&["create", "queue:shared", "--mode", "0606"]);
    d.ipcctl_ok(&["send", "queue:private", "secret"]);
    let out = as_nobody(&d, &["recv", "queue:private", "--nonblock"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission-denied"),
        "{out:?}"
    );
    // Read and write for others: nobody may put, get and acknowledge.
    let out = as_nobody(&d, &["send", "queue:shared", "from nobody"]);
    assert!(out.status.success(), "{out:?}");
    let out = as_nobody(&d, &["recv", "queue:shared", "--ack"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from nobody\n",
        "{out:?}"
    );

    let mut new = Client::connect_to(&d.socket).unwrap();
    let mut old = Client::builder()
        .socket(&d.socket)
        .protocol_version(6)
        .connect()
        .unwrap();
    old.create_event("v6e", false, None).unwrap();
    let listed: Vec<String> = old
        .list(None)
        .unwrap()
        .into_iter()
        .map(|o| o.address)
        .collect();
    assert_eq!(listed, ["event:v6e"]);
    let e = old.stat("queue:private").unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownKind), "{e}");
    assert!(e.to_string().contains("version 7"), "{e}");
    let e = old.queue_put("private", b"x", None).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownKind), "{e}");
    let e = old.create_queue("v6q", &QueueOptions::new()).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownKind), "{e}");
    for q in ["queue:private", "queue:shared", "event:v6e"] {
        new.delete(q).unwrap();
    }
}

#[test]
fn ack_get_takes_the_next_message_as_it_acknowledges_the_last() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_queue("ag", &QueueOptions::new()).unwrap();
    for b in ["a", "b", "c"] {
        c.queue_put("ag", b.as_bytes(), None).unwrap();
    }
    let mut got = c.queue_ack_get("ag", &[], 1, None).unwrap();
    let mut seen = bodies(&got);
    // Another connection cannot acknowledge what this one holds: refused,
    // and nothing is got.
    let mut other = Client::connect_to(&d.socket).unwrap();
    let e = other
        .queue_ack_get("ag", &[got[0].id], 1, None)
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{e}");
    assert_eq!(details(&mut c, "queue:ag").depth, 2);
    while let Ok(next) = c.queue_ack_get("ag", &[got[0].id], 1, Some(Duration::ZERO)) {
        seen.extend(bodies(&next));
        got = next;
    }
    // The last get would block, but its acknowledgement was made.
    assert_eq!(seen, ["a", "b", "c"]);
    let s = details(&mut c, "queue:ag");
    assert_eq!((s.acked, s.depth, s.bytes), (3, 0, 0));
    c.queue_join("ag", Some(Duration::ZERO)).unwrap();
}

#[test]
fn a_dead_letter_name_is_made_only_with_its_queue_and_never_another_user_s() {
    let d = TestDaemon::start();
    if !nix::unistd::Uid::effective().is_root() {
        return; // needs uid 65534
    }
    // Nobody may squat on a name kept for a queue's dead letters...
    let out = as_nobody(&d, &["create", "queue:payroll.dead", "--mode", "0666"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dead-letter queues"),
        "{out:?}"
    );
    d.ipcctl_ok(&["create", "queue:payroll", "--max-deliveries", "1"]);
    // ...nor take one over once it was deleted (not even its owner).
    d.ipcctl_ok(&["delete", "queue:payroll.dead"]);
    let out = as_nobody(&d, &["create", "queue:payroll.dead", "--mode", "0666"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = d.run_ipcctl(&["create", "queue:payroll.dead"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A dead letter with no companion is dropped (and logged), not handed on.
    d.ipcctl_ok(&["send", "queue:payroll", "ssn 123"]);
    d.ipcctl_ok(&["recv", "queue:payroll"]);
    let mut c = Client::connect_to(&d.socket).unwrap();
    eventually("the message is dead", || {
        details(&mut c, "queue:payroll").dead == 1
    });
    assert!(d.log().contains("dropping messages"), "{}", d.log());
    d.ipcctl_ok(&["delete", "queue:payroll"]);
}
