//! `sem:NAME` — a POSIX named semaphore, `/<prefix>NAME` in the kernel
//! (`/dev/shm/sem.<prefix>NAME`). Permits taken through the daemon are held by
//! the connection and posted back when it closes. A daemon-side acquire takes
//! a free permit at once (`sem_trywait`) unless others wait; otherwise it
//! joins a first-come-first-served queue served by at most one helper thread
//! per semaphore, which waits in short `sem_timedwait` slices so it stops as
//! soon as the queue empties or the object is deleted. `Open` passes the
//! `/dev/shm` file for clients' direct path (no crash safety there).

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open as open_file};
use nix::sys::stat::{Mode, fchmod, stat};
use protocol::{
    Access, Holder, Kind, KindDetails, KindOp, KindParams, KindReply, Name, SemDetails, SemOp,
    SemParams, SemReply,
};
use tracing::{info, warn};

use super::waitlist::{self, Abandon, Answer, Granted, WaitList, lock};
use super::{
    Asker, CreateArgs, Held, KindModule, KindObject, Namespace, OpAnswer, Reopened, wrong_op,
    wrong_params,
};
use crate::access::Need;
use crate::error::RequestError;
use crate::peer::SessionId;
use crate::sys::sem::{self, HeldLedger, NamedSem, SEM_VALUE_MAX};

/// How long the helper thread waits in one `sem_timedwait` before looking
/// whether it is still needed.
const SLICE: Duration = Duration::from_millis(50);

/// The `sem` kind.
pub struct Module;

#[derive(Debug)]
struct State {
    sem: Arc<NamedSem>,
    max: Option<u32>,
    holders: HashMap<SessionId, Holder>,
    waiters: WaitList,
    /// The waits in `waiters` that are `Take`s: what they get is consumed,
    /// not held.
    takers: HashSet<u64>,
    /// A helper thread serves `waiters`.
    helper: bool,
    deleted: bool,
    /// The count of held permits kept in the semaphore's file, so that the
    /// next daemon gives back what connections held if this one is killed.
    ledger: Option<HeldLedger>,
}

impl State {
    fn value(&self) -> u32 {
        self.sem.value().unwrap_or(0)
    }

    /// Writes the permits held now to the ledger. Called after every change
    /// of `holders`; a permit is taken before it is recorded and unrecorded
    /// before it is posted, so a kill between the two loses that one permit
    /// rather than letting the next daemon post one too many.
    fn record(&self) {
        if let Some(ledger) = &self.ledger {
            ledger.set(self.holders.values().map(|h| u64::from(h.count)).sum());
        }
    }

    /// Records the permit `who` acquired: held until given back or the
    /// connection closes.
    fn took(&mut self, who: &Asker) {
        self.holders
            .entry(who.session)
            .and_modify(|h| h.count += 1)
            .or_insert_with(|| waitlist::holder(who, 1));
        self.record();
    }

    /// Gives one permit `session` holds back to the kernel; whether it held one.
    fn give_back(&mut self, session: SessionId) -> bool {
        let Some(h) = self.holders.get_mut(&session) else {
            return false;
        };
        h.count -= 1;
        if h.count == 0 {
            self.holders.remove(&session);
        }
        self.record();
        if let Err(e) = self.sem.post() {
            warn!("sem_post giving back a permit: {e}");
        }
        true
    }
}

impl Abandon for State {
    fn abandon(&mut self, id: u64, who: &Asker, granted: Option<Answer>) {
        self.waiters.remove(id);
        let took = self.takers.remove(&id);
        if let Some(Ok(_)) = granted
            && (took || !self.give_back(who.session))
        {
            // A take's permit, never received: post it back.
            if let Err(e) = self.sem.post() {
                warn!("sem_post giving back an untaken permit: {e}");
            }
        }
    }
}

/// A semaphore the daemon hosts.
#[derive(Debug)]
pub struct SemObject {
    name: String,
    path: PathBuf,
    state: Arc<Mutex<State>>,
    adopted: bool,
}

/// `/dev/shm/sem.NAME` for the kernel name `/NAME`.
fn shm_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/sem.{}", name.trim_start_matches('/')))
}

fn owner(name: &str) -> Option<u32> {
    stat(&shm_path(name)).ok().map(|st| st.st_uid)
}

