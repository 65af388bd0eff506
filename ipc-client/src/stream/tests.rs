//! Shared helpers for the pipe and FIFO handle tests: fake `Opened` answers
//! around descriptors made locally, without a daemon.

use std::os::fd::OwnedFd;

use protocol::{FifoDetails, Kind, KindDetails, Lifetime, ObjectInfo, PipeDetails};

use super::*;

/// What the daemon would say about `address`.
pub(crate) fn info(kind: Kind, address: &str, path: &str) -> ObjectInfo {
    let details = match kind {
        Kind::Fifo => KindDetails::Fifo(FifoDetails {
            path: path.into(),
            buffered: false,
            buffered_bytes: 0,
            readers_opened: 0,
            writers_opened: 0,
        }),
        _ => KindDetails::Pipe(PipeDetails {
            capacity: 65536,
            buffered_bytes: 0,
            readers_opened: 0,
            writers_opened: 0,
            closed: false,
        }),
    };
    ObjectInfo {
        address: address.into(),
        kind,
        kernel_name: path.into(),
        owner_uid: 0,
        owner_gid: 0,
        mode: 0o600,
        creator_pid: 1,
        created_at_ms: 0,
        lifetime: Lifetime::Persistent,
        opens: 0,
        details,
    }
}

/// A local pipe as a hosted one's ends: `(read, write)`.
pub(crate) fn local_pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap()
}

/// Whether `fd` is in non-blocking mode.
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> bool {
    let flags = fcntl(fd, FcntlArg::F_GETFL).unwrap();
    OFlag::from_bits_retain(flags).contains(OFlag::O_NONBLOCK)
}

#[test]
fn addresses_of_another_kind_are_refused() {
    assert_eq!(address_of(Kind::Pipe, "p").unwrap(), "pipe:p");
    assert_eq!(address_of(Kind::Fifo, "fifo:f").unwrap(), "fifo:f");
    let e = address_of(Kind::Pipe, "fifo:f").unwrap_err();
    assert!(e.to_string().contains("expected NAME or pipe:NAME"), "{e}");
}

#[test]
fn messages_and_lines_must_fit_pipe_buf() {
    assert!(check_msg("pipe:p", &[0; MAX_MSG_LEN]).is_ok());
    let e = check_msg("pipe:p", &[0; MAX_MSG_LEN + 1]).unwrap_err();
    assert_eq!(e.code(), Some(protocol::ErrorCode::TooLarge));
    let text = e.to_string();
    assert!(
        text.contains("message of 4093 bytes") && text.contains("PIPE_BUF"),
        "{text}"
    );
    assert!(check_line("pipe:p", &[b'x'; PIPE_BUF - 1]).unwrap());
    let mut full = vec![b'x'; PIPE_BUF - 1];
    full.push(b'\n');
    assert!(!check_line("pipe:p", &full).unwrap());
    assert!(check_line("pipe:p", &[b'x'; PIPE_BUF]).is_err());
}

#[test]
fn wrong_kind_access_or_descriptor_count_is_refused() {
    let (r, w) = local_pipe();
    let i = info(Kind::Pipe, "pipe:p", "(anonymous pipe)");
    let e =
        End::from_opened(i.clone(), Access::Read, vec![r], Kind::Fifo, Access::Read).unwrap_err();
    assert!(e.to_string().contains("is a pipe, not a fifo"), "{e}");
    let e =
        End::from_opened(i.clone(), Access::Write, vec![w], Kind::Pipe, Access::Read).unwrap_err();
    assert!(e.to_string().contains("opened for Write"), "{e}");
    let e = End::from_opened(i, Access::Read, vec![], Kind::Pipe, Access::Read).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
}

#[test]
fn io_errors_keep_their_meaning() {
    let gone = io_error(Error::ReaderGone {
        address: "pipe:p".into(),
    });
    assert_eq!(gone.kind(), io::ErrorKind::BrokenPipe);
    assert!(gone.to_string().contains("no reader left on pipe:p"));
    assert_eq!(io_error(Error::TimedOut).kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        io_error(Error::WouldBlock).kind(),
        io::ErrorKind::WouldBlock
    );
}
