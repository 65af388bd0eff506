//! The synchronization kinds end to end: a lock and a semaphore permit held
//! by a connection that closes (or a process killed with -9) go to the next
//! waiter; `ipcctl with` holds one while a command runs; no update is lost
//! under a lock (and some are without); a producer and a consumer move items
//! through two semaphores; event waits (and a set flag across a daemon
//! crash) and barrier breaks; a deleted semaphore wakes its waiters; another
//! uid is denied; a version 4 client sees none of it; a plain POSIX program
//! shares the kernel semaphore.

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ipc_client::{Client, Error, ErrorCode};
use ipcd_tests::{TestDaemon, eventually, wait_timeout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::permissions::{as_nobody, assert_denied};

fn code(e: &Error) -> Option<ErrorCode> {
    match e {
        Error::Server(w) => Some(w.code),
        _ => None,
    }
}

#[test]
fn a_lock_and_a_permit_held_by_a_closed_connection_go_to_the_waiter() {
    let d = TestDaemon::start();
    let mut a = Client::connect_to(&d.socket).unwrap();
    a.create_lock("l", false, None).unwrap();
    a.create_sem("s", 1, Some(1), None).unwrap();
    assert_eq!(a.lock_acquire("l", None).unwrap(), 1);
    assert_eq!(a.sem_acquire("s", None).unwrap(), 0);
    let mut b = Client::connect_to(&d.socket).unwrap();
    let e = b.lock_acquire("l", Some(Duration::ZERO)).unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::WouldBlock));
    let waiter = {
        let mut b = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || {
            let started = Instant::now();
            b.lock_acquire("l", Some(Duration::from_secs(5))).unwrap();
            b.sem_acquire("s", Some(Duration::from_secs(5))).unwrap();
            (started.elapsed(), b)
        })
    };
    thread::sleep(Duration::from_millis(200));
    drop(a);
    let (waited, mut w) = waiter.join().unwrap();
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    // The waiter gives its permit back (the semaphore is at its max again;
    // without this the release would race the waiter's closing connection).
    w.sem_release("s").unwrap();
    // A bounded semaphore refuses a release above its max.
    let e = b.sem_release("s").unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::InvalidArgument));
    b.delete("sem:s").unwrap();
    b.delete("lock:l").unwrap();
}

#[test]
fn event_waits_time_out_and_wake_and_a_leaving_party_breaks_a_barrier() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_event("e", false, None).unwrap();
    let e = c
        .event_wait("e", Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::TimedOut));
    let waiter = {
        let mut w = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || w.event_wait("e", Some(Duration::from_secs(5))))
    };
    thread::sleep(Duration::from_millis(100));
    c.event_set("e").unwrap();
    waiter.join().unwrap().unwrap();

    c.create_barrier("b", 2, None).unwrap();
    let e = c
        .barrier_wait("b", Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::TimedOut));
    let e = c.barrier_wait("b", Some(Duration::ZERO)).unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::Broken));
    c.barrier_reset("b").unwrap();
    let other = {
        let mut w = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || w.barrier_wait("b", Some(Duration::from_secs(5))))
    };
    let mine = c.barrier_wait("b", Some(Duration::from_secs(5))).unwrap();
    let theirs = other.join().unwrap().unwrap();
    assert_eq!(mine + theirs, 1);
}

/// `ipcctl --json stat ADDRESS`, parsed.
fn stat(d: &TestDaemon, address: &str) -> serde_json::Value {
    serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", address])).unwrap()
}