/// The ledger in the semaphore file of `name`, or `None` (logged) if it
/// cannot be opened: the semaphore then works, without giving back across a
/// daemon crash.
fn open_ledger(name: &str) -> Option<HeldLedger> {
    HeldLedger::open(&shm_path(name))
        .inspect_err(|e| {
            warn!(
                semaphore = name,
                "cannot keep a held-permits ledger ({e}): permits held when ipcd is \
                 killed will not be given back"
            );
        })
        .ok()
}

/// At start: posts back the permits the previous daemon's connections held
/// (they ended with it), at most up to the bound, each unrecorded first.
fn give_back_held(name: &str, sem: &NamedSem, max: Option<u32>, ledger: &HeldLedger) {
    let held = ledger.get();
    if held == 0 {
        return;
    }
    let room = match max {
        Some(m) => u64::from(m.saturating_sub(sem.value().unwrap_or(0))),
        None => u64::from(SEM_VALUE_MAX),
    };
    let n = held.min(room);
    for i in 0..n {
        ledger.set(held - i - 1);
        if let Err(e) = sem.post() {
            warn!(semaphore = name, "sem_post giving back a held permit: {e}");
            break;
        }
    }
    ledger.set(0);
    info!(
        semaphore = name,
        permits = n,
        "gave back the permits connections of the previous ipcd held"
    );
}

