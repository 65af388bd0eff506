//! Shared-memory segments (`shm:`) against the real daemon, through `ipcctl`,
//! `ipc-client`, other programs opening the POSIX name (Python, `shm_open`)
//! and several processes at once: the bytes go between mappings, never
//! through the daemon.

use std::process::Command;
use std::sync::atomic::Ordering;

use ipc_client::{Access, Client, ErrorCode, SharedMemory, ShmOptions};
use ipcd_tests::{TestDaemon, eventually, run_with_timeout};
use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::stat::Mode;

use crate::permissions::{as_nobody, assert_denied};

fn client(d: &TestDaemon) -> Client {
    Client::connect_to(&d.socket).expect("connect")
}

fn stat_json(d: &TestDaemon, address: &str) -> serde_json::Value {
    serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", address])).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `ipcctl ARGS` and checks it failed with exit status `status` and an
/// error line ending in `(code)` that contains `says`.
fn fails(out: std::process::Output, status: i32, code: &str, says: &str) {
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(status), "{e}");
    assert!(e.ends_with(&format!(" ({code})\n")), "{e}");
    assert!(e.contains(says), "expected {says:?} in: {e}");
}

#[test]
fn bytes_written_by_one_process_are_read_by_another() {
    let d = TestDaemon::start();
    let out = d.ipcctl_ok(&["create", "shm:buf", "--size", "1MiB", "--mode", "0640"]);
    assert_eq!(
        out,
        format!(
            "created shm:buf ({}, 1048576 bytes)\n",
            d.shm_kernel_name("buf")
        )
    );
    assert_eq!(
        std::fs::metadata(d.shm_path("buf")).unwrap().len(),
        1 << 20,
        "the segment is the POSIX object /<prefix>NAME"
    );

    // ipcctl writes; this process reads through its own mapping.
    assert_eq!(
        d.ipcctl_ok(&["write", "shm:buf", "--offset", "4KiB", "from ipcctl"]),
        "wrote 11 bytes to shm:buf at offset 4096\n"
    );
    let mut c = client(&d);
    let shm = c.open_shm("buf", Access::ReadWrite).unwrap();
    assert_eq!(shm.len(), 1 << 20);
    assert_eq!(shm.read_vec(4096, 11).unwrap(), b"from ipcctl");

    // This process writes; ipcctl reads, while the mapping stays live.
    shm.write_at(0, b"from the client\x00\xff").unwrap();
    let out = d.run_ipcctl(&["read", "shm:buf", "--len", "17"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"from the client\x00\xff");
    let j: serde_json::Value = serde_json::from_str(&d.ipcctl_ok(&[
        "--json", "read", "shm:buf", "--offset", "4096", "--len", "11",
    ]))
    .unwrap();
    assert_eq!(j["data"], "from ipcctl");
    let hex = d.ipcctl_ok(&["read", "shm:buf", "--len", "32", "--hex"]);
    assert!(
        hex.starts_with(
            "00000000  66 72 6f 6d 20 74 68 65  20 63 6c 69 65 6e 74 00  |from the client.|\n"
        ),
        "{hex}"
    );

    // stat and list show the size and this process's mapping (ipcd's count
    // of mappings may be up to 100 ms old).
    let stat = stat_json(&d, "shm:buf");
    assert_eq!(
        (stat["size"].as_u64(), stat["kind"].as_str()),
        (Some(1 << 20), Some("shm"))
    );
    eventually("stat counts this process's mapping", || {
        stat_json(&d, "shm:buf")["mapped_by"] == 1
    });
    let list = d.ipcctl_ok(&["list", "shm"]);
    assert!(
        list.contains("1048576 B") && list.contains("1 mapped"),
        "{list}"
    );
    drop(shm);
    eventually("the mapping is gone from stat", || {
        stat_json(&d, "shm:buf")["mapped_by"] == 0
    });

    // send and recv point to write and read.
    let out = d.run_ipcctl(&["send", "shm:buf", "x"]);
    fails(out, 2, "wrong-kind", "ipcctl write");

    d.ipcctl_ok(&["delete", "shm:buf"]);
    assert!(!d.shm_path("buf").exists(), "delete unlinks the segment");
}

#[test]
fn a_resize_grows_with_zeros_and_keeps_the_old_bytes() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "shm:grow", "--size", "4096"]);
    let mut c = client(&d);
    let mut shm = c.open_shm("shm:grow", Access::ReadWrite).unwrap();
    shm.write_at(4090, b"edge!!").unwrap();
    assert_eq!(
        d.ipcctl_ok(&["resize", "shm:grow", "--size", "3MiB"]),
        "resized shm:grow to 3145728 bytes (3 MiB)\n"
    );
    // The old mapping keeps its size until it is refreshed.
    assert_eq!(shm.len(), 4096);
    assert!(shm.write_at(4096, b"x").is_err());
    assert_eq!(shm.refresh().unwrap(), 3 << 20);
    assert_eq!(shm.len(), 3 << 20);
    assert_eq!(shm.read_vec(4090, 6).unwrap(), b"edge!!");
    assert!(
        shm.read_vec(4096, (3 << 20) - 4096)
            .unwrap()
            .iter()
            .all(|&b| b == 0)
    );
    shm.write_at((3 << 20) - 3, b"end").unwrap();
    let out = d.run_ipcctl(&["read", "shm:grow", "--offset", "3145725"]);
    assert_eq!(out.stdout, b"end");

    // From the library too; shrinking is refused and changes nothing.
    assert_eq!(c.resize_shm("grow", 4 << 20).unwrap(), 4 << 20);
    let e = c.resize_shm("grow", 4096).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{e}");
    let out = d.run_ipcctl(&["resize", "shm:grow", "--size", "1MiB"]);
    fails(out, 2, "invalid-argument", "only grow");
    assert_eq!(stat_json(&d, "shm:grow")["size"], 4 << 20);
    assert_eq!(shm.refresh().unwrap(), 4 << 20);
    assert_eq!(shm.read_vec(4090, 6).unwrap(), b"edge!!");

    let out = d.run_ipcctl(&["resize", "mq:grow", "--size", "1MiB"]);
    fails(out, 2, "wrong-kind", "resize takes shm: only");
    drop(shm);
    d.ipcctl_ok(&["delete", "shm:grow"]);
}

