//! Running ipcd as a service, checked without a running systemd: the units
//! (`systemd-analyze verify` and `security`), socket activation with
//! `systemd-socket-activate`, readiness, status, reload, stop and watchdog
//! through a stand-in notify socket, the journal, the fd store across a
//! restart, and the install: script, package, man pages and completions.
//! Tests that need a tool skip with a printed reason when it is missing
//! (on the development machines and CI every one is there).

mod activation;
mod fdstore;
mod install;
mod units;

use std::path::{Path, PathBuf};
use std::process::Command;

use ipcd_tests::service::repo_root;
use ipcd_tests::{ipcd_bin, with_small_queues};

/// A short temp dir others may enter (the permission checks switch uids).
fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("ipcsvc")
        .tempdir_in("/tmp")
        .expect("temp dir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    dir
}

/// Copies the units in `systemd/` (`systemd/user/` with `user`) into `dir`
/// with `ExecStart=` pointing at the ipcd this test run built: verify wants
/// the binary to exist. Returns the copies, socket first.
fn units_in(dir: &Path, user: bool) -> Vec<PathBuf> {
    let src = repo_root().join(if user { "systemd/user" } else { "systemd" });
    let bin = ipcd_bin();
    ["ipcd.socket", "ipcd.service"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(src.join(name)).expect("read unit");
            assert!(
                name.ends_with(".socket") || text.contains("ExecStart=/usr/bin/ipcd "),
                "{name}: ExecStart= no longer runs /usr/bin/ipcd; update this test"
            );
            let copy = dir.join(name);
            let text = text.replace("/usr/bin/ipcd ", &format!("{} ", bin.display()));
            std::fs::write(&copy, text).expect("write unit copy");
            copy
        })
        .collect()
}

/// An `ipcd` command on a private socket, state dir and prefix under `dir`,
/// with a config file, logging at debug level.
fn ipcd_in(dir: &Path, prefix: &str) -> Command {
    let config = dir.join("ipcd.toml");
    std::fs::write(&config, with_small_queues("log_level = \"debug\"\n")).expect("config");
    let mut cmd = Command::new(ipcd_bin());
    cmd.arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--runtime-dir")
        .arg(dir)
        .arg("--prefix")
        .arg(prefix)
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM")
        .env_remove("FDSTORE")
        .env_remove("IPCD_SOCKET");
    cmd
}

/// A unique kernel-name prefix for one test's daemon.
fn prefix(tag: &str) -> String {
    format!("s{}{tag}.", std::process::id())
}

/// `ipcctl --socket SOCKET ARGS…`, asserting success; returns stdout.
fn ipcctl_ok(socket: &Path, args: &[&str]) -> String {
    let out = ipcd_tests::run_with_timeout(
        Command::new(ipcd_tests::ipcctl_bin())
            .arg("--socket")
            .arg(socket)
            .args(args),
    );
    assert!(
        out.status.success(),
        "ipcctl {args:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}
