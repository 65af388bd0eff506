//! FIFO handles over a local FIFO, opened the way the daemon opens them
//! (`O_NONBLOCK`): waiting for the first writer, end-of-file, deletion, and
//! handing the reader to a child.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use protocol::{Access, Kind};

use super::*;
use crate::stream::tests::{info, is_nonblocking};

/// A FIFO in a private temporary directory, removed on drop.
struct TempFifo {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFifo {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ipcc-fifo-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("f");
        nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        TempFifo { dir, path }
    }

    fn open(&self, flags: OFlag) -> nix::Result<OwnedFd> {
        nix::fcntl::open(
            &self.path,
            flags | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }

    fn info(&self) -> protocol::ObjectInfo {
        info(Kind::Fifo, "fifo:f", self.path.to_str().unwrap())
    }

    fn reader(&self) -> FifoReader {
        let fd = self.open(OFlag::O_RDONLY).unwrap();
        FifoReader::from_opened(self.info(), Access::Read, vec![fd]).unwrap()
    }

    fn writer(&self) -> FifoWriter {
        let fd = self.open(OFlag::O_WRONLY).unwrap();
        FifoWriter::from_opened(self.info(), Access::Write, vec![fd]).unwrap()
    }
}

impl Drop for TempFifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_reader_waits_for_the_first_writer_then_sees_end_of_file() {
    let f = TempFifo::new("eof");
    let mut rx = f.reader();
    assert_eq!(rx.path(), f.path);
    // No writer yet: that is not end-of-file.
    assert!(matches!(rx.try_read_line(), Err(Error::WouldBlock)));
    assert!(matches!(
        rx.read_line_timeout(Duration::from_millis(20)),
        Err(Error::TimedOut)
    ));
    assert!(matches!(
        rx.wait_readable(Some(Duration::from_millis(20))),
        Err(Error::TimedOut)
    ));
    let tx = f.writer();
    assert_eq!(tx.path(), f.path);
    tx.send_line(b"hello").unwrap();
    tx.send_msg(b"bin").unwrap();
    drop(tx);
    assert_eq!(rx.read_line().unwrap().unwrap(), b"hello");
    assert_eq!(rx.recv_msg().unwrap().unwrap(), b"bin");
    // The writer came and went: now it is end-of-file.
    assert_eq!(rx.read_line().unwrap(), None);
    rx.wait_readable(Some(Duration::ZERO)).unwrap();
}

#[test]
fn a_writer_without_a_reader_fails_clearly() {
    let f = TempFifo::new("gone");
    assert_eq!(
        f.open(OFlag::O_WRONLY).unwrap_err(),
        nix::errno::Errno::ENXIO,
        "the daemon answers WouldBlock for this"
    );
    let rx = f.reader();
    let tx = f.writer();
    drop(rx);
    let e = tx.send_line(b"anyone?").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no reader left on fifo:f (its readers closed it, or it was deleted)"
    );
}

#[test]
fn deleting_the_fifo_ends_a_reader_that_waits_for_a_writer() {
    let f = TempFifo::new("del");
    let mut rx = f.reader();
    let unlink = {
        let path = f.path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::remove_file(path).unwrap();
        })
    };
    let start = Instant::now();
    assert_eq!(rx.read_line_timeout(Duration::from_secs(10)).unwrap(), None);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    unlink.join().unwrap();
}

#[test]
fn a_child_reading_the_fifo_waits_for_the_writer() {
    let f = TempFifo::new("child");
    let rx = f.reader();
    let writer = {
        let tx = f.writer();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send_line(b"for the child").unwrap();
        })
    };
    // `cat` would see end-of-file at once without the wait for a writer.
    let fd = OwnedFd::from(rx);
    assert!(!is_nonblocking(fd.as_fd()));
    let out = std::process::Command::new("cat")
        .stdin(fd)
        .output()
        .unwrap();
    writer.join().unwrap();
    assert_eq!(out.stdout, b"for the child\n");

    let rx = f.reader();
    let e = rx
        .into_blocking(Some(Duration::from_millis(20)))
        .unwrap_err();
    assert!(matches!(e, Error::TimedOut), "{e:?}");
}

#[test]
fn options_become_a_create_spec() {
    let spec = FifoOptions::new().buffered().mode(0o620).adopt().to_spec();
    assert_eq!(spec.mode, Some(0o620));
    assert!(spec.adopt);
    assert_eq!(
        spec.params,
        protocol::KindParams::Fifo(protocol::FifoParams { buffered: true })
    );
    assert_eq!(fifo_address("fifo:x"), "fifo:x");
}
