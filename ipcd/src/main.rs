//! `ipcd`: parse arguments, set up logging, bind the socket, wire signals, run.

#![deny(unsafe_code)]

mod signal_catcher;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use futures_util::StreamExt;
use ipcd::config::{self, Config, DEFAULT_PREFIX, Tunables};
use ipcd::{Control, socket};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use tracing_subscriber::{EnvFilter, Registry, reload};

const LONG_ABOUT: &str = "\
ipcd hosts named IPC objects (message queues, pipes, FIFOs, shared memory, rings,
semaphores, locks, events, barriers) for unrelated processes, checks who may use
them, and hands out file descriptors so data flows through the kernel. It runs in
the foreground; stop it with SIGTERM or Ctrl-C. ipcctl(1) is its client.

Under systemd (ipcd.socket and ipcd.service, Type=notify) it takes the listening
socket passed by socket activation (LISTEN_FDS) instead of binding its own,
reports READY=1, RELOADING=1 and STOPPING=1 with a STATUS= line of object and
client counts, pings the watchdog (WatchdogSec=) from its serving loop, logs to
the journal with structured fields, and with --fd-store-max keeps hosted pipes
and buffered FIFOs' bytes across a restart in the fd store.";

/// ipcd hosts named IPC objects (POSIX message queues, …) for unrelated processes,
/// checks who may use them, and hands out file descriptors so data flows through
/// the kernel. Runs in the foreground; stop it with SIGTERM or Ctrl-C.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "host named IPC objects for unrelated processes and hand out their descriptors",
    long_about = LONG_ABOUT,
    after_help = "\
Examples:
  ipcd --socket /tmp/ipcd.sock --state-dir /tmp/ipcd-state
  IPCD_SOCKET=/tmp/ipcd.sock ipcd --log-level debug

Signals:
  SIGTERM, SIGINT  stop accepting, finish requests, save state, remove the socket, exit 0
                   (a second one exits at once)
  SIGHUP           re-read --config and log what changed
  SIGUSR1          log a status dump (objects, sessions, counters)
  others           a signal bound to a channel (ipcctl create signal:NAME --bind SIGUSR2)
                   raises that channel

Config file (TOML, every key optional):
  socket_mode = \"0660\"      socket_group = \"ipc\"      log_level = \"info\"
  max_frame = 1048576       max_message_size = 1048576
  max_objects_per_uid = 1024  max_connections = 1024
  mq_default_capacity = 10  mq_default_msg_size = 8192   (for queues created without;
                            default: the kernel's msg_default / msgsize_default)

Per-uid budgets (root and ipcd's own uid are exempt; `ipcctl status` shows yours, but
for shared-memory bytes):
  max_connections_per_uid = 256   reserved_connections = 32   (kept for root)
  max_handshakes_per_uid = 16     max_handshakes = 128        (before hello)
  max_waits_per_uid = 256         max_fds_per_uid = N         (default: open-file limit / 8)
  mq_budget_bytes = 67108864      (RLIMIT_MSGQUEUE asked for at start; needs CAP_SYS_RESOURCE)
  mq_bytes_per_uid = N            (default: a quarter of the queue budget ipcd got)
  shm_budget_bytes = 1073741824   (/dev/shm bytes all unprivileged users' segments and rings may take)
  shm_bytes_per_uid = N           (default: a quarter of shm_budget_bytes)
  max_subscriptions_per_uid = 256 (signal-channel watchers and processes signalled)
  queue_budget_bytes = 1073741824 (memory all unprivileged users' queue: objects may reserve)
  queue_bytes_per_uid = N         (default: a quarter of queue_budget_bytes)
Fixed: 16 semaphores per uid with acquisitions waiting in ipcd (one helper thread
each), 256 in all; 16 durable queues per uid (one journal writer thread each), 1024
in all."
)]
struct Args {
    /// Socket to listen on [default: $IPCD_SOCKET, else $XDG_RUNTIME_DIR/ipcd/ipcd.sock,
    /// else /run/ipcd/ipcd.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Where the registry is saved [default: $IPCD_STATE_DIR, else $XDG_STATE_HOME/ipcd,
    /// else ~/.local/state/ipcd when not root, else /var/lib/ipcd]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Directory for file-backed objects (FIFOs go in DIR/fifo)
    /// [default: the socket's directory]
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// Prefix of kernel names: mq:jobs becomes the POSIX queue /<PREFIX>jobs
    #[arg(long, value_name = "P", default_value = DEFAULT_PREFIX)]
    prefix: String,
    /// TOML config file with limits and socket permissions (re-read on SIGHUP)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    /// [default: the config file's log_level, else $RUST_LOG, else info]
    #[arg(long, value_name = "L")]
    log_level: Option<String>,
    /// Under systemd: hand at most N descriptors (hosted pipes' ends, buffered
    /// FIFOs' held ends) to the fd store, so they survive a restart; match
    /// the unit's FileDescriptorStoreMax= [default: $FDSTORE, else 0: off]
    #[arg(long, value_name = "N", env = "FDSTORE", default_value_t = 0)]
    fd_store_max: usize,
    /// Print the ipcd(8) manual page (roff) and exit
    #[arg(long, hide = true)]
    print_man: bool,
}

type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// Parses `--log-level`: a level name, or `tracing` directives such as `ipcd=debug`.
fn parse_filter(level: &str) -> Result<EnvFilter> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_directive = level.contains('=') || level.contains(',');
    if !is_directive && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        anyhow::bail!(
            "invalid log level '{level}': use off, error, warn, info, debug, trace or a directive such as ipcd=debug"
        );
    }
    EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("invalid log level '{level}': {e}"))
}

