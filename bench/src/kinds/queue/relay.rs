//! The yardstick for any daemon hop: a minimal relay process that accepts
//! two connections on a Unix socket and copies length-framed messages from
//! each to the other, and the ends that talk to it ([`RelayEnd`]).
//!
//! The relay is a `bench-peer` in role `relay` ([`serve`]): it binds the
//! socket before it says `ready`, then one thread accepts the two
//! connections and each direction is one thread of blocking reads and
//! writes: read what the socket has (up to 64 KiB), write the whole frames
//! in it with one `write`, keep a partial one for the next read. That is
//! what a perfect daemon hop costs — two system calls per batch of
//! messages, no parsing beyond the length, no allocation, no locks. It
//! lives until the bench closes its stdin; if a copy fails, it exits with
//! an error and the bench's watchdog notices.
//!
//! Frames are a little-endian `u32` length, then the message; the loops'
//! end marker is a frame of length 0.

use std::io::{BufReader, ErrorKind, Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::loops::Endpoint;

/// Bytes of a frame's length header.
const HEADER: usize = 4;
/// The relay's buffer per direction, and the ends' read buffer.
const BUFFER: usize = 64 << 10;
/// The largest message a frame may carry.
pub const MAX_MESSAGE: usize = BUFFER - HEADER;

/// Binds the relay's socket at `path` and starts relaying in the
/// background; returns once the socket listens.
pub fn serve(path: &Path) -> anyhow::Result<()> {
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot bind the relay's socket {}", path.display()))?;
    std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            if let Err(e) = relay(&listener) {
                eprintln!("ipcctl bench-peer: the relay failed: {e:#}");
                std::process::exit(2);
            }
        })
        .context("cannot start the relay thread")?;
    Ok(())
}

/// Accepts two connections and copies frames both ways until one side closes.
fn relay(listener: &UnixListener) -> anyhow::Result<()> {
    let (a, _) = listener.accept().context("accept")?;
    let (b, _) = listener.accept().context("accept")?;
    let (a2, b2) = (a.try_clone()?, b.try_clone()?);
    let back = std::thread::Builder::new()
        .name("relay-back".into())
        .spawn(move || copy_frames(b2, a2))
        .context("cannot start the relay's second thread")?;
    copy_frames(a, b)?;
    back.join()
        .map_err(|_| anyhow::anyhow!("the relay's second thread panicked"))?
}

/// Copies whole frames from `from` to `to` until either side hangs up.
fn copy_frames(mut from: UnixStream, mut to: UnixStream) -> anyhow::Result<()> {
    let hung_up = |e: &std::io::Error| {
        matches!(
            e.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
        )
    };
    let mut buf = vec![0u8; BUFFER];
    let mut have = 0;
    loop {
        let n = match from.read(&mut buf[have..]) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if hung_up(&e) => return Ok(()),
            Err(e) => return Err(e).context("relay read"),
        };
        have += n;
        let whole = whole_frames(&buf[..have])?;
        if whole > 0 {
            match to.write_all(&buf[..whole]) {
                Ok(()) => {}
                Err(e) if hung_up(&e) => return Ok(()),
                Err(e) => return Err(e).context("relay write"),
            }
            buf.copy_within(whole..have, 0);
            have -= whole;
        }
    }
}

/// How many bytes at the start of `bytes` are whole frames.
fn whole_frames(bytes: &[u8]) -> anyhow::Result<usize> {
    let mut at = 0;
    while let Some(header) = bytes.get(at..).and_then(|b| b.first_chunk::<HEADER>()) {
        let len = u32::from_le_bytes(*header) as usize;
        if len > MAX_MESSAGE {
            bail!("a frame of {len} bytes, more than the relay's {MAX_MESSAGE}");
        }
        if bytes.len() - at < HEADER + len {
            break;
        }
        at += HEADER + len;
    }
    Ok(at)
}

/// One side's connection to the relay: a frame per message sent (one
/// `write`), frames read through a 64 KiB buffer.
pub struct RelayEnd {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The frame being written.
    frame: Vec<u8>,
}

impl RelayEnd {
    /// Connects to the relay listening at `path`.
    pub fn connect(path: &Path) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot connect to the relay at {}", path.display()))?;
        Self::over(stream)
    }

    /// An end over `stream`.
    fn over(stream: UnixStream) -> anyhow::Result<Self> {
        Ok(RelayEnd {
            reader: BufReader::with_capacity(BUFFER, stream.try_clone()?),
            writer: stream,
            frame: Vec::with_capacity(HEADER + 64),
        })
    }

    /// A second end on the same connection (one to send, one to receive).
    pub fn try_clone(&self) -> anyhow::Result<Self> {
        Self::over(self.writer.try_clone()?)
    }
}

impl Endpoint for RelayEnd {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        let Ok(len) = u32::try_from(msg.len()) else {
            bail!("a {}-byte message is too large for the relay", msg.len());
        };
        self.frame.clear();
        self.frame.extend_from_slice(&len.to_le_bytes());
        self.frame.extend_from_slice(msg);
        self.writer
            .write_all(&self.frame)
            .context("write to the relay")
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let mut header = [0u8; HEADER];
        self.reader
            .read_exact(&mut header)
            .context("read from the relay")?;
        let len = u32::from_le_bytes(header) as usize;
        let Some(dst) = buf.get_mut(..len) else {
            bail!(
                "a {len}-byte message came through the relay where at most {} bytes were expected",
                buf.len()
            );
        };
        self.reader.read_exact(dst).context("read from the relay")?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpdir::PrivateDir;

    #[test]
    fn frames_are_cut_whole() {
        let mut bytes = Vec::new();
        for len in [3u32, 0, 5] {
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend(std::iter::repeat_n(9u8, len as usize));
        }
        assert_eq!(whole_frames(&bytes).unwrap(), bytes.len());
        assert_eq!(whole_frames(&bytes[..bytes.len() - 1]).unwrap(), 11);
        assert_eq!(whole_frames(&bytes[..2]).unwrap(), 0);
        let huge = u32::MAX.to_le_bytes();
        assert!(whole_frames(&huge).is_err());
    }

    #[test]
    fn messages_cross_the_relay_both_ways() {
        let dir = PrivateDir::create().unwrap();
        let path = dir.path().join("relay.sock");
        serve(&path).unwrap();
        let mut a = RelayEnd::connect(&path).unwrap();
        let mut b = RelayEnd::connect(&path).unwrap();
        let mut buf = [0u8; 64];
        for i in 0..1000u32 {
            a.send(&i.to_le_bytes()).unwrap();
        }
        a.send(&[]).unwrap();
        for i in 0..1000u32 {
            assert_eq!(b.recv(&mut buf).unwrap(), 4);
            assert_eq!(buf[..4], i.to_le_bytes());
        }
        assert_eq!(b.recv(&mut buf).unwrap(), 0);
        let mut back = b.try_clone().unwrap();
        back.send(b"pong").unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"pong");
        a.send(&[1u8; 65]).unwrap();
        assert!(b.recv(&mut buf).is_err());
    }
}
