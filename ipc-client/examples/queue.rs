//! A message queue end to end: create it for this session, send from one
//! thread, receive in another, then look at it through the daemon.
//!
//! ```text
//! cargo run -p ipc-client --example queue [SOCKET]
//! ```

use std::thread;
use std::time::Duration;

use ipc_client::{Access, Client, Error, MqOptions};

fn main() -> Result<(), Error> {
    let mut client = match std::env::args_os().nth(1) {
        Some(socket) => Client::connect_to(socket)?,
        None => Client::connect()?,
    };
    println!(
        "connected to {} as uid {}",
        client.welcome().server,
        client.welcome().peer.uid
    );

    // Session lifetime: the daemon removes the queue when this connection closes.
    let name = format!("example-{}", std::process::id());
    let opts = MqOptions::new().capacity(4).msg_size(128).session();
    let rx = client.create_mq(&name, &opts)?;
    let tx = client.open_mq(&name, Access::Write)?;

    let sender = thread::spawn(move || -> Result<(), Error> {
        for i in 0..8u32 {
            tx.send(format!("message {i}").as_bytes(), i % 3)?;
        }
        Ok(())
    });

    let mut buf = vec![0; rx.msg_size()];
    for _ in 0..8 {
        let (len, priority) = rx.recv_into_timeout(&mut buf, Duration::from_secs(5))?;
        println!(
            "received {:?} (priority {priority})",
            String::from_utf8_lossy(&buf[..len])
        );
    }
    sender.join().expect("sender thread panicked")?;

    assert!(matches!(rx.try_recv(), Err(Error::WouldBlock)));
    let info = client.stat(rx.address())?;
    println!(
        "{} is {} in the kernel; opened {} times",
        info.address, info.kernel_name, info.opens
    );
    Ok(())
}