fn init_logging(level: Option<&str>) -> Result<FilterHandle> {
    use tracing_subscriber::prelude::*;
    let filter = match level {
        Some(l) => parse_filter(l)?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let (filter, handle) = reload::Layer::new(filter);
    // Under systemd, to the journal with structured fields; else stderr.
    let journal = ipcd::systemd::journal::layer();
    let stderr = journal.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journal)
        .with(stderr)
        .init();
    Ok(handle)
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipcd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if args.print_man {
        let page = clap_mangen::Man::new(<Args as clap::CommandFactory>::command().name("ipcd"))
            .section("8")
            .manual("System Manager's Manual");
        return match page.render(&mut std::io::stdout()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            done => Ok(done?),
        };
    }
    // Whatever umask ipcd inherits, what it creates is not writable by others
    // unless it says so (the socket, FIFOs and their directory get explicit modes).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let tunables = match &args.config {
        Some(path) => Tunables::load(path)?,
        None => Tunables::default(),
    };
    let cli_level = args.log_level.clone();
    let filter = init_logging(cli_level.as_deref().or(tunables.log_level.as_deref()))?;
    config::check_prefix(&args.prefix).map_err(anyhow::Error::msg)?;
    // Socket activation: the listener (and the fd store's descriptors) passed.
    let inherited = ipcd::systemd::activation::take()?;
    let socket_path = match &inherited.listener {
        Some((_, path)) => path.clone(),
        None => config::resolve_socket_path(args.socket.as_deref()),
    };
    let config = Config {
        socket_path: socket_path.clone(),
        remove_socket: inherited.listener.is_none(),
        state_dir: config::resolve_state_dir(args.state_dir.as_deref()),
        runtime_dir: match &args.runtime_dir {
            Some(dir) => dir.clone(),
            None => socket_path
                .parent()
                .map(|p| p.to_owned())
                .unwrap_or_else(|| ".".into()),
        },
        prefix: args.prefix.clone(),
        tunables,
    };
    // One malloc arena per CPU, not eight: see `limit_arenas`.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    ipcd::sys::mem::limit_arenas(cpus);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let ipcd::systemd::activation::Inherited { listener, stored } = inherited;
        let listener = match listener {
            Some((listener, _)) => listener,
            None => socket::bind(&config.socket_path, &config.tunables)?,
        };
        let (socket_path, ours) = (config.socket_path.clone(), config.remove_socket);
        let setup = ipcd::systemd::Setup {
            stored,
            fd_store_max: args.fd_store_max,
        };
        // From here on a socket file we bound is ours: remove it if we fail to start.
        let started = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
            .context("installing signal handlers")
            .and_then(|signals| Ok((signals, ipcd::Daemon::start_with(listener, config, setup)?)));
        let (signals, daemon) = match started {
            Ok(started) => started,
            Err(e) => {
                if ours {
                    let _ = std::fs::remove_file(&socket_path);
                }
                return Err(e);
            }
        };
        let bound_signals = signal_catcher::start(&daemon)?;
        let (control_tx, control_rx) = mpsc::channel(8);
        let signal_task = tokio::spawn(forward_signals(
            signals,
            control_tx,
            args.config.clone(),
            cli_level,
            filter,
        ));
        ipcd::systemd::notify::ready(&daemon.status_line());
        daemon.serve(control_rx).await;
        ipcd::systemd::notify::stopping();
        signal_task.abort();
        bound_signals.abort();
        Ok(())
    })
}

/// Turns signals into control messages; a second SIGTERM/SIGINT exits at once.
async fn forward_signals(
    mut signals: Signals,
    control: mpsc::Sender<Control>,
    config_path: Option<PathBuf>,
    cli_level: Option<String>,
    filter: FilterHandle,
) {
    let mut stopping = false;
    while let Some(signal) = signals.next().await {
        match signal {
            SIGTERM | SIGINT if stopping => {
                warn!("second stop signal: exiting now");
                std::process::exit(1);
            }
            SIGTERM | SIGINT => {
                info!(signal, "stop signal: shutting down");
                stopping = true;
                let _ = control.send(Control::Shutdown).await;
            }
            SIGHUP => {
                ipcd::systemd::notify::reloading();
                match &config_path {
                    None => info!("SIGHUP: no --config file to re-read"),
                    Some(path) => match Tunables::load(path) {
                        Ok(t) => {
                            if cli_level.is_none()
                                && let Some(level) = &t.log_level
                            {
                                match parse_filter(level) {
                                    Ok(f) => {
                                        let _ = filter.reload(f);
                                    }
                                    Err(e) => warn!("{e:#}"),
                                }
                            }
                            let _ = control.send(Control::Reload(Box::new(t))).await;
                        }
                        Err(e) => error!("keeping the old configuration: {e}"),
                    },
                }
                ipcd::systemd::notify::tell("READY=1\n");
            }
            SIGUSR1 => {
                let _ = control.send(Control::DumpStatus).await;
            }
            _ => {}
        }
    }
}
