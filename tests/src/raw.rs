//! A raw protocol connection for tests that must send bytes no proper client would.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use protocol::{ClientFrame, Hello, PROTOCOL_VERSION, Request, ServerFrame};

/// A bare socket to the daemon, speaking frames by hand.
pub struct RawConn {
    /// The socket.
    pub stream: UnixStream,
}

impl RawConn {
    /// Connects without a handshake. Reads time out after 10 s so a test never hangs.
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect to ipcd");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        RawConn { stream }
    }

    /// Connects and completes the handshake.
    pub fn connect_hello(socket: &Path) -> Self {
        let mut c = Self::connect(socket);
        c.send(&ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            client_name: "raw-test".into(),
        }));
        match c.recv() {
            Some(ServerFrame::Welcome(_)) => c,
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    /// Writes raw bytes. A daemon that already closed the connection (it
    /// refused it, say) is not an error here: reading tells why.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        match self.stream.write_all(bytes) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => panic!("write to ipcd: {e}"),
        }
    }

    /// Writes one framed message.
    pub fn send(&mut self, frame: &ClientFrame) {
        let payload = protocol::encode_client(frame).expect("encode");
        let bytes = protocol::frame::frame(&payload, protocol::HARD_MAX_FRAME).expect("frame");
        self.send_bytes(&bytes);
    }

    /// Sends a request with id 1.
    pub fn request(&mut self, body: Request) -> ServerFrame {
        self.send(&ClientFrame::Request { id: 1, body });
        self.recv().expect("a response")
    }

    /// Reads one frame; `None` when the daemon closed the connection.
    pub fn recv(&mut self) -> Option<ServerFrame> {
        let mut header = [0u8; 4];
        if self.stream.read_exact(&mut header).is_err() {
            return None;
        }
        let len = u32::from_le_bytes(header) as usize;
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).expect("frame payload");
        Some(protocol::decode_server(&payload).expect("daemon sent a valid frame"))
    }

    /// Reads until the daemon closes the connection; returns the frames seen.
    pub fn drain(&mut self) -> Vec<ServerFrame> {
        std::iter::from_fn(|| self.recv()).collect()
    }
}
