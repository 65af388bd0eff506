//! Pipe handles over local pipes: messages, lines, timeouts, end-of-file,
//! vanished readers and conversions, without a daemon.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use protocol::{Access, Kind};

use super::*;
use crate::stream::tests::{info, is_nonblocking, local_pipe};
use crate::{Error, MAX_MSG_LEN, PIPE_BUF};

fn pair() -> (PipeReader, PipeWriter) {
    let (r, w) = local_pipe();
    let i = info(Kind::Pipe, "pipe:p", "(anonymous pipe)");
    (
        PipeReader::from_opened(i.clone(), Access::Read, vec![r]).unwrap(),
        PipeWriter::from_opened(i, Access::Write, vec![w]).unwrap(),
    )
}

#[test]
fn messages_and_lines_round_trip() {
    let (mut rx, tx) = pair();
    tx.send_msg(b"one").unwrap();
    tx.send_msg(b"").unwrap();
    tx.send_msg(&[7; MAX_MSG_LEN]).unwrap();
    tx.send_line(b"a line").unwrap();
    tx.send_line(b"ends with its newline\n").unwrap();
    assert_eq!(rx.recv_msg().unwrap().unwrap(), b"one");
    assert_eq!(rx.recv_msg().unwrap().unwrap(), b"");
    let mut buf = Vec::new();
    assert!(rx.recv_msg_into(&mut buf).unwrap());
    assert_eq!(buf, vec![7; MAX_MSG_LEN]);
    assert_eq!(rx.read_line().unwrap().unwrap(), b"a line");
    assert_eq!(rx.read_line().unwrap().unwrap(), b"ends with its newline");
    drop(tx);
    assert_eq!(rx.read_line().unwrap(), None);
    assert_eq!(rx.recv_msg().unwrap(), None);
}

#[test]
fn one_message_or_line_takes_nothing_after_it() {
    let (mut rx, tx) = pair();
    tx.send_msg(b"first").unwrap();
    tx.send_msg(b"second").unwrap();
    assert_eq!(rx.recv_msg().unwrap().unwrap(), b"first");
    // Exactly the second message is still in the pipe, for the next reader.
    let mut rest = [0u8; 64];
    let n = nix::unistd::read(rx.as_fd(), &mut rest).unwrap();
    assert_eq!(&rest[..n], b"\x06\0\0\0second");

    (&tx).write_all(b"a\nb\n").unwrap();
    assert_eq!(rx.read_line().unwrap().unwrap(), b"a");
    let n = nix::unistd::read(rx.as_fd(), &mut rest).unwrap();
    assert_eq!(&rest[..n], b"b\n");
}

#[test]
fn too_large_messages_are_refused_before_writing() {
    let (mut rx, tx) = pair();
    let e = tx.send_msg(&[0; MAX_MSG_LEN + 1]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ExceedsPipeBuf {
                max: MAX_MSG_LEN,
                ..
            }
        ),
        "{e:?}"
    );
    let e = tx.send_line(&[b'x'; PIPE_BUF]).unwrap_err();
    assert!(e.to_string().contains("PIPE_BUF is 4096"), "{e}");
    assert!(matches!(rx.try_read(&mut [0; 8]), Err(Error::WouldBlock)));
}

#[test]
fn waits_time_out_and_partial_lines_are_kept() {
    let (mut rx, tx) = pair();
    assert!(matches!(rx.try_read_line(), Err(Error::WouldBlock)));
    assert!(matches!(rx.try_recv_msg(), Err(Error::WouldBlock)));
    let start = Instant::now();
    let e = rx.read_line_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, Error::TimedOut), "{e:?}");
    assert!(start.elapsed() >= Duration::from_millis(50));

    (&tx).write_all(b"par").unwrap();
    assert!(matches!(
        rx.read_line_timeout(Duration::from_millis(10)),
        Err(Error::TimedOut)
    ));
    (&tx).write_all(b"tial\nnext").unwrap();
    assert_eq!(rx.read_line().unwrap().unwrap(), b"partial");
    assert!(matches!(rx.try_read_line(), Err(Error::WouldBlock)));
    assert_eq!(rx.take_partial(), b"next");

    // Half a message: the header and part of the payload.
    (&tx).write_all(&[5, 0, 0, 0, b'h', b'e']).unwrap();
    assert!(matches!(
        rx.recv_msg_timeout(Duration::from_millis(10)),
        Err(Error::TimedOut)
    ));
    (&tx).write_all(b"llo").unwrap();
    assert_eq!(rx.recv_msg().unwrap().unwrap(), b"hello");
}