/// `ipcctl ARGS…` started in the background against `d`.
fn spawn_ipcctl(d: &TestDaemon, args: &[&str]) -> Child {
    d.ipcctl()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(child: Child) -> String {
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned()
}

#[test]
fn with_runs_the_command_holding_the_lock_and_passes_its_status() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "lock:l"]);
    d.ipcctl_ok(&["create", "sem:s", "--initial", "1", "--max", "1"]);
    let ipcctl = ipcd_tests::ipcctl_bin();
    let socket = d.socket.to_str().unwrap();
    // Inside, the lock is held: another acquire would block (exit 1).
    let inner = format!(
        "{} --socket {socket} acquire lock:l --nonblock; echo inner=$?; exit 3",
        ipcctl.display()
    );
    let out = d.run_ipcctl(&["with", "lock:l", "--", "sh", "-c", &inner]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "inner=1\n");
    // Released whatever the command's exit: free again.
    assert_eq!(stat(&d, "lock:l")["owner"], serde_json::Value::Null);
    let out = d.ipcctl_ok(&["--json", "acquire", "lock:l", "--nonblock"]);
    assert_eq!(out, "{\"acquired\":\"lock:l\",\"depth\":1}\n");
    // A command killed by a signal: 128+N, and the permit is back.
    let out = d.run_ipcctl(&["with", "sem:s", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert_eq!(stat(&d, "sem:s")["value"], 1);
    let out = d.run_ipcctl(&["with", "sem:s", "--timeout", "1s", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = d.run_ipcctl(&["with", "sem:s", "--", "/nonexistent/cmd"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert_eq!(stat(&d, "sem:s")["value"], 1);
    // release on a semaphore posts; above its max it is refused.
    let out = d.run_ipcctl(&["release", "sem:s"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // The wrong kind, and --json, are refused before connecting.
    let out = d.run_ipcctl(&["with", "event:e", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = d.run_ipcctl(&["--json", "with", "lock:l", "--", "true"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}

/// 4 processes × `count` read-then-write increments of one counter in a
/// segment, each under `guard` (`none`: no lock); returns the sum.
fn counted(guard: &str, count: u64) -> u64 {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "shm:counter", "--size", "4096"]);
    if let Some(name) = guard.strip_prefix("direct:") {
        d.ipcctl_ok(&["create", &format!("sem:{name}"), "--initial", "1"]);
    } else if guard.starts_with("sem:") {
        d.ipcctl_ok(&["create", guard, "--initial", "1", "--max", "1"]);
    } else if guard != "none" {
        d.ipcctl_ok(&["create", guard]);
    }
    let bin = ipcd_tests::bin_dir().join("locked-counter");
    let started = Instant::now();
    let mut workers: Vec<Child> = (0..4)
        .map(|_| {
            Command::new(&bin)
                .arg(&d.socket)
                .args(["shm:counter", guard, &count.to_string(), "4"])
                .spawn()
                .unwrap()
        })
        .collect();
    for w in &mut workers {
        let status = wait_timeout(w, Duration::from_secs(600)).expect("worker hung");
        assert!(status.success(), "{status}");
    }
    let took = started.elapsed();
    let out = d.run_ipcctl(&["read", "shm:counter", "--len", "8"]);
    let total = u64::from_ne_bytes(out.stdout[..8].try_into().unwrap());
    eprintln!("{guard}: 4 × {count} increments in {took:?}, sum {total}");
    total
}

/// Under `guard` the sum is exact.
fn no_update_is_lost(guard: &str, count: u64) {
    assert_eq!(counted(guard, count), 4 * count, "{guard}");
}

#[test]
fn without_the_lock_updates_are_lost() {
    // The same load-then-store increments with no lock (and a short spin
    // between the two): processes running at once overwrite each other's
    // updates (400 000 chances; none lost would mean they never overlapped).
    let total = counted("none", 100_000);
    assert!(total < 400_000, "no update lost without a lock: {total}");
}

// 4 × 250 000 round trips of acquire + release through a debug ipcd take
// about a minute and a half on 2 shared vCPUs (measured: the full million in
// 94 s under a lock; 10 000 in 1.2 s for a lock and for a semaphore alike,
// which goes through the daemon too), so the default run does a tenth of it
// and the full million is one `--ignored` test away.
#[test]
fn four_processes_lose_no_update_under_a_lock() {
    no_update_is_lost("lock:guard", 25_000);
}

#[test]
fn four_processes_lose_no_update_under_a_semaphore_of_one() {
    no_update_is_lost("sem:guard", 5_000);
}

#[test]
fn four_processes_lose_none_of_a_million_updates_under_a_directly_used_semaphore() {
    // The full million of the issue: the direct path (sem_wait/sem_post on
    // the mapped sem_t) needs no daemon round trip, so it fits a default run.
    no_update_is_lost("direct:guard", 250_000);
}

#[test]
fn the_direct_path_and_the_daemon_share_one_semaphore() {
    let d = TestDaemon::start();
    let mut c = Client::connect_to(&d.socket).unwrap();
    c.create_sem("both", 0, None, None).unwrap();
    let direct = c.open_sem("both").unwrap();
    assert_eq!(direct.address(), "sem:both");
    assert!(matches!(direct.try_wait(), Err(Error::WouldBlock)));
    let err = direct.wait_timeout(Duration::from_millis(20)).unwrap_err();
    assert!(matches!(err, Error::TimedOut), "{err}");
    // A direct post wakes a waiter queued in the daemon.
    let w = waiter(&d, "sem:both");
    thread::sleep(Duration::from_millis(100));
    direct.post().unwrap();
    let got = w.join().unwrap();
    assert!(got.elapsed() < Duration::from_secs(5));
    // The waiter's connection has closed: the daemon posts its permit back,
    // and the direct path takes it.
    direct.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(direct.value().unwrap(), 0);
    // A permit released through the daemon is taken directly too.
    let mut other = Client::connect_to(&d.socket).unwrap();
    other.sem_release("both").unwrap();
    direct.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(direct.value().unwrap(), 0);
    c.delete("sem:both").unwrap();
}

#[test]
#[ignore = "a million lock round trips: about 95 s in a debug build"]
fn four_processes_lose_none_of_a_million_updates_under_a_lock() {
    no_update_is_lost("lock:guard", 250_000);
}

/// A waiter for `address` (a lock or a semaphore) on its own connection;
/// returns when it got it.
fn waiter(d: &TestDaemon, address: &'static str) -> thread::JoinHandle<Instant> {
    let mut c = Client::connect_to(&d.socket).unwrap();
    thread::spawn(move || {
        if address.starts_with("lock:") {
            c.lock_acquire(address, Some(Duration::from_secs(10)))
                .unwrap();
        } else {
            c.sem_acquire(address, Some(Duration::from_secs(10)))
                .unwrap();
        }
        Instant::now()
    })
}

#[test]
fn a_holder_killed_with_9_gives_its_permit_to_a_waiter_within_a_second() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "lock:l"]);
    d.ipcctl_ok(&["create", "sem:s", "--initial", "1"]);
    for (address, held) in [("lock:l", "owner"), ("sem:s", "holders")] {
        let mut holder = spawn_ipcctl(&d, &["with", address, "--", "sleep", "30"]);
        eventually("the holder holds it", || {
            let v = stat(&d, address);
            !v[held].is_null() && v[held] != serde_json::json!([])
        });
        let got = waiter(&d, address);
        eventually("the waiter waits", || stat(&d, address)["waiters"] == 1);
        let killed = Instant::now();
        kill(Pid::from_raw(holder.id() as i32), Signal::SIGKILL).unwrap();
        let took = got.join().unwrap().duration_since(killed);
        assert!(took < Duration::from_secs(1), "{address}: {took:?}");
        holder.wait().unwrap();
    }
}

#[test]
fn deleting_a_semaphore_wakes_its_waiters_with_an_error() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "sem:s", "--initial", "0"]);
    d.ipcctl_ok(&["create", "lock:l"]);
    let waiting = spawn_ipcctl(&d, &["acquire", "sem:s", "--timeout", "20s"]);
    let mut client = Client::connect_to(&d.socket).unwrap();
    client.lock_acquire("lock:l", None).unwrap();
    let lock_waiting = spawn_ipcctl(&d, &["acquire", "lock:l", "--timeout", "20s"]);
    eventually("both wait", || {
        stat(&d, "sem:s")["waiters"] == 1 && stat(&d, "lock:l")["waiters"] == 1
    });
    let deleted = Instant::now();
    d.ipcctl_ok(&["delete", "sem:s", "lock:l"]);
    for (address, mut child) in [("sem:s", waiting), ("lock:l", lock_waiting)] {
        let status = wait_timeout(&mut child, Duration::from_secs(5)).expect("still waiting");
        assert!(deleted.elapsed() < Duration::from_secs(2), "{address}");
        assert_eq!(status.code(), Some(2), "{address}");
        let err = stderr_of(child);
        assert!(
            err.contains("deleted") && err.contains("(not-found)"),
            "{address}: {err}"
        );
    }
}

#[test]
fn another_uid_is_denied_the_sync_objects() {
    let d = TestDaemon::start();
    for a in ["sem:s", "lock:l", "event:e"] {
        d.ipcctl_ok(&["create", a]);
    }
    d.ipcctl_ok(&["create", "barrier:b", "--parties", "2"]);
    d.ipcctl_ok(&["create", "lock:open", "--mode", "0666"]);
    for args in [
        &["acquire", "sem:s", "--nonblock"][..],
        &["release", "sem:s"],
        &["acquire", "lock:l", "--nonblock"],
        &["with", "lock:l", "--", "true"],
        &["set", "event:e"],
        &["wait", "event:e", "--timeout", "1s"],
        &["wait", "barrier:b", "--timeout", "1s"],
        &["reset", "barrier:b"],
    ] {
        assert_denied(&as_nobody(&d, args), &args.join(" "));
    }
    assert_eq!(stat(&d, "sem:s")["value"], 1);
    let out = as_nobody(&d, &["with", "lock:open", "--", "true"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_party_killed_while_waiting_breaks_the_barrier() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "barrier:b", "--parties", "3"]);
    let mut dying = spawn_ipcctl(&d, &["wait", "barrier:b"]);
    let other = {
        let mut c = Client::connect_to(&d.socket).unwrap();
        thread::spawn(move || c.barrier_wait("barrier:b", Some(Duration::from_secs(10))))
    };
    eventually("two parties wait", || stat(&d, "barrier:b")["waiting"] == 2);
    let killed = Instant::now();
    kill(Pid::from_raw(dying.id() as i32), Signal::SIGKILL).unwrap();
    let e = other.join().unwrap().unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::Broken), "{e}");
    assert!(killed.elapsed() < Duration::from_secs(1));
    dying.wait().unwrap();
    assert_eq!(stat(&d, "barrier:b")["broken"], true);
    let out = d.run_ipcctl(&["wait", "barrier:b", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(broken)"),
        "{out:?}"
    );
    d.ipcctl_ok(&["reset", "barrier:b"]);
    assert_eq!(stat(&d, "barrier:b")["broken"], false);
}

#[test]
fn a_version_4_client_sees_none_of_the_sync_kinds() {
    let d = TestDaemon::start();
    let mut new = Client::connect_to(&d.socket).unwrap();
    new.create_lock("l", false, None).unwrap();
    new.create_sem("s", 1, None, None).unwrap();
    new.create_event("e", false, None).unwrap();
    new.create_barrier("b", 2, None).unwrap();
    let mut old = Client::builder()
        .socket(&d.socket)
        .protocol_version(4)
        .connect()
        .unwrap();
    assert_eq!(old.welcome().version, 4);
    assert!(
        old.list(None).unwrap().is_empty(),
        "newer kinds are left out"
    );
    for address in ["lock:l", "sem:s", "event:e", "barrier:b"] {
        let err = old.stat(address).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::UnknownKind), "{address}: {err}");
        assert!(err.to_string().contains("version 5"), "{err}");
    }
    assert_eq!(new.list(None).unwrap().len(), 4);
}

