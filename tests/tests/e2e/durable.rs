//! Durable work queues end to end, through the generic `Client::operate`:
//! after `kill -9` of ipcd and a restart, every put answered OK and not
//! acknowledged is back, in order, for each flush policy — also when ipcd is
//! killed again and again under a producer; a damaged journal end is cut,
//! kept in a side file and reported, never a crash; delete removes the
//! journal.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use ipc_client::protocol::{
    CreateSpec, Fsync, KindDetails, KindOp, KindParams, KindReply, Lifetime, QueueItem, QueueOp,
    QueueOrder, QueueParams, QueueReply,
};
use ipc_client::{Client, Error};
use ipcd_tests::TestDaemon;

fn durable(fsync: Fsync) -> CreateSpec {
    CreateSpec {
        mode: None,
        lifetime: Lifetime::Persistent,
        adopt: false,
        params: KindParams::Queue(QueueParams {
            capacity: 0,
            max_bytes: 8 << 20,
            order: QueueOrder::Fifo,
            max_deliveries: 0,
            durable: Some(fsync),
        }),
    }
}

fn put(c: &mut Client, address: &str, numbers: std::ops::Range<u64>) -> Result<(), Error> {
    let items = numbers
        .map(|n| QueueItem {
            priority: 0,
            body: n.to_string().into_bytes(),
        })
        .collect::<Vec<_>>();
    let want = items.len() as u32;
    match c.operate(
        address,
        KindOp::Queue(QueueOp::Put {
            items,
            timeout_ms: None,
        }),
    )? {
        KindReply::Queue(QueueReply::Put { count }) if count == want => Ok(()),
        other => panic!("unexpected answer to a put: {other:?}"),
    }
}

/// Takes every message now in the queue (acknowledging them), as numbers.
fn drain(c: &mut Client, address: &str) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        let op = KindOp::Queue(QueueOp::Get {
            max: 256,
            timeout_ms: Some(0),
        });
        let got = match c.operate(address, op) {
            Ok(KindReply::Queue(QueueReply::Got(d))) => d,
            Err(Error::Server(w)) if w.code == ipc_client::ErrorCode::WouldBlock => return out,
            other => panic!("unexpected answer to a get: {other:?}"),
        };
        let ids = got.iter().map(|d| d.id).collect();
        out.extend(
            got.iter()
                .map(|d| String::from_utf8_lossy(&d.body).parse::<u64>().unwrap()),
        );
        c.operate(address, KindOp::Queue(QueueOp::Ack { ids }))
            .unwrap();
    }
}

fn journal_path(d: &TestDaemon, name: &str) -> PathBuf {
    d.state_dir.join("queue").join(format!("{name}.journal"))
}

#[test]
fn answered_puts_not_acknowledged_survive_kill_9_in_order_for_every_policy() {
    let mut d = TestDaemon::start();
    let policies = [
        ("always", Fsync::Always),
        ("batch", Fsync::Batch),
        ("never", Fsync::Never),
    ];
    {
        let mut c = Client::connect_to(&d.socket).unwrap();
        for (name, fsync) in policies {
            let address = format!("queue:{name}");
            c.create(&address, durable(fsync)).unwrap();
            for start in (0..200).step_by(20) {
                put(&mut c, &address, start..start + 20).unwrap();
            }
            // 0..10 acknowledged; 10..30 delivered, never acknowledged.
            let op = KindOp::Queue(QueueOp::Get {
                max: 30,
                timeout_ms: None,
            });
            let KindReply::Queue(QueueReply::Got(got)) = c.operate(&address, op).unwrap() else {
                panic!("no deliveries");
            };
            assert_eq!(got.len(), 30);
            let ids = got[..10].iter().map(|d| d.id).collect();
            c.operate(&address, KindOp::Queue(QueueOp::Ack { ids }))
                .unwrap();
            let info = c.stat(&address).unwrap();
            assert!(info.kernel_name.ends_with(".journal"), "{info:?}");
            // Messages are the daemon's to keep: nobody else reads the journal.
            let mode = std::fs::metadata(&info.kernel_name)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "journal mode {mode:o}");
        }
        d.kill9();
    }
    d.restart();
    let mut c = Client::connect_to(&d.socket).unwrap();
    for (name, _) in policies {
        let address = format!("queue:{name}");
        // Everything answered and not acknowledged, in order. An
        // acknowledgement is not waited for, so one the kill overtook may
        // bring its message back (at least once), but only from the front.
        let back = drain(&mut c, &address);
        let start = back.first().copied().unwrap_or(200).min(10);
        assert_eq!(back, (start..200).collect::<Vec<_>>(), "{name}");
        c.delete(&address).unwrap();
        assert!(
            !journal_path(&d, name).exists(),
            "delete removes the journal"
        );
    }
}

