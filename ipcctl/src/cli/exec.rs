//! The command line of `exec` and its internal `exec-child` (kept here so
//! `cli.rs` stays a readable size).

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;

use crate::parse::parse_duration;

/// `ipcctl exec`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("joined").args(["stdin", "stdout"]).multiple(true).required(true))]
pub struct ExecArgs {
    /// The pipe or FIFO the command reads as its standard input (pipe:NAME, fifo:NAME)
    #[arg(long, value_name = "ADDR")]
    pub stdin: Option<String>,

    /// The pipe or FIFO the command writes as its standard output (pipe:NAME, fifo:NAME)
    #[arg(long, value_name = "ADDR")]
    pub stdout: Option<String>,

    /// Wait at most this long for the other side, then exit 1 without running
    /// the command: --stdin fifo: a writer, --stdin pipe: bytes or end of file,
    /// --stdout fifo: a reader, --stdout pipe: room in it
    #[arg(long, short, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// The command and its arguments (put them after --)
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// `ipcctl exec-child` (internal): what `exec` runs in its child process.
#[derive(Debug, Args)]
pub struct ExecChildArgs {
    /// The pid of the `ipcctl exec` that started this process
    #[arg(long, value_name = "PID")]
    pub parent_pid: i32,

    /// The command and its arguments
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}
