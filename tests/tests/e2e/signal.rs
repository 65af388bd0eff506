//! Signal channels end to end: events fanned out to watchers in separate
//! processes (one killed mid-stream disturbs none of the others); an
//! overflow reported as a count; real signals delivered to a child that
//! counts them, none after it exits (nor to a process that reused its pid);
//! a shell subscribing itself; a subscribed process signalled again after
//! ipcd is killed with -9 and restarted; a bound SIGUSR2 raising its channel
//! (also after a restart); what may not be bound; `kill` through ipcd and the
//! per-uid rules; the subscription budget; a version 5 client sees nothing.

use std::io::{BufRead, BufReader, Lines};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ipc_client::{Client, ErrorCode, Received};
use ipcd_tests::{TestDaemon, eventually, wait_timeout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::permissions::{as_nobody, assert_denied};

const NOBODY: u32 = 65534;

/// `ipcctl --json stat ADDRESS`, parsed.
fn stat(d: &TestDaemon, address: &str) -> Value {
    serde_json::from_str(&d.ipcctl_ok(&["--json", "stat", address])).unwrap()
}

/// A process whose standard output is read line by line.
struct Reader {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Reader {
    fn spawn(cmd: &mut Command) -> Reader {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Reader { child, lines }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line (the test's overall timeout bounds a missing one).
    fn line(&mut self) -> String {
        self.lines.next().expect("a line").expect("utf-8")
    }

    /// Ends it (closing its standard input, then killing it) and reaps it.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        if wait_timeout(&mut self.child, Duration::from_secs(2)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `sig-counter` child counting `signals`, once it is ready.
fn counter(signals: &[&str]) -> Reader {
    let mut r = Reader::spawn(Command::new(env!("CARGO_BIN_EXE_sig-counter")).args(signals));
    assert_eq!(r.line(), format!("ready {}", r.pid()));
    r
}

/// `ipcctl watch ADDRESS ARGS…` in the background, once it is subscribed
/// (the channel then counts `watchers` of them).
fn watcher(d: &TestDaemon, address: &str, args: &[&str], watchers: u64) -> Reader {
    let r = Reader::spawn(d.ipcctl().args(["watch", address]).args(args));
    eventually("the watcher to subscribe", || {
        stat(d, address)["watchers"] == watchers
    });
    r
}

#[test]
fn every_watcher_in_its_own_process_gets_every_event_in_order() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "signal:fan"]);
    let mut watchers: Vec<Reader> = (1..=3)
        .map(|n| watcher(&d, "signal:fan", &["--json", "--count", "3"], n))
        .collect();
    d.ipcctl_ok(&["send", "signal:fan", "first"]);
    let mut c = Client::connect_to(&d.socket).unwrap();
    let raised = c.signal_raise("fan", b"\xff\x00").unwrap();
    assert_eq!((raised.seq, raised.subscribers), (2, 3));
    let out: Value = serde_json::from_str(&d.ipcctl_ok(&["--json", "send", "signal:fan"])).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"sent": "signal:fan", "messages": 1, "bytes": 0})
    );
    let me = std::process::id() as i64;
    for w in &mut watchers {
        let events: Vec<Value> = (0..3)
            .map(|_| serde_json::from_str(&w.line()).unwrap())
            .collect();
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(events[0]["payload"], "first");
        assert_eq!(events[1]["payload_base64"], "/wA=");
        assert!(
            events[2].get("payload").is_none_or(|p| p == ""),
            "{events:?}"
        );
        // Sent by ipcctl (a child of this process) and by this process.
        assert_eq!(events[1]["pid"], me);
        assert_eq!(events[0]["uid"], 0);
        assert!(events[0]["signal"].is_null());
        assert!(wait_timeout(&mut w.child, Duration::from_secs(5)).is_some_and(|s| s.success()));
    }
    // They are gone with their connections.
    eventually("the watchers to leave", || {
        stat(&d, "signal:fan")["watchers"] == 0
    });
    d.ipcctl_ok(&["delete", "signal:fan"]);
}

