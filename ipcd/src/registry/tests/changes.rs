//! Changes from several threads at once, through `changes::Store`: creates and
//! deletes that overlap, on distinct addresses and on one; the limits and
//! shares counted with the creates in flight; a save that fails undoing only
//! its own change; reads answered while a change is inside its save; and every
//! pending intent of a crash recovered at the next start. A test hook stops a
//! change at a [`Stage`] to make the overlaps happen.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::changes::Stage;
use crate::intent::{INTENT_FILE, Intent, Journal};

/// Threads wait at a gate until it is opened; it counts who arrived.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, usize)>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut s = self.state.lock().unwrap();
        s.1 += 1;
        self.cv.notify_all();
        while !s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }

    fn open(&self) {
        self.state.lock().unwrap().0 = true;
        self.cv.notify_all();
    }

    /// Waits until `n` threads have arrived.
    fn arrived(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        while s.1 < n {
            let (guard, timeout) = self.cv.wait_timeout(s, Duration::from_secs(10)).unwrap();
            assert!(!timeout.timed_out(), "only {} of {n} arrived", guard.1);
            s = guard;
        }
    }
}

/// Opens its gate when dropped, so a failed assertion cannot leave a thread
/// stopped at it (and the test hanging instead of failing).
struct OpensOnDrop<'a>(&'a Gate);

impl Drop for OpensOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Polls `cond` until it holds; fails after 10 s.
fn until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn create_as(
    fx: &Fixture,
    address: &str,
    params: KindParams,
    peer: &Peer,
    tunables: &Tunables,
    quota: &Quota,
) -> Result<ObjectInfo, RequestError> {
    fx.store
        .create(addr(address), &spec(params), peer, SESSION, tunables, quota)
}

fn create(fx: &Fixture, address: &str, params: KindParams) -> Result<ObjectInfo, RequestError> {
    create_as(fx, address, params, &OWNER, &Tunables::default(), &QUOTA)
}

/// An unprivileged caller of its own, uid `uid`.
fn user(uid: u32) -> Peer {
    Peer {
        pid: 100,
        uid,
        gid: 100,
    }
}

fn ok_count<T>(results: &[Result<T, RequestError>]) -> usize {
    results.iter().filter(|r| r.is_ok()).count()
}

/// Runs `f(i)` on `n` threads started together; their results in order.
fn together<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_creates_all_land_and_share_their_saves() {
    let fx = Fixture::new();
    let saves = Arc::new(AtomicUsize::new(0));
    let counted = saves.clone();
    fx.store.set_hook(move |stage| {
        if stage == Stage::Save {
            counted.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(30));
        }
    });
    let n = 16;
    let results = together(n, |i| create(&fx, &format!("fifo:f{i:02}"), fifo()));
    assert_eq!(ok_count(&results), n, "{results:?}");
    let expected: Vec<String> = (0..n).map(|i| format!("fifo:f{i:02}")).collect();
    assert_eq!(fx.saved(), expected, "every create is on disk");
    assert_eq!(listed(&fx.reg(), &ROOT), expected);
    let saves = saves.load(Ordering::Relaxed);
    assert!(saves < n, "{saves} saves for {n} creates: none was shared");
    assert_eq!(Journal::pending(&fx.state_dir), [], "every intent blanked");
    let deleted = together(n, |i| fx.store.delete(&addr(&expected[i]), &OWNER));
    assert_eq!(ok_count(&deleted), n, "{deleted:?}");
    assert!(fx.saved().is_empty() && fx.reg().is_empty());
    assert!((0..n).all(|i| !is_fifo(&fx.kernel_name(&expected[i]))));
}

