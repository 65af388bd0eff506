//! `ipcctl exec`: run a command with its standard input/output joined to
//! hosted pipes or FIFOs, and exit with its status. The command dies with
//! ipcctl: it is started through `ipcctl exec-child`, which asks the kernel for
//! SIGKILL when its parent dies (`PR_SET_PDEATHSIG`) and then becomes the
//! command — safe code doing what a `pre_exec` hook would.

use std::ffi::OsStr;
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ipc_client::{Client, ErrorCode, Kind};
use nix::poll::PollFlags;
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::{Pid, getppid};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithRawSiginfo;

use crate::cli::{ExecArgs, ExecChildArgs, WithArgs};
use crate::cmd::common::{daemon_alive, daemon_gone, ends_with_daemon};
use crate::cmd::lock::wait_error;
use crate::cmd::stream::Sink;
use crate::cmd::{PERMITS, STREAMS, check_kind};
use crate::errors::{Code, fail};
use crate::watch::{Wait, show, wait_ready};

/// Signals passed on to the command when someone sends them to ipcctl.
const FORWARDED: [i32; 6] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2];

/// `ipcctl exec`: returns the exit status to leave with.
pub fn exec(mut client: Client, args: &ExecArgs) -> anyhow::Result<u8> {
    let (stdin, stdout, watched) = join_ends(&mut client, args)?;
    // The connection stays only to tell, once the command is done, whether an
    // end of file it read was ipcd stopping.
    let mut client = watched.is_some().then_some(client);
    let program = &args.command[0];
    let mut command = dying_with_us(&args.command);
    if let Some(fd) = stdin {
        command.stdin(Stdio::from(fd));
    }
    if let Some(fd) = stdout {
        command.stdout(Stdio::from(fd));
    }
    let status = run(command, program)?;
    if let (Some(address), Some(client)) = (&watched, client.as_mut())
        && !daemon_alive(client)
    {
        let program = program.to_string_lossy();
        return Err(daemon_gone(&format!(
            "{program} was reading {address} (it then ended with {status})"
        )));
    }
    Ok(exit_status(status))
}

/// The exit status that passes on `status`: its code, or 128+N for signal N.
fn exit_status(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(u8::MAX),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(u8::MAX),
        (None, None) => u8::MAX,
    }
}

/// `ipcctl with`: acquires a semaphore's permit or a lock on this connection,
/// runs the command (dying with ipcctl, as exec's does), and gives the permit
/// back whatever the command's exit. Returns the command's exit status.
pub fn with(mut client: Client, args: &WithArgs) -> anyhow::Result<u8> {
    let address = &args.address;
    let wait = args.wait();
    let kind = check_kind(address, "with", PERMITS)?;
    match kind {
        Kind::Lock => client.lock_acquire(address, wait).map(drop),
        _ => client.sem_acquire(address, wait).map(drop),
    }
    .map_err(|e| wait_error(e, address, wait, "acquiring"))?;
    let program = &args.command[0];
    let watch = crate::holding::Watch::start(
        &client,
        address.clone(),
        program.to_string_lossy().into_owned(),
    );
    let status = run(dying_with_us(&args.command), program);
    drop(watch);
    // Given back whatever happened; a connection that is gone gave it back already.
    let released = match kind {
        Kind::Lock => client.lock_release(address).map(drop),
        _ => client.sem_release(address).map(drop),
    };
    let status = status?;
    if let Err(e) = released {
        eprintln!(
            "ipcctl: warning: releasing {address} after {}: {e}",
            program.to_string_lossy()
        );
    }
    Ok(exit_status(status))
}

/// `command` (a program and its arguments), to be started through
/// `ipcctl exec-child` so that it dies with this process.
fn dying_with_us(command: &[std::ffi::OsString]) -> Command {
    // This very executable, even if its file was replaced meanwhile.
    let mut wrapper = Command::new("/proc/self/exe");
    wrapper
        .arg0("ipcctl")
        .arg("exec-child")
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .arg("--")
        .args(command);
    wrapper
}

/// `ipcctl exec-child --parent-pid P -- CMD…`: arranges to be killed when the
/// thread that started it (ipcctl's main thread, which waits for it) ends,
/// then becomes CMD. Returns only if CMD cannot run.
pub fn exec_child(args: &ExecChildArgs) -> anyhow::Result<u8> {
    let program = &args.command[0];
    set_pdeathsig(Signal::SIGKILL).map_err(|e| {
        fail(
            Code::CannotRun,
            format!(
                "cannot run {}: prctl(PR_SET_PDEATHSIG): {e}",
                program.to_string_lossy()
            ),
        )
    })?;
    // A parent that died before the line above sent no signal: run nothing
    // for an ipcctl that is gone.
    if getppid().as_raw() != args.parent_pid {
        return Ok(EXIT_PARENT_GONE);
    }
    let e = Command::new(program).args(&args.command[1..]).exec();
    Err(cannot_run(program, &e))
}

/// Exit status of `exec-child` when its ipcctl died before the command
/// started (nobody sees it: 128 + SIGKILL, as if the signal had come).
const EXIT_PARENT_GONE: u8 = 128 + 9;

/// The command could not be started: not found (127) or not runnable (126).
fn cannot_run(program: &OsStr, e: &std::io::Error) -> anyhow::Error {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => Code::CommandNotFound,
        _ => Code::CannotRun,
    };
    fail(
        code,
        format!("cannot run {}: {e}", program.to_string_lossy()),
    )
}

