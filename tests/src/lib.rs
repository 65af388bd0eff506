//! Test support for end-to-end tests: [`TestDaemon`] runs the real `ipcd` binary
//! on a private socket with a unique object prefix, and checks on drop that it
//! stops cleanly and leaves no kernel objects behind.

pub mod raw;
pub mod service;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a daemon gets to start or stop before the test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long any single `ipcctl` run may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Directory holding the workspace's built binaries (`ipcd`, `ipcctl`).
///
/// The binaries are (re)built once per test process with the same profile as the
/// test itself, so a test never runs a stale binary.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/e2e-<hash>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps")
            .to_owned();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--bins", "-p", "ipcd", "-p", "ipcctl"]);
        if release {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("running cargo build for the binaries");
        assert!(status.success(), "building ipcd and ipcctl failed");
        dir
    })
}

/// Path of the `ipcd` binary.
pub fn ipcd_bin() -> PathBuf {
    bin_dir().join("ipcd")
}

/// Path of the `ipcctl` binary.
pub fn ipcctl_bin() -> PathBuf {
    bin_dir().join("ipcctl")
}

/// `config` with small default queues (8 messages of 256 bytes, about 3 KiB of
/// the POSIX queue byte budget instead of 80 KiB) unless it sets them: other
/// processes of the same uid on a shared machine may hold most of that budget.
/// Tests that create queues without a size get these; size tests say theirs.
pub fn with_small_queues(config: &str) -> String {
    let mut out = config.to_owned();
    if !config.contains("mq_default_capacity") {
        out.push_str("\nmq_default_capacity = 8\n");
    }
    if !config.contains("mq_default_msg_size") {
        out.push_str("\nmq_default_msg_size = 256\n");
    }
    out
}

/// Polls `check` every 10 ms until it holds; panics naming `what` after 10 s.
/// Every wait for the daemon to catch up goes through here: no bare sleeps.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` up to `timeout`; kills it and returns `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a command to completion with [`COMMAND_TIMEOUT`]; panics if it hangs.
pub fn run_with_timeout(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(out) => out.expect("wait_with_output"),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("command {cmd:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
    }
}

fn unique_prefix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}x{}.",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A real `ipcd` process on a private socket in a short temp dir.
pub struct TestDaemon {
    dir: tempfile::TempDir,
    /// The daemon's socket.
    pub socket: PathBuf,
    /// The daemon's state directory.
    pub state_dir: PathBuf,
    /// Kernel-name prefix unique to this daemon (`t<pid>x<n>.`).
    pub prefix: String,
    config: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl TestDaemon {
    /// Starts a daemon whose socket anyone may connect to (mode 0666), so tests
    /// can check per-object permissions with other uids.
    pub fn start() -> Self {
        Self::start_with_config("socket_mode = \"0666\"\n")
    }

    /// Starts a daemon with this TOML config file.
    pub fn start_with_config(config: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ipcd")
            .tempdir_in("/tmp")
            .expect("temp dir");
        // Other uids must be able to reach the socket for permission tests.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod temp dir");
        let config_path = dir.path().join("ipcd.toml");
        std::fs::write(&config_path, with_small_queues(config)).expect("write config");
        let mut d = TestDaemon {
            socket: dir.path().join("s"),
            state_dir: dir.path().join("state"),
            log: dir.path().join("ipcd.log"),
            prefix: unique_prefix(),
            config: config_path,
            dir,
            child: None,
        };
        d.spawn();
        d
    }

    /// The temp directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("daemon running").id() as i32)
    }

    /// Starts the daemon process and waits for its `READY=1` notification.
    fn spawn(&mut self) {
        let mut cmd = Command::new(ipcd_bin());
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--prefix")
            .arg(&self.prefix)
            .arg("--config")
            .arg(&self.config)
            .arg("--log-level")
            .arg("debug");
        self.child = Some(spawn_ready(&mut cmd, self.dir.path(), &self.log));
    }

