//! Tests of the command-line definition: consistency, help texts, parsing.

use super::*;
use clap::CommandFactory;

#[test]
fn the_command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn every_command_has_an_example() {
    let cli = Cli::command();
    for sub in cli.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let help = sub
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            help.contains("Example"),
            "{} --help has no example",
            sub.get_name()
        );
    }
    let top = cli.get_after_help().unwrap().to_string();
    for kind in ["mq:", "pipe:", "fifo:", "exec", "close", "path"] {
        assert!(top.contains(kind), "the top-level help shows no {kind}");
    }
}

#[test]
fn exec_takes_the_command_after_its_options() {
    let cli = Cli::try_parse_from([
        "ipcctl", "exec", "--stdin", "pipe:a", "--stdout", "fifo:b", "--", "tr", "-d", "x",
    ])
    .unwrap();
    let Command::Exec(e) = cli.command else {
        panic!()
    };
    assert_eq!(e.stdin.as_deref(), Some("pipe:a"));
    assert_eq!(e.stdout.as_deref(), Some("fifo:b"));
    assert_eq!(e.command, ["tr", "-d", "x"]);
    let cli = Cli::try_parse_from(["ipcctl", "exec", "--stdout", "pipe:b", "ls", "-l"]).unwrap();
    let Command::Exec(e) = cli.command else {
        panic!()
    };
    assert_eq!(e.command, ["ls", "-l"]);
}

#[test]
fn every_command_states_its_exit_status() {
    for sub in Cli::command().get_subcommands() {
        // bench's help text belongs to the bench module.
        if sub.is_hide_set() || sub.get_name() == "bench" {
            continue;
        }
        let help = sub
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            help.contains("Exit status:"),
            "{} --help does not say its exit status",
            sub.get_name()
        );
    }
}

#[test]
fn the_socket_is_not_read_from_the_environment_by_clap() {
    // main resolves it, so that an empty IPCD_SOCKET counts as unset.
    let cli = Cli::command();
    let socket = cli
        .get_arguments()
        .find(|a| a.get_id() == "socket")
        .unwrap();
    assert_eq!(socket.get_env(), None);
}

#[test]
fn flags_parse_in_any_position() {
    let cli = Cli::try_parse_from([
        "ipcctl", "recv", "mq:a", "--json", "-c", "3", "--socket", "/s",
    ])
    .unwrap();
    assert!(cli.json);
    assert_eq!(cli.socket.as_deref(), Some(std::path::Path::new("/s")));
    let Command::Recv(r) = cli.command else {
        panic!()
    };
    assert_eq!(r.count, Some(3));
}

#[test]
fn conflicting_flags_are_usage_errors() {
    for args in [
        &["ipcctl", "recv", "mq:a", "--raw", "--json"][..],
        &["ipcctl", "recv", "mq:a", "--timeout", "1s", "--nonblock"],
        &["ipcctl", "recv", "mq:a", "--count", "2", "--follow"],
        &["ipcctl", "recv", "mq:a", "--count", "0"],
        &["ipcctl", "send", "mq:a", "hi", "--lines"],
        &["ipcctl", "send", "mq:a", "hi", "--priority", "32768"],
        &["ipcctl", "create", "mq:a", "--mode", "999"],
        &["ipcctl", "send", "pipe:a", "--raw", "--lines"],
        &["ipcctl", "create", "pipe:a", "--capacity", "8GiB"],
        &["ipcctl", "exec", "--", "true"],
        &["ipcctl", "exec", "--stdin", "pipe:a"],
    ] {
        assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
    }
}
