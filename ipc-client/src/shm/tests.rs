//! `SharedMemory` on real POSIX segments made by the tests (no daemon needed).

use super::*;

use std::sync::atomic::Ordering;

use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;
use protocol::{ErrorCode, Kind, KindDetails, ShmDetails};

/// A POSIX segment made for one test, unlinked when dropped.
struct TestSegment(String);

impl TestSegment {
    fn new(size: i64) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("/ipc-client-test.shm.{}.{n}", std::process::id());
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let fd = shm_open(name.as_str(), flags, Mode::from_bits_truncate(0o600)).unwrap();
        nix::unistd::ftruncate(&fd, size).unwrap();
        TestSegment(name)
    }

    fn fd(&self, writable: bool) -> OwnedFd {
        let flags = if writable {
            OFlag::O_RDWR
        } else {
            OFlag::O_RDONLY
        };
        shm_open(self.0.as_str(), flags, Mode::empty()).unwrap()
    }

    fn map(&self, writable: bool) -> SharedMemory {
        SharedMemory::from_fd(self.fd(writable), writable).unwrap()
    }

    fn grow(&self, size: i64) {
        nix::unistd::ftruncate(self.fd(true), size).unwrap();
    }
}

impl Drop for TestSegment {
    fn drop(&mut self) {
        let _ = shm_unlink(self.0.as_str());
    }
}

fn info(address: &str) -> ObjectInfo {
    ObjectInfo {
        address: address.into(),
        kind: Kind::Shm,
        kernel_name: "/ipcd.t".into(),
        owner_uid: 0,
        owner_gid: 0,
        mode: 0o600,
        creator_pid: 0,
        created_at_ms: 0,
        lifetime: Lifetime::Session,
        opens: 0,
        details: KindDetails::Shm(ShmDetails {
            size: 4096,
            mapped_by: None,
        }),
    }
}

#[test]
fn two_mappings_share_bytes() {
    let seg = TestSegment::new(4096);
    let rw = seg.map(true);
    let ro = seg.map(false);
    assert_eq!((rw.len(), ro.len()), (4096, 4096));
    assert!(rw.writable() && !ro.writable());
    rw.write_at(100, b"hello").unwrap();
    assert_eq!(ro.read_vec(100, 5).unwrap(), b"hello");
    let mut buf = [0xAA; 3];
    ro.read_at(4093, &mut buf).unwrap();
    assert_eq!(buf, [0, 0, 0], "a new segment reads as zero");
    // The end is reachable, and so is nothing at the end.
    rw.write_at(4095, b"z").unwrap();
    assert_eq!(ro.read_vec(4095, 1).unwrap(), b"z");
    assert_eq!(ro.read_vec(4096, 0).unwrap(), b"");
}

#[test]
fn an_atomic_counter_from_two_mappings_ends_exact() {
    let seg = TestSegment::new(4096);
    let (a, b) = (seg.map(true), seg.map(true));
    std::thread::scope(|s| {
        for shm in [&a, &b] {
            s.spawn(move || {
                let counter = shm.atomic_u64(64).unwrap();
                for _ in 0..100_000 {
                    counter.fetch_add(1, Ordering::AcqRel);
                }
            });
        }
    });
    assert_eq!(a.atomic_u64(64).unwrap().load(Ordering::Acquire), 200_000);
    a.atomic_u32(128).unwrap().store(7, Ordering::Release);
    assert_eq!(b.read_vec(128, 4).unwrap(), 7u32.to_ne_bytes());
}

#[test]
fn ranges_past_the_end_name_offset_length_and_size() {
    let seg = TestSegment::new(4096);
    let shm = seg.map(true);
    let e = shm.read_at(4090, &mut [0; 8]).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::OutOfBounds {
                offset: 4090,
                len: 8,
                size: 4096,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "8 bytes at offset 4090 run past the end of {} (4096 bytes mapped)",
            shm.address()
        )
    );
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument));
    assert!(matches!(
        shm.write_at(4096, b"x"),
        Err(Error::OutOfBounds { offset: 4096, .. })
    ));
    // Checked before anything is allocated or copied.
    assert!(matches!(
        shm.read_vec(1, usize::MAX),
        Err(Error::OutOfBounds { .. })
    ));
    assert!(matches!(
        shm.read_at(usize::MAX, &mut [0; 1]),
        Err(Error::OutOfBounds { .. })
    ));
    assert!(matches!(
        shm.atomic_u64(4096),
        Err(Error::OutOfBounds { .. })
    ));
    // A write that does not fit writes nothing.
    assert!(shm.write_at(4094, b"abc").is_err());
    assert_eq!(shm.read_vec(4094, 2).unwrap(), [0, 0]);
}

