//! `shm-counter`: one of several processes adding to an atomic counter in a
//! shared-memory segment, for the e2e test that checks the sum is exact.
//!
//! ```text
//! shm-counter SOCKET shm:NAME OFFSET COUNT PROCESSES
//! ```
//!
//! It opens the segment through ipcd, announces itself by adding 1 to the
//! `u64` at `OFFSET + 8`, waits (at most 20 s) until `PROCESSES` have, so that
//! they all run at once, then adds 1 to the `u64` at `OFFSET` `COUNT` times.
//! Exit status 0, or 2 with a message on stderr.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipc_client::{Access, Client};

fn main() {
    if let Err(e) = run() {
        eprintln!("shm-counter: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket, address, offset, count, processes] = args.as_slice() else {
        return Err("usage: shm-counter SOCKET shm:NAME OFFSET COUNT PROCESSES".into());
    };
    let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    let offset = number(offset)? as usize;
    let (count, processes) = (number(count)?, number(processes)?);
    let mut client = Client::connect_to(socket).map_err(|e| e.to_string())?;
    let shm = client
        .open_shm(address, Access::ReadWrite)
        .map_err(|e| e.to_string())?;
    let counter = shm.atomic_u64(offset).map_err(|e| e.to_string())?;
    let ready = shm.atomic_u64(offset + 8).map_err(|e| e.to_string())?;
    ready.fetch_add(1, Ordering::AcqRel);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready.load(Ordering::Acquire) < processes {
        if Instant::now() > deadline {
            return Err(format!("the other processes never came to {address}"));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    for _ in 0..count {
        counter.fetch_add(1, Ordering::AcqRel);
    }
    Ok(())
}
