//! The public methods of the pipe and FIFO handles, written once as macros:
//! `reader_api!` for `PipeReader`/`FifoReader`, `writer_api!` for the writers.

/// The methods every read end has (`PipeReader`, `FifoReader`), forwarding to
/// its `inner: ReadEnd`, plus `Read`, `AsFd` and `AsRawFd`.
macro_rules! reader_api {
    ($Ty:ident, $writer:literal) => {
        impl $Ty {
            /// The object's address, e.g. `pipe:jobs`.
            pub fn address(&self) -> &str {
                self.inner.end.address()
            }

            /// What the daemon said about the object when it was opened.
            pub fn info(&self) -> &$crate::ObjectInfo {
                self.inner.end.info()
            }

            /// Receives one length-prefixed binary message, as sent by
            #[doc = concat!("[`send_msg`](crate::", $writer, "::send_msg),")]
            /// waiting for it; `None` at end-of-file. Reads exactly the 4-byte
            /// length and the message, nothing after it.
            ///
            /// Errors: [`Error::BadMessage`](crate::Error::BadMessage) when the
            /// stream ends inside a message or a length is impossible (the
            /// writer sends lines or raw bytes).
            pub fn recv_msg(&mut self) -> $crate::Result<Option<Vec<u8>>> {
                let mut msg = Vec::new();
                Ok(self
                    .inner
                    .recv_msg_into(&mut msg, $crate::stream::Wait::Forever)?
                    .then_some(msg))
            }

            /// Like [`recv_msg`](Self::recv_msg), but gives up with
            /// [`Error::TimedOut`](crate::Error::TimedOut) after `timeout`. Bytes of
            /// a message that was arriving are kept for the next call.
            pub fn recv_msg_timeout(
                &mut self,
                timeout: std::time::Duration,
            ) -> $crate::Result<Option<Vec<u8>>> {
                let mut msg = Vec::new();
                Ok(self
                    .inner
                    .recv_msg_into(&mut msg, $crate::stream::Wait::after(timeout))?
                    .then_some(msg))
            }

            /// Like [`recv_msg`](Self::recv_msg), without waiting:
            /// [`Error::WouldBlock`](crate::Error::WouldBlock) if no message is there.
            pub fn try_recv_msg(&mut self) -> $crate::Result<Option<Vec<u8>>> {
                let mut msg = Vec::new();
                Ok(self
                    .inner
                    .recv_msg_into(&mut msg, $crate::stream::Wait::Never)?
                    .then_some(msg))
            }

            /// Like [`recv_msg`](Self::recv_msg), into `buf` (cleared first), so a
            /// loop allocates only while `buf` grows. `false` at end-of-file.
            pub fn recv_msg_into(&mut self, buf: &mut Vec<u8>) -> $crate::Result<bool> {
                self.inner.recv_msg_into(buf, $crate::stream::Wait::Forever)
            }

            /// Like [`recv_msg_into`](Self::recv_msg_into), but gives up with
            /// [`Error::TimedOut`](crate::Error::TimedOut) after `timeout`.
            pub fn recv_msg_into_timeout(
                &mut self,
                buf: &mut Vec<u8>,
                timeout: std::time::Duration,
            ) -> $crate::Result<bool> {
                self.inner
                    .recv_msg_into(buf, $crate::stream::Wait::after(timeout))
            }

            /// Reads one line, waiting for it; `None` at end-of-file. The
            /// newline is not included; a last line without one comes as it
            /// is. Reads one byte at a time, so nothing after the newline is
            /// taken from the pipe: the next line stays there for the next
            /// reader.
            pub fn read_line(&mut self) -> $crate::Result<Option<Vec<u8>>> {
                self.inner.read_line($crate::stream::Wait::Forever)
            }

            /// Like [`read_line`](Self::read_line), but gives up with
            /// [`Error::TimedOut`](crate::Error::TimedOut) after `timeout`. Bytes of
            /// a line that was arriving are kept for the next call.
            pub fn read_line_timeout(
                &mut self,
                timeout: std::time::Duration,
            ) -> $crate::Result<Option<Vec<u8>>> {
                self.inner.read_line($crate::stream::Wait::after(timeout))
            }

            /// Like [`read_line`](Self::read_line), without waiting:
            /// [`Error::WouldBlock`](crate::Error::WouldBlock) if no whole line is there.
            pub fn try_read_line(&mut self) -> $crate::Result<Option<Vec<u8>>> {
                self.inner.read_line($crate::stream::Wait::Never)
            }

            /// Reads whatever bytes are there (at most `buf.len()`), waiting at
            /// most `timeout` for some; 0 is end-of-file.
            pub fn read_timeout(
                &mut self,
                buf: &mut [u8],
                timeout: std::time::Duration,
            ) -> $crate::Result<usize> {
                self.inner.read(buf, $crate::stream::Wait::after(timeout))
            }

            /// Reads whatever bytes are there without waiting:
            /// [`Error::WouldBlock`](crate::Error::WouldBlock) if there are none; 0
            /// is end-of-file.
            pub fn try_read(&mut self, buf: &mut [u8]) -> $crate::Result<usize> {
                self.inner.read(buf, $crate::stream::Wait::Never)
            }

            /// Takes the bytes of an incomplete line or message that a call
            /// which timed out (or met end-of-file) had already read from the
            /// pipe. Reads return them first anyway; this is for a program that
            /// stops reading and does not want to lose them.
            pub fn take_partial(&mut self) -> Vec<u8> {
                self.inner.take_partial()
            }
        }

        impl std::io::Read for $Ty {
            /// Reads whatever bytes are there, waiting for some; 0 is end-of-file.
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.inner
                    .read(buf, $crate::stream::Wait::Forever)
                    .map_err($crate::stream::io_error)
            }
        }

        impl std::os::fd::AsFd for $Ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.inner.end)
            }
        }

        impl std::os::fd::AsRawFd for $Ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&self.inner.end))
            }
        }
    };
}

