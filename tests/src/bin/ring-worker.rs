//! `ring-worker`: one producer or consumer process on a ring, for the e2e
//! tests that move messages between processes (`tests/tests/e2e/ring.rs`).
//!
//! ```text
//! ring-worker SOCKET ring:NAME produce ID COUNT [--size B] [OPTIONS]
//! ring-worker SOCKET ring:NAME consume [--idle-ms T] [OPTIONS]
//! options: [--spin-us N] [--timeout-ms T] [--record FILE] [--record-each]
//! ```
//!
//! A producer sends `COUNT` messages `(ID, seq)` for seq `0..COUNT`: 4 bytes
//! of ID and 8 of seq (little-endian), a 4-byte check of both, then up to
//! `--size` bytes (default 16) of a pattern made from both. A consumer
//! receives until it takes the message `stop` ([`STOP`]; e.g. `ipcctl send
//! ring:NAME stop`), or, with `--idle-ms`, until nothing came for that long. It checks every
//! message (check and pattern: `corrupt` otherwise) and that each producer's
//! seqs only go up (`out_of_order` otherwise: a duplicate counts too).
//!
//! `--record FILE` appends 16 bytes `(ID, 0u32, seq)` per message to FILE: a
//! producer's after each send returned, a consumer's after each receive
//! returned, so a test can account for every message. `--record-each` writes
//! each record at once (for workers that get killed); otherwise they are
//! buffered until the end. Records are 16 bytes so that none straddles a
//! page: a write killed by SIGKILL may stop at a page boundary, and a
//! 12-byte record across one was once left half written. Every wait is bounded by `--timeout-ms` (default
//! 30000). Waits spin `--spin-us` first (default 0).
//!
//! Last, one JSON line on stdout: `{"role":"produce","id":…,"sent":N,"ms":…}`
//! or `{"role":"consume","received":N,"per_producer":{"ID":N,…},"corrupt":N,
//! "out_of_order":N,"poisoned":bool,"ms":…}`. Exit status 0; 1 if a wait
//! timed out; 2 with a message on stderr for anything else.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use ipc_client::{Client, Error, Ring};
use serde_json::json;

/// The message that stops a consumer.
const STOP: &[u8] = b"stop";

/// The record a consumer writes for a corrupt message (no producer has this ID).
const CORRUPT_ID: u32 = u32::MAX;

/// Bytes before the pattern: ID, seq, check.
const HEAD: usize = 16;

fn main() {
    match run() {
        Ok(()) => {}
        Err(Failure::TimedOut(what)) => {
            eprintln!("ring-worker: timed out {what}");
            std::process::exit(1);
        }
        Err(Failure::Other(e)) => {
            eprintln!("ring-worker: {e}");
            std::process::exit(2);
        }
    }
}

enum Failure {
    TimedOut(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Other(e)
    }
}

struct Options {
    spin_us: u64,
    timeout: Duration,
    record: Option<String>,
    record_each: bool,
    size: usize,
    idle: Option<Duration>,
}

fn run() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        "usage: ring-worker SOCKET ring:NAME produce ID COUNT | consume [--idle-ms T] \
         [--size B] [--spin-us N] [--timeout-ms T] [--record FILE] [--record-each]"
            .to_owned()
    };
    let (socket, address, role, rest) = match args.as_slice() {
        [s, a, r, rest @ ..] => (s, a, r.as_str(), rest),
        _ => return Err(usage().into()),
    };
    let (positional, flags) = match role {
        "produce" if rest.len() >= 2 => rest.split_at(2),
        "consume" => rest.split_at(0),
        _ => return Err(usage().into()),
    };
    let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    let mut o = Options {
        spin_us: 0,
        timeout: Duration::from_secs(30),
        record: None,
        record_each: false,
        size: HEAD,
        idle: None,
    };
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--spin-us" => o.spin_us = number(value()?)?,
            "--timeout-ms" => o.timeout = Duration::from_millis(number(value()?)?),
            "--record" => o.record = Some(value()?.clone()),
            "--record-each" => o.record_each = true,
            "--size" => o.size = (number(value()?)? as usize).max(HEAD),
            "--idle-ms" => o.idle = Some(Duration::from_millis(number(value()?)?)),
            other => return Err(format!("unknown argument {other}; {}", usage()).into()),
        }
    }
    let mut client = Client::connect_to(socket).map_err(|e| e.to_string())?;
    let ring = client.open_ring(address).map_err(|e| e.to_string())?;
    ring.set_spin(Duration::from_micros(o.spin_us));
    let record = Record::open(o.record.as_deref(), o.record_each)?;
    if role == "produce" {
        let id = u32::try_from(number(&positional[0])?).map_err(|e| e.to_string())?;
        produce(&ring, id, number(&positional[1])?, &o, record)
    } else {
        consume(&ring, &o, record)
    }
}

/// Where the `(ID, seq)` records go, if anywhere.
enum Record {
    None,
    Each(File),
    Buffered(BufWriter<File>),
}