#[test]
fn a_watcher_killed_mid_stream_does_not_disturb_the_others() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "signal:s"]);
    let mut a = watcher(&d, "signal:s", &["--count", "4"], 1);
    let mut doomed = watcher(&d, "signal:s", &[], 2);
    let mut b = watcher(&d, "signal:s", &["--count", "4"], 3);
    d.ipcctl_ok(&["send", "signal:s", "one"]);
    assert!(doomed.line().starts_with("#1 "));
    kill(Pid::from_raw(doomed.pid()), Signal::SIGKILL).unwrap();
    doomed.child.wait().unwrap();
    for n in 2..=4 {
        d.ipcctl_ok(&["send", "signal:s", &format!("event {n}")]);
    }
    for w in [&mut a, &mut b] {
        let lines: Vec<String> = (0..4).map(|_| w.line()).collect();
        for (i, l) in lines.iter().enumerate() {
            assert!(l.starts_with(&format!("#{} ", i + 1)), "{lines:?}");
        }
        assert!(lines[3].ends_with(": event 4"), "{lines:?}");
        assert!(wait_timeout(&mut w.child, Duration::from_secs(5)).is_some_and(|s| s.success()));
    }
    eventually("the killed watcher to be forgotten", || {
        stat(&d, "signal:s")["watchers"] == 0
    });
    assert_eq!(stat(&d, "signal:s")["seq"], 4);
}

#[test]
fn an_overflow_is_reported_as_a_count_of_missed_events() {
    let d = TestDaemon::start();
    let mut raiser = Client::connect_to(&d.socket).unwrap();
    raiser.create_signal("o", None, None).unwrap();
    let mut c = Client::connect_to(&d.socket).unwrap();
    {
        let mut sub = c.subscribe_signal("o", 2).unwrap();
        assert_eq!(sub.started_after(), 0);
        for n in 1..=5u8 {
            raiser.signal_raise("o", &[n]).unwrap();
        }
        assert_eq!(sub.recv().unwrap(), Received::Missed(3));
        let seqs: Vec<u64> = (0..2)
            .map(|_| match sub.recv().unwrap() {
                Received::Event(e) => e.seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, [4, 5]);
        // Nothing else: the iterator ends at its deadline.
        sub.set_deadline(Some(Instant::now() + Duration::from_millis(50)));
        assert!(sub.next().is_none());
    }
    // Dropping the subscription ended it.
    assert_eq!(raiser.signal_raise("o", b"").unwrap().subscribers, 0);

    // A full buffer of small events arrives in batches every client decodes.
    {
        let mut sub = c.subscribe_signal("o", 4096).unwrap();
        let raise = ipc_client::Request::Kind {
            address: "signal:o".into(),
            op: ipc_client::KindOp::Signal(ipc_client::protocol::SignalOp::Raise {
                payload: Vec::new(),
            }),
        };
        for answer in raiser.pipeline(vec![raise; 3000]).unwrap() {
            answer.unwrap();
        }
        let got = (0..3000)
            .map(|_| sub.recv().unwrap())
            .filter(|r| matches!(r, Received::Event(_)))
            .count();
        assert_eq!(got, 3000);
    }
    // The same as a callback.
    {
        let mut sub = c.subscribe_signal("o", 0).unwrap();
        raiser.signal_raise("o", b"a").unwrap();
        raiser.signal_raise("o", b"b").unwrap();
        let mut seen = Vec::new();
        sub.for_each_event(|r| {
            if let Received::Event(e) = r {
                seen.push(e.payload);
            }
            if seen.len() == 2 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, [b"a".to_vec(), b"b".to_vec()]);
    }

    // ipcctl says so too: a watcher stopped while events pile up (the first
    // may have gone to the read it was waiting in, before it stopped).
    let mut w = watcher(&d, "signal:o", &["--buffer", "1", "--timeout", "2s"], 1);
    kill(Pid::from_raw(w.pid()), Signal::SIGSTOP).unwrap();
    let mut last = 0;
    for _ in 0..5 {
        last = raiser.signal_raise("o", b"x").unwrap().seq;
    }
    kill(Pid::from_raw(w.pid()), Signal::SIGCONT).unwrap();
    let lines: Vec<String> = std::iter::from_fn(|| w.lines.next().map(Result::unwrap)).collect();
    let missed: u64 = lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("missed ")?
                .strip_suffix(" events")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    let seen: Vec<&String> = lines.iter().filter(|l| l.starts_with('#')).collect();
    assert!(missed >= 3, "{lines:?}");
    assert_eq!(missed as usize + seen.len(), 5, "{lines:?}");
    assert!(
        seen.last().unwrap().starts_with(&format!("#{last} ")),
        "{lines:?}"
    );
    assert!(w.child.wait().unwrap().success());
    raiser.delete("signal:o").unwrap();
}

#[test]
fn a_child_counts_the_sighups_it_is_sent_and_gets_none_once_it_exits() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "signal:reload"]);
    let mut child = counter(&["HUP"]);
    let pid = child.pid().to_string();
    let out = d.ipcctl_ok(&[
        "subscribe",
        "signal:reload",
        "--pid",
        &pid,
        "--deliver",
        "SIGHUP",
    ]);
    assert_eq!(
        out,
        format!("pid {pid} gets SIGHUP on every event of signal:reload\n")
    );
    for n in 1..=3 {
        // One at a time: real signals sent before the first is taken coalesce.
        let raised = Client::connect_to(&d.socket)
            .unwrap()
            .signal_raise("reload", b"")
            .unwrap();
        assert_eq!(raised.delivered, 1);
        assert_eq!(child.line(), format!("HUP {n}"));
    }
    let s = stat(&d, "signal:reload");
    assert_eq!(s["signalled"][0]["sent"], 3, "{s}");
    assert_eq!(s["signalled"][0]["signal"], "SIGHUP");
    let old_pid = child.pid();
    child.stop();
    eventually("the exited child's subscription to end", || {
        stat(&d, "signal:reload")["signalled"] == serde_json::json!([])
    });
    // A process that now has the old pid is never signalled.
    let reused = reuse_pid(old_pid);
    let mut c = Client::connect_to(&d.socket).unwrap();
    assert_eq!(c.signal_raise("reload", b"").unwrap().delivered, 0);
    if let Some(mut r) = reused {
        assert_eq!(r.pid(), old_pid);
        // It would print "HUP 1" for a SIGHUP; a SIGUSR1 from here comes after it.
        kill(Pid::from_raw(old_pid), Signal::SIGUSR1).unwrap();
        assert_eq!(
            r.line(),
            "USR1 1",
            "the process that reused the pid got a SIGHUP"
        );
        r.stop();
    } else {
        eprintln!(
            "pid {old_pid} could not be reused (not root, or taken): only the count is checked"
        );
    }
    d.ipcctl_ok(&["delete", "signal:reload"]);
}