/// A plain POSIX program knowing nothing of ipcd: Python calling libc's
/// `sem_open`/`sem_post`/`sem_trywait`/`sem_getvalue` on the kernel name
/// (argv: OP NAME); `trywait` exits 1 when no permit is free.
const POSIX_SEM: &str = r#"
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
for f in ("sem_post", "sem_trywait", "sem_close"):
    getattr(libc, f).argtypes = [ctypes.c_void_p]
libc.sem_getvalue.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
op, name = sys.argv[1], sys.argv[2]
sem = libc.sem_open(name.encode(), 0)
if not sem:
    sys.exit("sem_open: errno %d" % ctypes.get_errno())
if op == "post":
    assert libc.sem_post(sem) == 0
elif op == "trywait":
    if libc.sem_trywait(sem) != 0:
        sys.exit(1)
else:
    v = ctypes.c_int()
    assert libc.sem_getvalue(sem, ctypes.byref(v)) == 0
    print(v.value)
libc.sem_close(sem)
"#;

#[test]
fn a_plain_posix_program_uses_the_kernel_semaphore_by_name() {
    if Command::new("python3").arg("--version").output().is_err() {
        println!("note: python3 is not installed; skipping the POSIX semaphore interop test");
        return;
    }
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "sem:s", "--initial", "0"]);
    let kernel = stat(&d, "sem:s")["kernel_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let posix = |op: &str| {
        ipcd_tests::run_with_timeout(Command::new("python3").args(["-c", POSIX_SEM, op, &kernel]))
    };
    // A waiter in ipcd is woken by a post from a program that never heard of it.
    let waiting = spawn_ipcctl(&d, &["acquire", "sem:s", "--timeout", "10s"]);
    eventually("the acquire waits", || stat(&d, "sem:s")["waiters"] == 1);
    let out = posix("post");
    assert!(out.status.success(), "{out:?}");
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // ipcctl exited: its permit was posted back, and the program can take it.
    eventually("the permit is back", || stat(&d, "sem:s")["value"] == 1);
    assert_eq!(String::from_utf8_lossy(&posix("value").stdout), "1\n");
    assert_eq!(posix("trywait").status.code(), Some(0));
    assert_eq!(posix("trywait").status.code(), Some(1), "none left");
    assert_eq!(stat(&d, "sem:s")["value"], 0);
}

