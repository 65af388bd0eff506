//! The Redis yardstick: a private `redis-server` on a Unix socket
//! ([`RedisServer`]) and the ends that `LPUSH` and `BRPOP` one message per
//! command, waiting for each reply ([`RedisEnd`]): the plain way to use
//! Redis as a work queue, one client each side, no pipelining.
//!
//! The two commands' RESP (REdis Serialization Protocol, version 2) is
//! written here by hand ([`command`], [`read_reply`]) rather than taken from
//! a crate: two commands and their replies are a few lines, and a baseline
//! should add no dependency to the bench.

use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cleanup;
use crate::loops::Endpoint;
use crate::tmpdir::PrivateDir;

/// The list the bench pushes to and pops from.
const KEY: &[u8] = b"ipcbench";
/// How long a fresh server may take to answer its first `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest bulk string or array a reply may announce.
const MAX_LEN: usize = 1 << 20;

/// The name of the server's executable.
pub const SERVER: &str = "redis-server";

/// One RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`
    Error(String),
    /// `:3`
    Integer(i64),
    /// `$5 hello`, or `$-1` (none).
    Bulk(Option<Vec<u8>>),
    /// `*2 …`, or `*-1` (none).
    Array(Option<Vec<Reply>>),
}

/// Appends a command (an array of bulk strings) to `out`.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one reply.
pub fn read_reply(r: &mut impl BufRead) -> anyhow::Result<Reply> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)
        .context("read from redis-server")?;
    let Some(body) = line.strip_suffix(b"\r\n") else {
        bail!("redis-server sent an unterminated line {line:?}");
    };
    let Some((&kind, rest)) = body.split_first() else {
        bail!("redis-server sent an empty line");
    };
    let text = || String::from_utf8_lossy(rest).into_owned();
    let number = || -> anyhow::Result<i64> {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("redis-server sent a bad number {:?}", text()))
    };
    let length = |n: i64| -> anyhow::Result<Option<usize>> {
        match usize::try_from(n) {
            Ok(n) if n <= MAX_LEN => Ok(Some(n)),
            Ok(n) => bail!("redis-server announced {n} items or bytes, more than expected"),
            Err(_) => Ok(None),
        }
    };
    Ok(match kind {
        b'+' => Reply::Simple(text()),
        b'-' => Reply::Error(text()),
        b':' => Reply::Integer(number()?),
        b'$' => match length(number()?)? {
            None => Reply::Bulk(None),
            Some(n) => {
                let mut data = vec![0u8; n + 2];
                r.read_exact(&mut data).context("read from redis-server")?;
                if !data.ends_with(b"\r\n") {
                    bail!("redis-server sent a bulk string without its terminator");
                }
                data.truncate(n);
                Reply::Bulk(Some(data))
            }
        },
        b'*' => match length(number()?)? {
            None => Reply::Array(None),
            Some(n) => Reply::Array(Some(
                (0..n)
                    .map(|_| read_reply(r))
                    .collect::<anyhow::Result<_>>()?,
            )),
        },
        other => bail!(
            "redis-server sent an unknown reply type {:?}",
            other as char
        ),
    })
}

/// One client connection: `LPUSH` per message sent, `BRPOP` (no timeout)
/// per message received, each answered before the next.
pub struct RedisEnd {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The command being written.
    out: Vec<u8>,
}

impl RedisEnd {
    /// Connects to the server listening at `path`.
    pub fn connect(path: &Path) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot connect to redis-server at {}", path.display()))?;
        Ok(RedisEnd {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            out: Vec::with_capacity(128),
        })
    }

    /// Sends one command and reads its reply; an error reply is an error.
    fn call(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        self.out.clear();
        command(&mut self.out, args);
        self.writer
            .write_all(&self.out)
            .context("write to redis-server")?;
        match read_reply(&mut self.reader)? {
            Reply::Error(e) => bail!("redis-server: {e}"),
            reply => Ok(reply),
        }
    }
}