/// A `sig-counter HUP USR1` with pid `pid`, made by setting the kernel's
/// last pid just below it (root only; `None` if another process took it first).
fn reuse_pid(pid: i32) -> Option<Reader> {
    for _ in 0..20 {
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            return None;
        }
        let r = counter(&["HUP", "USR1"]);
        if r.pid() == pid {
            return Some(r);
        }
        r.stop();
    }
    None
}

#[test]
fn a_shell_subscribes_itself_and_traps_the_signal() {
    let d = TestDaemon::start();
    d.ipcctl_ok(&["create", "signal:sh"]);
    let script = format!(
        "trap 'echo got USR1' USR1\n\
         {} --socket {} subscribe signal:sh --pid $$ --deliver USR1 >/dev/null || exit 9\n\
         echo ready\n\
         while read -r line; do :; done\n",
        ipcd_tests::ipcctl_bin().display(),
        d.socket.display()
    );
    let mut sh = Reader::spawn(Command::new("bash").arg("-c").arg(&script));
    assert_eq!(sh.line(), "ready");
    assert_eq!(stat(&d, "signal:sh")["signalled"][0]["pid"], sh.pid());
    d.ipcctl_ok(&["send", "signal:sh"]);
    // bash runs the trap once `read` is interrupted.
    assert_eq!(sh.line(), "got USR1");
    d.ipcctl_ok(&["unsubscribe", "signal:sh", "--pid", &sh.pid().to_string()]);
    let out = d.ipcctl_ok(&["--json", "send", "signal:sh"]);
    assert!(out.contains("\"sent\":\"signal:sh\""), "{out}");
    sh.stop();
}