#[test]
fn producer_and_consumer_pass_items_through_two_semaphores() {
    producer_and_consumer(500);
}

#[test]
#[ignore = "100 000 items: 400 000 round trips, about 12 s in a debug build"]
fn producer_and_consumer_pass_100_000_items() {
    producer_and_consumer(100_000);
}

/// A producer and a consumer move `n` items in order through 4 slots of a
/// segment, with `sem:spaces` (initial 4) and `sem:items` (initial 0), each
/// taking (consuming) what the other posts.
fn producer_and_consumer(n: u64) {
    const SLOTS: u64 = 4;
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "shm:slots", "--size", "4096"]);
    d.ipcctl_ok(&["create", "sem:spaces", "--initial", "4"]);
    d.ipcctl_ok(&["create", "sem:items", "--initial", "0"]);
    let socket = d.socket.clone();
    let producer = thread::spawn(move || {
        let mut c = Client::connect_to(&socket).unwrap();
        let shm = c
            .open_shm("shm:slots", ipc_client::Access::ReadWrite)
            .unwrap();
        for i in 1..=n {
            c.sem_take("sem:spaces", None).unwrap();
            let slot = shm.atomic_u64(((i % SLOTS) * 8) as usize).unwrap();
            slot.store(i, std::sync::atomic::Ordering::Release);
            c.sem_release("sem:items").unwrap();
        }
        c
    });
    let mut c = Client::connect_to(&d.socket).unwrap();
    let shm = c
        .open_shm("shm:slots", ipc_client::Access::ReadWrite)
        .unwrap();
    for i in 1..=n {
        c.sem_take("sem:items", Some(Duration::from_secs(10)))
            .unwrap();
        let slot = shm.atomic_u64(((i % SLOTS) * 8) as usize).unwrap();
        assert_eq!(slot.load(std::sync::atomic::Ordering::Acquire), i);
        c.sem_release("sem:spaces").unwrap();
    }
    let p = producer.join().unwrap();
    assert_eq!(stat(&d, "sem:items")["value"], 0);
    assert_eq!(stat(&d, "sem:spaces")["value"], 4);
    // Every permit was taken for good (consumed), none held, so closing the
    // connections posts nothing back (no ghost items).
    assert_eq!(stat(&d, "sem:items")["holders"], serde_json::json!([]));
    assert_eq!(stat(&d, "sem:spaces")["holders"], serde_json::json!([]));
    drop(p);
    drop(c);
    let probe = Client::connect_to(&d.socket).unwrap();
    drop(probe);
    for (address, value) in [("sem:items", 0), ("sem:spaces", 4)] {
        eventually("the connections are gone", || {
            stat(&d, address)["holders"] == serde_json::json!([])
        });
        assert_eq!(stat(&d, address)["value"], value, "{address}");
    }
}

