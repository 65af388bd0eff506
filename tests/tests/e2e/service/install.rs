//! Installing ipcd as a service: `ipcctl completions` (bash completes for
//! real), the manual pages from the clap definitions, `scripts/install-service`
//! (system and `--user`; the user units it installs verify as they are),
//! `scripts/build-deb` (what the package ships) and the README's "Run as a
//! service" naming only files that exist.

use std::path::Path;
use std::process::Command;

use ipcd_tests::service::{repo_root, tool};
use ipcd_tests::{bin_dir, ipcctl_bin, ipcd_bin, run_with_timeout};

use super::temp_dir;

fn ok(cmd: &mut Command) -> String {
    let out = run_with_timeout(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn completions(shell: &str) -> String {
    ok(Command::new(ipcctl_bin()).args(["completions", shell]))
}

#[test]
fn bash_completion_completes_commands_and_flags() {
    let test = "bash_completion_completes_commands_and_flags";
    if tool("bash", test).is_none() {
        return;
    }
    let dir = temp_dir();
    let script = dir.path().join("ipcctl.bash");
    std::fs::write(&script, completions("bash")).unwrap();
    // What bash-completion does on TAB: call the function, read COMPREPLY.
    let complete = |words: &str, cword: usize| {
        ok(Command::new("bash").arg("-c").arg(format!(
            "source {}; complete -p ipcctl >/dev/null || exit 3; \
             COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
             _ipcctl ipcctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        )))
    };
    let words = complete("ipcctl cr", 1);
    assert!(
        words.lines().any(|w| w == "create"),
        "ipcctl cr<TAB>: {words}"
    );
    let words = complete("ipcctl create --ca", 2);
    assert!(
        words.lines().any(|w| w == "--capacity"),
        "create --ca<TAB>: {words}"
    );
    let words = complete("ipcctl completions ''", 2);
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            words.lines().any(|w| w == shell),
            "completions <TAB>: {words}"
        );
    }
}