#[test]
fn a_bound_sigusr2_raises_its_channel_and_stays_bound_after_a_restart() {
    let mut d = TestDaemon::start();
    let out = d.ipcctl_ok(&["create", "signal:usr2", "--bind", "SIGUSR2"]);
    assert_eq!(
        out,
        "created signal:usr2 (raised by SIGUSR2 sent to ipcd)\n"
    );
    assert_eq!(stat(&d, "signal:usr2")["bind"], "SIGUSR2");
    for round in 0..2 {
        let mut w = watcher(&d, "signal:usr2", &["--json", "--count", "1"], 1);
        d.signal(Signal::SIGUSR2);
        let e: Value = serde_json::from_str(&w.line()).unwrap();
        assert_eq!(e["signal"], "SIGUSR2", "{e}");
        // The kernel names the sender: this process.
        assert_eq!(e["pid"], std::process::id() as i64, "{e}");
        assert!(wait_timeout(&mut w.child, Duration::from_secs(5)).is_some_and(|s| s.success()));
        d.ipcctl_ok(&["ping"]);
        if round == 0 {
            assert!(d.terminate().success());
            d.restart();
        }
    }
    assert!(d.log().contains("a bound signal raised its channels"));
    // Deleted: the signal is still caught (never ipcd's death), and ignored.
    d.ipcctl_ok(&["delete", "signal:usr2"]);
    d.signal(Signal::SIGUSR2);
    eventually("the ignored signal to be logged", || {
        d.log().contains("no channel is bound to it now")
    });
    d.ipcctl_ok(&["ping"]);
}