#[test]
fn an_event_set_is_on_disk_before_it_is_answered() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&["create", "event:e"]);
    d.ipcctl_ok(&["set", "event:e"]);
    d.kill9();
    d.restart();
    assert_eq!(stat(&d, "event:e")["set"], true);
    d.ipcctl_ok(&["clear", "event:e"]);
    d.kill9();
    d.restart();
    assert_eq!(stat(&d, "event:e")["set"], false);
}

#[test]
fn wait_nonblock_looks_at_an_event_without_waiting() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "event:e"]);
    let out = d.run_ipcctl(&["wait", "event:e", "--nonblock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr_text(&out).contains("would-block"), "{out:?}");
    d.ipcctl_ok(&["set", "event:e"]);
    d.ipcctl_ok(&["wait", "event:e", "--nonblock"]);
    // A barrier party that does not wait would break the barrier: refused
    // before connecting.
    d.ipcctl_ok(&["create", "barrier:b", "--parties", "2"]);
    let out = d.run_ipcctl(&["wait", "barrier:b", "--nonblock"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert_eq!(stat(&d, "barrier:b")["broken"], false);
    let out = d.run_ipcctl(&["wait", "event:e", "--nonblock", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}

fn stderr_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn permits_held_when_the_daemon_is_killed_come_back_when_it_restarts() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&["create", "sem:s", "--initial", "3", "--max", "3"]);
    // Two permits held by one connection, one by another.
    let mut a = Client::connect_to(&d.socket).unwrap();
    a.sem_acquire("s", None).unwrap();
    a.sem_acquire("s", None).unwrap();
    let mut holder = spawn_ipcctl(&d, &["with", "sem:s", "--", "sleep", "30"]);
    eventually("the with command holds a permit", || {
        stat(&d, "sem:s")["value"] == 0
    });
    d.kill9();
    // Nobody can give them back now: the connections ended with the daemon.
    let _ = holder.kill();
    let _ = holder.wait();
    drop(a);
    d.restart();
    let v = stat(&d, "sem:s");
    assert_eq!(v["value"], 3, "{v}");
    assert_eq!(v["holders"].as_array().map(Vec::len), Some(0), "{v}");
    // And a plain restart gives back nothing twice.
    d.kill9();
    d.restart();
    assert_eq!(stat(&d, "sem:s")["value"], 3);
}

#[test]
fn a_uid_waits_in_ipcd_on_at_most_16_semaphores_at_once() {
    use std::os::unix::process::CommandExt as _;
    let d = TestDaemon::start();
    for i in 0..17 {
        let address = format!("sem:s{i}");
        d.ipcctl_ok(&["create", &address, "--initial", "0", "--mode", "0666"]);
    }
    // Each waiting acquire keeps one helper thread busy, charged to nobody.
    let mut waiting: Vec<Child> = (0..16)
        .map(|i| {
            d.ipcctl()
                .args(["acquire", &format!("sem:s{i}"), "--timeout", "60s"])
                .uid(65534)
                .gid(65534)
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    eventually("16 acquires wait", || {
        (0..16).all(|i| stat(&d, &format!("sem:s{i}"))["waiters"] == 1)
    });
    let out = as_nobody(&d, &["acquire", "sem:s16", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr_text(&out);
    assert!(
        err.contains("limit-exceeded") && err.contains("its share"),
        "{err}"
    );
    // Others are not held to nobody's share.
    d.ipcctl_ok(&["release", "sem:s16"]);
    d.ipcctl_ok(&["acquire", "sem:s16", "--timeout", "5s"]);
    // A share comes back when the waits end: a wait times out (1), not refused (2).
    for w in &mut waiting {
        let _ = w.kill();
        let _ = w.wait();
    }
    eventually("nobody's helpers end", || {
        as_nobody(&d, &["acquire", "sem:s0", "--timeout", "100ms"])
            .status
            .code()
            == Some(1)
    });
}

#[test]
fn a_posted_permit_is_held_by_acquire_and_consumed_by_take() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "sem:s", "--initial", "1"]);
    // A plain post, then `with`: the permit with takes is still held by its
    // connection, so a kill -9 gives it back.
    d.ipcctl_ok(&["release", "sem:s"]);
    let mut holder = spawn_ipcctl(&d, &["with", "sem:s", "--", "sleep", "30"]);
    eventually("with holds a permit", || {
        stat(&d, "sem:s")["holders"].as_array().map(Vec::len) == Some(1)
    });
    assert_eq!(stat(&d, "sem:s")["value"], 1);
    kill(Pid::from_raw(holder.id() as i32), Signal::SIGKILL).unwrap();
    let _ = holder.wait();
    eventually("the killed holder's permit is back", || {
        stat(&d, "sem:s")["value"] == 2
    });
    // acquire gives back on exit, as its help says; take consumes.
    d.ipcctl_ok(&["acquire", "sem:s"]);
    assert_eq!(stat(&d, "sem:s")["value"], 2);
    let out = d.ipcctl_ok(&["take", "sem:s"]);
    assert!(out.contains("took sem:s (1 free)"), "{out}");
    d.ipcctl_ok(&["take", "sem:s", "--nonblock"]);
    assert_eq!(stat(&d, "sem:s")["value"], 0);
    let out = d.run_ipcctl(&["take", "sem:s", "--nonblock"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = d.run_ipcctl(&["take", "lock:l"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr_text(&out).contains("wrong-kind"), "{out:?}");
}

#[test]
fn with_warns_at_once_when_ipcd_goes_away_under_its_command() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&["create", "lock:l"]);
    let holder = d
        .ipcctl()
        .args([
            "with",
            "lock:l",
            "--",
            "sh",
            "-c",
            "sleep 2; echo command-done >&2",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("with holds the lock", || {
        !stat(&d, "lock:l")["owner"].is_null()
    });
    d.kill9();
    let out = holder.wait_with_output().unwrap();
    let err = stderr_text(&out);
    let warned = err.find("closed while sh runs: lock:l is no longer held");
    let done = err.find("command-done");
    assert!(
        warned.is_some() && warned < done,
        "the warning should come before the command ends: {err}"
    );
    d.restart();
}
