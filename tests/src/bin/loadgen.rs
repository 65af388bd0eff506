//! `loadgen`: load and scale figures for ipcd. A benchmark, not a test: it is
//! not timed and not run by CI. It starts its own daemon (the release `ipcd`
//! next to this binary, or `--ipcd PATH`) in a temporary directory, with
//! `max_connections` and the per-uid connection and handshake budgets raised
//! to fit, and reports the figures `BENCHMARKS.md` ("Load and scale") records.
//!
//! ```text
//! cargo run --release -p ipcd-tests --bin loadgen -- --clients 1000 --uids 4 --secs 30
//! cargo run --release -p ipcd-tests --bin loadgen -- --connect-only 10000
//! cargo run --release -p ipcd-tests --bin loadgen -- --churn
//! ```
//!
//! Under `cargo run` it builds `ipcd` with its own profile first; run directly
//! (`target/release/loadgen …`) it takes the `ipcd` beside it as it is.
//!
//! **Mixed load** (default): `--clients N` connections, spread over `--uids U`
//! users when run as root (uid 0, 65534, 65533, …; one worker process per uid,
//! a re-execution of this binary, one thread per connection), each doing for
//! `--secs S` a mix (one request at a time) of ping 30 %, stat 20 %, a list
//! page of 50 10 %, create+delete of a session pipe or FIFO 15 %, open of a
//! queue (capacity 2, 64 B) with a send and a receive through it 15 %, and a
//! wait-for answered at once 10 %. Each worker shares 16 queues among its
//! clients: `fs.mqueue.queues_max` (256, all users together) allows no more
//! without CAP_SYS_RESOURCE. Reports requests/s, p50/p99/p99.9
//! latency of the daemon's answers, errors (must be 0), the daemon's RSS idle,
//! peak during the run (VmHWM) and after the clients left, and its CPU time.
//!
//! `--no-create` pings instead of creating and deleting: each create and delete
//! syncs the intent journal and the registry to disk (shared among the changes
//! in progress, outside the registry lock), and the difference shows what
//! those writes cost the whole load.
//!
//! **Scale** (`--connect-only N`): raises its own open-file limit, holds `N`
//! handshaken connections idle, measures the daemon's RSS, pings through a
//! sample of them (errors must be 0), then closes them all and measures again.
//!
//! **Churn** (`--churn`): 1000 connected (RSS), 5 bursts of 2000 more
//! connecting and disconnecting, then the first 1000 replaced by 1000 new
//! ones (RSS again): memory must not grow with the connections that came before.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ipc_client::{
    Access, Client, CreateSpec, FifoParams, KindParams, Lifetime, MqOptions, PipeParams, Readiness,
};

/// Buckets of the latency histogram: exact below 64 µs, then 32 per power of two (≤ 3 %).
const BUCKETS: usize = 64 + 58 * 32;
/// The uids of the worker processes, in order, when running as root.
const UIDS: [u32; 8] = [0, 65534, 65533, 65532, 65531, 65530, 65529, 65528];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("--worker") {
        worker(&args[1..])
    } else {
        run(&args)
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(2);
    }
}

/// A flag's value from `--flag value` arguments.
fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value"))?
            .parse()
            .map_err(|_| format!("{name}: not a valid value")),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: loadgen [--ipcd PATH] [--clients N] [--uids U] [--secs S] [--no-create] \
             | --connect-only N [--sample K] | --churn"
        );
        return Ok(());
    }
    let ipcd = match flag(args, "--ipcd", String::new())? {
        p if p.is_empty() => sibling_ipcd()?,
        p => PathBuf::from(p),
    };
    if !ipcd.exists() {
        return Err(format!(
            "no daemon binary at {} (cargo build --release -p ipcd, or --ipcd PATH)",
            ipcd.display()
        ));
    }
    machine_note(&ipcd);
    let connect_only: usize = flag(args, "--connect-only", 0)?;
    if connect_only > 0 {
        let sample = flag(args, "--sample", 1000)?;
        return scale(&ipcd, connect_only, sample);
    }
    if args.iter().any(|a| a == "--churn") {
        return churn(&ipcd);
    }
    let clients = flag(args, "--clients", 100)?;
    let uids = flag(args, "--uids", 1)?;
    let secs = flag(args, "--secs", 10.0)?;
    let no_create = args.iter().any(|a| a == "--no-create");
    mixed(&ipcd, clients, uids, secs, no_create)
}