#[test]
fn signals_ipcd_needs_or_cannot_catch_are_refused_for_binding() {
    let d = TestDaemon::start();
    for (signal, why) in [
        (
            "SIGKILL",
            "SIGKILL cannot be bound to a channel: it cannot be caught",
        ),
        (
            "STOP",
            "SIGSTOP cannot be bound to a channel: it cannot be caught",
        ),
        ("SIGTERM", "ipcd answers it itself"),
        ("HUP", "ipcd answers it itself"),
        ("SIGSEGV", "it reports a fault in ipcd itself"),
        ("CHLD", "ipcd relies on its usual meaning"),
    ] {
        let out = d.run_ipcctl(&["create", "signal:k", "--bind", signal]);
        assert_eq!(out.status.code(), Some(2), "{signal}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(why) && err.contains("(invalid-argument)"),
            "{err}"
        );
    }
    let out = d.run_ipcctl(&["create", "signal:k", "--bind", "SIGBOGUS"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let out = d.run_ipcctl(&["create", "mq:k", "--bind", "USR2"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bind is for signal: only"));
    assert!(!d.ipcctl_ok(&["list", "signal"]).contains("signal:k"));
}

#[test]
fn kill_goes_through_ipcd_for_ones_own_processes_only() {
    let d = TestDaemon::start();
    let mut target = counter(&["TERM", "USR1"]);
    let pid = target.pid().to_string();
    d.ipcctl_ok(&["kill", &pid, "USR1"]);
    assert_eq!(target.line(), "USR1 1");
    assert!(d.log().contains("sent a signal on a client's behalf"));
    assert!(d.log().contains(&format!("pid={pid}")), "{}", d.log());
    // Another uid may neither signal it nor have a channel signal it.
    assert_denied(&as_nobody(&d, &["kill", &pid, "TERM"]), "kill");
    d.ipcctl_ok(&["create", "signal:open", "--mode", "0666"]);
    assert_denied(
        &as_nobody(
            &d,
            &[
                "subscribe",
                "signal:open",
                "--pid",
                &pid,
                "--deliver",
                "TERM",
            ],
        ),
        "subscribe",
    );
    // Nothing was sent: the next signal it counts is this one.
    d.ipcctl_ok(&["--json", "kill", &pid, "TERM"]);
    assert_eq!(target.line(), "TERM 1");
    let out = d.run_ipcctl(&["kill", "999999999", "TERM"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no process with pid 999999999 (not-found)")
    );
    let out = d.run_ipcctl(&["kill", &pid, "0"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    target.stop();
    d.ipcctl_ok(&["delete", "signal:open"]);
}

#[test]
fn subscriptions_count_against_the_subscribers_share() {
    let d =
        TestDaemon::start_with_config("socket_mode = \"0666\"\nmax_subscriptions_per_uid = 2\n");
    d.ipcctl_ok(&["create", "signal:b", "--mode", "0666"]);
    let spawn_nobody = || {
        Command::new("sleep")
            .arg("30")
            .uid(NOBODY)
            .gid(NOBODY)
            .spawn()
            .unwrap()
    };
    let mut sleepers: Vec<Child> = (0..3).map(|_| spawn_nobody()).collect();
    for (i, s) in sleepers.iter().enumerate() {
        let pid = s.id().to_string();
        let out = as_nobody(
            &d,
            &["subscribe", "signal:b", "--pid", &pid, "--deliver", "WINCH"],
        );
        if i < 2 {
            assert!(out.status.success(), "{out:?}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("max_subscriptions_per_uid") && err.contains("limit-exceeded"),
                "{err}"
            );
        }
    }
    // The channel's owner (root) is not charged: nobody is, for what nobody asked.
    let mut root = Client::connect_to(&d.socket).unwrap();
    root.signal_subscribe("b", 0).unwrap();
    // A watcher of nobody's is refused too, until a subscription ends.
    let out = as_nobody(&d, &["watch", "signal:b", "--timeout", "10ms"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_subscriptions_per_uid"),
        "{out:?}"
    );
    let first = sleepers.remove(0);
    let first_pid = first.id() as i32;
    kill(Pid::from_raw(first_pid), Signal::SIGKILL).unwrap();
    let mut first = first;
    first.wait().unwrap();
    eventually("the exited process's subscription to end", || {
        stat(&d, "signal:b")["signalled"].as_array().unwrap().len() == 1
    });
    let out = as_nobody(&d, &["watch", "signal:b", "--timeout", "10ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    for mut s in sleepers {
        let _ = s.kill();
        let _ = s.wait();
    }
    d.ipcctl_ok(&["delete", "signal:b"]);
}

#[test]
fn a_version_5_client_sees_no_signal_channel() {
    let d = TestDaemon::start();
    let mut new = Client::connect_to(&d.socket).unwrap();
    new.create_signal("v6", None, None).unwrap();
    let mut old = Client::builder()
        .socket(&d.socket)
        .protocol_version(5)
        .connect()
        .unwrap();
    old.create_event("v5e", false, None).unwrap();
    let listed: Vec<String> = old
        .list(None)
        .unwrap()
        .into_iter()
        .map(|o| o.address)
        .collect();
    assert_eq!(listed, ["event:v5e"]);
    let e = old.stat("signal:v6").unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownKind), "{e}");
    assert!(e.to_string().contains("version 6"), "{e}");
    let e = old.kill(std::process::id() as i32, 10).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnsupportedVersion), "{e}");
    new.delete("signal:v6").unwrap();
    new.delete("event:v5e").unwrap();
}

#[test]
fn a_subscribed_process_is_signalled_again_after_ipcd_is_killed_and_restarted() {
    let mut d = TestDaemon::start();
    d.ipcctl_ok(&["create", "signal:fleet"]);
    let mut child = counter(&["HUP"]);
    let pid = child.pid().to_string();
    d.ipcctl_ok(&[
        "subscribe",
        "signal:fleet",
        "--pid",
        &pid,
        "--deliver",
        "HUP",
    ]);
    // Saved before it was answered: a crash right after keeps it.
    d.kill9();
    d.restart();
    assert_eq!(stat(&d, "signal:fleet")["signalled"][0]["pid"], child.pid());
    d.ipcctl_ok(&["send", "signal:fleet"]);
    assert_eq!(child.line(), "HUP 1");
    child.stop();
    eventually("the exited child's subscription to end", || {
        stat(&d, "signal:fleet")["signalled"] == serde_json::json!([])
    });
    d.ipcctl_ok(&["delete", "signal:fleet"]);
}
