//! `ring:NAME` — a message ring in a shared-memory segment,
//! `/<prefix>ring:NAME` in the kernel (`:` never appears in a name, so it
//! cannot collide with a `shm:` segment).
//!
//! The daemon only creates the segment, writes its header (PROTOCOL.md, "The
//! shared-memory ring") and hands out read-write descriptors; producers and
//! consumers then exchange messages in the mapped slots without the daemon.
//! `stat` reads the header's counters and participant table for a snapshot.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::uio::{pread, pwrite};
use protocol::ring::layout::{self, Geometry};
use protocol::{Access, Kind, KindDetails, KindOp, KindParams, Name, RingDetails, RingParams};

use super::segment;
use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;

/// The `ring` kind.
pub struct Module;

/// The daemon's descriptor on a ring it hosts.
#[derive(Debug)]
pub struct RingObject {
    name: String,
    fd: OwnedFd,
    geometry: Geometry,
}

/// The geometry a create asks for, defaults filled in.
fn geometry(params: &RingParams) -> Result<Geometry, RequestError> {
    Geometry::new(
        params.slots.unwrap_or(layout::DEFAULT_SLOTS),
        params.slot_size.unwrap_or(layout::DEFAULT_SLOT_SIZE),
    )
    .map_err(RequestError::InvalidArgument)
}

/// Reads the whole header of the ring behind `fd`.
fn read_header(fd: &OwnedFd, name: &str) -> Result<Vec<u8>, RequestError> {
    let mut header = vec![0u8; layout::HEADER_SIZE];
    let n = pread(fd.as_fd(), &mut header, 0)
        .map_err(|e| RequestError::os(format!("reading the header of {name}"), e))?;
    header.truncate(n);
    Ok(header)
}

/// Checks that the segment behind `fd` holds a ring this daemon understands.
fn parse(fd: &OwnedFd, name: &str) -> Result<Geometry, String> {
    let header = read_header(fd, name).map_err(|e| e.to_string())?;
    let size = segment::size(fd).map_err(|e| e.to_string())?;
    Geometry::parse(&header, size).map_err(|e| format!("{name}: {e}"))
}

fn u64_at(header: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&header[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Whether the process a participant entry names still runs (a zombie,
/// killed but not yet reaped, does not).
fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the command name's closing ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

impl KindModule for Module {
    fn kernel_name(&self, ns: &Namespace, name: &Name) -> Option<String> {
        Some(format!("/{}ring:{}", ns.prefix, name.as_str()))
    }

    fn cost(&self, args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        let KindParams::Ring(params) = args.params else {
            return Err(wrong_params(args.params, Kind::Ring));
        };
        let name = args.kernel_name.expect("a ring has a kernel name");
        segment::cost(name, args.adopt, || Ok(geometry(params)?.segment_size()))
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let KindParams::Ring(params) = args.params else {
            return Err(wrong_params(args.params, Kind::Ring));
        };
        let name = args.kernel_name.expect("a ring has a kernel name");
        if args.adopt {
            let fd = segment::adopt(name, args.peer)?;
            let geometry = parse(&fd, name).map_err(|e| {
                RequestError::InvalidArgument(format!("cannot adopt {name} as a ring: {e}"))
            })?;
            return Ok(Box::new(RingObject {
                name: name.to_owned(),
                fd,
                geometry,
            }));
        }
        let geometry = geometry(params)?;
        let fd = segment::create(name, geometry.segment_size(), args.mode)?;
        if let Err(e) = pwrite(fd.as_fd(), &geometry.header(), 0) {
            let _ = segment::unlink(name);
            return Err(RequestError::os(format!("writing the header of {name}"), e));
        }
        Ok(Box::new(RingObject {
            name: name.to_owned(),
            fd,
            geometry,
        }))
    }

    fn reopen(
        &self,
        kernel_name: Option<&str>,
        _state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let name = kernel_name.ok_or_else(|| {
            RequestError::InvalidArgument("a ring record without a kernel name".into())
        })?;
        let Some(fd) = segment::find(name)? else {
            return Ok(Reopened::Gone(format!(
                "ring segment {name} vanished while ipcd was down"
            )));
        };
        match parse(&fd, name) {
            Ok(geometry) => Ok(Reopened::Alive(Box::new(RingObject {
                name: name.to_owned(),
                fd,
                geometry,
            }))),
            Err(e) => Ok(Reopened::Gone(format!("{e}; not a ring any more"))),
        }
    }

    fn unlink(&self, kernel_name: &str) -> Result<(), RequestError> {
        segment::unlink(kernel_name)
    }

    fn owner(&self, kernel_name: &str) -> Option<u32> {
        segment::owner(kernel_name)
    }

    fn op_needs(&self, _op: &KindOp) -> Need {
        // A ring has no operations through the daemon; never called.
        Need::Owner
    }
}

impl KindObject for RingObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        let h = read_header(&self.fd, &self.name)?;
        if h.len() < layout::HEADER_SIZE {
            return Err(RequestError::KernelObjectMissing(format!(
                "ring segment {} was truncated outside ipcd",
                self.name
            )));
        }
        let enqueued = u64_at(&h, layout::OFF_ENQUEUE_POS);
        let dequeued = u64_at(&h, layout::OFF_DEQUEUE_POS);
        let attached = (0..layout::PARTICIPANTS_MAX as usize)
            .map(|i| u64_at(&h, layout::PARTICIPANTS_AT + i * layout::PARTICIPANT_SIZE) as u32)
            .filter(|&pid| pid != 0 && pid_alive(pid))
            .count() as u32;
        Ok(KindDetails::Ring(RingDetails {
            slots: self.geometry.slots,
            slot_size: self.geometry.slot_size,
            segment_size: segment::size(&self.fd)?,
            depth: enqueued.saturating_sub(dequeued),
            attached,
        }))
    }

    fn open(&mut self, access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        if access != Access::ReadWrite {
            return Err(RequestError::InvalidArgument(
                "open a ring read-write (Access::ReadWrite; ipc-client's open_ring does): \
                 producers and consumers alike write slot states in the shared memory, so a \
                 read-only or write-only descriptor cannot use it"
                    .into(),
            ));
        }
        Ok(vec![segment::open(&self.name, access)?])
    }

    fn operate(&mut self, op: KindOp, _who: &Asker) -> Result<OpAnswer, RequestError> {
        Err(wrong_op(&op, Kind::Ring))
    }

    fn held(&self) -> Held {
        segment::held(self.geometry.segment_size())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        let name = self.name.clone();
        drop(self);
        segment::unlink(&name)
    }
}
