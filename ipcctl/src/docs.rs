//! `ipcctl completions` and `ipcctl man`: shell completions (clap_complete)
//! and manual pages (clap_mangen) made from the clap definitions in `cli`,
//! so they always match `--help`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, Shell};
use crate::output;

/// Prints the completion script for `shell`.
pub fn completions(shell: Shell) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "ipcctl", &mut script)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "ipcctl", &mut script)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "ipcctl", &mut script)
        }
    }
    std::io::stdout()
        .write_all(&script)
        .map_err(output::stdout_error)
}

/// Writes `ipcctl.1` and `ipcctl-COMMAND.1` for every visible command into
/// `dir`, printing each path.
pub fn man(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command();
    // Built, so each command carries the global options (--socket, --json, …).
    cmd.build();
    let mut written = vec![write_page(dir, "ipcctl", cmd.clone())?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("ipcctl-{}", sub.get_name());
        let sub = sub
            .clone()
            .display_name(&name)
            .bin_name(format!("ipcctl {}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        written.push(write_page(dir, &name, sub)?);
    }
    let mut out = std::io::stdout().lock();
    for path in written {
        writeln!(out, "{}", path.display()).map_err(output::stdout_error)?;
    }
    Ok(())
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("1")
        .manual("User Commands")
        .render(&mut page)
        .context("rendering a manual page")?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
