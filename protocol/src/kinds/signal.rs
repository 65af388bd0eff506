//! `signal:` — a channel of events: raising it gives every current
//! subscriber the event. Socket subscribers read events in order from a
//! bounded buffer of their own (an overflow is reported as a count of missed
//! events); processes can also be signalled with a real signal on each event,
//! and a real signal ipcd receives can raise a channel. Signal numbers are
//! Linux's; [`signal_name`] and [`parse_signal`] spell them.

#[cfg(test)]
use proptest_derive::Arbitrary;

/// Largest payload an event may carry, in bytes.
pub const MAX_SIGNAL_PAYLOAD: usize = 4096;

/// Events a socket subscriber's buffer holds when `Subscribe` asks for 0.
pub const DEFAULT_SIGNAL_BUFFER: u32 = 256;

/// Most events a socket subscriber's buffer may hold.
pub const MAX_SIGNAL_BUFFER: u32 = 4096;

/// Signal channel parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct SignalParams {
    /// A real signal that raises the channel when ipcd receives it (only
    /// the signals [`bindable`] accepts).
    pub bind: Option<i32>,
}

/// A process that is sent a real signal on every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct Delivery {
    /// The process (held by a pidfd, so a reused pid is never signalled).
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
    /// The signal it is sent.
    pub signal: i32,
    /// Signals sent to it so far.
    pub sent: u64,
}

/// A signal channel's state.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct SignalDetails {
    /// The real signal bound to it, if any.
    pub bind: Option<i32>,
    /// Sequence number of the last event (0: none since ipcd started).
    pub seq: u64,
    /// Socket subscribers now (one per connection).
    pub subscribers: u32,
    /// Processes signalled on each event.
    pub deliveries: Vec<Delivery>,
}

/// One event as a socket subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub struct SignalEvent {
    /// Its sequence number on the channel: 1, 2, … since ipcd started.
    pub seq: u64,
    /// When it was raised, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The process that raised it (0 if the kernel did not say).
    pub pid: i32,
    /// That process's uid.
    pub uid: u32,
    /// The real signal ipcd received that raised it, if a bound signal did.
    pub signal: Option<i32>,
    /// What the raiser attached (empty: nothing), at most [`MAX_SIGNAL_PAYLOAD`] bytes.
    pub payload: Vec<u8>,
}

/// Operations on a signal channel.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum SignalOp {
    /// Raise it: every subscriber gets the event, every delivery its signal;
    /// needs the write bit. Since version 6.
    Raise {
        /// Attached to the event, at most [`MAX_SIGNAL_PAYLOAD`] bytes.
        payload: Vec<u8>,
    },
    /// Subscribe this connection: events raised from now on are kept for it
    /// until it reads them with `Next`, in a buffer of `buffer` events (0:
    /// [`DEFAULT_SIGNAL_BUFFER`]; at most [`MAX_SIGNAL_BUFFER`]). Ends with
    /// the connection. Subscribing again changes the buffer size. Needs the
    /// read bit. Since version 6.
    Subscribe {
        /// Events kept at most.
        buffer: u32,
    },
    /// The events buffered for this connection, oldest first, at most `max`
    /// (0: as many as fit), with how many were dropped since the last `Next`
    /// because the buffer was full; waits up to `timeout_ms` while there is
    /// none (`Some(0)`: `timed-out` at once). Needs a subscription. Since version 6.
    Next {
        /// Events returned at most (0: no limit but the frame's).
        max: u32,
        /// Give up after this many milliseconds (`None`: no limit).
        timeout_ms: Option<u64>,
    },
    /// End this connection's subscription. Since version 6.
    Unsubscribe,
    /// Send the real signal `signal` to process `pid` on every event, until
    /// that process exits; the caller must be allowed to signal it (its own
    /// uid, as `kill(2)` checks; root: any). Delivering to a pid already
    /// subscribed changes its signal. Needs the read bit. Since version 6.
    Deliver {
        /// The process.
        pid: i32,
        /// The signal.
        signal: i32,
    },
    /// Stop signalling `pid` (the same permission as `Deliver`, or the
    /// channel's owner). Since version 6.
    Undeliver {
        /// The process.
        pid: i32,
    },
}

/// Answers to [`SignalOp`]s.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
#[cfg_attr(test, derive(Arbitrary))]
pub enum SignalReply {
    /// The event was raised. Since version 6.
    Raised {
        /// Its sequence number.
        seq: u64,
        /// Socket subscribers it was buffered for.
        subscribers: u32,
        /// Processes it was sent to as a real signal.
        delivered: u32,
    },
    /// Subscribed; events after `seq` will come. Since version 6.
    Subscribed {
        /// The sequence number of the last event before the subscription.
        seq: u64,
    },
    /// Buffered events and the count dropped before them. Since version 6.
    Events {
        /// Oldest first.
        events: Vec<SignalEvent>,
        /// Events dropped (the buffer was full) since the last `Next`; they
        /// came before `events`.
        missed: u64,
    },
    /// The subscription ended. Since version 6.
    Unsubscribed,
    /// The process will be signalled on every event. Since version 6.
    Delivering {
        /// The process.
        pid: i32,
        /// The signal.
        signal: i32,
    },
    /// The process is no longer signalled. Since version 6.
    Undelivered,
}

