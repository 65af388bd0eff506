//! `ipcctl`: the command-line client for ipcd (parsing, dispatch, exit status).

#![forbid(unsafe_code)]

mod admin;
mod cli;
mod data;
mod exec;
mod output;

use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use ipc_client::Client;

use cli::{Cli, Command};

/// Exit status: the wait ran out, or there was nothing to receive / no room to send.
const EXIT_NOTHING: u8 = 1;
/// Exit status: any other error.
const EXIT_ERROR: u8 = 2;
/// Exit status: the command line was wrong (`EX_USAGE`).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and are not errors.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(status) => ExitCode::from(status),
        Err(e) => report(&e),
    }
}

/// Runs the command; returns the exit status (0, or `exec`'s command's).
fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Command::Help { command } = &cli.command {
        return help(command);
    }
    // A mistyped address or kind is reported without a daemon, in the daemon's
    // words and with its code (exit status 2).
    for address in addresses(&cli.command) {
        data::kind_of(address)?;
    }
    let list_kind = match &cli.command {
        Command::List { kind: Some(kind) } => Some(cli::parse_kind(kind)?),
        _ => None,
    };
    // An empty IPCD_SOCKET counts as unset, as it does for ipcd.
    let socket = ipc_client::resolve_socket_path(cli.socket.as_deref());
    let json = cli.json;
    let connect = || -> anyhow::Result<Client> {
        Ok(Client::builder().name("ipcctl").socket(&socket).connect()?)
    };
    match &cli.command {
        Command::Ping => admin::ping(&mut connect()?, json),
        Command::Status => admin::status(&mut connect()?, json),
        Command::List { .. } => admin::list(&mut connect()?, list_kind, json),
        Command::Stat { address } => admin::stat(&mut connect()?, address, json),
        Command::Create(args) => admin::create(&mut connect()?, args, json),
        Command::Delete { address } => admin::delete(&mut connect()?, address, json),
        Command::Close { address } => admin::close(&mut connect()?, address, json),
        Command::Path { address } => admin::path(&mut connect()?, address, json),
        Command::Send(args) => data::send(&mut connect()?, args),
        Command::Recv(args) => data::recv(&mut connect()?, args, json),
        Command::Exec(args) => return exec::exec(connect()?, args),
        // Only an explicit --socket: bench passes it on to the processes it starts.
        Command::Bench(args) => bench::run(args, cli.socket.as_deref(), json),
        Command::BenchPeer(args) => bench::peer(args),
        Command::Help { .. } => unreachable!("answered above"),
    }
    .map(|()| 0)
}

/// The object addresses a command names, checked before connecting.
fn addresses(command: &Command) -> Vec<&str> {
    match command {
        Command::Stat { address }
        | Command::Delete { address }
        | Command::Close { address }
        | Command::Path { address } => vec![address],
        Command::Create(args) => vec![&args.address],
        Command::Send(args) => vec![&args.address],
        Command::Recv(args) => vec![&args.address],
        Command::Exec(args) => args
            .stdin
            .iter()
            .chain(&args.stdout)
            .map(String::as_str)
            .collect(),
        Command::Ping
        | Command::Status
        | Command::List { .. }
        | Command::Bench(_)
        | Command::BenchPeer(_)
        | Command::Help { .. } => Vec::new(),
    }
}

/// `ipcctl help [COMMAND…]`: the same text as `ipcctl [COMMAND…] --help`.
fn help(path: &[String]) -> anyhow::Result<u8> {
    let mut cmd = &Cli::command();
    for name in path {
        match cmd.find_subcommand(name) {
            Some(sub) => cmd = sub,
            None => {
                return Err(data::Usage(format!(
                    "there is no command '{name}' (ipcctl --help lists them)"
                ))
                .into());
            }
        }
    }
    // clap renders `--help` itself (short or long layout, as it sees fit).
    let args = std::iter::once("ipcctl")
        .chain(path.iter().map(String::as_str))
        .chain(["--help"]);
    match Cli::try_parse_from(args) {
        Err(e) => e.print().map_err(output::stdout_error)?,
        Ok(_) => unreachable!("--help after command names always asks for help"),
    }
    Ok(0)
}

/// Prints `ipcctl: MESSAGE (code)` and picks the exit status; a closed stdout is quiet.
fn report(e: &anyhow::Error) -> ExitCode {
    if e.chain().any(|c| c.is::<output::StdoutClosed>()) {
        return ExitCode::SUCCESS;
    }
    let client_error = e
        .chain()
        .find_map(|c| c.downcast_ref::<ipc_client::Error>());
    let nothing = e.chain().any(|c| c.is::<data::NothingInTime>())
        || client_error.is_some_and(ipc_client::Error::is_timeout_or_would_block);
    let usage = e.chain().any(|c| c.is::<data::Usage>());
    // Daemon errors name their code already; add it for the client's own.
    let slug = match client_error {
        Some(ipc_client::Error::Server(_) | ipc_client::Error::Fatal(_)) | None => None,
        Some(ce) => ce.code().map(|c| c.slug()),
    };
    let mut msg = format!("ipcctl: {e:#}");
    if let Some(slug) = slug {
        msg.push_str(&format!(" ({slug})"));
    }
    if let Some(ipc_client::Error::Connect { source, .. }) = client_error
        && matches!(
            source.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
        )
    {
        msg.push_str("; is ipcd running? (its socket is set with --socket or IPCD_SOCKET)");
    }
    let _ = writeln!(io::stderr(), "{msg}");
    ExitCode::from(if usage {
        EXIT_USAGE
    } else if nothing {
        EXIT_NOTHING
    } else {
        EXIT_ERROR
    })
}