    /// Kills the daemon with SIGKILL (no cleanup) and reaps it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// Starts the daemon again on the same socket, state dir and prefix.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the daemon before restarting it");
        self.spawn();
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal ipcd");
    }

    /// Sends SIGTERM and waits for the daemon to exit; returns its status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        wait_timeout(&mut child, START_TIMEOUT)
            .unwrap_or_else(|| panic!("ipcd ignored SIGTERM\n{}", self.log()))
    }

    /// The kernel name of a message queue `mq:NAME` hosted by this daemon.
    pub fn mq_kernel_name(&self, name: &str) -> String {
        format!("/{}{name}", self.prefix)
    }

    /// The POSIX name of a segment `shm:NAME` hosted by this daemon
    /// (`/<prefix>NAME`, what `shm_open` takes).
    pub fn shm_kernel_name(&self, name: &str) -> String {
        format!("/{}{name}", self.prefix)
    }

    /// The file of a segment `shm:NAME` hosted by this daemon (`/dev/shm/<prefix>NAME`).
    pub fn shm_path(&self, name: &str) -> PathBuf {
        Path::new("/dev/shm").join(format!("{}{name}", self.prefix))
    }

    /// The path of a FIFO `fifo:NAME` hosted by this daemon.
    pub fn fifo_path(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .join("fifo")
            .join(format!("{}{name}", self.prefix))
    }

    /// An `ipcctl` command aimed at this daemon.
    pub fn ipcctl(&self) -> Command {
        let mut cmd = Command::new(ipcctl_bin());
        cmd.arg("--socket")
            .arg(&self.socket)
            .env_remove("IPCD_SOCKET");
        cmd
    }

    /// Runs `ipcctl ARGS…` against this daemon and returns its output.
    pub fn run_ipcctl(&self, args: &[&str]) -> Output {
        run_with_timeout(self.ipcctl().args(args))
    }

    /// Runs `ipcctl ARGS…` and asserts it succeeded; returns stdout.
    pub fn ipcctl_ok(&self, args: &[&str]) -> String {
        let out = self.run_ipcctl(args);
        assert!(
            out.status.success(),
            "ipcctl {args:?} failed with {}:\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Kernel objects with this daemon's prefix that exist now, as names
    /// (`mq:` entries from `/dev/mqueue` when it is mounted; in `/dev/shm`,
    /// `ring:<prefix>ring:NAME` for a ring's segment, `sem:<prefix>NAME` for a
    /// semaphore's `sem.<prefix>NAME`, `shm:<prefix>NAME` else).
    pub fn kernel_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let fifo_dir = self.dir.path().join("fifo");
        let dirs = [
            (Path::new("/dev/mqueue"), "mq"),
            (Path::new("/dev/shm"), "shm"),
            (fifo_dir.as_path(), "fifo"),
        ];
        for (dir, tag) in dirs {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    // A named semaphore `/PREFIXNAME` is the file `sem.PREFIXNAME`.
                    let (bare, tag) = match name.strip_prefix("sem.") {
                        Some(bare) if tag == "shm" => (bare, "sem"),
                        _ => (name.as_str(), tag),
                    };
                    if let Some(rest) = bare.strip_prefix(&self.prefix) {
                        let tag = if tag == "shm" && rest.starts_with("ring:") {
                            "ring"
                        } else {
                            tag
                        };
                        found.push(format!("{tag}:{bare}"));
                    }
                }
            }
        }
        // Durable queues' journals live in the state directory, not the kernel.
        if let Ok(entries) = std::fs::read_dir(self.state_dir.join("queue")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".journal") {
                    found.push(format!("queue:{name}"));
                }
            }
        }
        found
    }

    /// Stops the daemon (if running) and checks nothing leaked: the exit status
    /// is success and, once registered objects are removed, no kernel object with
    /// this daemon's prefix is left. Returns the problems found.
    fn stop_and_check(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.child.is_some() {
            let status = self.terminate();
            if !status.success() {
                problems.push(format!("ipcd exited with {status}"));
            }
        }
        if self.socket.exists() {
            problems.push(format!("socket {} left behind", self.socket.display()));
        }
        // Objects still registered are the test's own (persistent); remove them.
        let registry =
            std::fs::read_to_string(self.state_dir.join("registry.json")).unwrap_or_default();
        let registry: serde_json::Value = serde_json::from_str(&registry).unwrap_or_default();
        for obj in registry["objects"].as_array().into_iter().flatten() {
            let (Some(address), Some(kernel)) =
                (obj["address"].as_str(), obj["kernel_name"].as_str())
            else {
                continue;
            };
            if address.starts_with("mq:") {
                let _ = nix::mqueue::mq_unlink(kernel);
            } else if address.starts_with("shm:") || address.starts_with("ring:") {
                let _ = nix::sys::mman::shm_unlink(kernel);
            } else if address.starts_with("sem:") {
                // sem_unlink("/NAME") removes /dev/shm/sem.NAME.
                let file = format!("sem.{}", kernel.trim_start_matches('/'));
                let _ = std::fs::remove_file(Path::new("/dev/shm").join(file));
            } else {
                let _ = std::fs::remove_file(kernel);
            }
        }
        // Anything left now was never registered, or was unregistered without being removed.
        for leftover in self.kernel_leftovers() {
            problems.push(format!("kernel object leaked: {leftover}"));
            let name = leftover.split_once(':').map(|(_, n)| n).unwrap_or_default();
            if leftover.starts_with("mq:") {
                let _ = nix::mqueue::mq_unlink(format!("/{name}").as_str());
            } else if leftover.starts_with("fifo:") {
                let _ = std::fs::remove_file(self.dir.path().join("fifo").join(name));
            } else if leftover.starts_with("sem:") {
                let _ = std::fs::remove_file(Path::new("/dev/shm").join(format!("sem.{name}")));
            } else {
                let _ = std::fs::remove_file(Path::new("/dev/shm").join(name));
            }
        }
        problems
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let problems = self.stop_and_check();
        if !problems.is_empty() && !std::thread::panicking() {
            panic!(
                "test daemon check failed:\n  {}\nlog:\n{}",
                problems.join("\n  "),
                self.log()
            );
        }
    }
}

