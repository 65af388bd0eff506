//! `hold-conns --socket PATH --count N [--no-hello]`: opens N connections to
//! ipcd and keeps them open until its standard input reaches end of file, so a
//! test (running it as another uid) controls how long they are held.
//!
//! Prints one line per connection, in order: `ok` when the daemon kept it, or
//! `refused: <code>: <message>` when the daemon answered with a `Fatal` frame.
//! With `--no-hello` no handshake is sent; once all N are connected, one more
//! *probe* connection says hello and waits for its answer. The daemon accepts
//! and admits connections in order, so by then every earlier refusal has been
//! written, and a connection with nothing to read was kept.

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use protocol::{ClientFrame, Hello, PROTOCOL_VERSION, ServerFrame};

/// How long any one answer from the daemon may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

struct Args {
    socket: PathBuf,
    count: usize,
    hello: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut socket = None;
    let mut count = None;
    let mut hello = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--socket" => socket = args.next().map(PathBuf::from),
            "--count" => {
                let n = args.next().ok_or("--count needs a number")?;
                count = Some(n.parse().map_err(|e| format!("--count {n}: {e}"))?);
            }
            "--no-hello" => hello = false,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        socket: socket.ok_or("--socket PATH is required")?,
        count: count.ok_or("--count N is required")?,
        hello,
    })
}

fn send_hello(stream: &mut UnixStream) {
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        client_name: "hold-conns".into(),
    });
    let payload = protocol::encode_client(&hello).expect("encode hello");
    let bytes = protocol::frame::frame(&payload, protocol::HARD_MAX_FRAME).expect("frame hello");
    // A refused connection may be closed already: its Fatal frame is still readable.
    let _ = stream.write_all(&bytes);
}

/// Reads one frame; `Err` says why none came.
fn recv(stream: &mut UnixStream) -> Result<ServerFrame, String> {
    let mut header = [0u8; 4];
    stream
        .read_exact(&mut header)
        .map_err(|e| format!("no answer: {e}"))?;
    let mut payload = vec![0u8; u32::from_le_bytes(header) as usize];
    stream
        .read_exact(&mut payload)
        .map_err(|e| format!("truncated answer: {e}"))?;
    protocol::decode_server(&payload).map_err(|e| format!("undecodable answer: {e}"))
}

fn describe(frame: Result<ServerFrame, String>) -> String {
    match frame {
        Ok(ServerFrame::Welcome(_)) => "ok".into(),
        Ok(ServerFrame::Fatal(e)) => format!("refused: {}: {}", e.code, e.message),
        Ok(other) => format!("error: unexpected {other:?}"),
        Err(e) => format!("error: {e}"),
    }
}

/// Whether the daemon has written something to `stream` (without waiting).
fn has_data(stream: &UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).expect("poll") > 0
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hold-conns: {e}");
            return ExitCode::from(64);
        }
    };
    // Each connection and, once known, what became of it.
    let mut held: Vec<(Option<UnixStream>, Option<String>)> = Vec::new();
    for _ in 0..args.count {
        let mut stream = match UnixStream::connect(&args.socket) {
            Ok(s) => s,
            Err(e) => {
                held.push((None, Some(format!("error: connect: {e}"))));
                continue;
            }
        };
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .expect("read timeout");
        let line = args.hello.then(|| {
            send_hello(&mut stream);
            describe(recv(&mut stream))
        });
        held.push((Some(stream), line));
    }
    if !args.hello {
        // The probe: once it is answered, every earlier connection was admitted or refused.
        if let Ok(mut probe) = UnixStream::connect(&args.socket) {
            probe
                .set_read_timeout(Some(ANSWER_TIMEOUT))
                .expect("read timeout");
            send_hello(&mut probe);
            let _ = recv(&mut probe);
        }
        for (stream, line) in &mut held {
            if line.is_none()
                && let Some(stream) = stream
            {
                *line = Some(if has_data(stream) {
                    describe(recv(stream))
                } else {
                    "ok".into()
                });
            }
        }
    }
    let lines: Vec<String> = held.iter_mut().filter_map(|(_, l)| l.take()).collect();
    let mut out = std::io::stdout().lock();
    for line in &lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    drop(out);
    // Hold everything until the test closes our standard input.
    let mut sink = String::new();
    let stdin = std::io::stdin();
    while stdin.lock().read_line(&mut sink).is_ok_and(|n| n > 0) {
        sink.clear();
    }
    drop(held);
    ExitCode::SUCCESS
}
