//! A session's socket I/O: reading frames through the shared sans-IO
//! `FrameBuffer`, and the writer task that sends answers (with descriptors) in order.

use std::os::fd::{AsFd, OwnedFd};

use protocol::{FrameBuffer, FrameError};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

/// A frame on its way out, with the descriptors that must travel with it.
pub struct Outgoing {
    /// The whole frame, header included.
    pub bytes: Vec<u8>,
    /// Descriptors to pass with its first byte.
    pub fds: Vec<OwnedFd>,
}

/// Why reading a frame stopped.
pub enum ReadError {
    /// The peer closed the connection between frames.
    Closed,
    /// The peer closed the connection in the middle of a frame.
    Truncated,
    /// The header is unacceptable.
    Frame(FrameError),
    /// The socket failed.
    Io(std::io::Error),
}

/// Reads whole frames from a connection. Holds no buffer while idle.
pub struct FrameReader {
    half: OwnedReadHalf,
    buf: FrameBuffer,
}

impl FrameReader {
    /// Reads from `half`.
    pub fn new(half: OwnedReadHalf) -> Self {
        FrameReader {
            half,
            buf: FrameBuffer::new(),
        }
    }

    /// The next frame's payload; the header is checked against `max` before
    /// the payload is waited for.
    pub async fn next(&mut self, max: u32) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(payload) = self.buf.next_frame(max).map_err(ReadError::Frame)? {
                return Ok(payload.to_vec());
            }
            self.buf.release_if_idle();
            self.half.readable().await.map_err(ReadError::Io)?;
            match self.half.try_read(self.buf.spare()) {
                Ok(0) if self.buf.is_empty() => return Err(ReadError::Closed),
                Ok(0) => return Err(ReadError::Truncated),
                Ok(n) => self.buf.commit(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }
}

/// Sends queued frames in order; batches frames without descriptors into one write.
pub async fn write_loop(mut writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            if !out.fds.is_empty() {
                if !batch.is_empty() && writer.write_all(&batch).await.is_err() {
                    return;
                }
                batch.clear();
                if send_with_fds(&mut writer, &out).await.is_err() {
                    return;
                }
            } else {
                batch.extend_from_slice(&out.bytes);
            }
            if batch.len() < 64 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() && writer.write_all(&batch).await.is_err() {
            return;
        }
        batch = Vec::new();
    }
    let _ = writer.shutdown().await;
}

/// Sends one frame whose first byte carries the descriptors, then the rest.
async fn send_with_fds(writer: &mut OwnedWriteHalf, out: &Outgoing) -> std::io::Result<()> {
    let stream: &UnixStream = writer.as_ref();
    let sent = loop {
        stream.writable().await?;
        match stream.try_io(tokio::io::Interest::WRITABLE, || {
            crate::sys::socket::send_with_fds(stream.as_fd(), &out.bytes, &out.fds)
                .map_err(std::io::Error::from)
        }) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    writer.write_all(&out.bytes[sent..]).await
}
