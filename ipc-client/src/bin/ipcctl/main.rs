//! `ipcctl`: the command-line client for ipcd (parsing, dispatch, exit status).

mod admin;
mod bench;
mod cli;
mod data;
mod exec;
mod output;

use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::Parser as _;
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
    let socket = cli.socket.as_deref();
    let json = cli.json;
    let connect = || -> anyhow::Result<Client> {
        let mut builder = Client::builder().name("ipcctl");
        if let Some(path) = socket {
            builder = builder.socket(path);
        }
        Ok(builder.connect()?)
    };
    match &cli.command {
        Command::Ping => admin::ping(&mut connect()?, json),
        Command::Status => admin::status(&mut connect()?, json),
        Command::List { kind } => admin::list(&mut connect()?, *kind, json),
        Command::Stat { address } => admin::stat(&mut connect()?, address, json),
        Command::Create(args) => admin::create(&mut connect()?, args, json),
        Command::Delete { address } => admin::delete(&mut connect()?, address, json),
        Command::Close { address } => admin::close(&mut connect()?, address, json),
        Command::Path { address } => admin::path(&mut connect()?, address, json),
        Command::Send(args) => data::send(&mut connect()?, args),
        Command::Recv(args) => data::recv(&mut connect()?, args, json),
        Command::Exec(args) => return exec::exec(connect()?, args),
        Command::Bench(args) => bench::run(args, socket, json),
        Command::BenchPeer(args) => bench::peer(args),
    }
    .map(|()| 0)
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
