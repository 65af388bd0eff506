//! Hosted pipes end to end: a child process reads one pipe and writes another,
//! the way `ipcctl exec --stdin pipe:in --stdout pipe:out -- tr a-z A-Z` joins
//! them, while this process sends lines and binary messages.
//!
//! ```text
//! cargo run -p ipc-client --example pipes [SOCKET]
//! ```

use std::process::Command;
use std::time::Duration;

use ipc_client::{Client, PipeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut client = match std::env::args_os().nth(1) {
        Some(socket) => Client::connect_to(socket)?,
        None => Client::connect()?,
    };
    // Session lifetime: the daemon removes both pipes when this connection closes.
    let tag = std::process::id();
    let (input, output) = (format!("in-{tag}"), format!("out-{tag}"));
    client.create_pipe(&input, &PipeOptions::new().session())?;
    client.create_pipe(&output, &PipeOptions::new().session())?;

    // Lines: each one write of at most PIPE_BUF bytes, so it arrives whole.
    let tx = client.open_pipe_writer(&input)?;
    tx.send_line(b"hello from a hosted pipe")?;
    tx.send_line(b"second line")?;
    drop(tx);
    client.close_pipe(&input)?; // `tr` sees end of file once it read both

    // Pipe ends become a child's standard input and output.
    let status = Command::new("tr")
        .arg("a-z")
        .arg("A-Z")
        .stdin(client.open_pipe_reader(&input)?)
        .stdout(client.open_pipe_writer(&output)?)
        .status()?;
    println!("tr exited with {status}");

    let mut rx = client.open_pipe_reader(&output)?;
    while let Ok(Some(line)) = rx.read_line_timeout(Duration::from_millis(200)) {
        println!("got: {}", String::from_utf8_lossy(&line));
    }

    // Binary messages: a 4-byte length, then the bytes, in one write.
    let tx = client.open_pipe_writer(&output)?;
    tx.send_msg(&[0, 1, 2, 255])?;
    println!("message: {:?}", rx.recv_msg()?);
    Ok(())
}
