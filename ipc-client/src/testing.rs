//! A scripted fake daemon on a real Unix socket, for tests of code that talks
//! to ipcd: this crate's own and `ipcctl`'s (feature `testing`). Not part of
//! the public API.

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use protocol::{
    ClientFrame, Credentials, Kind, KindDetails, Lifetime, Limits, MqDetails, ObjectInfo, Outcome,
    PROTOCOL_VERSION, Request, ServerFrame, Welcome,
};

/// The daemon's side of one connection.
#[derive(Debug)]
pub struct FakePeer(pub UnixStream);

impl FakePeer {
    /// The next frame from the client; `None` once it hung up.
    pub fn read(&mut self) -> Option<ClientFrame> {
        let mut header = [0u8; 4];
        self.0.read_exact(&mut header).ok()?;
        let mut payload = vec![0; u32::from_le_bytes(header) as usize];
        self.0.read_exact(&mut payload).ok()?;
        Some(protocol::decode_client(&payload).expect("the client sent a valid frame"))
    }

    fn bytes(frame: &ServerFrame) -> Vec<u8> {
        protocol::frame::frame(&protocol::encode_server(frame).unwrap(), 1 << 20).unwrap()
    }

    /// Sends one frame.
    pub fn write(&mut self, frame: &ServerFrame) {
        let _ = self.0.write_all(&Self::bytes(frame));
    }

    /// Sends one frame with descriptors attached (`SCM_RIGHTS`).
    pub fn write_with_fds(&mut self, frame: &ServerFrame, fds: &[RawFd]) {
        let bytes = Self::bytes(frame);
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs = if fds.is_empty() { &[][..] } else { &cmsg[..] };
        let n = sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            cmsgs,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        assert_eq!(n, bytes.len());
    }

    /// Reads the client's hello and answers with [`welcome`]; returns the
    /// version the client asked for, `None` if it hung up first.
    pub fn handshake(&mut self) -> Option<u16> {
        match self.read()? {
            ClientFrame::Hello(h) => {
                self.write(&ServerFrame::Welcome(Welcome {
                    version: h.version,
                    ..welcome()
                }));
                Some(h.version)
            }
            other => panic!("expected hello, got {other:?}"),
        }
    }

    /// Answers requests until the client hangs up.
    pub fn serve(&mut self, mut answer: impl FnMut(&mut Self, u64, Request)) {
        while let Some(frame) = self.read() {
            match frame {
                ClientFrame::Request { id, body } => answer(self, id, body),
                ClientFrame::Hello(_) => panic!("second hello"),
            }
        }
    }
}

/// The fake daemon's handshake answer.
pub fn welcome() -> Welcome {
    Welcome {
        version: PROTOCOL_VERSION,
        min_version: 1,
        max_version: PROTOCOL_VERSION,
        server: "fake 0".into(),
        limits: Limits {
            max_frame: 1 << 20,
            max_message_size: 8192,
            max_objects_per_uid: 10,
            max_connections: 10,
        },
        peer: Credentials {
            pid: 1,
            uid: 2,
            gid: 3,
        },
    }
}

/// A queue's description as the fake daemon reports it.
pub fn mq_info(address: &str, kernel_name: &str, capacity: u64, msg_size: u64) -> ObjectInfo {
    ObjectInfo {
        address: address.into(),
        kind: Kind::Mq,
        kernel_name: kernel_name.into(),
        owner_uid: 0,
        owner_gid: 0,
        mode: 0o600,
        creator_pid: 1,
        created_at_ms: 0,
        lifetime: Lifetime::Persistent,
        opens: 0,
        details: KindDetails::Mq(MqDetails {
            capacity,
            msg_size,
            depth: 0,
        }),
    }
}

/// A response frame without descriptors.
pub fn respond(id: u64, result: Outcome) -> ServerFrame {
    ServerFrame::Response { id, fds: 0, result }
}

/// A fresh socket path in the temp directory.
fn socket_path(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("{tag}-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Starts a fake daemon that runs `script` on its first connection.
pub fn fake_daemon(script: impl FnOnce(FakePeer) + Send + 'static) -> (PathBuf, JoinHandle<()>) {
    let path = socket_path("ipcc");
    let listener = UnixListener::bind(&path).unwrap();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        script(FakePeer(stream));
    });
    (path, handle)
}

/// Starts a fake daemon that runs `script` on every connection, each in a
/// thread of its own, for as long as the process lives.
pub fn fake_daemon_each(tag: &str, script: impl Fn(FakePeer) + Clone + Send + 'static) -> PathBuf {
    let path = socket_path(tag);
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let script = script.clone();
            std::thread::spawn(move || script(FakePeer(stream)));
        }
    });
    path
}