/// Serves the queue of `state` until it empties or the object is deleted.
fn serve(state: Arc<Mutex<State>>, sem: Arc<NamedSem>, charge: helpers::Charge) {
    let _charge = charge;
    loop {
        {
            let mut s = lock(&state);
            if s.deleted || s.waiters.is_empty() {
                s.helper = false;
                return;
            }
        }
        match sem.timed_wait(SLICE) {
            Ok(true) => {
                let mut s = lock(&state);
                let value = s.value();
                let granted = s
                    .waiters
                    .grant(|_| Ok(KindReply::Sem(SemReply::Acquired { value })));
                match granted {
                    Some((id, who)) => {
                        if !s.takers.remove(&id) {
                            s.took(&who);
                        }
                    }
                    None => {
                        let _ = sem.post();
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                warn!("sem_timedwait: {e}");
                std::thread::sleep(SLICE);
            }
        }
    }
}

impl SemObject {
    fn new(
        name: &str,
        sem: NamedSem,
        max: Option<u32>,
        adopted: bool,
        ledger: Option<HeldLedger>,
    ) -> Self {
        SemObject {
            name: name.to_owned(),
            path: shm_path(name),
            state: Arc::new(Mutex::new(State {
                sem: Arc::new(sem),
                max,
                holders: HashMap::new(),
                waiters: WaitList::default(),
                takers: HashSet::new(),
                helper: false,
                deleted: false,
                ledger,
            })),
            adopted,
        }
    }

    /// Takes a permit for `who`: held by its connection if `held`, consumed if not.
    fn acquire(
        &self,
        timeout_ms: Option<u64>,
        who: &Asker,
        held: bool,
    ) -> Result<OpAnswer, RequestError> {
        let mut s = lock(&self.state);
        let sem_op = |e| RequestError::os(format!("sem_trywait {}", self.name), e);
        if s.waiters.is_empty() && s.sem.try_wait().map_err(sem_op)? {
            if held {
                s.took(who);
            }
            let value = s.value();
            return Ok(OpAnswer::Now(KindReply::Sem(SemReply::Acquired { value })));
        }
        if timeout_ms == Some(0) {
            return Err(RequestError::WouldBlock(format!(
                "no permit of {} is free",
                self.name
            )));
        }
        let charge = match s.helper {
            true => None,
            false => Some(helpers::Charge::take(who.peer.uid)?),
        };
        let (id, rx) = s.waiters.push(*who);
        if !held {
            s.takers.insert(id);
        }
        if let Some(charge) = charge {
            let (state, sem) = (self.state.clone(), s.sem.clone());
            std::thread::Builder::new()
                .name("ipcd-sem".into())
                .spawn(move || serve(state, sem, charge))
                .map_err(|e| {
                    s.waiters.remove(id);
                    RequestError::os(
                        "starting a semaphore helper thread",
                        Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
                    )
                })?;
            s.helper = true;
        }
        drop(s);
        Ok(OpAnswer::Later {
            made: false,
            wait: Box::pin(Granted::new(self.state.clone(), id, *who, rx)),
            timeout: timeout_ms.map(Duration::from_millis),
        })
    }

    fn release(&self, who: &Asker) -> Result<OpAnswer, RequestError> {
        let mut s = lock(&self.state);
        let value = s.value();
        if let Some(max) = s.max
            && value >= max
        {
            return Err(RequestError::InvalidArgument(format!(
                "{} is at its bound: {value} free of max {max}",
                self.name
            )));
        }
        if !s.give_back(who.session) {
            s.sem.post().map_err(|e| match e {
                Errno::EOVERFLOW => RequestError::InvalidArgument(format!(
                    "{} is at SEM_VALUE_MAX ({SEM_VALUE_MAX})",
                    self.name
                )),
                e => RequestError::os(format!("sem_post {}", self.name), e),
            })?;
        }
        let value = s.value();
        Ok(OpAnswer::Now(KindReply::Sem(SemReply::Released { value })))
    }
}

impl KindModule for Module {
    fn kernel_name(&self, ns: &Namespace, name: &Name) -> Option<String> {
        Some(format!("/{}{}", ns.prefix, name.as_str()))
    }

    fn cost(&self, _args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        Ok(Held::default())
    }

    fn create(&self, args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        let KindParams::Sem(SemParams { initial, max }) = args.params else {
            return Err(wrong_params(args.params, Kind::Sem));
        };
        let name = args.kernel_name.expect("a semaphore has a kernel name");
        if let Some(m) = max
            && (*m == 0 || *m > SEM_VALUE_MAX)
        {
            return Err(RequestError::InvalidArgument(format!(
                "max must be between 1 and {SEM_VALUE_MAX}"
            )));
        }
        if args.adopt {
            let owner = owner(name).ok_or_else(|| {
                RequestError::KernelObjectMissing(format!("no semaphore {name} to adopt"))
            })?;
            if args.peer.uid != 0 && args.peer.uid != owner {
                return Err(RequestError::PermissionDenied(format!(
                    "semaphore {name} belongs to uid {owner}, not to uid {}",
                    args.peer.uid
                )));
            }
            let s = sem::open(name).map_err(|e| RequestError::os(format!("sem_open {name}"), e))?;
            // Whatever the file held past the sem_t was not this daemon's count.
            let ledger = open_ledger(name);
            if let Some(l) = &ledger {
                l.set(0);
            }
            return Ok(Box::new(SemObject::new(name, s, *max, true, ledger)));
        }
        if *initial > max.unwrap_or(SEM_VALUE_MAX) {
            return Err(RequestError::InvalidArgument(format!(
                "initial value {initial} is above the bound {}",
                max.unwrap_or(SEM_VALUE_MAX)
            )));
        }
        let s = sem::create(name, 0o600, *initial).map_err(|e| match e {
            Errno::EEXIST => RequestError::KernelNameTaken(format!(
                "semaphore {name} already exists and is not registered in ipcd (owner uid {}); \
                 its owner may adopt it, or remove it",
                owner(name).map_or_else(|| "unknown".into(), |u| u.to_string())
            )),
            e => RequestError::os(format!("sem_open {name}"), e),
        })?;
        // Only the "other" bits are mirrored on the kernel object (see mq).
        let path = shm_path(name);
        let kernel_mode = Mode::from_bits_truncate(0o600 | (args.mode & 0o006));
        let chmod = open_file(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .and_then(|fd| fchmod(fd.as_fd(), kernel_mode));
        let ledger = chmod.and_then(|()| HeldLedger::open(&path));
        match ledger {
            Ok(ledger) => Ok(Box::new(SemObject::new(name, s, *max, false, Some(ledger)))),
            Err(e) => {
                let _ = sem::unlink(name);
                Err(RequestError::os(format!("preparing {}", path.display()), e))
            }
        }
    }

    fn reopen(
        &self,
        kernel_name: Option<&str>,
        state: &serde_json::Value,
    ) -> Result<Reopened, RequestError> {
        let name = kernel_name.ok_or_else(|| {
            RequestError::InvalidArgument("a semaphore record without a kernel name".into())
        })?;
        let max = state
            .get("max")
            .and_then(|v| v.as_u64())
            .map(|m| m.min(u64::from(SEM_VALUE_MAX)) as u32);
        let adopted = state.get("adopted").and_then(|v| v.as_bool()) == Some(true);
        match sem::open(name) {
            Ok(s) => {
                let ledger = open_ledger(name);
                if let Some(l) = &ledger {
                    give_back_held(name, &s, max, l);
                }
                Ok(Reopened::Alive(Box::new(SemObject::new(
                    name, s, max, adopted, ledger,
                ))))
            }
            Err(Errno::ENOENT) => Ok(Reopened::Gone(format!(
                "semaphore {name} vanished while ipcd was down"
            ))),
            Err(e) => Err(RequestError::os(format!("sem_open {name}"), e)),
        }
    }

    fn unlink(&self, kernel_name: &str) -> Result<(), RequestError> {
        match sem::unlink(kernel_name) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(RequestError::os(format!("sem_unlink {kernel_name}"), e)),
        }
    }

    fn owner(&self, kernel_name: &str) -> Option<u32> {
        owner(kernel_name)
    }

    fn op_needs(&self, op: &KindOp) -> Need {
        match op {
            KindOp::Sem(SemOp::Acquire { .. } | SemOp::Take { .. } | SemOp::Release) => Need::Write,
            // Never called with another kind's operation; the strictest answer is safe.
            KindOp::Mq(_)
            | KindOp::Pipe(_)
            | KindOp::Shm(_)
            | KindOp::Lock(_)
            | KindOp::Event(_)
            | KindOp::Barrier(_)
            | KindOp::Signal(_)
            | KindOp::Queue(_) => Need::Owner,
        }
    }
}

impl KindObject for SemObject {
    fn details(&self) -> Result<KindDetails, RequestError> {
        let s = lock(&self.state);
        let value = s
            .sem
            .value()
            .map_err(|e| RequestError::os(format!("sem_getvalue {}", self.name), e))?;
        let mut holders: Vec<Holder> = s.holders.values().copied().collect();
        holders.sort_by_key(|h| (h.since_ms, h.pid));
        Ok(KindDetails::Sem(SemDetails {
            value,
            max: s.max,
            holders,
            waiters: s.waiters.len() as u32,
        }))
    }

    fn open(&mut self, access: Access) -> Result<Vec<OwnedFd>, RequestError> {
        let flags = match access {
            Access::Read => OFlag::O_RDONLY,
            Access::Write | Access::ReadWrite => OFlag::O_RDWR,
        };
        let fd = open_file(&self.path, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(
            |e| match e {
                Errno::ENOENT => RequestError::KernelObjectMissing(format!(
                    "{} vanished (removed outside ipcd?); delete the object to forget it",
                    self.path.display()
                )),
                e => RequestError::os(format!("open {}", self.path.display()), e),
            },
        )?;
        Ok(vec![fd])
    }

    fn operate(&mut self, op: KindOp, who: &Asker) -> Result<OpAnswer, RequestError> {
        let KindOp::Sem(op) = op else {
            return Err(wrong_op(&op, Kind::Sem));
        };
        match op {
            SemOp::Acquire { timeout_ms } => self.acquire(timeout_ms, who, true),
            SemOp::Take { timeout_ms } => self.acquire(timeout_ms, who, false),
            SemOp::Release => self.release(who),
        }
    }

    fn session_ended(&mut self, session: SessionId) {
        let mut s = lock(&self.state);
        s.waiters.forget_session(session);
        if let Some(h) = s.holders.get(&session).copied() {
            info!(
                semaphore = %self.name, pid = h.pid, uid = h.uid, permits = h.count,
                "holder's connection closed; posting its permits back"
            );
            while s.give_back(session) {}
        }
    }

    fn held(&self) -> Held {
        Held::default()
    }

    fn state(&self) -> serde_json::Value {
        let max = lock(&self.state).max;
        serde_json::json!({ "max": max, "adopted": self.adopted })
    }

    fn remove(self: Box<Self>) -> Result<(), RequestError> {
        {
            let mut s = lock(&self.state);
            s.deleted = true;
            // Dropping the senders answers every waiter `not-found`.
            s.waiters = WaitList::default();
        }
        match sem::unlink(&self.name) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(RequestError::os(format!("sem_unlink {}", self.name), e)),
        }
    }
}

mod helpers;
#[cfg(test)]
mod tests;
