//! Hostile users and a hostile machine: one test (or a few) per finding of the
//! "Hardening" issue. Unprivileged users are uid 65534 (and 65533, …) through
//! `CommandExt::uid`; tests that need root say so and skip without it.
//!
//! 1. connections: per-uid shares, a reserve kept for root, bounded handshakes;
//! 2. descriptors: the open-file limit raised, a per-uid fd share, EMFILE on
//!    accept logged at most once a second;
//! 3. a crash between kernel and registry: the intent journal;
//! 4. adopting someone else's object, and squatters;
//! 5. the per-uid queue byte share, and `Request::Usage`;
//! 6. a registry file that is not trusted blindly;
//! 7. a full disk;
//! 8. configuration and socket directory.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ipc_client::Client;
use ipcd_tests::{TestDaemon, eventually, run_with_timeout, wait_timeout};
use nix::mqueue::{MQ_OFlag, MqAttr, mq_open, mq_unlink};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Pid, Uid};
use protocol::{ClientFrame, Hello, PROTOCOL_VERSION, Reply, Request};

/// The unprivileged user; 65533, 65532, … are more of them.
const NOBODY: u32 = 65534;

/// Queues are small unless size is the point.
const SMALL: [&str; 4] = ["--capacity", "2", "--msg-size", "64"];

/// `create ADDRESS` of a small queue.
fn create_small(address: &str) -> [&str; 6] {
    ["create", address, SMALL[0], SMALL[1], SMALL[2], SMALL[3]]
}

/// Whether this test may switch uids, chown and mount; prints why not.
fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("note: {test} skipped: it needs root (uid switching, chown, mount)");
    }
    root
}

/// A config with the socket open to everyone and `extra` keys.
fn config(extra: &str) -> String {
    format!("socket_mode = \"0666\"\n{extra}")
}

/// `ipcctl ARGS…` against `d`, run as `uid`.
fn ipcctl_as(d: &TestDaemon, uid: u32, args: &[&str]) -> Output {
    let mut cmd = d.ipcctl();
    cmd.args(args).uid(uid).gid(uid);
    run_with_timeout(&mut cmd)
}

/// Asserts `out` is ipcctl's error exit whose message contains every one of `needles`.
fn assert_fails_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "expected exit 2: {out:?}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}: {stderr}");
    }
}

/// Asserts `out` succeeded.
fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{out:?}");
}

/// Addresses `ipcctl --json list` shows (as root).
fn listed(d: &TestDaemon) -> BTreeSet<String> {
    let list: serde_json::Value =
        serde_json::from_str(&d.ipcctl_ok(&["--json", "list"])).expect("list JSON");
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|o| o["address"].as_str().expect("address").to_owned())
        .collect()
}

/// Kernel objects the registry lists, named like [`TestDaemon::kernel_leftovers`].
fn registered_kernel_objects(d: &TestDaemon) -> BTreeSet<String> {
    let list: serde_json::Value =
        serde_json::from_str(&d.ipcctl_ok(&["--json", "list"])).expect("list JSON");
    let mut out = BTreeSet::new();
    for o in list.as_array().expect("a JSON array") {
        let kernel = o["kernel_name"].as_str().unwrap_or_default();
        match o["kind"].as_str() {
            Some("mq") => out.insert(format!("mq:{}", kernel.trim_start_matches('/'))),
            Some("fifo") => out.insert(format!(
                "fifo:{}",
                Path::new(kernel).file_name().unwrap().to_string_lossy()
            )),
            _ => false,
        };
    }
    out
}

/// Asserts the kernel objects with the daemon's prefix are exactly the registered ones.
fn assert_in_step(d: &TestDaemon, when: &str) {
    let kernel: BTreeSet<String> = d.kernel_leftovers().into_iter().collect();
    let registry = registered_kernel_objects(d);
    assert_eq!(
        kernel,
        registry,
        "{when}: kernel objects (left) and registry (right) disagree\nlog:\n{}",
        d.log()
    );
}

/// Creates the kernel queue `name` (2 × 64 bytes) behind the daemon's back.
fn make_queue(name: &str, owner: Option<u32>) {
    let attr = MqAttr::new(0, 2, 64, 0);
    let mqd = mq_open(
        name,
        MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )
    .unwrap_or_else(|e| panic!("mq_open {name}: {e}"));
    if let Some(uid) = owner {
        nix::unistd::fchown(
            mqd.as_fd(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(uid)),
        )
        .expect("fchown queue");
    }
    nix::mqueue::mq_close(mqd).expect("mq_close");
}

/// The owner of kernel queue `name`, if it exists.
fn queue_owner(name: &str) -> Option<u32> {
    let mqd = mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None).ok()?;
    let uid = nix::sys::stat::fstat(mqd.as_fd()).expect("fstat").st_uid;
    nix::mqueue::mq_close(mqd).expect("mq_close");
    Some(uid)
}

