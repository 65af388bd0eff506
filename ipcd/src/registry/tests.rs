//! Unit tests for the registry, driven directly (no socket, no session): each
//! test gets its own state and runtime directories and its own kernel-name
//! prefix, creates real pipes, FIFOs and small POSIX queues, and removes every
//! kernel object it made. Callers are plain [`Peer`] values: the registry only
//! compares their numbers, so no uid switching is needed.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, mq_close, mq_open, mq_receive, mq_send, mq_unlink};
use nix::sys::stat::Mode;
use protocol::{
    Access, Address, CreateSpec, FifoParams, Kind, KindDetails, KindOp, KindParams, KindReply,
    Lifetime, Limits, MqOp, MqParams, MqReply, Name, ObjectInfo, PipeOp, PipeParams, PipeReply,
    Readiness,
};

use super::{OpResult, Registry};
use crate::budget::{Quota, Shares};
use crate::changes::Store;
use crate::config::{DEFAULT_LIMITS, Tunables};
use crate::error::RequestError;
use crate::kinds::{self, Namespace};
use crate::peer::{Peer, SessionId};
use crate::persist;

const OWNER: Peer = Peer {
    pid: 10,
    uid: 1000,
    gid: 100,
};
/// Another user in the owner's group.
const GROUP: Peer = Peer {
    pid: 11,
    uid: 1001,
    gid: 100,
};
const OTHER: Peer = Peer {
    pid: 12,
    uid: 1002,
    gid: 200,
};
const ROOT: Peer = Peer {
    pid: 13,
    uid: 0,
    gid: 0,
};

const SESSION: SessionId = 1;

/// An unprivileged caller's quota with room for everything the tests make.
const QUOTA: Quota = Quota {
    privileged: false,
    shares: Shares {
        fds: 1024,
        mq_bytes: 64 << 20,
        shm_bytes: 64 << 20,
        waits: 256,
        subscriptions: 256,
        queue_bytes: 64 << 20,
    },
    wait_fds: 0,
    mq_budget: 256 << 20,
    shm_budget: 1 << 30,
    queue_budget: 1 << 30,
};

/// Fails unless `$result` is an `Err` matching `$pattern`.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

// ---------------------------------------------------------------- fixture

/// A registry in a fresh temporary directory with a kernel-name prefix of its
/// own. Dropping it unlinks every queue it was told about, then removes the
/// directory (and the FIFOs in it).
struct Fixture {
    store: Store,
    ns: Namespace,
    state_dir: PathBuf,
    queues: Vec<String>,
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let dir = TempDir::new(&format!("ipcd-registry-test-{pid}-{n}"));
        let state_dir = dir.0.join("state");
        std::fs::create_dir(&state_dir).expect("state dir");
        let ns = Namespace {
            prefix: format!("ipcdut{pid}_{n}."),
            runtime_dir: dir.0.join("run"),
            state_dir: state_dir.clone(),
        };
        Fixture {
            store: Store::new(Registry::empty(state_dir.clone(), ns.clone())),
            ns,
            state_dir,
            queues: Vec::new(),
            dir,
        }
    }

    /// The registry, locked.
    fn reg(&self) -> MutexGuard<'_, Registry> {
        self.store.registry()
    }

    /// Creates in session [`SESSION`] under the default limits and [`QUOTA`].
    fn create(
        &mut self,
        address: &str,
        spec: CreateSpec,
        peer: &Peer,
    ) -> Result<ObjectInfo, RequestError> {
        self.create_in(address, spec, peer, SESSION, &Tunables::default(), &QUOTA)
    }

    fn create_in(
        &mut self,
        address: &str,
        spec: CreateSpec,
        peer: &Peer,
        session: SessionId,
        tunables: &Tunables,
        quota: &Quota,
    ) -> Result<ObjectInfo, RequestError> {
        let address = addr(address);
        if address.kind == Kind::Mq {
            let name = self.kernel_name(&address.to_string());
            self.guard_queue(&name);
        }
        self.store
            .create(address, &spec, peer, session, tunables, quota)
    }

    /// The kernel name or path the namespace gives `address`.
    fn kernel_name(&self, address: &str) -> String {
        let address = addr(address);
        let module = kinds::module(address.kind);
        module
            .kernel_name(&self.ns, &address.name)
            .expect("a kind with kernel names")
    }

    /// Unlink queue `name` when the fixture is dropped.
    fn guard_queue(&mut self, name: &str) {
        self.queues.push(name.to_owned());
    }

    /// Makes queue `name` outside the registry; unlinked when the fixture drops.
    fn make_queue(&mut self, name: &str) {
        self.guard_queue(name);
        let attr = MqAttr::new(0, 2, 64, 0);
        let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
        let mqd = mq_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)).unwrap();
        mq_close(mqd).unwrap();
    }

    /// What a restart does: forget everything in memory (closing the daemon's
    /// descriptors), then load the state file.
    fn reload(&mut self) {
        let empty = Store::new(Registry::empty(self.state_dir.clone(), self.ns.clone()));
        drop(std::mem::replace(&mut self.store, empty));
        self.store = Store::load(self.state_dir.clone(), self.ns.clone()).expect("load");
    }

    /// Addresses in the state file, in order.
    fn saved(&self) -> Vec<String> {
        let file = persist::load(&self.state_dir).expect("readable state");
        let objects = file.map(|f| f.objects).unwrap_or_default();
        objects.into_iter().map(|o| o.address).collect()
    }

    /// Addresses of the records the loader set aside (`registry.rejected.json`).
    fn set_aside(&self) -> Vec<String> {
        let path = self.state_dir.join(persist::REJECTED_FILE);
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        let all: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
        let address = |v: &serde_json::Value| v["record"]["address"].as_str().map(str::to_owned);
        all.iter()
            .map(|v| address(v).expect("an address"))
            .collect()
    }

    /// Writes a state file with `objects` (JSON records, as `persist` writes them).
    fn write_state(&self, objects: Vec<serde_json::Value>) {
        let file = serde_json::json!({
            "format": 2,
            "prefix": self.ns.prefix,
            "objects": objects,
        });
        let text = serde_json::to_string_pretty(&file).expect("json");
        std::fs::write(persist::state_path(&self.state_dir), text).expect("state file");
    }

    fn delete_all(&self, addresses: &[&str]) {
        for a in addresses {
            self.store.delete(&addr(a), &ROOT).expect("delete");
        }
        assert!(self.reg().is_empty());
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for name in &self.queues {
            let _ = mq_unlink(name.as_str());
        }
        for entry in std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&self.ns.prefix)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A directory removed (with its contents) when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- helpers

