//! `ipcctl`: the command-line client for ipcd (parsing, dispatch, exit status).

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod connect;
mod docs;
mod errors;
mod exec;
mod holding;
mod output;
mod parse;
mod watch;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use ipc_client::Kind;

use cli::{Cli, Command, DeleteArgs};
use cmd::{
    ANY_KIND, CHANNELS, CREATABLE, MESSAGING, PERMITS, QUEUES, SEGMENTS, SENDABLE, STREAMS,
    WAITABLE, admin, barrier, event, fifo, mq, pipe, queue, shm, signal, status,
};
use errors::{report, report_clap, usage};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Before parsing succeeds, --json is looked for by hand.
            let json = std::env::args_os().skip(1).any(|a| a == "--json");
            return report_clap(&e, json);
        }
    };
    let json = cli.json;
    match run(cli) {
        Ok(status) => ExitCode::from(status),
        Err(e) => report(&e, json),
    }
}

/// Runs the command; returns the exit status (0, or `exec`'s command's).
fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Help { command } => return help(command),
        Command::Completions(args) => return docs::completions(args.shell).map(|()| 0),
        Command::Man(args) => return docs::man(&args.out).map(|()| 0),
        _ => {}
    }
    // A mistyped address or kind is reported without a daemon, in the daemon's
    // words and with its code (exit status 2).
    for (address, verb, takes) in addresses(&cli.command) {
        cmd::check_kind(address, verb, takes)?;
    }
    cmd::check_flags(&cli.command, cli.json)?;
    // list KIND, delete --all --kind KIND.
    let kind_filter = match &cli.command {
        Command::List {
            kind: Some(kind), ..
        }
        | Command::List {
            kind_flag: Some(kind),
            ..
        } => Some(parse::parse_kind(kind)?),
        Command::Delete(DeleteArgs {
            kind: Some(kind), ..
        }) => Some(parse::parse_kind(kind)?),
        _ => None,
    };
    // An empty IPCD_SOCKET counts as unset, as it does for ipcd.
    let socket = ipc_client::resolve_socket_path(cli.socket.as_deref());
    let json = cli.json;
    let connect = || connect::connect(&socket, connect::timeout(cli.connect_timeout)?);
    match &cli.command {
        Command::Ping => admin::ping(&mut connect()?, json),
        Command::Status => status::status(&mut connect()?, json),
        Command::List { .. } => admin::list(&mut connect()?, kind_filter, json),
        Command::Stat { address } => admin::stat(&mut connect()?, address, json),
        Command::Create(args) => admin::create(&mut connect()?, args, json),
        Command::Delete(args) => admin::delete(&mut connect()?, args, kind_filter, json),
        Command::Close { address } => pipe::close(&mut connect()?, address, json),
        Command::Path { address } => fifo::path(&mut connect()?, address, json),
        Command::Send(args) => cmd::send(&mut connect()?, args, json),
        Command::Recv(args) => cmd::recv(connect()?, args, json),
        Command::WaitFor(args) => mq::wait_for(&mut connect()?, args, json),
        Command::Write(args) => shm::write(&mut connect()?, args, json),
        Command::Read(args) => shm::read(&mut connect()?, args, json),
        Command::Resize(args) => shm::resize(&mut connect()?, args, json),
        Command::Exec(args) => return exec::exec(connect()?, args),
        Command::ExecChild(args) => return exec::exec_child(args),
        Command::Acquire(args) => cmd::acquire(&mut connect()?, args, json),
        Command::Take(args) => cmd::sem::take(&mut connect()?, &args.address, args.wait(), json),
        Command::Release { address } => cmd::release(&mut connect()?, address, json),
        Command::With(args) => return exec::with(connect()?, args),
        Command::Set { address } => event::set(&mut connect()?, address, json),
        Command::Clear { address } => event::clear(&mut connect()?, address, json),
        Command::Wait(args) => cmd::wait(&mut connect()?, args, json),
        Command::Reset { address } => barrier::reset(&mut connect()?, address, json),
        Command::Watch(args) => signal::watch(&mut connect()?, args, json),
        Command::Subscribe(args) => signal::subscribe(&mut connect()?, args, json),
        Command::Unsubscribe(args) => signal::unsubscribe(&mut connect()?, args, json),
        Command::Kill(args) => signal::kill(&mut connect()?, args, json),
        Command::Join(args) => queue::join(&mut connect()?, args, json),
        // Only an explicit --socket: bench passes it on to the processes it starts.
        Command::Bench(args) => bench::run(args, cli.socket.as_deref(), json),
        Command::BenchPeer(args) => bench::peer(args),
        Command::Help { .. } | Command::Completions(_) | Command::Man(_) => {
            unreachable!("answered above")
        }
    }
    .map(|()| 0)
}