/// The `ipcd` next to this binary (`target/<profile>/`). Under `cargo run`
/// it is (re)built first with the same profile, so it is never stale.
fn sibling_ipcd() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    if let Some(cargo) = std::env::var_os("CARGO") {
        let release = exe
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "release");
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "ipcd", "--bin", "ipcd"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() {
            return Err("building ipcd failed".into());
        }
    }
    Ok(exe.with_file_name("ipcd"))
}

fn machine_note(ipcd: &Path) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cpus} CPUs ({model}), load average {}, daemon {}",
        loadavg(),
        ipcd.display()
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// The daemon.

struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Daemon {
    /// Starts `ipcd` with room for `connections` and waits for `READY=1`.
    fn start(ipcd: &Path, connections: usize) -> Result<Daemon, String> {
        let dir = tempfile::Builder::new()
            .prefix("loadgen")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let n = connections + 100;
        let config = format!(
            "socket_mode = \"0666\"\nlog_level = \"warn\"\nmax_connections = {n}\n\
             max_connections_per_uid = {n}\nmax_handshakes = {n}\nmax_handshakes_per_uid = {n}\n\
             max_objects_per_uid = {n}\n"
        );
        let config_path = dir.path().join("ipcd.toml");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let socket = dir.path().join("s");
        let notify_path = dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).map_err(|e| e.to_string())?;
        notify
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.path().join("ipcd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(ipcd)
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--prefix")
            .arg(format!("lg{}.", std::process::id()))
            .arg("--config")
            .arg(&config_path)
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", ipcd.display()))?;
        let mut buf = [0u8; 512];
        loop {
            let n = notify
                .recv(&mut buf)
                .map_err(|e| format!("ipcd did not become ready: {e}"))?;
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                break;
            }
        }
        Ok(Daemon { child, dir, socket })
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A `/proc/<pid>/status` field in KiB.
    fn kib(&self, field: &str) -> u64 {
        ipcd_tests::proc_status_kib(self.pid(), field).unwrap_or(0)
    }

    /// User + system CPU time so far, in seconds.
    fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        ticks as f64 / 100.0
    }

    /// Waits until only `keep` connections are open (closed ones are reaped asynchronously).
    fn settle(&self, keep: u32) -> Result<(), String> {
        let mut c = Client::connect_to(&self.socket).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while c.status().map_err(|e| e.to_string())?.sessions > keep + 1 {
            if Instant::now() > deadline {
                return Err("connections did not close within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the allocator's frees land before measuring.
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    fn stop(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        let log = std::fs::read_to_string(self.dir.path().join("ipcd.log")).unwrap_or_default();
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        if !warnings.is_empty() {
            println!(
                "daemon log: {} warnings/errors, first: {}",
                warnings.len(),
                warnings[0]
            );
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// ---------------------------------------------------------------------------
// Mixed load.

fn mixed(
    ipcd: &Path,
    clients: usize,
    uids: usize,
    secs: f64,
    no_create: bool,
) -> Result<(), String> {
    let root = nix::unistd::geteuid().is_root();
    let uids = if root { uids.clamp(1, UIDS.len()) } else { 1 };
    if !root {
        println!(
            "not root: every client runs as uid {}",
            nix::unistd::geteuid()
        );
    }
    raise_nofile(clients + 1000)?;
    let d = Daemon::start(ipcd, clients)?;
    std::thread::sleep(Duration::from_millis(300));
    let idle = d.kib("VmRSS");
    println!(
        "mixed: {clients} clients over {uids} uid(s) for {secs} s; daemon idle RSS {}",
        mib(idle)
    );
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut workers = Vec::new();
    for (w, &uid) in UIDS.iter().enumerate().take(uids) {
        let threads = clients / uids + usize::from(w < clients % uids);
        let mut cmd = Command::new(&me);
        cmd.arg("--worker")
            .args(["--socket", &d.socket.to_string_lossy()])
            .args(["--threads", &threads.to_string()])
            .args(["--secs", &secs.to_string()])
            .args(["--tag", &format!("w{w}")])
            .args(no_create.then_some("--no-create"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if root && uid != 0 {
            cmd.uid(uid).gid(uid);
        }
        workers.push(cmd.spawn().map_err(|e| format!("worker: {e}"))?);
    }
    // Every worker connects all its clients, then says so; then all start at once.
    let mut outs: Vec<_> = workers
        .iter_mut()
        .map(|w| BufReader::new(w.stdout.take().expect("piped")))
        .collect();
    let setup = Instant::now();
    for o in &mut outs {
        let mut line = String::new();
        o.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            return Err(format!("a worker failed to set up: {line}"));
        }
    }
    let setup = setup.elapsed();
    let connected = d.kib("VmRSS");
    let load_before = loadavg();
    let cpu_before = d.cpu_secs();
    let started = Instant::now();
    for w in &mut workers {
        let mut stdin = w.stdin.take().expect("piped");
        writeln!(stdin, "go").map_err(|e| e.to_string())?;
    }
    // Sample the daemon's RSS while the load runs.
    let mut peak = 0;
    while started.elapsed().as_secs_f64() < secs {
        peak = peak.max(d.kib("VmRSS"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut total = WorkerResult::default();
    for (w, o) in workers.iter_mut().zip(outs) {
        for line in o.lines().map_while(Result::ok) {
            if let Some(r) = WorkerResult::parse(&line) {
                total.add(&r);
            } else if line.starts_with("error ") {
                println!("{line}");
            }
        }
        let _ = w.wait();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = d.cpu_secs() - cpu_before;
    let load_after = loadavg();
    let hwm = d.kib("VmHWM");
    d.settle(0)?;
    let after = d.kib("VmRSS");
    let (p50, p99, p999, max) = (
        total.percentile(0.50),
        total.percentile(0.99),
        total.percentile(0.999),
        total.percentile(1.0),
    );
    println!(
        "mixed: setup (all connected) {:.1} s; RSS with {clients} connected {}",
        setup.as_secs_f64(),
        mib(connected)
    );
    println!(
        "mixed: {} requests in {:.1} s = {:.0} requests/s; latency p50 {} µs, p99 {} µs, \
         p99.9 {} µs, max {} µs; {} errors; {} queue send+recv pairs through the kernel \
         ({} more found a shared queue full or empty)",
        total.requests,
        total.secs,
        total.requests as f64 / total.secs.max(elapsed),
        p50,
        p99,
        p999,
        max,
        total.errors,
        total.kernel_pairs,
        total.contended
    );
    for (op, n, sum_us) in total.by_op() {
        let what = if op == "connect" {
            "connects"
        } else {
            "requests"
        };
        println!(
            "mixed:   {op:<10} {n:>9} {what}, mean {:.0} µs",
            sum_us as f64 / n.max(1) as f64
        );
    }
    println!(
        "mixed: daemon RSS idle {}, peak {} (VmHWM; sampled {}), after the clients left {}; \
         daemon CPU {:.1} s of {:.1} s ({:.0} % of one CPU); load average before {load_before}, \
         after {load_after}",
        mib(idle),
        mib(hwm),
        mib(peak),
        mib(after),
        cpu,
        elapsed,
        100.0 * cpu / elapsed
    );
    d.stop();
    if total.errors > 0 {
        return Err(format!("{} errors", total.errors));
    }
    Ok(())
}

/// The operations of the mix, in the order of the per-operation tallies.
const OPS: [&str; 8] = [
    "ping",
    "stat",
    "list_page",
    "create",
    "delete",
    "open",
    "wait_for",
    "connect",
];

#[derive(Default, Clone)]
struct WorkerResult {
    requests: u64,
    errors: u64,
    kernel_pairs: u64,
    contended: u64,
    secs: f64,
    counts: [u64; OPS.len()],
    sums_us: [u64; OPS.len()],
    hist: Vec<u64>,
}

impl WorkerResult {
    fn record(&mut self, op: usize, took: Duration) {
        let us = took.as_micros() as u64;
        if self.hist.is_empty() {
            self.hist = vec![0; BUCKETS];
        }
        self.hist[bucket(us)] += 1;
        self.requests += 1;
        self.counts[op] += 1;
        self.sums_us[op] += us;
    }

    fn add(&mut self, o: &WorkerResult) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.kernel_pairs += o.kernel_pairs;
        self.contended += o.contended;
        self.secs = self.secs.max(o.secs);
        for i in 0..OPS.len() {
            self.counts[i] += o.counts[i];
            self.sums_us[i] += o.sums_us[i];
        }
        if self.hist.is_empty() {
            self.hist = vec![0; BUCKETS];
        }
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a += b;
        }
    }

    /// The latency (µs, bucket's lower bound) at quantile `q` (nearest rank).
    fn percentile(&self, q: f64) -> u64 {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (b, n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_value(b);
            }
        }
        0
    }

    fn by_op(&self) -> Vec<(&'static str, u64, u64)> {
        (0..OPS.len())
            .filter(|&i| self.counts[i] > 0)
            .map(|i| (OPS[i], self.counts[i], self.sums_us[i]))
            .collect()
    }

    fn line(&self) -> String {
        let hist: Vec<String> = self
            .hist
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| format!("{b}:{n}"))
            .collect();
        let join = |a: &[u64]| a.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        format!(
            "result {} {} {} {} {} {} {} {}",
            self.requests,
            self.errors,
            self.kernel_pairs,
            self.contended,
            self.secs,
            join(&self.counts),
            join(&self.sums_us),
            hist.join(",")
        )
    }

    fn parse(line: &str) -> Option<WorkerResult> {
        let mut f = line.strip_prefix("result ")?.split(' ');
        let mut r = WorkerResult {
            requests: f.next()?.parse().ok()?,
            errors: f.next()?.parse().ok()?,
            kernel_pairs: f.next()?.parse().ok()?,
            contended: f.next()?.parse().ok()?,
            secs: f.next()?.parse().ok()?,
            hist: vec![0; BUCKETS],
            ..Default::default()
        };
        let list = |s: &str| -> Vec<u64> { s.split(',').filter_map(|x| x.parse().ok()).collect() };
        for (i, v) in list(f.next()?).into_iter().enumerate().take(OPS.len()) {
            r.counts[i] = v;
        }
        for (i, v) in list(f.next()?).into_iter().enumerate().take(OPS.len()) {
            r.sums_us[i] = v;
        }
        for kv in f.next().unwrap_or("").split(',').filter(|s| !s.is_empty()) {
            let (b, n) = kv.split_once(':')?;
            r.hist[b.parse::<usize>().ok()?.min(BUCKETS - 1)] += n.parse::<u64>().ok()?;
        }
        Some(r)
    }
}

fn bucket(us: u64) -> usize {
    if us < 64 {
        us as usize
    } else {
        let e = 63 - us.leading_zeros() as usize;
        (64 + (e - 6) * 32 + ((us >> (e - 5)) & 31) as usize).min(BUCKETS - 1)
    }
}

fn bucket_value(b: usize) -> u64 {
    if b < 64 {
        b as u64
    } else {
        let e = (b - 64) / 32 + 6;
        (32 + ((b - 64) % 32) as u64) << (e - 5)
    }
}

/// Queues each worker shares among its clients: the system allows only
/// `fs.mqueue.queues_max` (256 here, all users together) without
/// CAP_SYS_RESOURCE, so 1000 clients cannot have one each.
const SHARED_QUEUES: usize = 16;

/// A worker process: `--threads K` connections, each its own thread; prints
/// `ready` once all are connected, waits for `go` on stdin, runs `--secs`,
/// prints one `result` line.
fn worker(args: &[String]) -> Result<(), String> {
    let socket = PathBuf::from(flag(args, "--socket", String::new())?);
    let threads: usize = flag(args, "--threads", 1)?;
    let secs: f64 = flag(args, "--secs", 10.0)?;
    let tag: String = flag(args, "--tag", "w".to_owned())?;
    let no_create = args.iter().any(|a| a == "--no-create");
    // The worker's queues, held (session lifetime) by one connection for its whole run:
    // SHARED_QUEUES for the clients' send+receive, and one that always holds a
    // message, so a wait for it to be readable is answered at once.
    let mut admin = Client::connect_with(&socket, "loadgen-admin").map_err(|e| e.to_string())?;
    let small = MqOptions::new()
        .capacity(2)
        .msg_size(64)
        .mode(0o600)
        .session();
    for q in 0..SHARED_QUEUES {
        admin
            .create_mq(&format!("lg{tag}q{q}"), &small)
            .map_err(|e| format!("creating a queue: {e}"))?;
    }
    admin
        .create_mq(&format!("lg{tag}full"), &small)
        .and_then(|q| q.send(b"always", 0))
        .map_err(|e| format!("creating a queue: {e}"))?;
    let ready = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (socket, ready, go) = (socket.clone(), ready.clone(), go.clone());
            let names = Names {
                own: format!("lg{tag}t{i}x"),
                shared: format!("mq:lg{tag}q{}", i % SHARED_QUEUES),
                full: format!("mq:lg{tag}full"),
                no_create,
            };
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || client_thread(&socket, &names, secs, &ready, &go))
                .expect("spawn a client thread")
        })
        .collect();
    ready.wait();
    println!("ready");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    go.wait();
    let mut total = WorkerResult::default();
    let mut errors_shown = 0;
    for h in handles {
        let (r, errors) = h
            .join()
            .map_err(|_| "a client thread panicked".to_owned())?;
        total.add(&r);
        for e in errors.into_iter().take(3) {
            if errors_shown < 10 {
                println!("error {tag}: {e}");
                errors_shown += 1;
            }
        }
    }
    drop(admin);
    println!("{}", total.line());
    Ok(())
}

/// The objects one client uses.
struct Names {
    /// Base name of the pipes and FIFOs it creates and deletes.
    own: String,
    /// The queue it shares with a few other clients of its worker.
    shared: String,
    /// The worker's queue that always holds a message.
    full: String,
    /// Ping instead of create+delete.
    no_create: bool,
}

/// One client: connects, waits for the start, then runs the mix.
fn client_thread(
    socket: &Path,
    names: &Names,
    secs: f64,
    ready: &Barrier,
    go: &Barrier,
) -> (WorkerResult, Vec<String>) {
    let mut r = WorkerResult::default();
    let mut errors = Vec::new();
    let t = Instant::now();
    let setup = Client::connect_with(socket, "loadgen");
    // Connection setup is tallied apart from the mix's latency.
    r.counts[7] = 1;
    r.sums_us[7] = t.elapsed().as_micros() as u64;
    ready.wait();
    go.wait();
    let mut c = match setup {
        Ok(c) => c,
        Err(e) => {
            r.errors += 1;
            errors.push(format!("connect: {e}"));
            return (r, errors);
        }
    };
    let mut rng = (names
        .own
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        | 1)
    .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % 100
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    let mut fail = |r: &mut WorkerResult, what: &str, e: ipc_client::Error| {
        r.errors += 1;
        if errors.len() < 3 {
            errors.push(format!("{what}: {e}"));
        }
    };
    while Instant::now() < deadline {
        let roll = next();
        let t = Instant::now();
        let roll = if names.no_create && (60..75).contains(&roll) {
            0
        } else {
            roll
        };
        match roll {
            0..30 => match c.ping() {
                Ok(()) => r.record(0, t.elapsed()),
                Err(e) => fail(&mut r, "ping", e),
            },
            30..50 => match c.stat(&names.shared) {
                Ok(_) => r.record(1, t.elapsed()),
                Err(e) => fail(&mut r, "stat", e),
            },
            50..60 => match c.list_page(None, None, 50) {
                Ok(_) => r.record(2, t.elapsed()),
                Err(e) => fail(&mut r, "list_page", e),
            },
            60..75 => {
                n += 1;
                let (kind, params) = if n.is_multiple_of(2) {
                    ("pipe", KindParams::Pipe(PipeParams { capacity: None }))
                } else {
                    ("fifo", KindParams::Fifo(FifoParams { buffered: false }))
                };
                let address = format!("{kind}:{}", names.own);
                let spec = CreateSpec {
                    mode: None,
                    lifetime: Lifetime::Session,
                    adopt: false,
                    params,
                };
                match c.create(&address, spec) {
                    Ok(_) => r.record(3, t.elapsed()),
                    Err(e) => {
                        fail(&mut r, "create", e);
                        continue;
                    }
                }
                let t = Instant::now();
                match c.delete(&address) {
                    Ok(()) => r.record(4, t.elapsed()),
                    Err(e) => fail(&mut r, "delete", e),
                }
            }
            75..90 => match c.open_mq(&names.shared, Access::ReadWrite) {
                Ok(q) => {
                    r.record(5, t.elapsed());
                    // Shared with other clients: full or empty now and then.
                    let sent = q.try_send(b"loadgen", 0);
                    let got = q.try_recv();
                    match (sent, got) {
                        (Ok(()), Ok(_)) => r.kernel_pairs += 1,
                        (Err(ipc_client::Error::WouldBlock), _)
                        | (_, Err(ipc_client::Error::WouldBlock)) => r.contended += 1,
                        (Err(e), _) | (_, Err(e)) => fail(&mut r, "send+recv", e),
                    }
                }
                Err(e) => fail(&mut r, "open", e),
            },
            _ => match c.wait_for(
                &names.full,
                Readiness::Readable,
                Some(Duration::from_secs(5)),
            ) {
                Ok(_) => r.record(6, t.elapsed()),
                Err(e) => fail(&mut r, "wait_for", e),
            },
        }
    }
    r.secs = started.elapsed().as_secs_f64();
    (r, errors)
}

// ---------------------------------------------------------------------------
// Scale and churn.

/// Raises this process's open-file limit to at least `want` (the daemon
/// inherits it and raises its own soft limit to the hard one): the soft limit
/// to the hard one, and the hard one too if it is lower and we may.
fn raise_nofile(want: usize) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    let want = want as u64;
    if hard < want {
        setrlimit(Resource::RLIMIT_NOFILE, want, want).map_err(|e| {
            format!("cannot raise the open-file limit from {hard} to {want}: {e} (ulimit -Hn)")
        })?;
    } else if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Opens `n` handshaken connections from a few threads at once.
fn connect_many(socket: &Path, n: usize) -> Result<Vec<Client>, String> {
    let threads = 8.min(n.max(1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let socket = socket.to_owned();
            let count = n / threads + usize::from(t < n % threads);
            std::thread::spawn(move || -> Result<Vec<Client>, String> {
                (0..count)
                    .map(|_| {
                        Client::connect_with(&socket, "loadgen-idle").map_err(|e| e.to_string())
                    })
                    .collect()
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for h in handles {
        all.extend(h.join().map_err(|_| "a connecting thread panicked")??);
    }
    Ok(all)
}

fn scale(ipcd: &Path, n: usize, sample: usize) -> Result<(), String> {
    raise_nofile(n + 500)?;
    let d = Daemon::start(ipcd, n)?;
    std::thread::sleep(Duration::from_millis(300));
    let idle = d.kib("VmRSS");
    let t = Instant::now();
    let mut conns = connect_many(&d.socket, n)?;
    let took = t.elapsed();
    d.settle(n as u32)?;
    let held = d.kib("VmRSS");
    let per = (held.saturating_sub(idle)) as f64 * 1024.0 / n as f64;
    println!(
        "scale: {n} connections handshaken in {:.1} s; daemon RSS idle {}, with {n} connected {} \
         ({:.1} KiB per connection); target ≤ 200 MiB: {}",
        took.as_secs_f64(),
        mib(idle),
        mib(held),
        per / 1024.0,
        if held <= 200 * 1024 { "met" } else { "MISSED" }
    );
    let step = (n / sample.max(1)).max(1);
    let (mut pinged, mut errors) = (0, 0);
    let mut lat = WorkerResult::default();
    for c in conns.iter_mut().step_by(step) {
        let t = Instant::now();
        match c.ping() {
            Ok(()) => lat.record(0, t.elapsed()),
            Err(e) => {
                errors += 1;
                if errors < 4 {
                    println!("scale: ping failed: {e}");
                }
            }
        }
        pinged += 1;
    }
    println!(
        "scale: pinged through {pinged} of them: {errors} errors, p50 {} µs, p99 {} µs",
        lat.percentile(0.5),
        lat.percentile(0.99)
    );
    let hwm = d.kib("VmHWM");
    drop(conns);
    d.settle(0)?;
    let after = d.kib("VmRSS");
    println!(
        "scale: after all {n} disconnected: daemon RSS {} (peak {})",
        mib(after),
        mib(hwm)
    );
    d.stop();
    if errors > 0 {
        return Err(format!("{errors} ping errors"));
    }
    Ok(())
}

fn churn(ipcd: &Path) -> Result<(), String> {
    const BASE: usize = 1000;
    const BURST: usize = 2000;
    const BURSTS: usize = 5;
    raise_nofile(BASE + BURST + 500)?;
    let d = Daemon::start(ipcd, BASE + BURST)?;
    std::thread::sleep(Duration::from_millis(300));
    let idle = d.kib("VmRSS");
    let first = connect_many(&d.socket, BASE)?;
    d.settle(BASE as u32)?;
    let with_first = d.kib("VmRSS");
    let per = with_first.saturating_sub(idle) as f64 / BASE as f64;
    println!(
        "churn: daemon RSS idle {}, with {BASE} connected {} ({per:.1} KiB per idle connection; \
         target ≤ 16 KiB: {})",
        mib(idle),
        mib(with_first),
        if per <= 16.0 { "met" } else { "MISSED" }
    );
    for b in 1..=BURSTS {
        let t = Instant::now();
        let burst = connect_many(&d.socket, BURST)?;
        let peak = d.kib("VmRSS");
        drop(burst);
        d.settle(BASE as u32)?;
        println!(
            "churn: burst {b}: {BURST} connected and disconnected in {:.1} s; RSS at {} \
             connected {}, after {}",
            t.elapsed().as_secs_f64(),
            BASE + BURST,
            mib(peak),
            mib(d.kib("VmRSS"))
        );
    }
    drop(first);
    d.settle(0)?;
    let between = d.kib("VmRSS");
    let again = connect_many(&d.socket, BASE)?;
    d.settle(BASE as u32)?;
    let with_again = d.kib("VmRSS");
    println!(
        "churn: all disconnected {}; {BASE} connected again {} (target ≤ 30 MiB: {}); peak {}",
        mib(between),
        mib(with_again),
        if with_again <= 30 * 1024 {
            "met"
        } else {
            "MISSED"
        },
        mib(d.kib("VmHWM"))
    );
    drop(again);
    d.stop();
    Ok(())
}
