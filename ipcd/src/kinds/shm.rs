//! `shm:NAME` — a POSIX shared-memory segment, `/<prefix>NAME` in the kernel
//! (`/dev/shm/<prefix>NAME`), so any program may `shm_open` it by that name.
//!
//! The daemon creates and sizes the segment and keeps one descriptor; `Open`
//! hands a client a fresh descriptor (read-only for `Read`) to map. The bytes
//! never pass through the daemon, and they survive a daemon restart: the
//! segment is a kernel object, found again by name.

use std::os::fd::OwnedFd;

use protocol::{
    Access, Kind, KindDetails, KindOp, KindParams, KindReply, Name, SHM_MAX_SIZE, ShmDetails,
    ShmOp, ShmReply,
};

use super::segment;
use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;

/// The `shm` kind.
pub struct Module;

/// The daemon's descriptor on a segment it hosts.
#[derive(Debug)]
pub struct ShmObject {
    name: String,
    fd: OwnedFd,
    /// Size when last created, grown or looked at (the kernel's is the truth).
    size: u64,
}

/// Checks a size a create or resize asks for.
fn checked_size(size: Option<u64>) -> Result<u64, RequestError> {
    match size {
        None => Err(RequestError::InvalidArgument(
            "a shared-memory segment needs a size (e.g. --size 1MiB)".into(),
        )),
        Some(0) => Err(RequestError::InvalidArgument(
            "a shared-memory segment must be at least 1 byte".into(),
        )),
        Some(s) if s > SHM_MAX_SIZE => Err(RequestError::TooLarge(format!(
            "size {s} exceeds the largest segment ipcd makes ({SHM_MAX_SIZE} bytes, 1 TiB)"
        ))),
        Some(s) => Ok(s),
    }
}

impl KindModule for Module {
    fn kernel_name(&self, ns: &Namespace, name: &Name) -> Option<String> {
        Some(format!("/{}{}", ns.prefix, name.as_str()))
    }

    fn cost(&self, args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        let KindParams::Shm(params) = args.params else {
            return Err(wrong_params(args.params, Kind::Shm));
        };
        let name = args.kernel_name.expect("a segment has a kernel name");
        segment::cost(name, args.adopt, || checked_size(params.size))
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let KindParams::Shm(params) = args.params else {
            return Err(wrong_params(args.params, Kind::Shm));
        };
        let name = args.kernel_name.expect("a segment has a kernel name");
        let fd = if args.adopt {
            segment::adopt(name, args.peer)?
        } else {
            segment::create(name, checked_size(params.size)?, args.mode)?
        };
        Ok(Box::new(ShmObject::new(name, fd)?))
    }

    fn reopen(
        &self,
        kernel_name: Option<&str>,
        _state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let name = kernel_name.ok_or_else(|| {
            RequestError::InvalidArgument("a segment record without a kernel name".into())
        })?;
        Ok(match segment::find(name)? {
            Some(fd) => Reopened::Alive(Box::new(ShmObject::new(name, fd)?)),
            None => Reopened::Gone(format!(
                "shared-memory object {name} vanished while ipcd was down"
            )),
        })
    }

    fn unlink(&self, kernel_name: &str) -> Result<(), RequestError> {
        segment::unlink(kernel_name)
    }

    fn owner(&self, kernel_name: &str) -> Option<u32> {
        segment::owner(kernel_name)
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        // Never called with another kind's operation; the strictest answer is safe.
        let KindOp::Shm(ShmOp::Resize { .. }) = op else {
            return Need::Owner;
        };
        Need::Write
    }
}

impl ShmObject {
    fn new(name: &str, fd: OwnedFd) -> Result<Self, RequestError> {
        let size = segment::size(&fd)?;
        Ok(ShmObject {
            name: name.to_owned(),
            fd,
            size,
        })
    }

    fn resize(&mut self, size: u64) -> Result<KindReply, RequestError> {
        let now = segment::size(&self.fd)?;
        let size = checked_size(Some(size))?;
        if size < now {
            return Err(RequestError::InvalidArgument(format!(
                "{} is {now} bytes; shrinking to {size} would make other processes' mappings past \
                 the new end fault (SIGBUS), so segments only grow; create a smaller one instead",
                self.name
            )));
        }
        segment::grow(&self.fd, &self.name, size)?;
        self.size = size;
        Ok(KindReply::Shm(ShmReply::Resized { size }))
    }
}

impl KindObject for ShmObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        Ok(KindDetails::Shm(ShmDetails {
            size: segment::size(&self.fd)?,
            mapped_by: segment::mapped_by(&self.name),
        }))
    }

    fn open(&mut self, access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        Ok(vec![segment::open(&self.name, access)?])
    }

    fn operate(&mut self, op: KindOp, _who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Shm(ShmOp::Resize { size }) = op else {
            return Err(wrong_op(&op, Kind::Shm));
        };
        self.resize(size).map(OpAnswer::Now)
    }

    fn op_cost(&self, op: &KindOp) -> Held {
        let KindOp::Shm(ShmOp::Resize { size }) = op else {
            return Held::default();
        };
        Held {
            shm_bytes: size.saturating_sub(self.size),
            ..Held::default()
        }
    }

    fn held(&self) -> Held {
        segment::held(self.size)
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