/// Opens the command's standard input and output, each waiting at most
/// `--timeout` for the other side: a FIFO's writer (for input) or reader (for
/// output), a pipe's first bytes or end of file (input) or room (output).
/// Also returns the input's address if its end of file may mean ipcd stopped.
fn join_ends(
    client: &mut Client,
    args: &ExecArgs,
) -> anyhow::Result<(Option<OwnedFd>, Option<OwnedFd>, Option<String>)> {
    let wait = args.timeout.map_or(Wait::Forever, Wait::Timeout);
    // Open the reader first (that never waits), then the writer (a FIFO waits
    // for its reader), then wait for the reader's writer: the order a shell's
    // `cmd < in > out` would take, so two execs wired crosswise do not deadlock.
    let stdin = match &args.stdin {
        Some(address) => Some(match check_kind(address, "exec --stdin", STREAMS)? {
            Kind::Fifo => Input::Fifo(client.open_fifo_reader(address)?),
            // check_kind let only pipes and FIFOs through.
            Kind::Pipe
            | Kind::Mq
            | Kind::Shm
            | Kind::Ring
            | Kind::Sem
            | Kind::Lock
            | Kind::Event
            | Kind::Barrier
            | Kind::Signal
            | Kind::Queue => Input::Pipe(client.open_pipe_reader(address)?),
        }),
        None => None,
    };
    let stdout = match &args.stdout {
        Some(address) => {
            let kind = check_kind(address, "exec --stdout", STREAMS)?;
            let sink = Sink::open(client, address, kind, wait)?;
            if let (Sink::Pipe(w), Some(t)) = (&sink, args.timeout)
                && !wait_ready(w.as_fd(), PollFlags::POLLOUT, t)?
            {
                return Err(fail(
                    ErrorCode::TimedOut,
                    format!("{address} stayed full for {}", show(t)),
                ));
            }
            Some(OwnedFd::from(sink))
        }
        None => None,
    };
    let watched = stdin
        .as_ref()
        .filter(|input| input.ends_with_daemon())
        .and_then(|_| args.stdin.clone());
    let stdin = match stdin {
        Some(input) => Some(input.into_fd(args.timeout)?),
        None => None,
    };
    Ok((stdin, stdout, watched))
}

/// Starts `command` with ipcctl's signals passed on to it, and waits for it.
fn run(mut command: Command, program: &OsStr) -> anyhow::Result<ExitStatus> {
    // Catch the signals before the command exists, so none kills ipcctl
    // and leaves the command orphaned; the command starts with default handlers.
    let mut signals = SignalsInfo::<WithRawSiginfo>::new(FORWARDED)?;
    // A command that cannot run is reported by `exec-child`, with its status.
    let child = command.spawn().map_err(|e| cannot_run(program, &e))?;
    // Our copies of the pipe ends go, so readers see end of file when the command ends.
    drop(command);

    let pid = Pid::from_raw(i32::try_from(child.id())?);
    let reaped = Arc::new(Mutex::new(false));
    let handle = signals.handle();
    let forwarder = {
        let reaped = Arc::clone(&reaped);
        std::thread::spawn(move || {
            for info in signals.forever() {
                // The terminal signals the whole foreground process group, the
                // command included: passing those on would deliver them twice.
                if info.si_code == libc::SI_KERNEL {
                    continue;
                }
                // Until it is reaped the pid is the command's, even as a zombie.
                let done = reaped.lock().unwrap_or_else(PoisonError::into_inner);
                if !*done && let Ok(sig) = Signal::try_from(info.si_signo) {
                    let _ = kill(pid, sig);
                }
            }
        })
    };
    let status = wait_for(child, pid, &reaped)?;
    handle.close();
    let _ = forwarder.join();
    Ok(status)
}

/// Waits for the command to end, then reaps it under the lock the signal
/// forwarder takes, so it never signals a pid that was reused.
fn wait_for(mut child: Child, pid: Pid, reaped: &Mutex<bool>) -> anyhow::Result<ExitStatus> {
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("waitid")),
        }
    }
    let mut done = reaped.lock().unwrap_or_else(PoisonError::into_inner);
    *done = true;
    Ok(child.wait()?)
}

/// The command's standard input, before it is handed over.
enum Input {
    Pipe(ipc_client::PipeReader),
    Fifo(ipc_client::FifoReader),
}

impl Input {
    /// Whether end of file may mean that ipcd stopped.
    fn ends_with_daemon(&self) -> bool {
        ends_with_daemon(match self {
            Input::Pipe(r) => r.info(),
            Input::Fifo(r) => r.info(),
        })
    }

    /// The descriptor for the command; a FIFO first waits (at most `timeout`)
    /// until a writer has written or come and gone, or the command would read
    /// end of file at once. With a `timeout`, a pipe first waits that long
    /// for bytes or end of file.
    fn into_fd(self, timeout: Option<Duration>) -> anyhow::Result<OwnedFd> {
        match self {
            Input::Pipe(r) => {
                if let Some(t) = timeout
                    && !wait_ready(r.as_fd(), PollFlags::POLLIN, t)?
                {
                    return Err(fail(
                        ErrorCode::TimedOut,
                        format!("nothing arrived on {} within {}", r.address(), show(t)),
                    ));
                }
                Ok(OwnedFd::from(r))
            }
            Input::Fifo(r) => {
                let address = r.address().to_owned();
                r.into_blocking(timeout).map_err(|e| match e {
                    ipc_client::Error::TimedOut => fail(
                        ErrorCode::TimedOut,
                        format!(
                            "no writer came to {address} within {}",
                            show(timeout.unwrap_or_default())
                        ),
                    ),
                    e => {
                        anyhow::Error::new(e).context(format!("waiting for a writer on {address}"))
                    }
                })
            }
        }
    }
}
