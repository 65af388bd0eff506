//! `MessageQueue` on real kernel queues made by the tests (no daemon needed).

use super::*;

use nix::mqueue::{MQ_OFlag, mq_open, mq_unlink};
use nix::sys::stat::Mode;
use protocol::{Kind, KindDetails, MqDetails};

/// A kernel queue made for one test, unlinked when dropped.
struct TestQueue(String);

impl TestQueue {
    fn new(capacity: i64, msg_size: i64) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("/ipc-client-test.{}.{n}", std::process::id());
        let attr = MqAttr::new(0, capacity, msg_size, 0);
        let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
        let mqd = mq_open(
            name.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
            Some(&attr),
        )
        .unwrap();
        drop(sys::mqd_into_owned_fd(mqd));
        TestQueue(name)
    }

    fn open(&self, access: Access) -> MessageQueue {
        let flags = match access {
            Access::Read => MQ_OFlag::O_RDONLY,
            Access::Write => MQ_OFlag::O_WRONLY,
            Access::ReadWrite => MQ_OFlag::O_RDWR,
        };
        let mqd = mq_open(self.0.as_str(), flags, Mode::empty(), None).unwrap();
        let info = ObjectInfo {
            address: format!("mq:{}", &self.0[1..]),
            kind: Kind::Mq,
            kernel_name: self.0.clone(),
            owner_uid: 0,
            owner_gid: 0,
            mode: 0o600,
            creator_pid: 0,
            created_at_ms: 0,
            lifetime: Lifetime::Session,
            opens: 0,
            details: KindDetails::Mq(MqDetails {
                capacity: 0,
                msg_size: 0,
                depth: 0,
            }),
        };
        MessageQueue::from_opened(info, access, vec![sys::mqd_into_owned_fd(mqd)]).unwrap()
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        let _ = mq_unlink(self.0.as_str());
    }
}

#[test]
fn messages_go_through_in_priority_order() {
    let tq = TestQueue::new(4, 64);
    let (tx, rx) = (tq.open(Access::Write), tq.open(Access::Read));
    assert_eq!(rx.msg_size(), 64);
    tx.send(b"low", 1).unwrap();
    tx.try_send(b"high", 9).unwrap();
    tx.send_timeout(b"mid", 5, Duration::from_secs(1)).unwrap();
    assert_eq!(rx.attributes().unwrap().depth, 3);
    assert_eq!(
        rx.recv().unwrap(),
        Message {
            data: b"high".to_vec(),
            priority: 9
        }
    );
    let mut buf = [0u8; 64];
    let (n, p) = rx.recv_into(&mut buf).unwrap();
    assert_eq!((&buf[..n], p), (&b"mid"[..], 5));
    assert_eq!(rx.try_recv().unwrap().data, b"low");
}

#[test]
fn empty_and_full_queues_would_block_or_time_out() {
    let tq = TestQueue::new(1, 16);
    let q = tq.open(Access::ReadWrite);
    assert!(matches!(q.try_recv(), Err(Error::WouldBlock)));
    assert!(matches!(
        q.recv_timeout(Duration::from_millis(10)),
        Err(Error::TimedOut)
    ));
    q.send(b"x", 0).unwrap();
    assert!(matches!(q.try_send(b"y", 0), Err(Error::WouldBlock)));
    assert!(matches!(
        q.send_timeout(b"y", 0, Duration::from_millis(10)),
        Err(Error::TimedOut)
    ));
    q.set_nonblocking(true).unwrap();
    assert!(q.attributes().unwrap().nonblocking);
    assert!(matches!(q.send(b"y", 0), Err(Error::WouldBlock)));
    assert_eq!(q.recv().unwrap().data, b"x");
    assert!(matches!(q.recv(), Err(Error::WouldBlock)));
}

#[test]
fn size_access_and_priority_errors_say_what_is_wrong() {
    let tq = TestQueue::new(2, 8);
    let q = tq.open(Access::Write);
    let e = q.send(&[0; 9], 0).unwrap_err();
    assert!(
        matches!(
            e,
            Error::MessageTooLarge {
                len: 9,
                msg_size: 8
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("message size of 8 bytes"), "{e}");
    let e = q.send(b"x", MQ_PRIO_MAX).unwrap_err();
    assert!(
        e.to_string().contains("priority 32768 is out of range"),
        "{e}"
    );
    let e = q.recv().unwrap_err();
    assert!(
        matches!(
            e,
            Error::AccessDenied {
                needed: "receiving",
                ..
            }
        ),
        "{e:?}"
    );
    let rx = tq.open(Access::Read);
    let e = rx.recv_into(&mut [0; 4]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BufferTooSmall {
                len: 4,
                msg_size: 8
            }
        ),
        "{e:?}"
    );
    assert!(matches!(
        rx.send(b"x", 0),
        Err(Error::AccessDenied {
            needed: "sending",
            ..
        })
    ));
}

#[test]
fn the_descriptor_is_polled_like_any_other() {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let tq = TestQueue::new(2, 8);
    let q = tq.open(Access::ReadWrite);
    let mut pfd = [PollFd::new(q.as_fd(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut pfd, PollTimeout::ZERO).unwrap(), 0);
    q.send(b"x", 0).unwrap();
    assert_eq!(poll(&mut pfd, PollTimeout::ZERO).unwrap(), 1);
}

#[test]
fn bare_names_get_the_mq_kind() {
    assert_eq!(mq_address("jobs"), "mq:jobs");
    assert_eq!(mq_address("mq:jobs"), "mq:jobs");
}

#[test]
fn options_become_a_create_spec() {
    let spec = MqOptions::new()
        .capacity(4)
        .msg_size(64)
        .mode(0o640)
        .session()
        .to_spec();
    assert_eq!(spec.mode, Some(0o640));
    assert_eq!(spec.lifetime, Lifetime::Session);
    assert!(!spec.adopt);
    assert_eq!(
        spec.params,
        KindParams::Mq(MqParams {
            capacity: Some(4),
            msg_size: Some(64)
        })
    );
}

#[test]
fn deadlines_add_and_saturate() {
    let d = add_timeout(TimeSpec::new(10, 900_000_000), Duration::from_millis(200));
    assert_eq!((d.tv_sec(), d.tv_nsec()), (11, 100_000_000));
    let far = add_timeout(TimeSpec::new(0, 0), Duration::MAX);
    assert_eq!(far.tv_sec(), i64::from(i32::MAX));
    assert_eq!(timespec_at(UNIX_EPOCH + Duration::from_secs(5)).tv_sec(), 5);
    assert_eq!(timespec_at(UNIX_EPOCH - Duration::from_secs(5)).tv_sec(), 0);
}