#[test]
fn python_maps_the_segment_by_its_posix_name() {
    let d = TestDaemon::start();
    if Command::new("python3").arg("--version").output().is_err() {
        println!("note: python3 is not installed; skipping the Python interop test");
        return;
    }
    d.ipcctl_ok(&["create", "shm:py", "--size", "8KiB"]);
    d.ipcctl_ok(&["write", "shm:py", "hello from ipcctl"]);
    // Python's resource tracker unlinks segments it saw at exit unless told
    // not to: track=False (3.13+), or unregister (older versions).
    let script = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
try:
    m = shared_memory.SharedMemory(name=sys.argv[1], track=False)
except TypeError:
    m = shared_memory.SharedMemory(name=sys.argv[1])
    resource_tracker.unregister(m._name, "shared_memory")
print(bytes(m.buf[:17]).decode(), m.size >= 8192)
m.buf[100:116] = b"hello from pyth0"
m.close()
"#;
    let posix = format!("{}py", d.prefix);
    let out = run_with_timeout(Command::new("python3").args(["-c", script, &posix]));
    assert!(out.status.success(), "python: {}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from ipcctl True\n"
    );
    let out = d.run_ipcctl(&["read", "shm:py", "--offset", "100", "--len", "16"]);
    assert_eq!(out.stdout, b"hello from pyth0");
    assert!(
        d.shm_path("py").exists(),
        "Python left the segment in place"
    );
    d.ipcctl_ok(&["delete", "shm:py"]);
}

#[test]
fn a_program_may_shm_open_the_posix_name() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "shm:cstyle", "--size", "4096"]);
    let name = d.shm_kernel_name("cstyle");
    let fd = shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty()).expect("shm_open");
    assert_eq!(nix::sys::stat::fstat(&fd).unwrap().st_size, 4096);
    let shm = SharedMemory::from_fd(fd, true).unwrap();
    shm.write_at(10, b"by name").unwrap();
    let out = d.run_ipcctl(&["read", "shm:cstyle", "--offset", "10", "--len", "7"]);
    assert_eq!(out.stdout, b"by name");
    drop(shm);
    d.ipcctl_ok(&["delete", "shm:cstyle"]);
    assert!(shm_open(name.as_str(), OFlag::O_RDONLY, Mode::empty()).is_err());
}

#[test]
fn another_uid_gets_only_what_the_mode_grants() {
    if !nix::unistd::geteuid().is_root() {
        println!("note: not root; skipping the test that runs ipcctl as uid 65534");
        return;
    }
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "shm:private", "--size", "4096"]);
    d.ipcctl_ok(&["write", "shm:private", "secret"]);
    assert_denied(&as_nobody(&d, &["read", "shm:private"]), "read");
    assert_denied(&as_nobody(&d, &["write", "shm:private", "x"]), "write");
    assert_denied(
        &as_nobody(&d, &["resize", "shm:private", "--size", "8192"]),
        "resize",
    );
    assert_denied(&as_nobody(&d, &["delete", "shm:private"]), "delete");

    // Others may read, not write or grow.
    d.ipcctl_ok(&["create", "shm:board", "--size", "4096", "--mode", "0644"]);
    d.ipcctl_ok(&["write", "shm:board", "notice"]);
    let out = as_nobody(&d, &["read", "shm:board", "--len", "6"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"notice");
    assert_denied(&as_nobody(&d, &["write", "shm:board", "x"]), "write");
    assert_denied(
        &as_nobody(&d, &["resize", "shm:board", "--size", "8192"]),
        "resize",
    );
    assert_eq!(
        d.run_ipcctl(&["read", "shm:private", "--len", "6"]).stdout,
        b"secret"
    );
    d.ipcctl_ok(&["delete", "shm:private", "shm:board"]);
}

