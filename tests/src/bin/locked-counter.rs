//! `locked-counter`: one of several processes adding to a plain (not atomic)
//! counter in a shared-memory segment, each addition under a `lock:` or a
//! `sem:` taken through ipcd, for the e2e test that checks no update is lost.
//!
//! ```text
//! locked-counter SOCKET shm:NAME lock:NAME|sem:NAME|direct:NAME|none COUNT PROCESSES
//! ```
//!
//! `direct:NAME` uses the semaphore `sem:NAME` through the client's direct
//! path (`sem_wait`/`sem_post` on the mapped `sem_t`, no daemon round trip);
//! `none` takes no lock, to show that updates are lost then.
//!
//! It opens the segment through ipcd, announces itself by adding 1 to the
//! atomic `u64` at offset 8, waits (at most 20 s) until `PROCESSES` have, so
//! that they all run at once, then `COUNT` times: acquires, reads the `u64`
//! at offset 0, writes it back plus one (a load and a store, not an atomic
//! add: without the lock, updates would be lost), releases. Exit status 0, or
//! 2 with a message on stderr.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipc_client::{Access, Client};

fn main() {
    if let Err(e) = run() {
        eprintln!("locked-counter: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket, address, guard, count, processes] = args.as_slice() else {
        return Err(
            "usage: locked-counter SOCKET shm:NAME lock:NAME|sem:NAME|direct:NAME|none COUNT \
             PROCESSES"
                .into(),
        );
    };
    let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    let (count, processes) = (number(count)?, number(processes)?);
    let sem = guard.starts_with("sem:");
    let unlocked = guard == "none";
    let mut client = Client::connect_to(socket).map_err(|e| e.to_string())?;
    let shm = client
        .open_shm(address, Access::ReadWrite)
        .map_err(|e| e.to_string())?;
    let direct = match guard.strip_prefix("direct:") {
        Some(name) => Some(client.open_sem(name).map_err(|e| e.to_string())?),
        None => None,
    };
    let counter = shm.atomic_u64(0).map_err(|e| e.to_string())?;
    let ready = shm.atomic_u64(8).map_err(|e| e.to_string())?;
    ready.fetch_add(1, Ordering::AcqRel);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready.load(Ordering::Acquire) < processes {
        if Instant::now() > deadline {
            return Err(format!("the other processes never came to {address}"));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    for _ in 0..count {
        if unlocked {
            let n = counter.load(Ordering::Acquire);
            // A few hundred nanoseconds between the load and the store, so the
            // processes overlap even on a loaded machine: a preemption there,
            // or another CPU's store, loses updates.
            for _ in 0..50 {
                std::hint::spin_loop();
            }
            counter.store(n + 1, Ordering::Release);
            continue;
        }
        if let Some(sem) = &direct {
            sem.wait().map_err(|e| format!("sem_wait: {e}"))?;
            let n = counter.load(Ordering::Acquire);
            counter.store(n + 1, Ordering::Release);
            sem.post().map_err(|e| format!("sem_post: {e}"))?;
            continue;
        }
        if sem {
            client.sem_acquire(guard, None).map(drop)
        } else {
            client.lock_acquire(guard, None).map(drop)
        }
        .map_err(|e| format!("acquiring {guard}: {e}"))?;
        // Deliberately a read and a write, not one atomic step: only the
        // lock keeps two processes from both writing the same value + 1.
        let n = counter.load(Ordering::Acquire);
        counter.store(n + 1, Ordering::Release);
        if sem {
            client.sem_release(guard).map(drop)
        } else {
            client.lock_release(guard).map(drop)
        }
        .map_err(|e| format!("releasing {guard}: {e}"))?;
    }
    Ok(())
}