/// Creates the FIFO `path` (mode 0600) behind the daemon's back.
fn make_fifo(path: &Path, owner: Option<u32>) {
    let dir = path.parent().expect("parent");
    std::fs::create_dir_all(dir).expect("fifo dir");
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).expect("mkfifo");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    if let Some(uid) = owner {
        nix::unistd::chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(uid)))
            .expect("chown fifo");
    }
}

/// Leaves an intent record as a daemon killed mid-change would.
fn write_intent(d: &TestDaemon, op: &str, address: &str, uid: u32) {
    let mut record = serde_json::json!({ "op": op, "address": address, "uid": uid })
        .to_string()
        .into_bytes();
    assert!(record.len() <= 512);
    record.resize(512, b' ');
    std::fs::write(d.state_dir.join("intent"), record).expect("write intent");
}

/// A `hold-conns` process holding connections to a daemon as some uid; killed
/// (by its pid) if still running when dropped.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    /// One line per connection: `ok` or `refused: <code>: <message>`.
    lines: Vec<String>,
}

impl Holder {
    /// Opens `count` connections as `uid` (with hellos unless `hello` is false)
    /// and waits for the helper's report on each.
    fn start(d: &TestDaemon, uid: u32, count: usize, hello: bool) -> Holder {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hold-conns"));
        cmd.arg("--socket")
            .arg(&d.socket)
            .arg("--count")
            .arg(count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !hello {
            cmd.arg("--no-hello");
        }
        if uid != nix::unistd::geteuid().as_raw() {
            cmd.uid(uid).gid(uid);
        }
        let mut child = cmd.spawn().expect("spawn hold-conns");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut holder = Holder {
            child,
            stdin,
            lines: Vec::new(),
        };
        for _ in 0..count {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => holder.lines.push(line),
                Err(e) => panic!(
                    "hold-conns as uid {uid} reported {:?} and then nothing: {e}",
                    holder.lines
                ),
            }
        }
        holder
    }

    /// How many connections the daemon kept.
    fn kept(&self) -> usize {
        self.lines.iter().filter(|l| *l == "ok").count()
    }

