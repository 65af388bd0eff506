//! `fd-exec CMD ARGS…`: a stand-in for how a service manager starts a
//! service with descriptors. It receives descriptors (SCM_RIGHTS) and their
//! names (`name:name:…`) in one message on standard input (a Unix socket),
//! finds them at 3, 4, … as `sd_listen_fds(3)` wants, sets `LISTEN_FDS`,
//! `LISTEN_FDNAMES` and `LISTEN_PID` (its own pid, which CMD keeps: it execs
//! CMD in place) and runs CMD with standard input from /dev/null.

use std::io::IoSliceMut;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: fd-exec CMD [ARGS…] (descriptors and names on stdin)");
        std::process::exit(64);
    };
    let mut names = vec![0u8; 65536];
    let mut iov = [IoSliceMut::new(&mut names)];
    let mut space = nix::cmsg_space!([RawFd; 253]);
    let (len, fds) = {
        let msg = recvmsg::<()>(0, &mut iov, Some(&mut space), MsgFlags::empty())
            .unwrap_or_else(|e| fail(&format!("receiving the descriptors: {e}")));
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().unwrap_or_else(|e| fail(&format!("{e}"))) {
            if let ControlMessageOwned::ScmRights(got) = cmsg {
                fds.extend(got);
            }
        }
        (msg.bytes, fds)
    };
    // (A lone space stands for no names: a message carries at least one byte.)
    let names = String::from_utf8_lossy(&names[..len]).trim().to_owned();
    // Nothing else is open in this process, so the kernel put them at 3, 4, …
    let expected: Vec<RawFd> = (3..3 + fds.len() as RawFd).collect();
    if fds != expected {
        fail(&format!(
            "descriptors arrived at {fds:?}, not at {expected:?}"
        ));
    }
    // Received without MSG_CMSG_CLOEXEC, they stay open across the exec.
    let error = Command::new(program)
        .args(rest)
        .env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", names)
        .env("LISTEN_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .exec();
    fail(&format!("cannot run {program}: {error}"));
}

fn fail(message: &str) -> ! {
    eprintln!("fd-exec: {message}");
    std::process::exit(71);
}