#[test]
fn a_producer_loses_no_answered_put_when_ipcd_is_killed_again_and_again() {
    let mut d = TestDaemon::start();
    let address = "queue:crashy";
    Client::connect_to(&d.socket)
        .unwrap()
        .create(address, durable(Fsync::Batch))
        .unwrap();
    let mut answered = 0u64; // every number below this was answered OK
    let mut seen = Vec::new();
    for round in 0..5 {
        let socket = d.socket.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut c = Client::connect_to(&socket).unwrap();
                let mut next = answered;
                while !stop.load(Ordering::Relaxed) {
                    if put(&mut c, address, next..next + 8).is_err() {
                        break;
                    }
                    next += 8;
                }
                next
            })
        };
        thread::sleep(Duration::from_millis(150 + 50 * round));
        d.kill9();
        stop.store(true, Ordering::Relaxed);
        let ok_up_to = producer.join().unwrap();
        d.restart();
        let mut c = Client::connect_to(&d.socket).unwrap();
        let all = drain(&mut c, address);
        // Messages acknowledged in the round before may come back (an
        // acknowledgement is not waited for: at least once), from the front.
        assert!(
            all.windows(2).all(|w| w[0] + 1 == w[1]),
            "round {round}: {all:?}"
        );
        let back: Vec<u64> = all.into_iter().skip_while(|n| *n < answered).collect();
        // Everything answered is there, in order; the put in flight at the
        // kill may or may not be (its answer never came).
        let expected: Vec<u64> = (answered..ok_up_to).collect();
        assert!(back.len() >= expected.len(), "round {round}: lost puts");
        assert_eq!(back[..expected.len()], expected[..], "round {round}");
        assert!(
            back.windows(2).all(|w| w[0] + 1 == w[1]),
            "round {round}: order"
        );
        answered = back.last().map_or(ok_up_to, |n| n + 1).max(ok_up_to);
        seen.push(back.len());
    }
    assert!(
        seen.iter().all(|n| *n > 0),
        "the producer made progress: {seen:?}"
    );
}

#[test]
fn a_damaged_journal_end_is_cut_kept_and_reported() {
    let mut d = TestDaemon::start();
    let address = "queue:torn";
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create(address, durable(Fsync::Always)).unwrap();
    put(&mut c, address, 0..5).unwrap();
    drop(c);
    d.kill9();
    // A torn last write: a record header that promises more than is there.
    let path = journal_path(&d, "torn");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]);
    std::fs::write(&path, &bytes).unwrap();
    d.restart();
    let mut c = Client::connect_to(&d.socket).unwrap();
    let info = c.stat(address).unwrap();
    let KindDetails::Queue(q) = info.details else {
        panic!("{info:?}");
    };
    let report = q
        .journal
        .and_then(|j| j.recovery)
        .expect("the cut is reported");
    assert!(report.contains("11"), "names the bytes cut: {report}");
    assert!(d.log().contains("cut"), "logged: {}", d.log());
    let side = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(".cut-"));
    assert!(side, "the cut bytes are kept in a side file");
    assert_eq!(drain(&mut c, address), (0..5).collect::<Vec<_>>());
    put(&mut c, address, 5..6).unwrap();
    assert_eq!(drain(&mut c, address), [5]);
}