    /// Closes its stdin: it drops the connections and exits.
    fn release(mut self) {
        drop(self.stdin.take());
        let status = wait_timeout(&mut self.child, Duration::from_secs(10))
            .expect("hold-conns did not exit when its stdin closed");
        assert!(status.success(), "hold-conns: {status}");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Asserts `line` is a `limit-exceeded` refusal mentioning `needle`.
fn assert_refused(line: &str, needle: &str) {
    assert!(
        line.starts_with("refused: limit-exceeded") && line.contains(needle),
        "expected a limit-exceeded refusal naming {needle:?}, got {line:?}"
    );
}

// ---------------------------------------------------------------- 1. connections

const CONNECTION_BUDGETS: &str =
    "max_connections = 20\nmax_connections_per_uid = 5\nreserved_connections = 5\n";

#[test]
fn one_uid_cannot_hold_more_than_its_connections() {
    if !root_or_skip("one_uid_cannot_hold_more_than_its_connections") {
        return;
    }
    let d = TestDaemon::start_with_config(&config(CONNECTION_BUDGETS));
    let nobody = Holder::start(&d, NOBODY, 6, true);
    assert_eq!(nobody.lines[..5], ["ok"; 5], "{:?}", nobody.lines);
    assert_refused(&nobody.lines[5], "max_connections_per_uid");
    // Root, and another user with a share of its own, are still served.
    d.ipcctl_ok(&["ping"]);
    assert_ok(&ipcctl_as(&d, NOBODY - 1, &["ping"]));
    nobody.release();
}

#[test]
fn the_last_connections_are_kept_for_root() {
    if !root_or_skip("the_last_connections_are_kept_for_root") {
        return;
    }
    let d = TestDaemon::start_with_config(&config(CONNECTION_BUDGETS));
    // Three users take all 15 connections open to everyone (20 - 5 reserved).
    let users: Vec<Holder> = (0..3)
        .map(|i| {
            let h = Holder::start(&d, NOBODY - i, 5, true);
            assert_eq!(h.kept(), 5, "uid {}: {:?}", NOBODY - i, h.lines);
            h
        })
        .collect();
    let fourth = Holder::start(&d, NOBODY - 3, 1, true);
    assert_refused(&fourth.lines[0], "kept for root");
    // Root gets into the reserve, and works.
    // (2 more, leaving room for the ipcctl runs below while closed ones are reaped.)
    let root = Holder::start(&d, 0, 2, true);
    assert_eq!(root.kept(), 2, "{:?}", root.lines);
    d.ipcctl_ok(&["ping"]);
    d.ipcctl_ok(&create_small("mq:root-works"));
    d.ipcctl_ok(&["delete", "mq:root-works"]);
    root.release();
    fourth.release();
    for h in users {
        h.release();
    }
}

#[test]
fn connections_before_their_hello_are_bounded_per_uid() {
    if !root_or_skip("connections_before_their_hello_are_bounded_per_uid") {
        return;
    }
    let d = TestDaemon::start_with_config(&config("max_handshakes_per_uid = 3\n"));
    let started = Instant::now();
    let silent = Holder::start(&d, NOBODY, 5, false);
    assert_eq!(silent.lines[..3], ["ok"; 3], "{:?}", silent.lines);
    assert_refused(&silent.lines[3], "max_handshakes_per_uid");
    assert_refused(&silent.lines[4], "max_handshakes_per_uid");
    // Root is not held up by them, and has no per-uid handshake share.
    let root = Holder::start(&d, 0, 4, false);
    assert_eq!(root.kept(), 4, "{:?}", root.lines);
    drop(ipcd_tests::raw::RawConn::connect_hello(&d.socket));
    root.release();
    d.ipcctl_ok(&["ping"]);
    // Once the silent process is gone its slots come back (well before the
    // daemon's own 10 s handshake timeout would have freed them).
    silent.release();
    let mut again = None;
    eventually("uid 65534's handshake slots to come back", || {
        let h = Holder::start(&d, NOBODY, 3, false);
        let all = h.kept() == 3;
        again = Some(h);
        all
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "slots came back only after {:?}",
        started.elapsed()
    );
    again.expect("a holder").release();
}

#[test]
fn silent_connections_of_many_uids_do_not_lock_root_out() {
    if !root_or_skip("silent_connections_of_many_uids_do_not_lock_root_out") {
        return;
    }
    let d =
        TestDaemon::start_with_config(&config("max_handshakes = 4\nmax_handshakes_per_uid = 2\n"));
    let a = Holder::start(&d, NOBODY, 2, false);
    let b = Holder::start(&d, NOBODY - 1, 2, false);
    assert_eq!((a.kept(), b.kept()), (2, 2), "{:?} {:?}", a.lines, b.lines);
    let c = Holder::start(&d, NOBODY - 2, 1, false);
    assert_refused(&c.lines[0], "max_handshakes");
    let root = Holder::start(&d, 0, 1, true);
    let root_line = root.lines[0].clone();
    for h in [a, b, c, root] {
        h.release();
    }
    assert_eq!(root_line, "ok", "root was refused");
}

// ---------------------------------------------------------------- 2. descriptors

/// A unique kernel-name prefix for daemons this module starts by hand.
fn own_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "h{}y{}.",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An `ipcd` command line on a private socket and state dir in `dir`.
fn ipcd_command(dir: &Path, socket: &Path, config_text: &str) -> Command {
    ipcd_command_after(dir, socket, config_text, ":")
}

/// Like [`ipcd_command`], but a shell runs `prelude` (say `umask 0`) first and
/// then execs ipcd in its place, so the child's pid is ipcd's.
fn ipcd_command_after(dir: &Path, socket: &Path, config_text: &str, prelude: &str) -> Command {
    let config_path = dir.join("ipcd.toml");
    std::fs::write(&config_path, config_text).expect("write config");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prelude}; exec \"$0\" \"$@\""))
        .arg(ipcd_tests::ipcd_bin());
    cmd.arg("--socket")
        .arg(socket)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--prefix")
        .arg(own_prefix())
        .arg("--config")
        .arg(&config_path)
        .arg("--log-level")
        .arg("debug");
    cmd
}

/// An `ipcd` this module started by hand; killed (by its pid) if the test
/// fails before [`HandStarted::stop`].
struct HandStarted {
    child: Option<Child>,
    log: PathBuf,
}

