//! The unit files: `systemd-analyze verify` says nothing about them (as root
//! and as another user), the system service scores at most 2.0 in
//! `systemd-analyze security`, and they say what running ipcd as a service
//! needs (notify, reload, watchdog, fd store, the static user, limits, the
//! FIFO directory, no settings that break IPC).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use ipcd_tests::run_with_timeout;
use ipcd_tests::service::{repo_root, tool};

use super::{temp_dir, units_in};

/// Runs `systemd-analyze ARGS… FILES…` in `dir`; returns (success, everything printed).
fn analyze(
    dir: &Path,
    args: &[&str],
    files: &[std::path::PathBuf],
    uid: Option<u32>,
) -> (bool, String) {
    let mut cmd = match uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg("systemd-analyze");
            c
        }
        None => Command::new("systemd-analyze"),
    };
    cmd.current_dir(dir)
        .args(args)
        .args(files)
        .env("SYSTEMD_LOG_COLOR", "0");
    let out = run_with_timeout(&mut cmd);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn verify_reports_nothing_on_the_system_units() {
    if tool(
        "systemd-analyze",
        "verify_reports_nothing_on_the_system_units",
    )
    .is_none()
    {
        return;
    }
    let dir = temp_dir();
    let units = units_in(dir.path(), false);
    let (ok, printed) = analyze(dir.path(), &["verify", "--man=no"], &units, None);
    assert!(
        ok && printed.is_empty(),
        "systemd-analyze verify said:\n{printed}"
    );
    // A developer or CI without root gets the same answer.
    if nix::unistd::geteuid().is_root() && tool("setpriv", "verify as uid 65534").is_some() {
        let (ok, printed) = analyze(dir.path(), &["verify", "--man=no"], &units, Some(65534));
        assert!(
            ok && printed.is_empty(),
            "as uid 65534, systemd-analyze verify said:\n{printed}"
        );
    }
}

#[test]
fn verify_output_is_caught_for_a_mistyped_setting() {
    // The check above treats any output as failure; verify only warns on an
    // unknown key (exit 0), so this is what it would see.
    if tool(
        "systemd-analyze",
        "verify_output_is_caught_for_a_mistyped_setting",
    )
    .is_none()
    {
        return;
    }
    let dir = temp_dir();
    let units = units_in(dir.path(), false);
    let service = std::fs::read_to_string(&units[1]).unwrap();
    std::fs::write(&units[1], service.replace("WatchdogSec=", "WatchdogSecs=")).unwrap();
    let (_, printed) = analyze(dir.path(), &["verify", "--man=no"], &units, None);
    assert!(
        printed.contains("WatchdogSecs"),
        "verify did not flag the typo:\n{printed}"
    );
}

#[test]
fn verify_reports_nothing_on_the_user_units() {
    if tool(
        "systemd-analyze",
        "verify_reports_nothing_on_the_user_units",
    )
    .is_none()
    {
        return;
    }
    let dir = temp_dir();
    let units = units_in(dir.path(), true);
    let runtime = dir.path().join("xdg-runtime");
    std::fs::create_dir(&runtime).unwrap();
    let mut cmd = Command::new("systemd-analyze");
    cmd.current_dir(dir.path())
        .args(["--user", "verify", "--man=no"])
        .args(&units)
        .env("XDG_RUNTIME_DIR", &runtime);
    let out = run_with_timeout(&mut cmd);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && printed.is_empty(),
        "systemd-analyze --user verify said:\n{printed}"
    );
}

#[test]
fn security_score_is_at_most_2() {
    if tool("systemd-analyze", "security_score_is_at_most_2").is_none() {
        return;
    }
    let service = repo_root().join("systemd/ipcd.service");
    let (_, printed) = analyze(
        &repo_root(),
        &["security", "--offline=true", "--no-pager"],
        &[service],
        None,
    );
    let score: f64 = printed
        .lines()
        .find_map(|l| l.split("Overall exposure level for ipcd.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{printed}"));
    eprintln!("systemd-analyze security --offline=true systemd/ipcd.service: {score}");
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{printed}");
}

/// A unit file's settings: key to every value given, in order.
fn settings(path: &Path) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            map.entry(k.to_owned()).or_default().push(v.to_owned());
        }
    }
    map
}

fn one<'a>(s: &'a HashMap<String, Vec<String>>, key: &str) -> &'a str {
    let values = s.get(key).unwrap_or_else(|| panic!("{key}= is missing"));
    values.last().unwrap()
}

/// The value after `flag` in a command line.
fn flag<'a>(cmdline: &'a str, name: &str) -> &'a str {
    let mut words = cmdline.split_whitespace();
    words.find(|w| *w == name);
    words
        .next()
        .unwrap_or_else(|| panic!("{name} missing from {cmdline}"))
}