/// The methods every write end has (`PipeWriter`, `FifoWriter`), forwarding to
/// its `inner: End`, plus `Write` (for the handle and a reference), `AsFd` and
/// `AsRawFd`.
macro_rules! writer_api {
    ($Ty:ident, $reader:literal) => {
        impl $Ty {
            /// The object's address, e.g. `pipe:jobs`.
            pub fn address(&self) -> &str {
                self.inner.address()
            }

            /// What the daemon said about the object when it was opened.
            pub fn info(&self) -> &$crate::ObjectInfo {
                self.inner.info()
            }

            /// Sends `msg` as one binary message — a 4-byte little-endian
            /// length, then the bytes — in one `write(2)`, waiting for room.
            #[doc = concat!("Received by [`recv_msg`](crate::", $reader, "::recv_msg).")]
            ///
            /// Messages from concurrent writers never interleave, because each
            /// is one write of at most `PIPE_BUF` bytes: a message longer than
            /// [`MAX_MSG_LEN`](crate::MAX_MSG_LEN) (4092) bytes is refused with
            /// [`Error::ExceedsPipeBuf`](crate::Error::ExceedsPipeBuf). A reader
            /// that left is [`Error::ReaderGone`](crate::Error::ReaderGone).
            pub fn send_msg(&self, msg: &[u8]) -> $crate::Result<()> {
                self.send_msg_wait(msg, $crate::stream::Wait::Forever)
            }

            /// Like [`send_msg`](Self::send_msg), but gives up with
            /// [`Error::TimedOut`](crate::Error::TimedOut) if there is no room
            /// after `timeout` (nothing is sent then).
            pub fn send_msg_timeout(
                &self,
                msg: &[u8],
                timeout: std::time::Duration,
            ) -> $crate::Result<()> {
                self.send_msg_wait(msg, $crate::stream::Wait::after(timeout))
            }

            /// Like [`send_msg`](Self::send_msg), without waiting:
            /// [`Error::WouldBlock`](crate::Error::WouldBlock) if the pipe is too full.
            pub fn try_send_msg(&self, msg: &[u8]) -> $crate::Result<()> {
                self.send_msg_wait(msg, $crate::stream::Wait::Never)
            }

            fn send_msg_wait(&self, msg: &[u8], wait: $crate::stream::Wait) -> $crate::Result<()> {
                let header = $crate::stream::check_msg(self.inner.address(), msg)?;
                self.inner.write_atomic(&[&header, msg], wait)
            }

            /// Sends `line` and a newline (unless `line` already ends with one)
            /// in one `write(2)`, waiting for room; a line reader gets it back
            /// whole. A line over [`PIPE_BUF`](crate::PIPE_BUF) bytes with its
            /// newline is refused with
            /// [`Error::ExceedsPipeBuf`](crate::Error::ExceedsPipeBuf): a longer
            /// write could interleave with other writers'.
            pub fn send_line(&self, line: &[u8]) -> $crate::Result<()> {
                self.send_line_wait(line, $crate::stream::Wait::Forever)
            }

            /// Like [`send_line`](Self::send_line), but gives up with
            /// [`Error::TimedOut`](crate::Error::TimedOut) if there is no room
            /// after `timeout` (nothing is sent then).
            pub fn send_line_timeout(
                &self,
                line: &[u8],
                timeout: std::time::Duration,
            ) -> $crate::Result<()> {
                self.send_line_wait(line, $crate::stream::Wait::after(timeout))
            }

            /// Like [`send_line`](Self::send_line), without waiting:
            /// [`Error::WouldBlock`](crate::Error::WouldBlock) if the pipe is too full.
            pub fn try_send_line(&self, line: &[u8]) -> $crate::Result<()> {
                self.send_line_wait(line, $crate::stream::Wait::Never)
            }

            fn send_line_wait(
                &self,
                line: &[u8],
                wait: $crate::stream::Wait,
            ) -> $crate::Result<()> {
                if $crate::stream::check_line(self.inner.address(), line)? {
                    self.inner.write_atomic(&[line, b"\n"], wait)
                } else {
                    self.inner.write_atomic(&[line], wait)
                }
            }

            /// Writes what fits of `buf` (one `write(2)`), waiting at most
            /// `timeout` for room; returns the bytes written. Raw bytes carry no
            /// atomicity beyond the kernel's `PIPE_BUF` rule.
            pub fn write_timeout(
                &self,
                buf: &[u8],
                timeout: std::time::Duration,
            ) -> $crate::Result<usize> {
                self.inner.write(buf, $crate::stream::Wait::after(timeout))
            }

            /// Writes what fits of `buf` without waiting:
            /// [`Error::WouldBlock`](crate::Error::WouldBlock) if the pipe is full.
            pub fn try_write(&self, buf: &[u8]) -> $crate::Result<usize> {
                self.inner.write(buf, $crate::stream::Wait::Never)
            }
        }

        impl std::io::Write for &$Ty {
            /// One `write(2)`, waiting for room; a vanished reader is `BrokenPipe`.
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner
                    .write(buf, $crate::stream::Wait::Forever)
                    .map_err($crate::stream::io_error)
            }

            fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                self.inner
                    .write_all(buf, $crate::stream::Wait::Forever)
                    .map_err($crate::stream::io_error)
            }

            /// Nothing to do: writes go straight to the kernel.
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for $Ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                (&*self).write_all(buf)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::os::fd::AsFd for $Ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.inner)
            }
        }

        impl std::os::fd::AsRawFd for $Ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&self.inner))
            }
        }
    };
}

pub(crate) use {reader_api, writer_api};