#[test]
fn of_concurrent_creates_of_one_address_exactly_one_wins() {
    let fx = Fixture::new();
    fx.store.set_hook(|stage| {
        if stage == Stage::Made {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    for address in ["fifo:same", "pipe:same", "shm:same"] {
        let params = match address {
            "fifo:same" => fifo(),
            "pipe:same" => pipe(),
            _ => shm(4096),
        };
        let results = together(8, |i| {
            let peer = user(2000 + i as u32);
            create_as(
                &fx,
                address,
                params.clone(),
                &peer,
                &Tunables::default(),
                &QUOTA,
            )
        });
        assert_eq!(ok_count(&results), 1, "{address}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(matches!(e, RequestError::AlreadyExists(_)), "{e:?}");
            }
        }
        let winner = results.iter().position(Result::is_ok).unwrap();
        let info = fx.reg().stat(&addr(address), &ROOT).unwrap();
        assert_eq!(info.owner_uid, 2000 + winner as u32);
        assert_eq!(fx.saved().iter().filter(|a| *a == address).count(), 1);
    }
    assert!(is_fifo(&fx.kernel_name("fifo:same")));
    fx.delete_all(&["fifo:same", "pipe:same", "shm:same"]);
}

#[test]
fn creates_in_flight_count_against_the_object_limit_and_the_shares() {
    let fx = Fixture::new();
    // Deterministic first: a create stopped before it is registered holds its reservation.
    let gate = Arc::new(Gate::default());
    let (stop, first) = (gate.clone(), Arc::new(AtomicUsize::new(0)));
    fx.store.set_hook(move |stage| {
        if stage == Stage::Made && first.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.wait();
        }
    });
    let one = Tunables {
        limits: Limits {
            max_objects_per_uid: 1,
            ..DEFAULT_LIMITS
        },
        ..Tunables::default()
    };
    std::thread::scope(|s| {
        let _opens = OpensOnDrop(&gate);
        let first = s.spawn(|| create_as(&fx, "pipe:first", pipe(), &OWNER, &one, &QUOTA));
        gate.arrived(1);
        assert_eq!(fx.reg().held_by(OWNER.uid).objects, 0, "not yet registered");
        assert_err!(
            create_as(&fx, "pipe:second", pipe(), &OWNER, &one, &QUOTA),
            RequestError::LimitExceeded(_)
        );
        gate.open();
        first.join().unwrap().expect("the first create");
    });
    fx.delete_all(&["pipe:first"]);

    // Then many at once, each stopped a moment after making its kernel object.
    fx.store.set_hook(|stage| {
        if stage == Stage::Made {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let three = Tunables {
        limits: Limits {
            max_objects_per_uid: 3,
            ..DEFAULT_LIMITS
        },
        ..Tunables::default()
    };
    let results = together(8, |i| {
        create_as(&fx, &format!("pipe:p{i}"), pipe(), &OWNER, &three, &QUOTA)
    });
    assert_eq!(ok_count(&results), 3, "max_objects_per_uid 3: {results:?}");
    assert_eq!(fx.reg().held_by(OWNER.uid).objects, 3);

    let share = Quota {
        shares: Shares {
            shm_bytes: 3 * 4096,
            ..QUOTA.shares
        },
        ..QUOTA
    };
    let t = Tunables::default();
    let results = together(8, |i| {
        create_as(&fx, &format!("shm:s{i}"), shm(4096), &GROUP, &t, &share)
    });
    assert_eq!(ok_count(&results), 3, "shm_bytes_per_uid: {results:?}");
    assert_eq!(fx.reg().held_by(GROUP.uid).shm_bytes, 3 * 4096);

    // GROUP's three segments take half of this budget.
    let budget = Quota {
        shm_budget: 6 * 4096,
        ..QUOTA
    };
    let results = together(8, |i| {
        let peer = user(3000 + i as u32);
        create_as(&fx, &format!("shm:b{i}"), shm(4096), &peer, &t, &budget)
    });
    assert_eq!(ok_count(&results), 3, "shm_budget_bytes: {results:?}");

    let all: Vec<String> = listed(&fx.reg(), &ROOT);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_eq!(all.len(), 9);
    fx.delete_all(&all);
}

/// A hook that stops the first save at a gate, then makes it fail (a
/// directory where the temp file goes), and lets the next saves succeed.
fn fail_first_save(fx: &Fixture) -> Arc<Gate> {
    let gate = Arc::new(Gate::default());
    let (stop, calls) = (gate.clone(), Arc::new(AtomicUsize::new(0)));
    let obstacle = fx.state_dir.join(format!(".{}.tmp", persist::STATE_FILE));
    fx.store.set_hook(move |stage| {
        if stage != Stage::Save {
            return;
        }
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.wait();
            std::fs::create_dir(&obstacle).unwrap();
        } else {
            let _ = std::fs::remove_dir(&obstacle);
        }
    });
    gate
}

#[test]
fn a_failed_save_undoes_its_own_change_only() {
    let mut fx = Fixture::new();
    for address in ["fifo:c", "fifo:keep"] {
        fx.create(address, spec(fifo()), &OWNER).unwrap();
    }
    let gate = fail_first_save(&fx);
    let f = &fx;
    std::thread::scope(|s| {
        let (fx, _opens) = (f, OpensOnDrop(&gate));
        // The first create's save stops, and then fails ...
        let a = s.spawn(|| create(fx, "fifo:a", fifo()));
        gate.arrived(1);
        // ... while a create and a delete queue behind it (both in its snapshot).
        let b = s.spawn(|| create(fx, "fifo:b", fifo()));
        let c = s.spawn(|| fx.store.delete(&addr("fifo:c"), &OWNER));
        until("b registered and c taken out", || {
            let reg = fx.reg();
            reg.stat(&addr("fifo:b"), &ROOT).is_ok() && reg.stat(&addr("fifo:c"), &ROOT).is_err()
        });
        gate.open();
        let dir = fx.state_dir.display().to_string();
        assert_err!(
            a.join().unwrap(),
            RequestError::Os { context, .. } if context.contains(&dir)
        );
        b.join()
            .unwrap()
            .expect("the create behind the failed save");
        c.join()
            .unwrap()
            .expect("the delete behind the failed save");
    });
    assert!(
        !is_fifo(&fx.kernel_name("fifo:a")),
        "the failed create is undone"
    );
    assert!(is_fifo(&fx.kernel_name("fifo:b")));
    assert!(!is_fifo(&fx.kernel_name("fifo:c")));
    assert_eq!(fx.saved(), ["fifo:b", "fifo:keep"]);
    assert_eq!(listed(&fx.reg(), &ROOT), ["fifo:b", "fifo:keep"]);
    assert_eq!(Journal::pending(&fx.state_dir), []);
    fx.delete_all(&["fifo:b", "fifo:keep"]);
}

#[test]
fn a_failed_save_puts_a_deleted_object_back() {
    let mut fx = Fixture::new();
    let info = fx.create("mq:q", spec(mq()), &OWNER).unwrap();
    let gate = fail_first_save(&fx);
    gate.open();
    assert_err!(
        fx.store.delete(&addr("mq:q"), &OWNER),
        RequestError::Os { .. }
    );
    assert!(queue_exists(&info.kernel_name), "the queue is left");
    assert_eq!(fx.saved(), ["mq:q"]);
    fx.reg()
        .open(&addr("mq:q"), Access::Write, &OWNER)
        .expect("still served");
    fx.delete_all(&["mq:q"]);
    assert!(!queue_exists(&info.kernel_name));
}

#[test]
fn a_delete_in_flight_holds_its_address_and_reads_go_on_during_its_save() {
    let mut fx = Fixture::new();
    fx.create("mq:q", spec(mq()), &OWNER).unwrap();
    fx.create("fifo:other", spec(fifo()), &OWNER).unwrap();
    let queue = fx.kernel_name("mq:q");
    let gate = Arc::new(Gate::default());
    let stop = gate.clone();
    let first = Arc::new(AtomicUsize::new(0));
    fx.store.set_hook(move |stage| {
        if stage == Stage::Save && first.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.wait();
        }
    });
    let f = &fx;
    std::thread::scope(|s| {
        let (fx, _opens) = (f, OpensOnDrop(&gate));
        let delete = s.spawn(|| fx.store.delete(&addr("mq:q"), &OWNER));
        gate.arrived(1);
        // Inside the delete's save: the object is out, its queue not yet removed.
        assert!(queue_exists(&queue));
        let create = s.spawn(|| create(fx, "mq:q", mq()));
        // Reads are answered meanwhile, without waiting for the save.
        let reg = fx.reg();
        assert_err!(reg.stat(&addr("mq:q"), &OWNER), RequestError::NotFound(_));
        assert!(reg.stat(&addr("fifo:other"), &OWNER).is_ok());
        assert_eq!(listed(&reg, &OWNER), ["fifo:other"]);
        drop(reg);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !create.is_finished(),
            "the create waits for the delete to land"
        );
        gate.open();
        delete.join().unwrap().expect("delete");
        create
            .join()
            .unwrap()
            .expect("the create after the delete, not refused for the old queue");
    });
    assert!(queue_exists(&queue));
    assert_eq!(fx.saved(), ["mq:q", "fifo:other"]);
    assert_eq!(Journal::pending(&fx.state_dir), []);
    fx.delete_all(&["mq:q", "fifo:other"]);
}

#[test]
fn every_pending_intent_is_finished_at_the_next_start() {
    let mut fx = Fixture::new();
    fx.create("fifo:kept", spec(fifo()), &OWNER).unwrap();
    // What a crash in the middle of three changes leaves: kernel objects not
    // registered, each with its intent in a slot of its own, and one whose
    // change finished (registered) with its intent not yet blanked.
    let orphan_queue = fx.kernel_name("mq:orphan");
    fx.make_queue(&orphan_queue);
    let orphan_fifo = fx.kernel_name("fifo:orphan");
    make_fifo(&orphan_fifo);
    let me = nix::unistd::geteuid().as_raw();
    let mut journal = Vec::new();
    for (op, address) in [
        ("create", "mq:orphan"),
        ("delete", "fifo:orphan"),
        ("create", "fifo:kept"),
    ] {
        let intent = Intent {
            op: op.into(),
            address: address.into(),
            uid: me,
        };
        let mut slot = serde_json::to_vec(&intent).unwrap();
        slot.resize(512, b' ');
        journal.extend_from_slice(&slot);
    }
    std::fs::write(fx.state_dir.join(INTENT_FILE), journal).unwrap();
    fx.reload();
    assert!(
        !queue_exists(&orphan_queue),
        "the queue's create is finished"
    );
    assert!(!is_fifo(&orphan_fifo), "the FIFO's delete is finished");
    assert!(
        is_fifo(&fx.kernel_name("fifo:kept")),
        "a registered object is kept"
    );
    assert_eq!(listed(&fx.reg(), &ROOT), ["fifo:kept"]);
    assert_eq!(
        Journal::pending(&fx.state_dir),
        [],
        "the journal is blanked"
    );
    fx.delete_all(&["fifo:kept"]);
}

#[test]
fn one_uid_queues_at_most_its_share_of_changes_ahead_of_another() {
    use crate::changes::MAX_CHANGES_PER_UID;
    let fx = Fixture::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..MAX_CHANGES_PER_UID {
            held.push(fx.store.permit(1000).await);
        }
        let more = tokio::time::timeout(Duration::from_millis(50), fx.store.permit(1000)).await;
        assert!(
            more.is_err(),
            "uid 1000's next change waits in its own line"
        );
        let other = tokio::time::timeout(Duration::from_millis(50), fx.store.permit(1002)).await;
        assert!(other.is_ok(), "another uid is not queued behind it");
        held.pop();
        let next = tokio::time::timeout(Duration::from_secs(5), fx.store.permit(1000)).await;
        assert!(next.is_ok(), "a finished change lets the next one in");
    });
}