#[test]
fn the_units_say_what_a_service_needs() {
    let root = repo_root();
    let socket = settings(&root.join("systemd/ipcd.socket"));
    let service = settings(&root.join("systemd/ipcd.service"));
    assert_eq!(one(&socket, "ListenStream"), "/run/ipcd/ipcd.sock");
    assert_eq!(one(&socket, "SocketMode"), "0660");
    assert_eq!(one(&socket, "SocketGroup"), "ipcd");

    assert_eq!(one(&service, "Type"), "notify");
    assert!(one(&service, "ExecReload").contains("-HUP $MAINPID"));
    assert!(one(&service, "WatchdogSec").ends_with('s'));
    assert_eq!(
        one(&service, "Restart"),
        "on-failure",
        "a wedged loop is restarted"
    );
    assert_eq!(one(&service, "User"), "ipcd");
    assert_eq!(one(&service, "RemoveIPC"), "no");
    for banned in ["DynamicUser", "PrivateIPC", "PrivateUsers"] {
        assert!(
            !service.contains_key(banned),
            "{banned}= breaks IPC (PLATFORM-NOTES)"
        );
    }
    assert!(one(&service, "LimitNOFILE").parse::<u64>().unwrap() >= 4096);
    // LimitMSGQUEUE= is the queue budget ipcd asks for (its --help says the default).
    let help = run_with_timeout(Command::new(ipcd_tests::ipcd_bin()).arg("--help"));
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let budget = help
        .split("mq_budget_bytes = ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("ipcd --help names no mq_budget_bytes default:\n{help}"));
    assert_eq!(one(&service, "LimitMSGQUEUE"), budget);
    assert_eq!(one(&service, "RuntimeDirectory"), "ipcd/fifo");

    // ExecStart agrees with the socket and the directories.
    let exec = one(&service, "ExecStart");
    assert_eq!(flag(exec, "--socket"), one(&socket, "ListenStream"));
    assert_eq!(
        Path::new(flag(exec, "--runtime-dir")).join("fifo"),
        Path::new("/run").join(one(&service, "RuntimeDirectory"))
    );
    assert_eq!(flag(exec, "--state-dir"), "/var/lib/ipcd");
    assert_eq!(
        flag(exec, "--fd-store-max"),
        one(&service, "FileDescriptorStoreMax")
    );

    // The user units: the socket where ipcctl looks by default.
    let user_socket = settings(&root.join("systemd/user/ipcd.socket"));
    let user_service = settings(&root.join("systemd/user/ipcd.service"));
    assert_eq!(one(&user_socket, "ListenStream"), "%t/ipcd/ipcd.sock");
    let exec = one(&user_service, "ExecStart");
    assert_eq!(flag(exec, "--socket"), "%t/ipcd/ipcd.sock");
    assert_eq!(
        flag(exec, "--fd-store-max"),
        one(&user_service, "FileDescriptorStoreMax")
    );
    assert_eq!(one(&user_service, "Type"), "notify");
    assert!(
        std::fs::read_to_string(root.join("systemd/user/ipcd.service"))
            .unwrap()
            .contains("enable-linger"),
        "the user unit names the lingering caveat"
    );
}

#[test]
fn sysusers_and_tmpfiles_entries_make_the_user_and_directories() {
    let test = "sysusers_and_tmpfiles_entries_make_the_user_and_directories";
    if tool("systemd-sysusers", test).is_none() || tool("systemd-tmpfiles", test).is_none() {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped {test}: systemd-tmpfiles --root needs root to chown");
        return;
    }
    let dir = temp_dir();
    let root = dir.path();
    std::fs::create_dir(root.join("etc")).unwrap();
    let sysusers = repo_root().join("systemd/ipcd.sysusers");
    let out = run_with_timeout(
        Command::new("systemd-sysusers")
            .arg(format!("--root={}", root.display()))
            .arg(&sysusers),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("ipcd:"))
        .unwrap_or_else(|| panic!("no ipcd user in {passwd}"));
    let uid: u32 = user.split(':').nth(2).unwrap().parse().unwrap();
    assert!(uid > 0 && uid < 1000, "ipcd is a system user (uid {uid})");
    let out = run_with_timeout(
        Command::new("systemd-tmpfiles")
            .arg(format!("--root={}", root.display()))
            .arg("--create")
            .arg(repo_root().join("systemd/ipcd.tmpfiles")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = std::fs::metadata(root.join("var/lib/ipcd")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&state),
        uid,
        "/var/lib/ipcd belongs to ipcd"
    );
    assert!(root.join("etc/ipcd").is_dir());
}
