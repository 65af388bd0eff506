//! The command line of `completions` and `man`, which write ipcctl's shell
//! completions and manual pages from these very clap definitions.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// `ipcctl completions --help`, after the options.
pub const COMPLETIONS_HELP: &str = "\
Prints the completion script for SHELL on standard output; no daemon is needed.
Install it where your shell looks (the README's \"Run as a service\" shows the
system-wide places a package uses):

Examples:
  ipcctl completions bash > ~/.local/share/bash-completion/completions/ipcctl
  ipcctl completions zsh > ~/.zfunc/_ipcctl     # with fpath+=(~/.zfunc) in ~/.zshrc
  ipcctl completions fish > ~/.config/fish/completions/ipcctl.fish
  source <(ipcctl completions bash)             # this shell only

Exit status: 0 success, 2 cannot write, 64 usage error (an unknown SHELL).";

/// `ipcctl man --help`, after the options.
pub const MAN_HELP: &str = "\
Writes ipcctl.1 and one page per command (ipcctl-create.1, ipcctl-send.1, …)
into DIR, made from the same definitions as --help; no daemon is needed.
ipcd's own page, ipcd.8, comes from `ipcd --print-man`. Prints each file written.

Examples:
  ipcctl man --out target/man && man -l target/man/ipcctl.1
  sudo ipcctl man --out /usr/local/share/man/man1

Exit status: 0 success, 2 cannot write, 64 usage error.";

/// A shell `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU bash (bash-completion)
    Bash,
    /// zsh (compsys)
    Zsh,
    /// fish
    Fish,
}

/// `ipcctl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `ipcctl man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (made if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}
