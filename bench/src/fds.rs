//! Handing raw pipe ends and memfds to the bench peer by descriptor
//! inheritance, as a parent hands a pipe to its child.
//!
//! The parent makes the peer's descriptors inheritable ([`inheritable`]),
//! starts the peer with their numbers on its command line, and closes its
//! copies. The peer takes ownership of each number once ([`take_inherited`]).
//! With [`super::sys`], the only `unsafe` in the bench (and in ipcctl).

use std::os::fd::{AsFd, FromRawFd as _, OwnedFd, RawFd};
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};

/// Descriptor numbers [`take_inherited`] has handed out in this process.
static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// What an inherited descriptor must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherited {
    /// A pipe end (`pipe:[inode]` in `/proc/self/fd`).
    Pipe,
    /// A memfd (`/memfd:name (deleted)` in `/proc/self/fd`).
    Memfd,
}

impl Inherited {
    /// How `/proc/self/fd/N` names one, and what to call it in errors.
    fn link_prefix(self) -> (&'static str, &'static str) {
        match self {
            Inherited::Pipe => ("pipe:", "a pipe"),
            Inherited::Memfd => ("/memfd:", "a memfd"),
        }
    }
}

/// Clears close-on-exec on `fd`, so that the next child process started
/// inherits it under the same number. Only the bench's main thread starts
/// processes, so no other child can inherit it by accident as long as the
/// caller closes `fd` right after starting the one child meant to have it.
pub fn inheritable(fd: impl AsFd) -> anyhow::Result<()> {
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
        .context("cannot make a pipe end inheritable")?;
    Ok(())
}

/// Takes ownership of descriptor `fd` (a pipe end or a memfd, as `what`
/// says), inherited from the bench that started this process, and marks it
/// close-on-exec again. Fails if `fd` is not open as `what`, is standard
/// input, output or error, or was taken before.
pub fn take_inherited(fd: RawFd, what: Inherited) -> anyhow::Result<OwnedFd> {
    if fd <= 2 {
        bail!("descriptor {fd} is standard input, output or error, not an inherited one");
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if taken.contains(&fd) {
        bail!("descriptor {fd} was already taken");
    }
    // Checks without touching the descriptor: /proc names an open pipe
    // `pipe:[inode]`, a memfd `/memfd:name (deleted)`.
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .with_context(|| format!("descriptor {fd} is not open (it should be inherited)"))?;
    let (prefix, name) = what.link_prefix();
    if !target.to_string_lossy().starts_with(prefix) {
        bail!("descriptor {fd} is {}, not {name}", target.display());
    }
    taken.push(fd);
    // SAFETY: `fd` is open (checked above) and a pipe end or memfd. The bench passed
    // it by inheritance, so it was open when this process started and no
    // file this process opened since can have its number; nothing else in
    // this process owns it, and `TAKEN` makes this the only place that takes
    // ownership of it, once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(owned.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .with_context(|| format!("cannot mark descriptor {fd} close-on-exec"))?;
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd as _, IntoRawFd as _};

    use super::*;

    #[test]
    fn refuses_what_is_not_an_inherited_pipe() {
        assert!(take_inherited(1, Inherited::Pipe).is_err());
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let err = take_inherited(file.as_raw_fd(), Inherited::Pipe).unwrap_err();
        assert!(err.to_string().contains("not a pipe"), "{err}");
        let err = take_inherited(file.as_raw_fd(), Inherited::Memfd).unwrap_err();
        assert!(err.to_string().contains("not a memfd"), "{err}");
    }

    #[test]
    fn takes_a_released_pipe_end_once() {
        use std::io::{Read as _, Write as _};
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        inheritable(&w).unwrap();
        // Released, as the parent's copy is once the child has it.
        let raw = w.into_raw_fd();
        let w = take_inherited(raw, Inherited::Pipe).unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(w.as_fd(), FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
        let err = take_inherited(raw, Inherited::Pipe).unwrap_err();
        assert!(err.to_string().contains("already taken"), "{err}");
        std::io::PipeWriter::from(w).write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        std::io::PipeReader::from(r).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    #[test]
    fn takes_a_memfd_and_not_as_a_pipe() {
        let fd = crate::sys::memfd("fds-test", 4096).unwrap().into_raw_fd();
        let err = take_inherited(fd, Inherited::Pipe).unwrap_err();
        assert!(err.to_string().contains("not a pipe"), "{err}");
        let m = take_inherited(fd, Inherited::Memfd).unwrap();
        assert_eq!(crate::sys::Mapping::map(&m).unwrap().len(), 4096);
    }

    #[test]
    fn inheritable_clears_close_on_exec() {
        let (r, _w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let flags = || FdFlag::from_bits_truncate(fcntl(r.as_fd(), FcntlArg::F_GETFD).unwrap());
        assert!(flags().contains(FdFlag::FD_CLOEXEC));
        inheritable(&r).unwrap();
        assert!(!flags().contains(FdFlag::FD_CLOEXEC));
    }
}