impl Record {
    fn open(path: Option<&str>, each: bool) -> Result<Record, String> {
        let Some(path) = path else {
            return Ok(Record::None);
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(if each {
            Record::Each(file)
        } else {
            Record::Buffered(BufWriter::with_capacity(1 << 16, file))
        })
    }

    fn add(&mut self, id: u32, seq: u64) -> Result<(), String> {
        let mut rec = [0u8; 16];
        rec[..4].copy_from_slice(&id.to_le_bytes());
        rec[8..].copy_from_slice(&seq.to_le_bytes());
        match self {
            Record::None => Ok(()),
            Record::Each(f) => f.write_all(&rec),
            Record::Buffered(w) => w.write_all(&rec),
        }
        .map_err(|e| format!("writing the record: {e}"))
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Record::Buffered(mut w) => w.flush().map_err(|e| format!("writing the record: {e}")),
            Record::None | Record::Each(_) => Ok(()),
        }
    }
}

/// The check word of message `(id, seq)`.
fn check(id: u32, seq: u64) -> u32 {
    let x = (u64::from(id) << 40) ^ seq ^ 0x5EED_0000_0000_0001;
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

/// The pattern byte at `i` (from the start of the message) of `(id, seq)`.
fn pattern(id: u32, seq: u64, i: usize) -> u8 {
    (seq as u8).wrapping_add(i as u8) ^ (id as u8)
}

/// Message `(id, seq)` of `size` bytes into `buf`.
fn encode(id: u32, seq: u64, size: usize, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&check(id, seq).to_le_bytes());
    buf.extend((HEAD..size).map(|i| pattern(id, seq, i)));
}

/// `(id, seq)` of a message, if it is whole.
fn decode(msg: &[u8]) -> Option<(u32, u64)> {
    if msg.len() < HEAD {
        return None;
    }
    let id = u32::from_le_bytes(msg[..4].try_into().ok()?);
    let seq = u64::from_le_bytes(msg[4..12].try_into().ok()?);
    let ok = u32::from_le_bytes(msg[12..16].try_into().ok()?) == check(id, seq)
        && msg[HEAD..]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == pattern(id, seq, HEAD + i));
    ok.then_some((id, seq))
}

fn produce(
    ring: &Ring,
    id: u32,
    count: u64,
    o: &Options,
    mut record: Record,
) -> Result<(), Failure> {
    if o.size > ring.slot_size() {
        return Err(format!(
            "--size {} is more than the slot size {}",
            o.size,
            ring.slot_size()
        )
        .into());
    }
    let started = Instant::now();
    let mut msg = Vec::with_capacity(o.size);
    for seq in 0..count {
        encode(id, seq, o.size, &mut msg);
        match ring.send_timeout(&msg, o.timeout) {
            Ok(()) => {}
            Err(Error::TimedOut) => {
                return Err(Failure::TimedOut(format!(
                    "sending seq {seq} of producer {id}"
                )));
            }
            Err(e) => return Err(format!("sending seq {seq} of producer {id}: {e}").into()),
        }
        record.add(id, seq)?;
    }
    record.finish()?;
    let summary = json!({
        "role": "produce",
        "id": id,
        "sent": count,
        "ms": started.elapsed().as_millis() as u64,
    });
    println!("{summary}");
    Ok(())
}

fn consume(ring: &Ring, o: &Options, mut record: Record) -> Result<(), Failure> {
    let started = Instant::now();
    let mut buf = vec![0; ring.slot_size()];
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    let mut per_producer: BTreeMap<u32, u64> = BTreeMap::new();
    let (mut received, mut corrupt, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut poisoned = false;
    loop {
        let wait = o.idle.unwrap_or(o.timeout);
        let len = match ring.recv_into_timeout(&mut buf, wait) {
            Ok(len) => len,
            Err(Error::TimedOut) if o.idle.is_some() => break,
            Err(Error::TimedOut) => {
                return Err(Failure::TimedOut(format!(
                    "waiting for a message after {received}"
                )));
            }
            Err(e) => return Err(format!("receiving after {received} messages: {e}").into()),
        };
        if &buf[..len] == STOP {
            poisoned = true;
            break;
        }
        let Some((id, seq)) = decode(&buf[..len]) else {
            corrupt += 1;
            // A record no producer writes: the test sees it too.
            record.add(CORRUPT_ID, u64::MAX)?;
            continue;
        };
        record.add(id, seq)?;
        received += 1;
        *per_producer.entry(id).or_default() += 1;
        if last.insert(id, seq).is_some_and(|before| seq <= before) {
            out_of_order += 1;
        }
    }
    record.finish()?;
    let per: BTreeMap<String, u64> = per_producer
        .into_iter()
        .map(|(id, n)| (id.to_string(), n))
        .collect();
    let summary = json!({
        "role": "consume",
        "received": received,
        "per_producer": per,
        "corrupt": corrupt,
        "out_of_order": out_of_order,
        "poisoned": poisoned,
        "ms": started.elapsed().as_millis() as u64,
    });
    println!("{summary}");
    Ok(())
}