/// The object addresses a command names, checked before connecting: each
/// with the verb that takes it and the kinds that verb takes.
fn addresses(command: &Command) -> Vec<(&str, &'static str, &'static [Kind])> {
    match command {
        Command::Stat { address } => vec![(address, "stat", ANY_KIND)],
        Command::Delete(args) => args
            .addresses
            .iter()
            .map(|a| (a.as_str(), "delete", ANY_KIND))
            .collect(),
        Command::Close { address } => vec![(address, "close", &[Kind::Pipe])],
        Command::Path { address } => vec![(address, "path", &[Kind::Fifo])],
        Command::Create(args) => vec![(&args.address, "create", CREATABLE)],
        Command::Send(args) => vec![(&args.address, "send", SENDABLE)],
        Command::Recv(args) => vec![(&args.address, "recv", MESSAGING)],
        Command::Write(args) => vec![(&args.address, "write", SEGMENTS)],
        Command::Read(args) => vec![(&args.address, "read", SEGMENTS)],
        Command::Resize(args) => vec![(&args.address, "resize", SEGMENTS)],
        Command::WaitFor(args) => vec![(&args.address, "wait-for", &[Kind::Mq])],
        Command::Acquire(args) => vec![(&args.address, "acquire", PERMITS)],
        Command::Take(args) => vec![(&args.address, "take", &[Kind::Sem])],
        Command::Release { address } => vec![(address, "release", PERMITS)],
        Command::With(args) => vec![(&args.address, "with", PERMITS)],
        Command::Set { address } => vec![(address, "set", &[Kind::Event])],
        Command::Clear { address } => vec![(address, "clear", &[Kind::Event])],
        Command::Wait(args) => vec![(&args.address, "wait", WAITABLE)],
        Command::Reset { address } => vec![(address, "reset", &[Kind::Barrier])],
        Command::Watch(args) => vec![(&args.address, "watch", CHANNELS)],
        Command::Subscribe(args) => vec![(&args.address, "subscribe", CHANNELS)],
        Command::Unsubscribe(args) => vec![(&args.address, "unsubscribe", CHANNELS)],
        Command::Join(args) => vec![(&args.address, "join", QUEUES)],
        Command::Exec(args) => {
            let stdin = args
                .stdin
                .iter()
                .map(|a| (a.as_str(), "exec --stdin", STREAMS));
            let stdout = args
                .stdout
                .iter()
                .map(|a| (a.as_str(), "exec --stdout", STREAMS));
            stdin.chain(stdout).collect()
        }
        Command::Ping
        | Command::Status
        | Command::List { .. }
        | Command::Bench(_)
        | Command::BenchPeer(_)
        | Command::ExecChild(_)
        | Command::Kill(_)
        | Command::Help { .. }
        | Command::Completions(_)
        | Command::Man(_) => Vec::new(),
    }
}

/// `ipcctl help [COMMAND…]`: the same text as `ipcctl [COMMAND…] --help`.
fn help(path: &[String]) -> anyhow::Result<u8> {
    let mut cmd = &Cli::command();
    for name in path {
        match cmd.find_subcommand(name) {
            Some(sub) => cmd = sub,
            None => {
                return Err(usage(format!(
                    "there is no command '{name}' (ipcctl --help lists them)"
                )));
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

#[cfg(test)]
mod tests;
