//! Conversions between nix's message-queue descriptor and owned file descriptors.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use nix::mqueue::MqdT;

/// Turns a message-queue descriptor into an owned fd (on Linux an `mqd_t` is an fd).
pub fn mqd_into_owned(mqd: MqdT) -> OwnedFd {
    let raw = mqd.into_raw_fd();
    // SAFETY: `into_raw_fd` gave up ownership of a valid, open descriptor, so the
    // new `OwnedFd` is its only owner.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Turns an owned fd that refers to a message queue back into a `MqdT`.
pub fn owned_into_mqd(fd: OwnedFd) -> MqdT {
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is a valid descriptor we own (taken from an `OwnedFd`), and the
    // caller promises it refers to a message queue; `MqdT` becomes its only owner.
    unsafe { MqdT::from_raw_fd(raw) }
}