#[test]
fn atomics_need_alignment_and_a_writable_mapping() {
    let seg = TestSegment::new(4096);
    let rw = seg.map(true);
    let e = rw.atomic_u64(4).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Misaligned {
                offset: 4,
                align: 8,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("offset 4"), "{e}");
    assert!(rw.atomic_u32(4).is_ok());
    assert!(matches!(rw.atomic_u32(2), Err(Error::Misaligned { .. })));

    let ro = seg.map(false);
    for e in [
        ro.write_at(0, b"x").unwrap_err(),
        ro.atomic_u64(0).unwrap_err(),
        ro.atomic_u32(0).unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                Error::AccessDenied {
                    needed: "writing",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.code(), Some(ErrorCode::PermissionDenied));
    }
}

#[test]
fn refresh_maps_what_another_process_grew() {
    let seg = TestSegment::new(4096);
    let mut shm = seg.map(true);
    shm.write_at(4000, b"kept").unwrap();
    shm.write_at(4095, b"!").unwrap();
    seg.grow(3 * 4096);
    assert_eq!(shm.len(), 4096, "a mapping keeps its size until refreshed");
    assert!(shm.read_at(4096, &mut [0; 1]).is_err());
    assert_eq!(shm.refresh().unwrap(), 3 * 4096);
    assert_eq!(shm.len(), 3 * 4096);
    assert_eq!(shm.read_vec(4000, 4).unwrap(), b"kept");
    assert_eq!(shm.read_vec(4095, 1).unwrap(), b"!");
    assert!(
        shm.read_vec(4096, 2 * 4096)
            .unwrap()
            .iter()
            .all(|&b| b == 0)
    );
    shm.write_at(3 * 4096 - 1, b"e").unwrap();
    // Unchanged: nothing to do.
    assert_eq!(shm.refresh().unwrap(), 3 * 4096);
    assert_eq!(shm.read_vec(3 * 4096 - 1, 1).unwrap(), b"e");
}

#[test]
fn an_empty_segment_maps_nothing_until_it_grows() {
    let seg = TestSegment::new(0);
    let mut shm = seg.map(true);
    assert!(shm.is_empty());
    shm.read_at(0, &mut []).unwrap();
    assert!(matches!(
        shm.read_at(0, &mut [0; 1]),
        Err(Error::OutOfBounds { size: 0, .. })
    ));
    assert!(matches!(
        shm.atomic_u64(0),
        Err(Error::OutOfBounds { size: 0, .. })
    ));
    seg.grow(64);
    assert_eq!(shm.refresh().unwrap(), 64);
    shm.write_at(0, b"now").unwrap();
    assert_eq!(seg.map(false).read_vec(0, 3).unwrap(), b"now");
}

#[test]
fn opened_answers_bring_exactly_one_descriptor() {
    let seg = TestSegment::new(4096);
    let shm = SharedMemory::from_opened(info("shm:t"), Access::Read, vec![seg.fd(false)]).unwrap();
    assert_eq!(shm.address(), "shm:t");
    assert!(!shm.writable());
    assert_eq!(shm.info().unwrap().kind, Kind::Shm);
    for fds in [vec![], vec![seg.fd(true), seg.fd(true)]] {
        let e = SharedMemory::from_opened(info("shm:t"), Access::ReadWrite, fds).unwrap_err();
        assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    }
    // A write mapping of a read-only descriptor is the kernel's refusal.
    let e = SharedMemory::from_fd(seg.fd(false), true).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Os {
                op: "mmap",
                errno: Errno::EACCES,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn options_describe_the_creation() {
    let spec = ShmOptions::new()
        .size(1 << 20)
        .mode(0o640)
        .session()
        .to_spec();
    assert_eq!(
        spec.params,
        KindParams::Shm(ShmParams {
            size: Some(1 << 20)
        })
    );
    assert_eq!(
        (spec.mode, spec.lifetime, spec.adopt),
        (Some(0o640), Lifetime::Session, false)
    );
    let adopt = ShmOptions::new().adopt().to_spec();
    assert_eq!(adopt.params, KindParams::Shm(ShmParams { size: None }));
    assert!(adopt.adopt);
    assert_eq!(shm_address("x"), "shm:x");
}