impl HandStarted {
    /// Starts `cmd` and waits until it is ready; its log goes to `dir/ipcd.log`.
    fn spawn(cmd: &mut Command, dir: &Path) -> HandStarted {
        let log = dir.join("ipcd.log");
        let child = ipcd_tests::spawn_ready(cmd, dir, &log);
        HandStarted {
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Stops it with SIGTERM; asserts it exits 0.
    fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let status =
            wait_timeout(&mut child, ipcd_tests::START_TIMEOUT).expect("ipcd ignored SIGTERM");
        assert!(
            status.success(),
            "ipcd exited with {status}\nlog:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for HandStarted {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// Soft and hard "Max open files" of process `pid`.
fn nofile_of(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let mut cols = line["Max open files".len()..].split_whitespace();
    (
        cols.next().expect("soft").to_owned(),
        cols.next().expect("hard").to_owned(),
    )
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    use nix::sys::resource::{Resource, getrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let soft = 256.min(hard.saturating_sub(1));
    if soft < 64 {
        eprintln!("note: the open-file hard limit {hard} is too low to lower the soft one");
        return;
    }
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    let mut cmd = ipcd_command_after(
        dir.path(),
        &dir.path().join("s"),
        "",
        &format!("ulimit -S -n {soft}"),
    );
    let ipcd = HandStarted::spawn(&mut cmd, dir.path());
    let (got_soft, got_hard) = nofile_of(ipcd.pid());
    assert_eq!(got_hard, hard.to_string());
    assert_eq!(got_soft, got_hard, "the soft limit was not raised");
    ipcd.stop();
}

#[test]
fn descriptors_held_for_one_uid_are_bounded() {
    if !root_or_skip("descriptors_held_for_one_uid_are_bounded") {
        return;
    }
    let d = TestDaemon::start_with_config(&config("max_fds_per_uid = 5\n"));
    // Two pipes hold 4 descriptors, a buffered FIFO 1: the share is used up.
    assert_ok(&ipcctl_as(&d, NOBODY, &["create", "pipe:p1"]));
    assert_ok(&ipcctl_as(&d, NOBODY, &["create", "pipe:p2"]));
    assert_ok(&ipcctl_as(&d, NOBODY, &["create", "fifo:b", "--buffered"]));
    for refused in [
        &["create", "pipe:p3"][..],
        &create_small("mq:q")[..],
        &["create", "fifo:b2", "--buffered"][..],
    ] {
        assert_fails_with(
            &ipcctl_as(&d, NOBODY, refused),
            &["limit", "max_fds_per_uid"],
        );
    }
    // An unbuffered FIFO holds none, so it is still allowed.
    assert_ok(&ipcctl_as(&d, NOBODY, &["create", "fifo:plain"]));
    // Root has no share to exhaust.
    for i in 0..4 {
        d.ipcctl_ok(&["create", &format!("pipe:root{i}")]);
    }
    assert_eq!(
        d.kernel_leftovers().len(),
        2,
        "nothing created for a refusal"
    );
    for a in ["pipe:p1", "pipe:p2", "fifo:b", "fifo:plain"] {
        assert_ok(&ipcctl_as(&d, NOBODY, &["delete", a]));
    }
    for i in 0..4 {
        d.ipcctl_ok(&["delete", &format!("pipe:root{i}")]);
    }
}

/// Sets the soft open-file limit of process `pid` (with util-linux's
/// `prlimit`); returns the old (soft, hard).
fn set_soft_nofile(pid: Pid, soft: u64) -> (u64, u64) {
    let (old_soft, old_hard) = nofile_of(pid.as_raw() as u32);
    let out = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.as_raw().to_string())
        .arg(format!("--nofile={soft}:"))
        .output()
        .expect("running prlimit");
    assert!(out.status.success(), "prlimit: {out:?}");
    let num = |v: String| v.parse::<u64>().unwrap_or(u64::MAX);
    (num(old_soft), num(old_hard))
}

/// Connects and says hello; `Some` if a welcome came within `wait`.
fn hello_within(socket: &Path, wait: Duration) -> (UnixStream, bool) {
    let mut s = UnixStream::connect(socket).expect("connect (the backlog has room)");
    s.set_read_timeout(Some(wait)).expect("timeout");
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        client_name: "emfile".into(),
    });
    let payload = protocol::encode_client(&hello).expect("encode");
    s.write_all(&protocol::frame::frame(&payload, protocol::HARD_MAX_FRAME).expect("frame"))
        .expect("write hello");
    let mut header = [0u8; 4];
    let welcomed = s.read_exact(&mut header).is_ok();
    (s, welcomed)
}

#[test]
fn running_out_of_descriptors_does_not_flood_the_log() {
    let d = TestDaemon::start();
    let open_now = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .expect("daemon fds")
        .count() as u64;
    let (old_soft, _) = set_soft_nofile(d.pid(), open_now + 3);
    // Connect until the daemon cannot accept: that connection waits in the backlog.
    let mut held = Vec::new();
    let mut stuck = None;
    for _ in 0..20 {
        let (s, welcomed) = hello_within(&d.socket, Duration::from_secs(1));
        if welcomed {
            held.push(s);
        } else if d.log().contains("accept failed") {
            stuck = Some(s);
            break;
        } else {
            // Merely slow (a busy machine): its welcome still comes.
            let mut s = s;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            s.read_exact(&mut [0u8; 4]).expect("a late welcome");
            held.push(s);
        }
    }
    assert!(stuck.is_some(), "the daemon never ran out of descriptors");
    // The storm goes on (the daemon retries every 100 ms) for ~2 s more.
    std::thread::sleep(Duration::from_secs(2));
    let log = d.log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("accept failed"))
        .collect();
    assert!(
        (2..=5).contains(&failures.len()),
        "expected one accept failure line a second, got {}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        failures
            .iter()
            .any(|l| l.contains("repeated=") && !l.contains("repeated=0")),
        "later lines count the failures not logged:\n{}",
        failures.join("\n")
    );
    // Once descriptors are free again, the daemon serves, the waiting connection too.
    drop(held);
    set_soft_nofile(d.pid(), old_soft);
    let mut stuck = stuck.expect("checked");
    stuck
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut header = [0u8; 4];
    stuck
        .read_exact(&mut header)
        .expect("the waiting connection is welcomed at last");
    d.ipcctl_ok(&["ping"]);
}

// ------------------------------------------------ 3. crash between kernel and registry

#[test]
fn an_interrupted_create_leaves_no_orphan() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&create_small("mq:kept"));
    d.ipcctl_ok(&["create", "fifo:kept"]);
    let kept = listed(&d);
    // A queue made, but never registered, by a daemon killed mid-create.
    assert!(d.terminate().success());
    let queue = d.mq_kernel_name("orphan");
    make_queue(&queue, None);
    write_intent(&d, "create", "mq:orphan", 0);
    d.restart();
    assert_eq!(queue_owner(&queue), None, "the orphan queue is still there");
    assert!(d.log().contains("left unregistered"), "{}", d.log());
    assert_eq!(listed(&d), kept);
    assert_in_step(&d, "after the queue's intent");
    // The same for a FIFO.
    assert!(d.terminate().success());
    let fifo = d.fifo_path("orphan");
    make_fifo(&fifo, None);
    write_intent(&d, "create", "fifo:orphan", 0);
    d.restart();
    assert!(!fifo.exists(), "the orphan FIFO is still there");
    assert_eq!(listed(&d), kept);
    assert_in_step(&d, "after the FIFO's intent");
    // The journal was finished: a plain restart changes nothing.
    assert!(d.terminate().success());
    d.restart();
    assert_eq!(listed(&d), kept);
    d.ipcctl_ok(&["delete", "mq:kept"]);
    d.ipcctl_ok(&["delete", "fifo:kept"]);
}