impl Endpoint for RedisEnd {
    fn send(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        match self.call(&[b"LPUSH", KEY, msg])? {
            Reply::Integer(_) => Ok(()),
            other => bail!("LPUSH answered {other:?}"),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let reply = self.call(&[b"BRPOP", KEY, b"0"])?;
        let Reply::Array(Some(pair)) = reply else {
            bail!("BRPOP answered {reply:?}");
        };
        let value = match <[Reply; 2]>::try_from(pair) {
            Ok([_key, Reply::Bulk(Some(value))]) => value,
            _ => bail!("BRPOP answered an array without a key and a value"),
        };
        let Some(dst) = buf.get_mut(..value.len()) else {
            bail!(
                "a {}-byte message came from redis where at most {} bytes were expected",
                value.len(),
                buf.len()
            );
        };
        dst.copy_from_slice(&value);
        Ok(value.len())
    }
}

/// Servers this process started and has not stopped yet, by pid.
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Stops every server this process started. For exit paths that skip
/// destructors; errors are ignored.
fn kill_all_live() {
    for pid in std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// A private `redis-server`: no TCP port, a Unix socket in a directory of
/// its own, no persistence (`--save ''`, `--appendonly no`); stopped (by
/// pid) and its directory removed on drop.
pub struct RedisServer {
    child: Child,
    socket: PathBuf,
    /// Holds the socket; removed after the server stops.
    _dir: PrivateDir,
}

impl RedisServer {
    /// Where `redis-server` is on `PATH`, if anywhere.
    pub fn find() -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(SERVER))
            .find(|p| p.is_file())
    }

    /// Starts `exe`, pinned to `cpu` if given, and waits until it answers.
    pub fn start(exe: &Path, cpu: Option<usize>) -> anyhow::Result<Self> {
        let dir = PrivateDir::create()?;
        let socket = dir.path().join("redis.sock");
        cleanup::register("redis servers", kill_all_live);
        let child = Command::new(exe)
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning", "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
        let mut server = RedisServer {
            child,
            socket,
            _dir: dir,
        };
        server.wait_ready()?;
        if let Some(cpu) = cpu {
            pin_process(pid, cpu)?;
        }
        Ok(server)
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Waits until the server answers `PING`.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server exited at start ({status})");
            }
            if let Ok(mut end) = RedisEnd::connect(&self.socket)
                && end.call(&[b"PING"])? == Reply::Simple("PONG".into())
            {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                bail!("redis-server did not answer within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pid = self.child.id() as i32;
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&p| p != pid);
    }
}

/// Pins every thread of process `pid` to `cpu`.
fn pin_process(pid: i32, cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .with_context(|| format!("CPU {cpu} is out of range"))?;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("cannot list the threads of pid {pid}"))?;
    for task in tasks {
        let tid: i32 = task?.file_name().to_string_lossy().parse()?;
        sched_setaffinity(Pid::from_raw(tid), &set)
            .with_context(|| format!("cannot pin thread {tid} of redis-server to CPU {cpu}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"LPUSH", b"k", b""]);
        assert_eq!(out, b"*3\r\n$5\r\nLPUSH\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn replies_of_every_type() {
        let wire = b"+PONG\r\n-ERR wrong\r\n:42\r\n$-1\r\n*2\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n*-1\r\n";
        let mut r = &wire[..];
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Simple("PONG".into()));
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply::Error("ERR wrong".into())
        );
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Integer(42));
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Bulk(None));
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"k".to_vec())),
                Reply::Bulk(Some(b"a\r\nb".to_vec()))
            ]))
        );
        assert_eq!(read_reply(&mut r).unwrap(), Reply::Array(None));
        assert!(read_reply(&mut r).is_err(), "end of input");
        for bad in [
            &b"?x\r\n"[..],
            b":x\r\n",
            b"$3\r\nabcd\r\n",
            b"+no end",
            b"$9999999\r\n",
        ] {
            assert!(read_reply(&mut &bad[..]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lpush_and_brpop_through_a_private_server() {
        let Some(exe) = RedisServer::find() else {
            eprintln!("skipped: {SERVER} not installed");
            return;
        };
        let server = RedisServer::start(&exe, None).unwrap();
        let mut producer = RedisEnd::connect(server.socket()).unwrap();
        let mut consumer = RedisEnd::connect(server.socket()).unwrap();
        for msg in [&b"one"[..], b"", b"three"] {
            producer.send(msg).unwrap();
        }
        let mut buf = [0u8; 8];
        assert_eq!(consumer.recv(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
        assert_eq!(consumer.recv(&mut buf).unwrap(), 0);
        assert!(
            consumer.recv(&mut buf[..2]).is_err(),
            "too long for the buffer"
        );
        let dir = server.socket().parent().unwrap().to_owned();
        drop(server);
        assert!(!dir.exists());
    }
}