fn addr(s: &str) -> Address {
    Address::parse(s).expect("valid address")
}

/// A persistent object with mode 0600 (the defaults).
fn spec(params: KindParams) -> CreateSpec {
    CreateSpec {
        mode: None,
        lifetime: Lifetime::Persistent,
        adopt: false,
        params,
    }
}

fn with_mode(mode: u32, params: KindParams) -> CreateSpec {
    CreateSpec {
        mode: Some(mode),
        ..spec(params)
    }
}

fn session(params: KindParams) -> CreateSpec {
    CreateSpec {
        lifetime: Lifetime::Session,
        ..spec(params)
    }
}

fn pipe() -> KindParams {
    KindParams::Pipe(PipeParams { capacity: None })
}

fn fifo() -> KindParams {
    KindParams::Fifo(FifoParams { buffered: false })
}

fn buffered_fifo() -> KindParams {
    KindParams::Fifo(FifoParams { buffered: true })
}

/// A small queue: 2 messages of 64 bytes.
fn mq() -> KindParams {
    KindParams::Mq(MqParams {
        capacity: Some(2),
        msg_size: Some(64),
    })
}

/// Makes a FIFO at `path` (and its directory), as another program would.
fn make_fifo(path: &str) {
    std::fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
}

fn is_fifo(path: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Whether the kernel queue exists (`mq_open` succeeds; ENOENT means gone).
fn queue_exists(name: &str) -> bool {
    match mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None) {
        Ok(mqd) => {
            let _ = mq_close(mqd);
            true
        }
        Err(Errno::ENOENT) => false,
        Err(e) => panic!("mq_open {name}: {e}"),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Addresses `peer` sees in a full listing.
fn listed(reg: &Registry, peer: &Peer) -> Vec<String> {
    let (page, more) = reg.list_page(None, peer, |_| true, |_| true);
    assert!(!more);
    page.into_iter().map(|i| i.address).collect()
}

/// One page of at most `size` objects after `after`, as the owner sees them.
fn page(reg: &Registry, after: Option<&str>, size: usize) -> (Vec<String>, bool) {
    let after = after.map(addr);
    let mut taken = 0;
    let (page, more) = reg.list_page(
        after.as_ref(),
        &OWNER,
        |_| true,
        |_| {
            taken += 1;
            taken <= size
        },
    );
    (page.into_iter().map(|i| i.address).collect(), more)
}

fn fifo_details(info: &ObjectInfo) -> &protocol::FifoDetails {
    let KindDetails::Fifo(d) = &info.details else {
        panic!("not a FIFO: {info:?}");
    };
    d
}

// ---------------------------------------------------------------- create

#[test]
fn creates_each_kind_owned_by_the_caller_with_its_mode() {
    let mut fx = Fixture::new();
    let q = fx.create("mq:q", with_mode(0o640, mq()), &OWNER).unwrap();
    let f = fx
        .create("fifo:f", with_mode(0o620, fifo()), &OWNER)
        .unwrap();
    let p = fx.create("pipe:p", spec(pipe()), &OWNER).unwrap();

    assert_eq!((q.owner_uid, q.owner_gid, q.mode), (1000, 100, 0o640));
    assert_eq!((q.creator_pid, q.lifetime), (10, Lifetime::Persistent));
    assert_eq!(q.kernel_name, format!("/{}q", fx.ns.prefix));
    let KindDetails::Mq(details) = q.details else {
        panic!("{q:?}")
    };
    assert_eq!(
        (details.capacity, details.msg_size, details.depth),
        (2, 64, 0)
    );
    assert!(queue_exists(&q.kernel_name));

    let path = fx.kernel_name("fifo:f");
    assert_eq!(f.kernel_name, path);
    assert!(is_fifo(&path));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o620);
    if is_root() {
        assert_eq!((meta.uid(), meta.gid()), (1000, 100));
    }
    assert!(!fifo_details(&f).buffered);

    assert_eq!((p.mode, p.kernel_name.as_str()), (0o600, ""));
    assert_eq!(
        fx.saved(),
        ["mq:q", "pipe:p", "fifo:f"],
        "by kind, then name"
    );
    fx.delete_all(&["mq:q", "fifo:f", "pipe:p"]);
}

#[test]
fn a_taken_address_is_refused_and_the_first_object_kept() {
    let mut fx = Fixture::new();
    fx.create("pipe:p", spec(pipe()), &OWNER).unwrap();
    fx.create("fifo:f", spec(fifo()), &OWNER).unwrap();
    assert_err!(
        fx.create("pipe:p", spec(pipe()), &OTHER),
        RequestError::AlreadyExists(_)
    );
    assert_err!(
        fx.create("fifo:f", spec(fifo()), &OWNER),
        RequestError::AlreadyExists(_)
    );
    assert_eq!(
        fx.reg().stat(&addr("pipe:p"), &ROOT).unwrap().owner_uid,
        1000
    );
    assert!(
        is_fifo(&fx.kernel_name("fifo:f")),
        "the first FIFO survives"
    );
    fx.delete_all(&["pipe:p", "fifo:f"]);
}

#[test]
fn an_unregistered_kernel_object_is_not_overwritten() {
    let mut fx = Fixture::new();
    let path = fx.kernel_name("fifo:f");
    make_fifo(&path);
    assert_err!(
        fx.create("fifo:f", spec(fifo()), &OWNER),
        RequestError::KernelNameTaken(_)
    );
    assert!(fx.reg().is_empty());
    assert!(is_fifo(&path), "the existing FIFO is left alone");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_mode_above_0777_is_refused() {
    let mut fx = Fixture::new();
    for mode in [0o1777, 0o4755, 0o10000] {
        assert_err!(
            fx.create("fifo:f", with_mode(mode, fifo()), &OWNER),
            RequestError::InvalidArgument(_)
        );
        assert_err!(
            fx.create("mq:q", with_mode(mode, mq()), &OWNER),
            RequestError::InvalidArgument(_)
        );
    }
    assert!(fx.reg().is_empty());
    assert!(!is_fifo(&fx.kernel_name("fifo:f")));
    assert!(!queue_exists(&fx.kernel_name("mq:q")));
}

#[test]
fn each_uid_may_own_at_most_the_limit() {
    let mut fx = Fixture::new();
    let tunables = Tunables {
        limits: Limits {
            max_objects_per_uid: 2,
            ..DEFAULT_LIMITS
        },
        ..Tunables::default()
    };
    let create = |fx: &mut Fixture, address: &str, peer: &Peer| {
        fx.create_in(address, spec(pipe()), peer, SESSION, &tunables, &QUOTA)
    };
    create(&mut fx, "pipe:a", &OWNER).unwrap();
    create(&mut fx, "pipe:b", &OWNER).unwrap();
    assert_err!(
        create(&mut fx, "pipe:c", &OWNER),
        RequestError::LimitExceeded(_)
    );
    create(&mut fx, "pipe:d", &OTHER).expect("another uid has its own count");
    fx.store.delete(&addr("pipe:a"), &OWNER).unwrap();
    create(&mut fx, "pipe:c", &OWNER).expect("room again after a delete");
    fx.delete_all(&["pipe:b", "pipe:c", "pipe:d"]);
}

#[test]
fn a_queue_over_the_callers_byte_share_is_refused_before_it_is_made() {
    let mut fx = Fixture::new();
    let tight = Quota {
        shares: Shares {
            mq_bytes: 1,
            ..QUOTA.shares
        },
        ..QUOTA
    };
    assert_err!(
        fx.create_in(
            "mq:q",
            spec(mq()),
            &OWNER,
            SESSION,
            &Tunables::default(),
            &tight
        ),
        RequestError::LimitExceeded(_)
    );
    assert!(!queue_exists(&fx.kernel_name("mq:q")));
    let privileged = Quota {
        privileged: true,
        ..tight
    };
    fx.create_in(
        "mq:q",
        spec(mq()),
        &ROOT,
        SESSION,
        &Tunables::default(),
        &privileged,
    )
    .expect("root has no per-uid share");
    fx.delete_all(&["mq:q"]);
}

#[test]
fn parameters_of_another_kind_are_refused() {
    let mut fx = Fixture::new();
    assert_err!(
        fx.create("mq:q", spec(pipe()), &OWNER),
        RequestError::WrongKind(_)
    );
    assert_err!(
        fx.create("fifo:f", spec(mq()), &OWNER),
        RequestError::WrongKind(_)
    );
    assert_err!(
        fx.create("pipe:p", spec(fifo()), &OWNER),
        RequestError::WrongKind(_)
    );
    assert!(fx.reg().is_empty());
    assert!(!queue_exists(&fx.kernel_name("mq:q")));
    assert!(!is_fifo(&fx.kernel_name("fifo:f")));
}

#[test]
fn adopting_a_fifo_of_another_uid_is_refused() {
    if !is_root() {
        eprintln!("skipped: chown to another uid needs root");
        return;
    }
    let mut fx = Fixture::new();
    let path = fx.kernel_name("fifo:f");
    make_fifo(&path);
    let stranger = nix::unistd::Uid::from_raw(4242);
    nix::unistd::chown(path.as_str(), Some(stranger), None).unwrap();
    let adopt = CreateSpec {
        adopt: true,
        ..spec(fifo())
    };

    assert_err!(
        fx.create("fifo:f", adopt.clone(), &OWNER),
        RequestError::PermissionDenied(_)
    );
    assert!(fx.reg().is_empty());
    assert!(is_fifo(&path), "a refused adopt leaves the FIFO alone");

    let its_owner = Peer { uid: 4242, ..OWNER };
    let info = fx.create("fifo:f", adopt, &its_owner).unwrap();
    assert_eq!(info.owner_uid, 4242);
    fx.store.delete(&addr("fifo:f"), &its_owner).unwrap();
    assert!(!is_fifo(&path));
}

// ---------------------------------------------------------------- open, stat, list

#[test]
fn open_checks_the_owner_group_and_other_bits() {
    let mut fx = Fixture::new();
    fx.create("pipe:p", with_mode(0o640, pipe()), &OWNER)
        .unwrap();
    let p = addr("pipe:p");
    let open = |access: Access, peer: &Peer| {
        let (_, fds) = fx.reg().open(&p, access, peer)?;
        Ok::<_, RequestError>(fds.len())
    };

    assert_eq!(open(Access::Read, &OWNER).unwrap(), 1);
    assert_eq!(open(Access::Write, &OWNER).unwrap(), 1);
    assert_eq!(open(Access::Read, &GROUP).unwrap(), 1);
    assert_err!(
        open(Access::Write, &GROUP),
        RequestError::PermissionDenied(_)
    );
    assert_err!(
        open(Access::Read, &OTHER),
        RequestError::PermissionDenied(_)
    );
    assert_err!(
        open(Access::Write, &OTHER),
        RequestError::PermissionDenied(_)
    );
    assert_eq!(open(Access::Write, &ROOT).unwrap(), 1);
    assert_eq!(fx.reg().stat(&p, &OWNER).unwrap().opens, 4);
    assert_err!(
        fx.reg().open(&addr("pipe:nothing"), Access::Read, &ROOT),
        RequestError::NotFound(_)
    );
    fx.delete_all(&["pipe:p"]);
}

#[test]
fn bits_of_another_class_do_not_help_a_queue_opener() {
    let mut fx = Fixture::new();
    // Other may write, the group may not, the owner may only read.
    fx.create("mq:q", with_mode(0o402, mq()), &OWNER).unwrap();
    let q = addr("mq:q");
    let open = |access: Access, peer: &Peer| {
        let (_, fds) = fx.reg().open(&q, access, peer)?;
        Ok::<_, RequestError>(fds.len())
    };

    assert_eq!(open(Access::Write, &OTHER).unwrap(), 1);
    assert_err!(
        open(Access::ReadWrite, &OTHER),
        RequestError::PermissionDenied(_)
    );
    assert_err!(
        open(Access::Write, &GROUP),
        RequestError::PermissionDenied(_)
    );
    assert_err!(
        open(Access::Write, &OWNER),
        RequestError::PermissionDenied(_)
    );
    assert_eq!(open(Access::Read, &OWNER).unwrap(), 1);
    assert_eq!(open(Access::ReadWrite, &ROOT).unwrap(), 1);
    fx.delete_all(&["mq:q"]);
}

#[test]
fn stat_and_list_show_only_what_the_caller_may_use() {
    let mut fx = Fixture::new();
    fx.create("pipe:private", with_mode(0o600, pipe()), &OWNER)
        .unwrap();
    fx.create("pipe:group", with_mode(0o640, pipe()), &OWNER)
        .unwrap();
    fx.create("fifo:public", with_mode(0o604, fifo()), &OWNER)
        .unwrap();

    let stat = |a: &str, peer: &Peer| fx.reg().stat(&addr(a), peer);
    assert_err!(
        stat("pipe:private", &OTHER),
        RequestError::PermissionDenied(_)
    );
    assert_err!(
        stat("pipe:private", &GROUP),
        RequestError::PermissionDenied(_)
    );
    assert_eq!(stat("pipe:group", &GROUP).unwrap().mode, 0o640);
    assert_eq!(stat("fifo:public", &OTHER).unwrap().kind, Kind::Fifo);
    assert_err!(
        stat("fifo:public", &GROUP),
        RequestError::PermissionDenied(_)
    );
    assert_eq!(stat("pipe:private", &ROOT).unwrap().owner_uid, 1000);
    assert_err!(stat("pipe:nothing", &OWNER), RequestError::NotFound(_));

    assert_eq!(listed(&fx.reg(), &OTHER), ["fifo:public"]);
    // 0604: the group triple (0) decides for a group member, not the other bits.
    assert_eq!(listed(&fx.reg(), &GROUP), ["pipe:group"]);
    let all = ["pipe:group", "pipe:private", "fifo:public"];
    assert_eq!(listed(&fx.reg(), &OWNER), all);
    assert_eq!(listed(&fx.reg(), &ROOT), all);
    let pipes_only = |a: &Address| a.kind == Kind::Pipe;
    let (pipes, _) = fx.reg().list_page(None, &ROOT, pipes_only, |_| true);
    assert_eq!(pipes.len(), 2);
    fx.delete_all(&all);
}

#[test]
fn list_page_pages_through_25_pipes_by_10() {
    let mut fx = Fixture::new();
    let names: Vec<String> = (0..25).map(|i| format!("pipe:p{i:02}")).collect();
    for name in &names {
        fx.create(name, spec(pipe()), &OWNER).unwrap();
    }
    let (first, more) = page(&fx.reg(), None, 10);
    assert_eq!((first.len(), more), (10, true));
    let (second, more) = page(&fx.reg(), first.last().map(String::as_str), 10);
    assert_eq!((second.len(), more), (10, true));
    let (third, more) = page(&fx.reg(), second.last().map(String::as_str), 10);
    assert_eq!((third.len(), more), (5, false));
    assert_eq!(
        [first, second, third].concat(),
        names,
        "in order, each once"
    );

    let (none, more) = fx.reg().list_page(None, &OTHER, |_| true, |_| true);
    assert!(
        none.is_empty() && !more,
        "mode 0600 pipes are not listed to others"
    );
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    fx.delete_all(&all);
}

// ---------------------------------------------------------------- delete, sessions

#[test]
fn delete_is_for_the_owner_or_root_and_removes_the_kernel_object() {
    let mut fx = Fixture::new();
    fx.create("fifo:f", with_mode(0o666, fifo()), &OWNER)
        .unwrap();
    fx.create("mq:q", with_mode(0o666, mq()), &OWNER).unwrap();
    fx.create("pipe:p", with_mode(0o000, pipe()), &OWNER)
        .unwrap();
    let (fifo_path, queue) = (fx.kernel_name("fifo:f"), fx.kernel_name("mq:q"));

    for peer in [&GROUP, &OTHER] {
        for a in ["fifo:f", "mq:q", "pipe:p"] {
            assert_err!(
                fx.store.delete(&addr(a), peer),
                RequestError::PermissionDenied(_)
            );
        }
    }
    assert_eq!(fx.reg().len(), 3);

    fx.store.delete(&addr("fifo:f"), &OWNER).unwrap();
    assert!(!Path::new(&fifo_path).exists(), "the FIFO file is removed");
    assert_err!(
        fx.reg().stat(&addr("fifo:f"), &OWNER),
        RequestError::NotFound(_)
    );
    assert_err!(
        fx.store.delete(&addr("fifo:f"), &OWNER),
        RequestError::NotFound(_)
    );

    fx.store.delete(&addr("mq:q"), &ROOT).unwrap();
    assert!(!queue_exists(&queue), "mq_open fails with ENOENT");

    fx.store
        .delete(&addr("pipe:p"), &OWNER)
        .expect("mode bits do not bind the owner");
    assert!(fx.reg().is_empty());
    assert!(fx.saved().is_empty());
}

#[test]
fn end_session_removes_only_that_sessions_session_objects() {
    let mut fx = Fixture::new();
    let create = |fx: &mut Fixture, a: &str, spec: CreateSpec, id: SessionId| {
        fx.create_in(a, spec, &OWNER, id, &Tunables::default(), &QUOTA)
            .unwrap()
    };
    let s1 = create(&mut fx, "fifo:s1", session(fifo()), 1);
    assert_eq!(s1.lifetime, Lifetime::Session);
    create(&mut fx, "mq:s1", session(mq()), 1);
    create(&mut fx, "pipe:kept", spec(pipe()), 1);
    create(&mut fx, "fifo:s2", session(fifo()), 2);

    assert_eq!(fx.store.end_session(1), 2);
    assert!(!Path::new(&fx.kernel_name("fifo:s1")).exists());
    assert!(!queue_exists(&fx.kernel_name("mq:s1")));
    assert_eq!(listed(&fx.reg(), &OWNER), ["pipe:kept", "fifo:s2"]);
    assert!(is_fifo(&fx.kernel_name("fifo:s2")));
    assert_eq!(fx.saved(), ["pipe:kept", "fifo:s2"]);
    assert_eq!(fx.store.end_session(1), 0);

    assert_eq!(fx.store.end_session(2), 1);
    assert!(!Path::new(&fx.kernel_name("fifo:s2")).exists());
    fx.delete_all(&["pipe:kept"]);
}

// ---------------------------------------------------------------- save and load

#[test]
fn load_readopts_persistent_objects_and_removes_old_session_ones() {
    let mut fx = Fixture::new();
    let q = fx.create("mq:q", with_mode(0o640, mq()), &OWNER).unwrap();
    fx.create("fifo:buf", with_mode(0o660, buffered_fifo()), &GROUP)
        .unwrap();
    fx.create("fifo:plain", spec(fifo()), &OWNER).unwrap();
    fx.create("pipe:p", spec(pipe()), &OWNER).unwrap();
    fx.create("fifo:sess", session(fifo()), &OWNER).unwrap();
    fx.create("mq:sess", session(mq()), &OWNER).unwrap();
    fx.reg().open(&addr("mq:q"), Access::Read, &OWNER).unwrap();
    fx.reg().save().unwrap();

    fx.reload();

    let all = ["mq:q", "fifo:buf", "fifo:plain"];
    assert_eq!(
        listed(&fx.reg(), &ROOT),
        all,
        "the pipe died with the old run"
    );
    assert!(!Path::new(&fx.kernel_name("fifo:sess")).exists());
    assert!(!queue_exists(&fx.kernel_name("mq:sess")));
    assert_eq!(fx.saved(), all);
    assert!(fx.set_aside().is_empty());

    let q2 = fx.reg().stat(&addr("mq:q"), &ROOT).unwrap();
    assert_eq!(
        q2,
        ObjectInfo { opens: 0, ..q },
        "same owner, mode, times, details"
    );
    let buf = fx.reg().stat(&addr("fifo:buf"), &ROOT).unwrap();
    assert_eq!((buf.owner_uid, buf.owner_gid, buf.mode), (1001, 100, 0o660));
    assert!(
        fifo_details(&buf).buffered,
        "a buffered FIFO stays buffered"
    );
    let plain = fx.reg().stat(&addr("fifo:plain"), &ROOT).unwrap();
    assert!(!fifo_details(&plain).buffered);
    assert_eq!(plain.lifetime, Lifetime::Persistent);

    let (_, fds) = fx.reg().open(&addr("mq:q"), Access::Write, &OWNER).unwrap();
    assert_eq!(fds.len(), 1, "a re-adopted queue opens");
    fx.delete_all(&all);
}

/// A record as `persist` writes it, owned by 1000/100, with no kind state.
fn record(address: &str, kernel_name: &str, mode: u32, session: bool) -> serde_json::Value {
    serde_json::json!({
        "address": address,
        "kernel_name": kernel_name,
        "owner_uid": 1000,
        "owner_gid": 100,
        "mode": mode,
        "creator_pid": 1,
        "created_at_ms": 0,
        "session": session,
        "state": null,
    })
}

#[test]
fn load_ignores_records_naming_kernel_objects_outside_the_namespace() {
    let mut fx = Fixture::new();
    // Each bad record names an object outside the namespace, while the
    // namespace has an object for its address too: neither may be adopted
    // or, for session records, unlinked.
    let victim = fx.dir.0.join("elsewhere/victim").display().to_string();
    make_fifo(&victim);
    let foreign_queue = format!("/{}victim", fx.ns.prefix.replace('.', "x."));
    fx.make_queue(&foreign_queue);
    let our_fifos = [fx.kernel_name("fifo:sess"), fx.kernel_name("fifo:kept")];
    our_fifos.iter().for_each(|path| make_fifo(path));
    let our_queue = fx.kernel_name("mq:sess");
    fx.make_queue(&our_queue);
    let good = fx.kernel_name("fifo:good");
    make_fifo(&good);
    fx.write_state(vec![
        record("fifo:sess", &victim, 0o600, true),
        record("mq:sess", &foreign_queue, 0o600, true),
        record("fifo:kept", &victim, 0o600, false),
        record("fifo:good", &good, 0o640, false),
    ]);

    fx.reload();

    assert_eq!(
        listed(&fx.reg(), &ROOT),
        ["fifo:good"],
        "only the good record"
    );
    assert_eq!(fx.saved(), ["fifo:good"]);
    assert_eq!(fx.set_aside(), ["fifo:sess", "mq:sess", "fifo:kept"]);
    for path in our_fifos.iter().chain([&victim]) {
        assert!(is_fifo(path), "{path} was unlinked");
        std::fs::remove_file(path).unwrap();
    }
    for name in [&foreign_queue, &our_queue] {
        assert!(queue_exists(name), "{name} was unlinked");
        mq_unlink(name.as_str()).unwrap();
    }
    fx.delete_all(&["fifo:good"]);
}

#[test]
fn load_ignores_records_with_a_mode_above_0777() {
    let mut fx = Fixture::new();
    let path = fx.kernel_name("fifo:setuid");
    make_fifo(&path);
    fx.write_state(vec![record("fifo:setuid", &path, 0o4777, false)]);

    fx.reload();

    assert!(fx.reg().is_empty());
    assert!(fx.saved().is_empty());
    assert_eq!(fx.set_aside(), ["fifo:setuid"]);
    assert!(is_fifo(&path), "ignored, not removed");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn load_neither_adopts_nor_removes_a_kernel_object_of_a_stranger() {
    if !is_root() {
        eprintln!("skipped: chown to another uid needs root");
        return;
    }
    let mut fx = Fixture::new();
    let stranger = Some(nix::unistd::Uid::from_raw(4242));
    let paths = [fx.kernel_name("fifo:sess"), fx.kernel_name("fifo:kept")];
    for path in &paths {
        make_fifo(path);
        nix::unistd::chown(path.as_str(), stranger, None).unwrap();
    }
    // The records say uid 1000; the FIFOs belong to neither it nor ipcd.
    fx.write_state(vec![
        record("fifo:sess", &paths[0], 0o600, true),
        record("fifo:kept", &paths[1], 0o600, false),
    ]);

    fx.reload();

    assert!(fx.reg().is_empty());
    assert_eq!(fx.set_aside(), ["fifo:sess", "fifo:kept"]);
    for path in &paths {
        assert!(is_fifo(path), "{path} was removed");
        std::fs::remove_file(path).unwrap();
    }
}

// ---------------------------------------------------------------- kind operations

#[tokio::test]
async fn a_queue_wait_answers_once_a_message_arrives_and_ends_with_the_object() {
    let mut fx = Fixture::new();
    fx.create("mq:q", with_mode(0o600, mq()), &OWNER).unwrap();
    let q = addr("mq:q");
    let readable = |timeout_ms| {
        KindOp::Mq(MqOp::WaitFor {
            ready: Readiness::Readable,
            timeout_ms,
        })
    };
    assert_err!(
        fx.reg()
            .operate(&q, readable(None), &who(OTHER), &QUOTA)
            .map(|_| ()),
        RequestError::PermissionDenied(_)
    );
    assert_err!(
        fx.reg()
            .operate(&q, readable(Some(0)), &who(OWNER), &QUOTA)
            .map(|_| ()),
        RequestError::TimedOut(_)
    );
    assert_err!(
        fx.reg()
            .operate(&q, KindOp::Pipe(PipeOp::Close), &who(OWNER), &QUOTA)
            .map(|_| ()),
        RequestError::WrongKind(_)
    );

    let Ok(OpResult::Later(waiter)) = fx.reg().operate(&q, readable(None), &who(OWNER), &QUOTA)
    else {
        panic!("an empty queue is not readable yet");
    };
    let name = fx.kernel_name("mq:q");
    let queue = mq_open(name.as_str(), MQ_OFlag::O_RDWR, Mode::empty(), None).unwrap();
    mq_send(&queue, b"hello", 0).unwrap();
    let reply = waiter.wait.await.unwrap();
    assert_eq!(reply, KindReply::Mq(MqReply::Ready { depth: 1 }));
    let (mut buf, mut priority) = ([0; 64], 0);
    assert_eq!(mq_receive(&queue, &mut buf, &mut priority).unwrap(), 5);
    mq_close(queue).unwrap();

    let Ok(OpResult::Later(mut waiter)) = fx.reg().operate(&q, readable(None), &who(OWNER), &QUOTA)
    else {
        panic!("a drained queue is not readable");
    };
    assert_eq!(waiter.address, q);
    fx.delete_all(&["mq:q"]);
    assert!(
        waiter.gone.changed().await.is_err(),
        "deleting closes `gone`"
    );
}

#[test]
fn closing_a_pipe_refuses_new_writers() {
    let mut fx = Fixture::new();
    fx.create("pipe:p", with_mode(0o620, pipe()), &OWNER)
        .unwrap();
    let p = addr("pipe:p");
    let close = || KindOp::Pipe(PipeOp::Close);
    assert_err!(
        fx.reg()
            .operate(&p, close(), &who(OTHER), &QUOTA)
            .map(|_| ()),
        RequestError::PermissionDenied(_)
    );
    let Ok(OpResult::Now(reply)) = fx.reg().operate(&p, close(), &who(GROUP), &QUOTA) else {
        panic!("close answers at once");
    };
    assert_eq!(reply, KindReply::Pipe(PipeReply::Closed));
    let KindDetails::Pipe(details) = fx.reg().stat(&p, &OWNER).unwrap().details else {
        panic!("a pipe");
    };
    assert!(details.closed);
    assert_err!(
        fx.reg().open(&p, Access::Write, &OWNER),
        RequestError::InvalidArgument(_)
    );
    fx.delete_all(&["pipe:p"]);
}

#[test]
fn kernel_names_come_from_the_namespace() {
    let fx = Fixture::new();
    let name = Name::new("jobs").unwrap();
    let mq_name = kinds::module(Kind::Mq).kernel_name(&fx.ns, &name);
    assert_eq!(mq_name, Some(format!("/{}jobs", fx.ns.prefix)));
    let fifo_path = kinds::module(Kind::Fifo)
        .kernel_name(&fx.ns, &name)
        .unwrap();
    assert!(fifo_path.starts_with(&fx.ns.runtime_dir.join("fifo").display().to_string()));
    assert_eq!(kinds::module(Kind::Pipe).kernel_name(&fx.ns, &name), None);
}

// ---------------------------------------------------------------- shared memory

fn shm(size: u64) -> KindParams {
    KindParams::Shm(protocol::ShmParams { size: Some(size) })
}

fn ring(slots: u32, slot_size: u32) -> KindParams {
    KindParams::Ring(protocol::RingParams {
        slots: Some(slots),
        slot_size: Some(slot_size),
    })
}

/// The `/dev/shm` path of a segment's kernel name.
fn shm_path(kernel_name: &str) -> String {
    format!("/dev/shm{kernel_name}")
}

fn resize(size: u64) -> KindOp {
    KindOp::Shm(protocol::ShmOp::Resize { size })
}

#[test]
fn a_segment_is_made_sized_grown_never_shrunk_and_unlinked() {
    let mut fx = Fixture::new();
    let info = fx
        .create("shm:buf", with_mode(0o640, shm(4096)), &OWNER)
        .unwrap();
    let path = shm_path(&info.kernel_name);
    let meta = std::fs::metadata(&path).expect("segment in /dev/shm");
    assert_eq!(meta.len(), 4096);
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "only 'other' bits are mirrored"
    );
    let KindDetails::Shm(d) = info.details else {
        panic!("{info:?}")
    };
    assert_eq!(d.size, 4096);
    let a = addr("shm:buf");
    assert_err!(
        fx.reg()
            .operate(&a, resize(8192), &who(OTHER), &QUOTA)
            .map(drop),
        RequestError::PermissionDenied(_)
    );
    let Ok(OpResult::Now(KindReply::Shm(r))) =
        fx.reg().operate(&a, resize(8192), &who(OWNER), &QUOTA)
    else {
        panic!("resize")
    };
    assert_eq!(r, protocol::ShmReply::Resized { size: 8192 });
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
    assert_err!(fx.reg().operate(&a, resize(100), &who(OWNER), &QUOTA).map(drop), RequestError::InvalidArgument(m) if m.contains("only grow"));
    let exempt = Quota {
        privileged: true,
        ..QUOTA
    };
    assert_err!(
        fx.reg().operate(&a, resize(protocol::SHM_MAX_SIZE), &who(ROOT), &exempt).map(drop),
        RequestError::KernelLimit(m) if m.contains("/dev/shm can hold")
    );
    let (_, fds) = fx.reg().open(&a, Access::Read, &GROUP).unwrap();
    let flags = nix::fcntl::fcntl(&fds[0], nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_eq!(
        flags & libc::O_ACCMODE,
        libc::O_RDONLY,
        "read access maps read-only"
    );
    fx.store.delete(&a, &OWNER).unwrap();
    assert!(std::fs::metadata(&path).is_err(), "delete unlinks");
}

#[test]
fn bad_segment_sizes_are_refused_before_anything_is_made() {
    let mut fx = Fixture::new();
    let none = KindParams::Shm(protocol::ShmParams { size: None });
    assert_err!(
        fx.create("shm:a", spec(none), &OWNER),
        RequestError::InvalidArgument(_)
    );
    assert_err!(
        fx.create("shm:a", spec(shm(0)), &OWNER),
        RequestError::InvalidArgument(_)
    );
    assert_err!(
        fx.create("shm:a", spec(shm(protocol::SHM_MAX_SIZE + 1)), &OWNER),
        RequestError::TooLarge(_)
    );
    assert_err!(fx.create("ring:r", spec(ring(3, 64)), &OWNER), RequestError::InvalidArgument(m) if m.contains("power of two"));
    assert_err!(
        fx.create("ring:r", spec(ring(4, 0)), &OWNER),
        RequestError::InvalidArgument(_)
    );
    assert!(fx.reg().is_empty());
}

#[test]
fn shared_memory_is_charged_to_its_owners_share() {
    let mut fx = Fixture::new();
    let small = Quota {
        shares: Shares {
            shm_bytes: 64 * 1024,
            ..QUOTA.shares
        },
        ..QUOTA
    };
    let t = Tunables::default();
    fx.create_in("shm:a", spec(shm(60 * 1024)), &OWNER, SESSION, &t, &small)
        .unwrap();
    assert_err!(
        fx.create_in("shm:b", spec(shm(8 * 1024)), &OWNER, SESSION, &t, &small),
        RequestError::LimitExceeded(m) if m.contains("shm_bytes_per_uid")
    );
    assert_err!(
        fx.reg()
            .operate(&addr("shm:a"), resize(128 * 1024), &who(OWNER), &small)
            .map(drop),
        RequestError::LimitExceeded(_)
    );
    fx.create_in("shm:b", spec(shm(8 * 1024)), &OTHER, SESSION, &t, &small)
        .expect("another uid has its own share");
    let tight = Quota {
        shm_budget: 70 * 1024,
        ..small
    };
    assert_err!(
        fx.create_in("ring:r", spec(ring(2, 64)), &GROUP, SESSION, &t, &tight),
        RequestError::LimitExceeded(m) if m.contains("shm_budget_bytes")
    );
    fx.create_in(
        "shm:root",
        spec(shm(1 << 20)),
        &ROOT,
        SESSION,
        &t,
        &Quota {
            privileged: true,
            ..tight
        },
    )
    .expect("root is exempt");
}

#[test]
fn segments_and_rings_survive_a_restart_with_their_bytes() {
    use nix::sys::uio::{pread, pwrite};
    let mut fx = Fixture::new();
    fx.create("shm:keep", spec(shm(4096)), &OWNER).unwrap();
    let info = fx.create("ring:r", spec(ring(4, 100)), &OWNER).unwrap();
    let KindDetails::Ring(d) = info.details else {
        panic!("{info:?}")
    };
    assert_eq!((d.slots, d.slot_size, d.depth, d.attached), (4, 100, 0, 0));
    assert_eq!(d.segment_size, 4096 + 4 * 128);
    let (_, fds) = fx
        .reg()
        .open(&addr("shm:keep"), Access::ReadWrite, &OWNER)
        .unwrap();
    pwrite(&fds[0], b"still here", 100).unwrap();
    assert_err!(
        fx.reg().open(&addr("ring:r"), Access::Read, &OWNER),
        RequestError::InvalidArgument(_)
    );
    let (_, ring_fds) = fx
        .reg()
        .open(&addr("ring:r"), Access::ReadWrite, &OWNER)
        .unwrap();
    let mut magic = [0u8; 8];
    pread(&ring_fds[0], &mut magic, 0).unwrap();
    assert_eq!(&magic, b"IPCDRING");
    drop((fds, ring_fds));
    fx.reload();
    assert_eq!(listed(&fx.reg(), &OWNER), vec!["shm:keep", "ring:r"]);
    let (_, fds) = fx
        .reg()
        .open(&addr("shm:keep"), Access::Read, &OWNER)
        .unwrap();
    let mut got = [0u8; 10];
    pread(&fds[0], &mut got, 100).unwrap();
    assert_eq!(&got, b"still here");
    fx.delete_all(&["shm:keep", "ring:r"]);
}

#[test]
fn a_segment_that_is_not_a_ring_cannot_be_adopted_as_one() {
    let mut fx = Fixture::new();
    let info = fx.create("shm:plain", spec(shm(8192)), &OWNER).unwrap();
    let ring_name = fx.kernel_name("ring:plain");
    std::fs::copy(shm_path(&info.kernel_name), shm_path(&ring_name)).unwrap();
    let adopt = CreateSpec {
        adopt: true,
        ..spec(ring(2, 8))
    };
    let me = Peer {
        uid: nix::unistd::geteuid().as_raw(),
        ..OWNER
    };
    assert_err!(fx.create("ring:plain", adopt, &me), RequestError::InvalidArgument(m) if m.contains("magic"));
}

mod changes;

fn who(peer: Peer) -> crate::kinds::Asker {
    crate::kinds::Asker {
        peer,
        session: 1,
        max_frame: protocol::HARD_MAX_FRAME,
    }
}