#[test]
fn zsh_and_fish_completions_are_scripts_for_them() {
    let test = "zsh_and_fish_completions_are_scripts_for_them";
    let dir = temp_dir();
    let zsh = completions("zsh");
    assert!(
        zsh.starts_with("#compdef ipcctl"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    let fish = completions("fish");
    assert!(
        fish.contains("complete -c ipcctl"),
        "fish script names no ipcctl"
    );
    for word in ["create", "wait-for", "connect-timeout"] {
        assert!(
            zsh.contains(word) && fish.contains(word),
            "{word} not completed"
        );
    }
    // Syntax checks where the shells are installed (not on the CI image).
    for (shell, script, check) in [("zsh", &zsh, "-n"), ("fish", &fish, "--no-execute")] {
        if tool(shell, test).is_none() {
            continue;
        }
        let file = dir.path().join(shell);
        std::fs::write(&file, script).unwrap();
        ok(Command::new(shell).arg(check).arg(&file));
    }
    let bad = run_with_timeout(Command::new(ipcctl_bin()).args(["completions", "tcsh"]));
    assert_eq!(
        bad.status.code(),
        Some(64),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_pages_come_from_the_clap_definitions() {
    let dir = temp_dir();
    let out = dir.path().join("man");
    let printed = ok(Command::new(ipcctl_bin()).args(["man", "--out"]).arg(&out));
    assert!(printed.lines().count() > 10, "{printed}");
    for page in [
        "ipcctl.1",
        "ipcctl-create.1",
        "ipcctl-send.1",
        "ipcctl-completions.1",
    ] {
        assert!(out.join(page).is_file(), "{page} not written: {printed}");
    }
    assert!(
        !out.join("ipcctl-exec-child.1").exists(),
        "hidden commands get no page"
    );
    let ipcctl = std::fs::read_to_string(out.join("ipcctl.1")).unwrap();
    assert!(
        ipcctl.starts_with(".ie") || ipcctl.contains(".TH ipcctl 1"),
        "{ipcctl}"
    );
    assert!(ipcctl.contains(".TH ipcctl 1"));
    assert!(
        ipcctl.contains("connect\\-timeout"),
        "a global flag is documented"
    );
    let ipcd = ok(Command::new(ipcd_bin()).arg("--print-man"));
    assert!(ipcd.contains(".TH ipcd 8"), "{ipcd}");
    for flag in ["fd\\-store\\-max", "state\\-dir", "SIGHUP"] {
        assert!(ipcd.contains(flag), "ipcd(8) lacks {flag}");
    }
    // Rendered as a reader sees it, where man is installed.
    if tool("man", "rendering the pages").is_some() {
        std::fs::write(dir.path().join("ipcd.8"), &ipcd).unwrap();
        let shown = ok(Command::new("man")
            .arg("-l")
            .arg(dir.path().join("ipcd.8"))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"));
        assert!(
            shown.contains("NAME") && shown.contains("--fd-store-max"),
            "{shown}"
        );
        let shown = ok(Command::new("man")
            .arg("-l")
            .arg(out.join("ipcctl-create.1"))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat"));
        assert!(
            shown.contains("ipcctl create") && shown.contains("--capacity"),
            "{shown}"
        );
    }
}

/// Files under `root`, relative, sorted.
fn files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn install_service_installs_binaries_units_docs_and_completions() {
    let dir = temp_dir();
    let stage = dir.path().join("root");
    ok(Command::new(repo_root().join("scripts/install-service"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--destdir")
        .arg(&stage));
    let got = files(&stage);
    for want in [
        "usr/bin/ipcd",
        "usr/bin/ipcctl",
        "usr/lib/systemd/system/ipcd.service",
        "usr/lib/systemd/system/ipcd.socket",
        "usr/lib/sysusers.d/ipcd.conf",
        "usr/lib/tmpfiles.d/ipcd.conf",
        "etc/ipcd/ipcd.toml",
        "usr/share/man/man8/ipcd.8.gz",
        "usr/share/man/man1/ipcctl.1.gz",
        "usr/share/man/man1/ipcctl-create.1.gz",
        "usr/share/bash-completion/completions/ipcctl",
        "usr/share/zsh/vendor-completions/_ipcctl",
        "usr/share/fish/vendor_completions.d/ipcctl.fish",
    ] {
        assert!(
            got.iter().any(|f| f == want),
            "{want} not installed; got {got:?}"
        );
    }
    // System units keep ExecStart=/usr/bin/ipcd, where the binary went.
    let service =
        std::fs::read_to_string(stage.join("usr/lib/systemd/system/ipcd.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/bin/ipcd "), "{service}");

    // --user: under $HOME, ExecStart= rewritten to ~/.local/bin/ipcd, and the
    // units verify as installed (the binary is where they say).
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    ok(Command::new(repo_root().join("scripts/install-service"))
        .args(["--user", "--bin-dir"])
        .arg(bin_dir())
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME"));
    let units = home.join(".config/systemd/user");
    let service = std::fs::read_to_string(units.join("ipcd.service")).unwrap();
    let bin = home.join(".local/bin/ipcd");
    assert!(
        service.contains(&format!("ExecStart={} ", bin.display())),
        "{service}"
    );
    assert!(bin.is_file() && home.join(".local/bin/ipcctl").is_file());
    assert!(home.join(".local/share/man/man8/ipcd.8.gz").is_file());
    if tool("systemd-analyze", "verifying the installed user units").is_some() {
        let runtime = dir.path().join("xdg-runtime");
        std::fs::create_dir(&runtime).unwrap();
        let out = run_with_timeout(
            Command::new("systemd-analyze")
                .args(["--user", "verify", "--man=no"])
                .arg(units.join("ipcd.socket"))
                .arg(units.join("ipcd.service"))
                .env("XDG_RUNTIME_DIR", &runtime),
        );
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && said.is_empty(), "{said}");
    }
}

#[test]
fn the_debian_package_ships_everything_a_service_needs() {
    let test = "the_debian_package_ships_everything_a_service_needs";
    if tool("dpkg-deb", test).is_none() {
        return;
    }
    let dir = temp_dir();
    let printed = ok(Command::new(repo_root().join("scripts/build-deb"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(dir.path())
        .args(["--compress", "none"]));
    let deb = Path::new(printed.trim());
    assert!(deb.is_file(), "{printed}");
    let contents = ok(Command::new("dpkg-deb").arg("--contents").arg(deb));
    for want in [
        "./usr/bin/ipcd",
        "./usr/bin/ipcctl",
        "./usr/lib/systemd/system/ipcd.service",
        "./usr/lib/systemd/system/ipcd.socket",
        "./usr/lib/systemd/user/ipcd.service",
        "./usr/lib/systemd/user/ipcd.socket",
        "./usr/lib/sysusers.d/ipcd.conf",
        "./usr/lib/tmpfiles.d/ipcd.conf",
        "./etc/ipcd/ipcd.toml",
        "./usr/share/man/man8/ipcd.8.gz",
        "./usr/share/man/man1/ipcctl.1.gz",
        "./usr/share/bash-completion/completions/ipcctl",
        "./usr/share/zsh/vendor-completions/_ipcctl",
        "./usr/share/fish/vendor_completions.d/ipcctl.fish",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {want}"))),
            "{want} not in the package:\n{contents}"
        );
    }
    let root_line = contents.lines().next().unwrap_or_default();
    assert!(
        root_line.starts_with("drwxr-xr-x root/root"),
        "the package's ./ is {root_line}"
    );
    let field = |name: &str| ok(Command::new("dpkg-deb").arg("--field").arg(deb).arg(name));
    assert_eq!(field("Package").trim(), "ipcd");
    assert!(field("Depends").contains("libc6"));
    // The maintainer scripts make the user and enable the socket.
    let control = dir.path().join("control");
    ok(Command::new("dpkg-deb")
        .arg("--control")
        .arg(deb)
        .arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(
        conffiles.trim(),
        "/etc/ipcd/ipcd.toml",
        "the config file is the admin's"
    );
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("systemd-sysusers") && postinst.contains("enable --now ipcd.socket"));
    // What it unpacks runs.
    let unpacked = dir.path().join("unpacked");
    ok(Command::new("dpkg-deb")
        .arg("--extract")
        .arg(deb)
        .arg(&unpacked));
    let version = ok(Command::new(unpacked.join("usr/bin/ipcctl")).arg("--version"));
    assert!(version.starts_with("ipcctl "), "{version}");
}

#[test]
fn the_readme_service_section_names_only_files_that_exist() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Run as a service")
        .nth(1)
        .expect("README has a '## Run as a service' section");
    let section = section.split("\n## ").next().unwrap();
    let mut named = 0;
    for word in section.split(|c: char| c.is_whitespace() || "`()[],".contains(c)) {
        if word.starts_with("systemd/") || word.starts_with("scripts/") {
            let path = repo_root().join(word.trim_end_matches(['.', ':']));
            assert!(path.exists(), "README names {word}, which does not exist");
            named += 1;
        }
    }
    assert!(
        named >= 3,
        "the section names the scripts and units it installs"
    );
    for command in [
        "systemctl enable --now ipcd.socket",
        "systemctl --user enable --now ipcd.socket",
        "loginctl enable-linger",
        "usermod -aG ipcd",
        "ipcctl completions",
    ] {
        assert!(
            section.contains(command),
            "the section does not say '{command}'"
        );
    }
}