/// Spawns `cmd`, an `ipcd` command line the caller built (for a test that needs
/// flags, resource limits or a umask [`TestDaemon`] does not give), with its
/// stderr appended to `log`, and waits for its `READY=1` on a notify socket in
/// `dir`. Kills it and panics with the log if it is not ready in [`START_TIMEOUT`].
pub fn spawn_ready(cmd: &mut Command, dir: &Path, log: &Path) -> Child {
    let notify_path = dir.join("notify-ready");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
    notify
        .set_read_timeout(Some(START_TIMEOUT))
        .expect("timeout");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut child = cmd
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("spawn ipcd");
    let mut buf = [0u8; 512];
    loop {
        match notify.recv(&mut buf) {
            Ok(n)
                if String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1") =>
            {
                return child;
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ipcd did not become ready: {e}\nlog:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }
}

/// Descriptors process `pid` holds now (0 once it is gone).
pub fn proc_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// A field of `/proc/<pid>/status` given in kB, such as `VmRSS` (resident
/// memory now) or `VmHWM` (its peak); `None` if the process or field is gone.
pub fn proc_status_kib(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Whether the POSIX queue filesystem is mounted at `/dev/mqueue` (where
/// [`TestDaemon::kernel_leftovers`] looks for queues); mounts it first when
/// missing and running as root.
pub fn ensure_mqueue_mounted() -> bool {
    let mounted = || {
        std::fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/dev/mqueue"))
    };
    if mounted() {
        return true;
    }
    if nix::unistd::geteuid().is_root() {
        let _ = std::fs::create_dir_all("/dev/mqueue");
        let _ = Command::new("mount")
            .args(["-t", "mqueue", "mqueue", "/dev/mqueue"])
            .status();
    }
    mounted()
}
