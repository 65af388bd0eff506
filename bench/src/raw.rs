//! Raw POSIX message queues opened straight with `mq_open(3)`: the baseline that
//! the client library's queues are measured against.
//!
//! Queues are created under unique names (`/ipcbench.<pid>.<n>`) and unlinked as
//! soon as both processes hold them open (the kernel keeps an unlinked queue alive
//! until its last descriptor closes), so an interrupted bench leaves nothing behind.
//! Until then a name is listed in a process-wide registry, so that the bench can
//! still unlink it when it has to exit from a watchdog thread.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_attr_member_t, mq_close, mq_open, mq_unlink};
use nix::sys::stat::Mode;

/// Names this process created and has not unlinked yet.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Counter that makes [`unique_name`] unique within this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh queue name, `/ipcbench.<pid>.<n>`.
pub fn unique_name() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/ipcbench.{}.{n}", std::process::id())
}

/// Unlinks every queue this process created and has not unlinked yet. For exit
/// paths that skip destructors; errors are ignored (nothing more can be done).
pub fn unlink_all_live() {
    let names = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for name in names {
        let _ = mq_unlink(name.as_str());
    }
}

/// One open POSIX message queue, closed on drop; unlinked on drop too if this
/// process created it and has not unlinked it yet.
#[derive(Debug)]
pub struct RawQueue {
    /// The descriptor; `None` only while dropping.
    mqd: Option<MqdT>,
    /// The kernel name, `/ipcbench.<pid>.<n>`.
    name: String,
    /// Whether the name still has to be unlinked by us.
    linked: bool,
}

impl RawQueue {
    /// Creates a new queue (`O_CREAT | O_EXCL`, mode 0600) for reading and writing.
    pub fn create(name: &str, capacity: u32, msg_size: usize) -> anyhow::Result<Self> {
        let attr = MqAttr::new(
            0,
            mq_attr_member_t::from(capacity),
            mq_attr_member_t::try_from(msg_size).context("message size too large")?,
            0,
        );
        // Registered first, so a watchdog exit between open and push cannot leak it.
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_owned());
        let oflag = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
        match mq_open(name, oflag, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)) {
            Ok(mqd) => Ok(RawQueue {
                mqd: Some(mqd),
                name: name.to_owned(),
                linked: true,
            }),
            Err(errno) => {
                forget(name);
                Err(errno).with_context(|| {
                    format!(
                        "cannot create message queue {name} (capacity {capacity}, \
                         message size {msg_size}; see /proc/sys/fs/mqueue)"
                    )
                })
            }
        }
    }

    /// Opens an existing queue for reading and writing.
    pub fn open(name: &str) -> anyhow::Result<Self> {
        let oflag = MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
        let mqd = mq_open(name, oflag, Mode::empty(), None)
            .with_context(|| format!("cannot open message queue {name}"))?;
        Ok(RawQueue {
            mqd: Some(mqd),
            name: name.to_owned(),
            linked: false,
        })
    }

    /// The kernel name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes the name now; the queue itself lives on while descriptors are open.
    pub fn unlink(&mut self) -> anyhow::Result<()> {
        if self.linked {
            self.linked = false;
            forget(&self.name);
            mq_unlink(self.name.as_str())
                .with_context(|| format!("cannot unlink message queue {}", self.name))?;
        }
        Ok(())
    }

    /// The descriptor.
    pub fn mqd(&self) -> &MqdT {
        self.mqd
            .as_ref()
            .expect("a RawQueue holds its descriptor until dropped")
    }
}

impl Drop for RawQueue {
    fn drop(&mut self) {
        let _ = self.unlink();
        if let Some(mqd) = self.mqd.take() {
            let _ = mq_close(mqd);
        }
    }
}

/// Removes one registration of `name` from the registry of names still to unlink.
fn forget(name: &str) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = live.iter().position(|n| n == name) {
        live.swap_remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::mqueue::{mq_receive, mq_send};

    #[test]
    fn create_open_send_receive_unlink() {
        let name = unique_name();
        let mut a = RawQueue::create(&name, 10, 64).unwrap();
        let b = RawQueue::open(&name).unwrap();
        mq_send(a.mqd(), b"hello", 3).unwrap();
        let mut buf = [0u8; 64];
        let mut prio = 0;
        let n = mq_receive(b.mqd(), &mut buf, &mut prio).unwrap();
        assert_eq!((&buf[..n], prio), (&b"hello"[..], 3));
        a.unlink().unwrap();
        // Unlinked: the name is gone but both descriptors still work.
        assert!(RawQueue::open(&name).is_err());
        mq_send(b.mqd(), b"", 0).unwrap();
        assert_eq!(mq_receive(a.mqd(), &mut buf, &mut prio).unwrap(), 0);
        assert!(!LIVE.lock().unwrap().contains(&name));
    }

    #[test]
    fn drop_unlinks_a_created_queue() {
        let name = unique_name();
        drop(RawQueue::create(&name, 10, 64).unwrap());
        assert!(RawQueue::open(&name).is_err());
        assert!(RawQueue::create(&name, 10, 64).is_ok());
    }

    #[test]
    fn exclusive_create_fails_on_an_existing_name() {
        let name = unique_name();
        let _a = RawQueue::create(&name, 10, 64).unwrap();
        let err = RawQueue::create(&name, 10, 64).unwrap_err();
        assert!(format!("{err:#}").contains(&name));
        // The failed create must not forget the first one's registration.
        assert!(LIVE.lock().unwrap().contains(&name));
    }
}
