//! `ipcctl` on signal channels, before any daemon is asked: the verbs take
//! only `signal:` addresses, signals are parsed by name or number, and the
//! flags that do not apply to a channel are usage errors.

use std::path::Path;

use super::{ipcctl, stderr};

#[test]
fn signal_verbs_check_kinds_signals_and_flags_before_connecting() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for (args, status, says) in [
        (
            &["watch", "mq:q"][..],
            2,
            "watch takes signal: only; mq:q is a message queue (wrong-kind)",
        ),
        (
            &["subscribe", "event:e", "--pid", "1", "--deliver", "HUP"],
            2,
            "subscribe takes signal: only",
        ),
        (
            &[
                "subscribe",
                "signal:s",
                "--pid",
                "1",
                "--deliver",
                "SIGNOPE",
            ],
            64,
            "'SIGNOPE' is not a signal",
        ),
        (&["kill", "1", "0"], 64, "'0' is not a signal"),
        (&["kill", "x", "TERM"], 64, "invalid value 'x'"),
        (
            &["send", "signal:s", "--priority", "3"],
            64,
            "--priority does not apply to signal:s",
        ),
        (
            &["send", "signal:s", "--lines"],
            64,
            "--lines does not apply to signal:s",
        ),
        (
            &["recv", "signal:s"],
            2,
            "recv takes mq: or pipe: or fifo: or ring: or queue: only; signal:s is a signal channel",
        ),
        (
            &["create", "signal:s", "--size", "4096"],
            64,
            "--size is not for signal channels",
        ),
        (
            &["create", "mq:q", "--bind", "USR2"],
            64,
            "--bind is for signal: only",
        ),
        (&["watch", "signal:s", "--buffer", "0"], 64, "--buffer"),
    ] {
        let o = ipcctl(nowhere, args, b"");
        assert_eq!(o.status.code(), Some(status), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("connect"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn signal_verbs_have_help_with_examples() {
    let nowhere = Path::new("/nonexistent/ipcd.sock");
    for verb in ["watch", "subscribe", "unsubscribe", "kill"] {
        let o = ipcctl(nowhere, &["help", verb], b"");
        assert_eq!(o.status.code(), Some(0), "{verb}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Example"), "{verb}: {text}");
        assert!(text.contains("Exit status"), "{verb}: {text}");
    }
}