/// The first real-time signal programs may use (glibc keeps 32 and 33).
pub const SIGRTMIN: i32 = 34;
/// The last real-time signal.
pub const SIGRTMAX: i32 = 64;

/// Linux's standard signals, by number (index + 1).
const NAMES: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// Whether `signal` is a signal a process can be sent: 1 to 31, or a
/// real-time one ([`SIGRTMIN`] to [`SIGRTMAX`]).
pub fn is_valid_signal(signal: i32) -> bool {
    (1..=31).contains(&signal) || (SIGRTMIN..=SIGRTMAX).contains(&signal)
}

/// `SIGHUP`, `SIGRTMIN+3`, … for a signal number (`signal 99` if it is none).
pub fn signal_name(signal: i32) -> String {
    match signal {
        1..=31 => format!("SIG{}", NAMES[signal as usize - 1]),
        SIGRTMIN => "SIGRTMIN".into(),
        SIGRTMAX => "SIGRTMAX".into(),
        s if (SIGRTMIN..SIGRTMAX).contains(&s) => format!("SIGRTMIN+{}", s - SIGRTMIN),
        s => format!("signal {s}"),
    }
}

/// A signal from `SIGHUP`, `HUP`, `hup`, `1`, `SIGRTMIN+2`, `RTMAX-1`.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let found = if let Ok(n) = bare.parse::<i32>() {
        Some(n)
    } else if let Some(i) = NAMES.iter().position(|n| *n == bare) {
        Some(i as i32 + 1)
    } else if bare == "IOT" {
        Some(6)
    } else if bare == "POLL" {
        Some(29)
    } else if let Some(rest) = bare.strip_prefix("RTMIN") {
        offset(rest).map(|o| SIGRTMIN + o)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        offset(rest).map(|o| SIGRTMAX + o)
    } else {
        None
    };
    match found {
        Some(n) if is_valid_signal(n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a signal: use a name such as SIGHUP, HUP or SIGRTMIN+2, or a \
             number from 1 to 31 or {SIGRTMIN} to {SIGRTMAX}"
        )),
    }
}

fn offset(rest: &str) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let (sign, n) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    n.parse::<i32>().ok().map(|n| sign * n)
}

/// Why `signal` may not be bound to a channel, `None` if it may: ipcd takes
/// over only signals nothing else relies on — `SIGUSR2`, `SIGALRM`,
/// `SIGURG`, `SIGVTALRM`, `SIGPROF`, `SIGWINCH`, `SIGIO`, `SIGPWR` and the
/// real-time signals. Not `SIGKILL`/`SIGSTOP` (they cannot be caught), not the
/// faults (`SIGSEGV`, `SIGBUS`, `SIGFPE`, `SIGILL`, `SIGTRAP`, `SIGABRT`,
/// `SIGSYS`, `SIGXCPU`, `SIGXFSZ`), not the job-control and terminal ones,
/// and not those ipcd answers itself (`SIGTERM`, `SIGINT`, `SIGHUP`,
/// `SIGUSR1`, `SIGQUIT`, `SIGPIPE`, `SIGCHLD`).
pub fn bindable(signal: i32) -> Option<String> {
    const BINDABLE: [i32; 8] = [12, 14, 23, 26, 27, 28, 29, 30];
    if !is_valid_signal(signal) {
        return Some(format!("{signal} is not a signal number"));
    }
    if BINDABLE.contains(&signal) || (SIGRTMIN..=SIGRTMAX).contains(&signal) {
        return None;
    }
    let why = match signal {
        9 | 19 => "it cannot be caught",
        1 | 2 | 10 | 15 => "ipcd answers it itself (stop, reload, status dump)",
        4 | 5 | 6 | 7 | 8 | 11 | 31 | 24 | 25 => "it reports a fault in ipcd itself",
        _ => "ipcd relies on its usual meaning",
    };
    Some(format!(
        "{} cannot be bound to a channel: {why}; bind SIGUSR2, SIGWINCH, SIGPWR, \
         SIGALRM, SIGURG, SIGVTALRM, SIGPROF, SIGIO or a real-time signal \
         (SIGRTMIN to SIGRTMAX)",
        signal_name(signal)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for n in (1..=31).chain(SIGRTMIN..=SIGRTMAX) {
            assert_eq!(parse_signal(&signal_name(n)), Ok(n), "{n}");
        }
        assert_eq!(parse_signal("hup"), Ok(1));
        assert_eq!(parse_signal("SIGUSR2"), Ok(12));
        assert_eq!(parse_signal("RTMAX-1"), Ok(63));
        assert_eq!(parse_signal("9"), Ok(9));
        for bad in ["0", "32", "65", "SIGNOPE", "RTMIN+40", ""] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_safe_signals_are_bindable() {
        assert_eq!(bindable(12), None);
        assert_eq!(bindable(SIGRTMIN + 1), None);
        for refused in [9, 19, 11, 15, 1, 10, 2, 17, 13] {
            let why = bindable(refused).expect("refused");
            assert!(why.contains(&signal_name(refused)), "{why}");
        }
    }
}