#[test]
fn an_interrupted_create_never_removes_another_users_object() {
    if !root_or_skip("an_interrupted_create_never_removes_another_users_object") {
        return;
    }
    let mut d = TestDaemon::start();
    assert!(d.terminate().success());
    let queue = d.mq_kernel_name("theirs");
    make_queue(&queue, Some(NOBODY));
    write_intent(&d, "create", "mq:theirs", 0);
    d.restart();
    assert_eq!(
        queue_owner(&queue),
        Some(NOBODY),
        "uid 65534's queue was removed"
    );
    assert!(
        d.log().contains("owned by another uid; leaving it"),
        "{}",
        d.log()
    );
    assert!(listed(&d).is_empty(), "and it was not adopted either");

    assert!(d.terminate().success());
    let fifo = d.fifo_path("theirs");
    make_fifo(&fifo, Some(NOBODY));
    write_intent(&d, "create", "fifo:theirs", 0);
    d.restart();
    assert!(fifo.exists(), "uid 65534's FIFO was removed");
    assert!(listed(&d).is_empty(), "and it was not adopted either");
    mq_unlink(queue.as_str()).expect("remove the test's queue");
    std::fs::remove_file(&fifo).expect("remove the test's FIFO");
}

/// A small xorshift generator: random-ish instants, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_during_churn_leaves_kernel_and_registry_in_step() {
    if !ipcd_tests::ensure_mqueue_mounted() {
        eprintln!("note: kill_9_during_churn skipped: /dev/mqueue is not mounted");
        return;
    }
    let mut d = TestDaemon::start();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    eprintln!("kill_9_during_churn: seed {seed}");
    let mut rng = Rng(seed);
    // Churners hold the gate (shared) for each command; checks take it whole.
    let gate = Arc::new(RwLock::new(()));
    let paused = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let socket = d.socket.clone();
    let churners: Vec<_> = ["mq", "fifo"]
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let (gate, paused, stop, socket) =
                (gate.clone(), paused.clone(), stop.clone(), socket.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if paused.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    let address = format!("{kind}:c{}", (n + i as u64) % 3);
                    let mut args = vec![if n.is_multiple_of(2) {
                        "create"
                    } else {
                        "delete"
                    }];
                    args.push(&address);
                    if kind == "mq" && n.is_multiple_of(2) {
                        args.extend(SMALL);
                    }
                    n += 1;
                    let ok = {
                        let _shared = gate.read().expect("gate");
                        let mut cmd = Command::new(ipcd_tests::ipcctl_bin());
                        cmd.arg("--socket").arg(&socket).args(&args);
                        run_with_timeout(&mut cmd).status.success()
                    };
                    if !ok {
                        // The daemon is down, or the name is taken: pace the retries.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    for round in 0..10 {
        std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
        d.kill9();
        d.restart();
        paused.store(true, Ordering::Relaxed);
        {
            let _whole = gate.write().expect("gate");
            assert_in_step(&d, &format!("round {round}"));
        }
        paused.store(false, Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    for c in churners {
        c.join().expect("churner");
    }
    assert_in_step(&d, "at the end");
    eprintln!(
        "kill_9_during_churn: {} interrupted changes finished at restart",
        d.log().matches("left unregistered").count()
    );
    for address in listed(&d) {
        d.ipcctl_ok(&["delete", &address]);
    }
}

// ---------------------------------------------------------------- 4. adopt

#[test]
fn adopting_needs_the_owner_and_squatters_are_named() {
    if !root_or_skip("adopting_needs_the_owner_and_squatters_are_named") {
        return;
    }
    let d = TestDaemon::start();
    // Root's private FIFO and queue, not registered: uid 65534 may not adopt them.
    let fifo = d.fifo_path("rootfifo");
    make_fifo(&fifo, None);
    assert_fails_with(
        &ipcctl_as(&d, NOBODY, &["create", "fifo:rootfifo", "--adopt"]),
        &["permission denied", "uid 0"],
    );
    let queue = d.mq_kernel_name("rootq");
    make_queue(&queue, None);
    assert_fails_with(
        &ipcctl_as(&d, NOBODY, &["create", "mq:rootq", "--adopt"]),
        &["permission denied", "uid 0"],
    );
    // Squatters: uid 65534 took the names before root created its objects.
    let squat_q = d.mq_kernel_name("squat");
    make_queue(&squat_q, Some(NOBODY));
    let out = d.run_ipcctl(&create_small("mq:squat"));
    assert_fails_with(&out, &["already exists", "uid 65534"]);
    let squat_f = d.fifo_path("squatf");
    make_fifo(&squat_f, Some(NOBODY));
    assert_fails_with(
        &d.run_ipcctl(&["create", "fifo:squatf"]),
        &["already exists", "uid 65534"],
    );
    // Nothing was adopted silently, nothing was taken from its owner.
    assert!(listed(&d).is_empty());
    assert_eq!(queue_owner(&squat_q), Some(NOBODY));
    assert_eq!(
        std::fs::symlink_metadata(&squat_f)
            .expect("squatter's FIFO")
            .uid(),
        NOBODY
    );
    assert_eq!(queue_owner(&queue), Some(0));
    assert!(fifo.exists());
    for q in [&queue, &squat_q] {
        mq_unlink(q.as_str()).expect("remove the test's queue");
    }
    for f in [&fifo, &squat_f] {
        std::fs::remove_file(f).expect("remove the test's FIFO");
    }
}

// ---------------------------------------------------------------- 5. queue budget

#[test]
fn queue_bytes_are_bounded_per_uid_and_usage_reports_them() {
    let d = TestDaemon::start_with_config(&config("mq_bytes_per_uid = 4000\n"));
    let big = ["--capacity", "10", "--msg-size", "1024"];
    let root = nix::unistd::geteuid().is_root();
    if root {
        assert_ok(&ipcctl_as(&d, NOBODY, &create_small("mq:a")));
        let mut args = vec!["create", "mq:b"];
        args.extend(big);
        assert_fails_with(
            &ipcctl_as(&d, NOBODY, &args),
            &["limit", "mq_bytes_per_uid"],
        );
        assert_eq!(queue_owner(&d.mq_kernel_name("b")), None);
    } else {
        eprintln!("note: the uid 65534 half of this test needs root; checking Usage only");
    }
    // Root (the daemon's own uid when not root) has no share to exceed.
    let mut args = vec!["create", "mq:b"];
    args.extend(big);
    d.ipcctl_ok(&args);
    d.ipcctl_ok(&["create", "pipe:p"]);

    let mut client = Client::connect_to(&d.socket).expect("connect");
    let usage = match client.request(Request::Usage).expect("usage").reply {
        Reply::Usage(u) => u,
        other => panic!("expected a usage reply, got {other:?}"),
    };
    let me = nix::unistd::geteuid().as_raw();
    let list: serde_json::Value =
        serde_json::from_str(&d.ipcctl_ok(&["--json", "list"])).expect("list JSON");
    let mine = list
        .as_array()
        .expect("array")
        .iter()
        .filter(|o| o["owner_uid"] == me)
        .count() as u64;
    assert_eq!(usage.uid, me);
    assert!(usage.privileged, "{usage:?}");
    assert_eq!(usage.objects, mine, "{usage:?}");
    assert_eq!(usage.objects, 2, "{usage:?}");
    // mq:b: 10 × (48 + 40 + 1024) bytes; the pipe holds 2 descriptors, the queue 1.
    assert_eq!(usage.mq_bytes, 10 * (48 + 40 + 1024), "{usage:?}");
    assert_eq!(usage.fds, 3, "{usage:?}");
    assert_eq!(usage.waits, 0, "{usage:?}");
    assert!(usage.connections >= 1, "{usage:?}");
    for max in [
        usage.max_connections,
        usage.max_fds,
        usage.max_mq_bytes,
        usage.max_waits,
    ] {
        assert_eq!(
            max,
            u64::MAX,
            "no per-uid share for the privileged: {usage:?}"
        );
    }
    assert!(
        usage.mq_budget_bytes >= usage.mq_bytes && usage.nofile > 0,
        "{usage:?}"
    );
    drop(client);
    if root {
        d.ipcctl_ok(&["delete", "mq:a"]);
    }
    d.ipcctl_ok(&["delete", "mq:b"]);
    d.ipcctl_ok(&["delete", "pipe:p"]);
}

// ---------------------------------------------------------------- 6. registry file

#[test]
fn registry_records_are_not_trusted_blindly() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&create_small("mq:keep"));
    d.ipcctl_ok(&["create", "fifo:fine"]);
    assert!(d.terminate().success());
    let victim = d.dir().join("victim");
    std::fs::write(&victim, "precious").expect("victim file");

    let path = d.state_dir.join("registry.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("registry")).expect("JSON");
    assert_eq!(file["format"], 2);
    assert_eq!(file["prefix"], d.prefix.as_str());
    let objects = file["objects"].as_array_mut().expect("objects");
    let fifo = objects
        .iter()
        .find(|o| o["address"] == "fifo:fine")
        .expect("the FIFO's record")
        .clone();
    // (a) a session record whose kernel name is a file outside the namespace:
    // a trusting loader would "remove the session object left by a previous run".
    let mut evil = fifo.clone();
    evil["address"] = "fifo:evil".into();
    evil["kernel_name"] = victim.display().to_string().into();
    evil["session"] = true.into();
    objects.push(evil);
    // (b) a record with mode bits outside 0777.
    let keep = objects
        .iter_mut()
        .find(|o| o["address"] == "mq:keep")
        .expect("the queue's record");
    keep["mode"] = 0o7777.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&file).expect("JSON")).expect("write");

    d.restart();
    assert_eq!(
        std::fs::read_to_string(&victim).expect("the victim file survives"),
        "precious"
    );
    let rejected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.state_dir.join("registry.rejected.json"))
            .expect("registry.rejected.json"),
    )
    .expect("JSON");
    let rejected = rejected.as_array().expect("array");
    for address in ["fifo:evil", "mq:keep"] {
        let entry = rejected
            .iter()
            .find(|r| r["record"]["address"] == address)
            .unwrap_or_else(|| panic!("{address} not set aside: {rejected:?}"));
        assert!(
            !entry["why"].as_str().unwrap_or_default().is_empty(),
            "{entry}"
        );
    }
    let now = listed(&d);
    assert_eq!(now, BTreeSet::from(["fifo:fine".to_owned()]), "{}", d.log());
    // Set aside means neither adopted nor removed: the queue is the test's to clean up.
    let queue = d.mq_kernel_name("keep");
    assert_eq!(queue_owner(&queue), Some(nix::unistd::geteuid().as_raw()));
    mq_unlink(queue.as_str()).expect("remove the set-aside queue");
    d.ipcctl_ok(&["delete", "fifo:fine"]);
}