#[test]
fn broken_messages_are_errors() {
    let (mut rx, tx) = pair();
    (&tx).write_all(&[10, 0, 0, 0, b'x']).unwrap();
    drop(tx);
    let e = rx.recv_msg().unwrap_err();
    assert!(
        e.to_string()
            .contains("end of file after 5 of the 14 bytes"),
        "{e}"
    );

    let (mut rx, tx) = pair();
    tx.send_line(b"not a message").unwrap();
    let e = rx.recv_msg().unwrap_err();
    assert!(matches!(e, Error::BadMessage { .. }), "{e:?}");
}

#[test]
fn a_full_pipe_blocks_writers_until_their_timeout() {
    let (_rx, tx) = pair();
    let mut written = 0;
    loop {
        match tx.try_write(&[0; 4096]) {
            Ok(n) => written += n,
            Err(Error::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(written >= 4096);
    assert!(matches!(tx.try_send_msg(b"x"), Err(Error::WouldBlock)));
    let e = tx
        .send_line_timeout(b"x", Duration::from_millis(30))
        .unwrap_err();
    assert!(matches!(e, Error::TimedOut), "{e:?}");
}

#[test]
fn writing_without_a_reader_says_so() {
    let (rx, tx) = pair();
    drop(rx);
    let e = tx.send_msg(b"anyone?").unwrap_err();
    assert_eq!(e.to_string(), "no reader left on pipe:p (deleted?)");
    let e = (&tx).write(b"x").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn concurrent_writers_never_interleave_a_message() {
    let (mut rx, tx) = pair();
    let tx = std::sync::Arc::new(tx);
    let writers: Vec<_> = (0..2u8)
        .map(|who| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..500u32 {
                    let mut msg = vec![who; 3000];
                    msg[..4].copy_from_slice(&i.to_le_bytes());
                    tx.send_msg(&msg).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u32; 2];
    let mut buf = Vec::new();
    // The writers keep their clones until they finish, then end-of-file.
    while rx.recv_msg_into(&mut buf).unwrap() {
        assert_eq!(buf.len(), 3000);
        let who = buf[4];
        assert!(buf[4..].iter().all(|&b| b == who), "torn message");
        let i = u32::from_le_bytes(buf[..4].try_into().unwrap());
        assert_eq!(i, next[who as usize]);
        next[who as usize] += 1;
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(next, [500, 500]);
}

#[test]
fn io_traits_and_child_processes() {
    let (mut rx, mut tx) = pair();
    assert!(is_nonblocking(rx.as_fd()) && is_nonblocking(tx.as_fd()));
    writeln!(tx, "through Write").unwrap();
    let mut buf = [0u8; 64];
    let n = rx.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"through Write\n");

    // A child writes into the pipe through its stdout, and reads from another.
    let out = std::process::Command::new("echo")
        .arg("from a child")
        .stdout(tx)
        .status()
        .unwrap();
    assert!(out.success());
    let mut text = String::new();
    rx.read_to_string(&mut text).unwrap();
    assert_eq!(text, "from a child\n");

    let (rx, tx) = pair();
    tx.send_line(b"to a child").unwrap();
    drop(tx);
    let fd = OwnedFd::from(rx);
    assert!(
        !is_nonblocking(fd.as_fd()),
        "children get a blocking descriptor"
    );
    let out = std::process::Command::new("cat")
        .stdin(std::process::Stdio::from(fd))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"to a child\n");
}

#[test]
fn options_become_a_create_spec() {
    let spec = PipeOptions::new()
        .capacity(8192)
        .mode(0o640)
        .session()
        .to_spec();
    assert_eq!(spec.mode, Some(0o640));
    assert_eq!(spec.lifetime, protocol::Lifetime::Session);
    assert_eq!(
        spec.params,
        protocol::KindParams::Pipe(protocol::PipeParams {
            capacity: Some(8192)
        })
    );
    assert_eq!(pipe_address("x"), "pipe:x");
}