#[test]
fn bad_sizes_and_offsets_are_clear_errors() {
    let d = TestDaemon::start();
    fails(
        d.run_ipcctl(&["create", "shm:z", "--size", "0"]),
        2,
        "invalid-argument",
        "at least 1 byte",
    );
    fails(
        d.run_ipcctl(&["create", "shm:z", "--size", "2TiB"]),
        2,
        "too-large",
        "1 TiB",
    );
    fails(
        d.run_ipcctl(&["create", "shm:z"]),
        64,
        "usage",
        "needs --size",
    );
    let e = client(&d).create_shm("z", &ShmOptions::new()).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{e}");
    assert!(!d.shm_path("z").exists());

    d.ipcctl_ok(&["create", "shm:small", "--size", "16"]);
    fails(
        d.run_ipcctl(&["write", "shm:small", "--offset", "10", "seven!!"]),
        2,
        "too-large",
        "7 bytes are more than the 6 bytes from offset 10",
    );
    assert_eq!(
        d.run_ipcctl(&["read", "shm:small"]).stdout,
        [0; 16],
        "nothing was written"
    );
    fails(
        d.run_ipcctl(&["read", "shm:small", "--offset", "17"]),
        2,
        "invalid-argument",
        "offset 17 is past the end of shm:small (16 bytes)",
    );
    fails(
        d.run_ipcctl(&["read", "shm:small", "--offset", "8", "--len", "9"]),
        2,
        "invalid-argument",
        "9 bytes at offset 8 run past the end of shm:small",
    );
    let mut c = client(&d);
    let shm = c.open_shm("small", Access::Read).unwrap();
    let e = shm.read_vec(8, 9).unwrap_err();
    assert_eq!(
        e.to_string(),
        "9 bytes at offset 8 run past the end of shm:small (16 bytes mapped)"
    );
    let e = shm.write_at(0, b"x").unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PermissionDenied), "{e}");
    drop(shm);
    d.ipcctl_ok(&["delete", "shm:small"]);
}

#[test]
fn a_uid_s_segments_stay_within_its_byte_share() {
    if !nix::unistd::geteuid().is_root() {
        println!("note: not root; skipping the byte-share test (root has no share)");
        return;
    }
    let d = TestDaemon::start_with_config("socket_mode = \"0666\"\nshm_bytes_per_uid = 65536\n");
    let out = as_nobody(&d, &["create", "shm:big", "--size", "1MiB"]);
    fails(out, 2, "limit-exceeded", "shm_bytes_per_uid");
    let out = as_nobody(&d, &["create", "shm:fits", "--size", "48KiB"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_nobody(&d, &["create", "shm:more", "--size", "32KiB"]);
    fails(out, 2, "limit-exceeded", "shm_bytes_per_uid");
    let out = as_nobody(&d, &["resize", "shm:fits", "--size", "128KiB"]);
    fails(out, 2, "limit-exceeded", "shm_bytes_per_uid");
    let out = as_nobody(&d, &["resize", "shm:fits", "--size", "64KiB"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_nobody(&d, &["delete", "shm:fits"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_segment_survives_a_daemon_restart_with_its_bytes() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&["create", "shm:durable", "--size", "64KiB", "--mode", "0640"]);
    d.ipcctl_ok(&[
        "write",
        "shm:durable",
        "--offset",
        "1000",
        "kept across kill -9",
    ]);
    let before = stat_json(&d, "shm:durable");
    d.kill9();
    d.restart();
    let after = stat_json(&d, "shm:durable");
    for key in ["size", "mode", "owner_uid", "kernel_name", "created_at_ms"] {
        assert_eq!(before[key], after[key], "{key} changed across the restart");
    }
    let out = d.run_ipcctl(&["read", "shm:durable", "--offset", "1000", "--len", "19"]);
    assert_eq!(out.stdout, b"kept across kill -9");
    d.ipcctl_ok(&["delete", "shm:durable"]);
    assert!(!d.shm_path("durable").exists());
}

#[test]
fn an_atomic_counter_from_several_processes_ends_exact() {
    const PER_PROCESS: u64 = 200_000;
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "shm:counter", "--size", "4096"]);
    let socket = d.socket.to_str().unwrap().to_owned();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_shm-counter"))
            .args([
                socket.as_str(),
                "shm:counter",
                "64",
                &PER_PROCESS.to_string(),
                "2",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn shm-counter")
    };
    let children = [spawn(), spawn()];
    for mut child in children {
        let status = ipcd_tests::wait_timeout(&mut child, ipcd_tests::COMMAND_TIMEOUT)
            .expect("shm-counter finished");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(status.success(), "shm-counter: {err}");
    }
    let mut c = client(&d);
    let shm = c.open_shm("counter", Access::ReadWrite).unwrap();
    assert_eq!(shm.atomic_u64(72).unwrap().load(Ordering::Acquire), 2);
    assert_eq!(
        shm.atomic_u64(64).unwrap().load(Ordering::Acquire),
        2 * PER_PROCESS
    );
    let raw = d.run_ipcctl(&["read", "shm:counter", "--offset", "64", "--len", "8"]);
    assert_eq!(raw.stdout, (2 * PER_PROCESS).to_ne_bytes());
    drop(shm);
    d.ipcctl_ok(&["delete", "shm:counter"]);
}