// ---------------------------------------------------------------- 7. disk full

/// A tmpfs mounted for one test; unmounted (lazily if busy) when dropped.
struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs of `size` at `path`, or says why not.
    fn tmpfs(path: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = run_with_timeout(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0755"),
                    "ipcd-test",
                ])
                .arg(path),
        );
        if out.status.success() {
            Ok(Mount(path.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn unmount(&self) {
        let done = run_with_timeout(Command::new("umount").arg(&self.0));
        if !done.status.success() {
            run_with_timeout(Command::new("umount").arg("-l").arg(&self.0));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Fills the file system holding `dir` with a junk file.
fn fill(dir: &Path) -> PathBuf {
    let junk = dir.join("junk");
    let mut f = std::fs::File::create(&junk).expect("junk file");
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
    }
    let _ = f.sync_all();
    junk
}

/// A daemon whose state directory is a small tmpfs, or `None` (with a note)
/// when that cannot be had.
fn daemon_on_tmpfs(test: &str) -> Option<(TestDaemon, Mount, PathBuf)> {
    if !root_or_skip(test) {
        return None;
    }
    let mut d = TestDaemon::start();
    assert!(d.terminate().success());
    let small = d.dir().join("small");
    let mount = match Mount::tmpfs(&small, "64k") {
        Ok(m) => m,
        Err(e) => {
            eprintln!("note: {test} skipped: cannot mount a tmpfs: {e}");
            return None;
        }
    };
    d.state_dir = small.clone();
    d.restart();
    Some((d, mount, small))
}

#[test]
fn a_full_disk_refuses_changes_and_still_starts() {
    let Some((mut d, mount, small)) =
        daemon_on_tmpfs("a_full_disk_refuses_changes_and_still_starts")
    else {
        return;
    };
    d.ipcctl_ok(&create_small("mq:keep"));
    let junk = fill(&small);
    let dir = small.display().to_string();

    let out = d.run_ipcctl(&["delete", "mq:keep"]);
    assert_fails_with(&out, &[&dir, "disk is full"]);
    assert_eq!(listed(&d), BTreeSet::from(["mq:keep".to_owned()]));
    assert!(queue_owner(&d.mq_kernel_name("keep")).is_some());
    let out = d.run_ipcctl(&create_small("mq:new"));
    assert_fails_with(&out, &[&dir, "disk is full"]);
    assert_eq!(queue_owner(&d.mq_kernel_name("new")), None, "rolled back");
    assert!(!small.join(".registry.json.tmp").exists());

    // Killed and restarted on the full disk: it starts, serves, refuses changes.
    d.kill9();
    d.restart();
    assert_eq!(listed(&d), BTreeSet::from(["mq:keep".to_owned()]));
    let out = d.run_ipcctl(&create_small("mq:new"));
    assert_fails_with(&out, &[&dir]);
    assert_eq!(queue_owner(&d.mq_kernel_name("new")), None, "rolled back");
    assert!(!small.join(".registry.json.tmp").exists());

    // With room again, changes are accepted.
    std::fs::remove_file(&junk).expect("remove junk");
    d.ipcctl_ok(&["delete", "mq:keep"]);
    assert!(d.terminate().success());
    drop(mount);
}

#[test]
fn a_refused_adopt_leaves_the_object_to_its_owner() {
    let Some((d, mount, small)) = daemon_on_tmpfs("a_refused_adopt_leaves_the_object_to_its_owner")
    else {
        return;
    };
    let queue = d.mq_kernel_name("adoptee");
    make_queue(&queue, Some(NOBODY));
    let fifo = d.fifo_path("adoptee");
    make_fifo(&fifo, Some(NOBODY));
    let junk = fill(&small);
    let dir = small.display().to_string();
    for address in ["mq:adoptee", "fifo:adoptee"] {
        let out = ipcctl_as(&d, NOBODY, &["create", address, "--adopt"]);
        assert_fails_with(&out, &[&dir, "disk is full"]);
    }
    let queue_left = queue_owner(&queue);
    let fifo_left = fifo.exists();
    // Clean up before judging, so a failure leaves nothing behind.
    let _ = mq_unlink(queue.as_str());
    let _ = std::fs::remove_file(&fifo);
    std::fs::remove_file(&junk).expect("remove junk");
    assert_eq!(
        queue_left,
        Some(NOBODY),
        "the refused adopt deleted uid 65534's queue"
    );
    assert!(fifo_left, "the refused adopt deleted uid 65534's FIFO");
    drop(d);
    drop(mount);
}

// ---------------------------------------------------------------- 8. configuration

#[test]
fn max_connections_0_is_refused_at_start() {
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    let socket = dir.path().join("s");
    let out = run_with_timeout(&mut ipcd_command(
        dir.path(),
        &socket,
        "max_connections = 0\n",
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        stderr.contains("max_connections") && stderr.contains("at least 1"),
        "{stderr}"
    );
    assert!(
        !socket.exists(),
        "no socket for a daemon that did not start"
    );
}

/// Group and other write bits of `path`'s mode (0 when they are clear).
fn loose_bits(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o022
}

/// An `ipcd` started under umask 0, so only the daemon's own modes protect its files.
fn start_with_umask_0(dir: &Path, socket: &Path) -> HandStarted {
    let mut cmd = ipcd_command_after(dir, socket, "socket_mode = \"0666\"\n", "umask 0");
    HandStarted::spawn(&mut cmd, dir)
}

#[test]
fn a_new_socket_directory_is_at_most_0755() {
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    let socket = dir.path().join("new/sub/s");
    let ipcd = start_with_umask_0(dir.path(), &socket);
    for made in ["new", "new/sub"] {
        let path = dir.path().join(made);
        let mode = std::fs::metadata(&path).expect("made").permissions().mode() & 0o7777;
        assert_eq!(mode & !0o755, 0, "{} has mode {mode:04o}", path.display());
    }
    ipcd.stop();
}

#[test]
fn state_and_fifo_directories_are_not_writable_by_others() {
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = dir.path().join("s");
    let ipcd = start_with_umask_0(dir.path(), &socket);
    let mut client = Client::connect_to(&socket).expect("connect");
    client
        .create_fifo("f", &ipc_client::FifoOptions::new())
        .expect("create fifo");
    client.delete("fifo:f").expect("delete fifo");
    drop(client);
    let state = dir.path().join("state");
    let loose: Vec<String> = [
        state.clone(),
        state.join("registry.json"),
        state.join("intent"),
        state.join("lock"),
        dir.path().join("fifo"),
    ]
    .iter()
    .filter(|p| loose_bits(p) != 0)
    .map(|p| {
        format!(
            "{} {:04o}",
            p.display(),
            std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777
        )
    })
    .collect();
    ipcd.stop();
    assert!(
        loose.is_empty(),
        "writable by other users (they could rewrite the registry or plant FIFOs): {loose:?}"
    );
}
