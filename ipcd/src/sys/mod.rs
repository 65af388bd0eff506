//! Small safe wrappers over system calls: the only module with `unsafe`.

pub mod fd;
pub mod inherited;
pub mod mem;
pub mod pidfd;
pub mod sem;
pub mod socket;
