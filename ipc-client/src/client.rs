//! [`Client`]: a blocking connection to ipcd and the requests it can make.

use std::borrow::Borrow;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use protocol::{
    Access, ClientFrame, CreateSpec, Event, Hello, Kind, KindOp, KindReply, MqOp, MqReply,
    ObjectInfo, Outcome, PROTOCOL_VERSION, Readiness, Reply, Request, ServerFrame, StatusInfo,
    UsageInfo, Welcome,
};

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::path::resolve_socket_path;

/// The client name sent in the handshake unless another is chosen.
pub const DEFAULT_CLIENT_NAME: &str = "ipc-client";

/// Events kept for [`Client::take_events`]; older ones are dropped beyond this.
const MAX_KEPT_EVENTS: usize = 64;

/// A successful answer with the file descriptors that came with it.
#[derive(Debug)]
pub struct Response {
    /// The answer.
    pub reply: Reply,
    /// Descriptors passed with it (one queue descriptor for an `Open` of an `mq:`).
    pub fds: Vec<OwnedFd>,
}

/// Settings for a connection; finish with [`connect`](ClientBuilder::connect).
///
/// ```no_run
/// use std::time::Duration;
/// let client = ipc_client::Client::builder()
///     .socket("/tmp/ipcd.sock")
///     .name("my-app")
///     .timeout(Duration::from_secs(5))
///     .connect()?;
/// # Ok::<(), ipc_client::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    socket: Option<PathBuf>,
    name: Option<String>,
    timeout: Option<Duration>,
    version: Option<u16>,
}

impl ClientBuilder {
    /// Connects to this socket instead of [`default_socket_path`](crate::default_socket_path).
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// The client name the daemon logs (default [`DEFAULT_CLIENT_NAME`]).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How long the handshake and each later request may take (default: no limit).
    /// See [`Client::set_timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Speaks an older protocol version (from [`MIN_PROTOCOL_VERSION`](protocol::MIN_PROTOCOL_VERSION)),
    /// as a client built against an older ipc-client would. Requests the
    /// version does not have are refused by the daemon; [`list`](Client::list)
    /// falls back to one-frame listings below version 3.
    pub fn protocol_version(mut self, version: u16) -> Self {
        self.version = Some(version);
        self
    }

    /// Connects and performs the handshake.
    pub fn connect(self) -> Result<Client> {
        let path = resolve_socket_path(self.socket.as_deref());
        let mut conn = Connection::connect(&path, self.timeout)?;
        let version = self.version.unwrap_or(PROTOCOL_VERSION);
        let hello = Hello {
            version,
            client_name: self.name.unwrap_or_else(|| DEFAULT_CLIENT_NAME.to_owned()),
        };
        conn.queue(&ClientFrame::Hello(hello))?;
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let welcome = match conn.receive(deadline)? {
            ServerFrame::Welcome(w) => w,
            ServerFrame::Fatal(e) => return Err(conn.poison(Error::Fatal(e))),
            other => {
                return Err(conn.poison(Error::Protocol(format!(
                    "expected a welcome from the daemon, got {other:?}"
                ))));
            }
        };
        if welcome.version != version {
            return Err(Error::Protocol(format!(
                "the daemon chose protocol version {}, this client speaks {version}",
                welcome.version
            )));
        }
        conn.set_max_frame(welcome.limits.max_frame);
        Ok(Client {
            conn,
            welcome,
            path,
            timeout: self.timeout,
            next_id: 1,
            events: Vec::new(),
        })
    }
}

/// A blocking connection to the ipcd daemon.
///
/// Each method sends one request and waits for its answer; [`pipeline`](Self::pipeline)
/// sends many before waiting. Errors the daemon reports are [`Error::Server`] and
/// leave the connection usable; I/O and protocol errors close it.
///
/// ```no_run
/// use ipc_client::Client;
/// let mut client = Client::connect()?;
/// client.ping()?;
/// for object in client.list(None)? {
///     println!("{}", object.address);
/// }
/// # Ok::<(), ipc_client::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    welcome: Welcome,
    path: PathBuf,
    timeout: Option<Duration>,
    next_id: u64,
    events: Vec<Event>,
}

/// The connection's socket, to poll for the daemon going away (it becomes
/// readable at end of stream, `POLLRDHUP`): reading or writing it directly
/// would break the framing.
impl std::os::fd::AsFd for Client {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

impl Client {
    /// Connects to the socket [`default_socket_path`](crate::default_socket_path) names.
    pub fn connect() -> Result<Client> {
        Self::builder().connect()
    }

    /// Connects to the socket at `path`.
    pub fn connect_to(path: impl AsRef<Path>) -> Result<Client> {
        Self::builder().socket(path.as_ref()).connect()
    }

    /// Connects to the socket at `path`, introducing itself as `client_name`.
    pub fn connect_with(path: impl AsRef<Path>, client_name: &str) -> Result<Client> {
        Self::builder()
            .socket(path.as_ref())
            .name(client_name)
            .connect()
    }

    /// Settings for a connection (socket, client name, timeout).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The daemon's handshake answer: its version, limits, and how it sees us.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The socket path this client connected to.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Limits how long each request (or each whole [`pipeline`](Self::pipeline))
    /// may wait for its answers (`None`: forever). A request that times out fails
    /// with [`Error::TimedOut`] and closes the connection, since its answer may
    /// still arrive.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Checks that the daemon answers.
    pub fn ping(&mut self) -> Result<()> {
        match self.request(Request::Ping)?.reply {
            Reply::Pong => Ok(()),
            other => Err(unexpected("Pong", &other)),
        }
    }

    /// The daemon's status and counters.
    pub fn status(&mut self) -> Result<StatusInfo> {
        match self.request(Request::Status)?.reply {
            Reply::Status(s) => Ok(s),
            other => Err(unexpected("Status", &other)),
        }
    }

    /// What this client's uid holds in the daemon against its per-uid shares
    /// (protocol version 3).
    pub fn usage(&mut self) -> Result<UsageInfo> {
        match self.request(Request::Usage)?.reply {
            Reply::Usage(u) => Ok(u),
            other => Err(unexpected("Usage", &other)),
        }
    }

    /// The objects the daemon hosts (of one kind, or all) that this client may
    /// see, sorted by address. Any number: the daemon answers page by page.
    pub fn list(&mut self, kind: Option<Kind>) -> Result<Vec<ObjectInfo>> {
        if self.welcome.version < 3 {
            return match self.request(Request::List { kind })?.reply {
                Reply::List(l) => Ok(l),
                other => Err(unexpected("List", &other)),
            };
        }
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self.list_page(kind, after, 0)?;
            all.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// One page of [`list`](Self::list): up to `limit` objects after the
    /// address `after` (0: the daemon's page size), and the `after` of the next
    /// page, `None` on the last one.
    pub fn list_page(
        &mut self,
        kind: Option<Kind>,
        after: Option<String>,
        limit: u32,
    ) -> Result<(Vec<ObjectInfo>, Option<String>)> {
        match self
            .request(Request::ListPage { kind, after, limit })?
            .reply
        {
            Reply::ListPage { objects, next } => Ok((objects, next)),
            other => Err(unexpected("ListPage", &other)),
        }
    }

    /// Performs a kind-specific operation on `address` and waits for its answer
    /// (which, for operations that wait, may come much later; the client's
    /// request timeout does not cut such a wait short).
    pub fn operate(&mut self, address: &str, op: KindOp) -> Result<KindReply> {
        let saved = self.timeout.take();
        let answer = self.request(Request::Kind {
            address: address.to_owned(),
            op,
        });
        self.timeout = saved;
        match answer?.reply {
            Reply::Kind(reply) => Ok(reply),
            other => Err(unexpected("Kind", &other)),
        }
    }

    /// Waits until the queue `address` (`mq:NAME`) is readable (a message is
    /// waiting) or writable (there is room), or `timeout` passes
    /// ([`Error::Server`] with code `timed-out`); a queue deleted meanwhile
    /// answers `not-found`. The daemon holds the wait; returns the depth it saw.
    pub fn wait_for(
        &mut self,
        address: &str,
        ready: Readiness,
        timeout: Option<Duration>,
    ) -> Result<u64> {
        let timeout_ms = timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        let op = KindOp::Mq(MqOp::WaitFor { ready, timeout_ms });
        match self.operate(address, op)? {
            KindReply::Mq(MqReply::Ready { depth }) => Ok(depth),
            other => Err(Error::Protocol(format!(
                "expected a queue's ready answer, got {other:?}"
            ))),
        }
    }

    /// Whether the daemon is gone: its end of this connection is closed (it
    /// exited, was killed, or dropped the connection). Checked at once, without
    /// a request; use it to tell "the daemon died" from "end of file" when a
    /// pipe or FIFO the daemon held reports end-of-file.
    pub fn daemon_gone(&self) -> bool {
        self.conn.peer_closed()
    }

    /// One object's details; `address` is `KIND:NAME`.
    pub fn stat(&mut self, address: &str) -> Result<ObjectInfo> {
        match self
            .request(Request::Stat {
                address: address.to_owned(),
            })?
            .reply
        {
            Reply::Stat(i) => Ok(i),
            other => Err(unexpected("Stat", &other)),
        }
    }

    /// Removes an object and its kernel object.
    pub fn delete(&mut self, address: &str) -> Result<()> {
        match self
            .request(Request::Delete {
                address: address.to_owned(),
            })?
            .reply
        {
            Reply::Deleted => Ok(()),
            other => Err(unexpected("Deleted", &other)),
        }
    }

    /// Closes the daemon's write end of a pipe (`pipe:NAME`): no new writers
    /// may open it, and readers see end-of-file once it is drained and the
    /// writers already handed out are closed. Other kinds answer `WrongKind`.
    pub fn close(&mut self, address: &str) -> Result<()> {
        match self
            .request(Request::Close {
                address: address.to_owned(),
            })?
            .reply
        {
            Reply::Closed => Ok(()),
            other => Err(unexpected("Closed", &other)),
        }
    }

    /// Creates (or adopts) an object. For message queues,
    /// [`create_mq`](Self::create_mq) also opens it.
    pub fn create(&mut self, address: &str, spec: CreateSpec) -> Result<ObjectInfo> {
        match self
            .request(Request::Create {
                address: address.to_owned(),
                spec,
            })?
            .reply
        {
            Reply::Created(i) => Ok(i),
            other => Err(unexpected("Created", &other)),
        }
    }

    /// Gets a capability for an object: its details and the descriptors that
    /// grant `access`. For message queues, [`open_mq`](Self::open_mq) wraps them.
    pub fn open(&mut self, address: &str, access: Access) -> Result<(ObjectInfo, Vec<OwnedFd>)> {
        let response = self.request(Request::Open {
            address: address.to_owned(),
            access,
        })?;
        match response.reply {
            Reply::Opened { info, .. } => Ok((info, response.fds)),
            other => Err(unexpected("Opened", &other)),
        }
    }

    /// Sends one request and waits for its answer.
    pub fn request(&mut self, request: Request) -> Result<Response> {
        let id = self.take_ids(1);
        self.conn
            .queue(&ClientFrame::Request { id, body: request })?;
        let deadline = self.deadline();
        let (got, response) = self.receive_response(deadline)?;
        if got != id {
            return Err(self.conn.poison(Error::Protocol(format!(
                "the daemon answered request {got}, expected {id}"
            ))));
        }
        response
    }

    /// Sends all `requests` at once, then collects their answers, in request order.
    ///
    /// The outer error is a connection failure; each inner result is that
    /// request's answer. Descriptors attached to answers are closed: use
    /// [`open`](Self::open) to keep them. Any number of requests may be sent;
    /// answers are read while requests are still being written.
    ///
    /// ```no_run
    /// use ipc_client::{Client, Request};
    /// let mut client = Client::connect()?;
    /// let requests = vec![Request::Stat { address: "mq:jobs".into() }; 1000];
    /// for answer in client.pipeline(&requests)? {
    ///     answer?;
    /// }
    /// # Ok::<(), ipc_client::Error>(())
    /// ```
    pub fn pipeline<R: Borrow<Request>>(
        &mut self,
        requests: impl IntoIterator<Item = R>,
    ) -> Result<Vec<Result<Reply>>> {
        Ok(self
            .exchange(requests)?
            .into_iter()
            .map(|r| r.map(|r| r.reply))
            .collect())
    }

    /// Like [`pipeline`](Self::pipeline), keeping the descriptors of each answer.
    pub fn exchange<R: Borrow<Request>>(
        &mut self,
        requests: impl IntoIterator<Item = R>,
    ) -> Result<Vec<Result<Response>>> {
        let requests = requests.into_iter();
        let first = self.next_id;
        let mut count = 0usize;
        let mark = self.conn.queued();
        for r in requests {
            let id = first.wrapping_add(count as u64);
            let frame = ClientFrame::Request {
                id,
                body: r.borrow().clone(),
            };
            if let Err(e) = self.conn.queue(&frame) {
                // Send none of the batch rather than part of it.
                self.conn.unqueue(mark);
                return Err(e);
            }
            count += 1;
        }
        self.take_ids(count as u64);
        let mut answers: Vec<Option<Result<Response>>> = (0..count).map(|_| None).collect();
        let deadline = self.deadline();
        for _ in 0..count {
            let (id, response) = self.receive_response(deadline)?;
            let slot = usize::try_from(id.wrapping_sub(first))
                .ok()
                .and_then(|i| answers.get_mut(i))
                .filter(|slot| slot.is_none());
            match slot {
                Some(slot) => *slot = Some(response),
                None => {
                    return Err(self.conn.poison(Error::Protocol(format!(
                        "the daemon answered unexpected request id {id}"
                    ))));
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every slot was filled exactly once"))
            .collect())
    }

    /// Events the daemon pushed (such as [`Event::ShuttingDown`]) since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Whether the daemon has announced that it is shutting down.
    pub fn shutting_down(&self) -> bool {
        self.events.contains(&Event::ShuttingDown)
    }

    /// Blocks until the daemon closes the connection, remembering events meanwhile.
    /// Useful to keep session-lifetime objects alive for as long as a process runs.
    pub fn wait_closed(&mut self) -> Result<()> {
        loop {
            match self.conn.receive(None) {
                Ok(ServerFrame::Event(e)) => self.remember(e),
                Ok(ServerFrame::Fatal(e)) => return Err(self.conn.poison(Error::Fatal(e))),
                Ok(other) => {
                    return Err(self.conn.poison(Error::Protocol(format!(
                        "unexpected frame while idle: {other:?}"
                    ))));
                }
                Err(Error::Closed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn take_ids(&mut self, n: u64) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(n);
        id
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }

    fn remember(&mut self, event: Event) {
        if self.events.len() >= MAX_KEPT_EVENTS {
            self.events.remove(0);
        }
        self.events.push(event);
    }

    /// Reads frames until a response arrives; returns its id and outcome.
    fn receive_response(&mut self, deadline: Option<Instant>) -> Result<(u64, Result<Response>)> {
        loop {
            match self.conn.receive(deadline)? {
                ServerFrame::Response { id, fds, result } => {
                    let fds = self.conn.take_fds(usize::from(fds))?;
                    let outcome = match result {
                        Outcome::Ok(reply) => Ok(Response { reply, fds }),
                        Outcome::Err(e) => Err(Error::Server(e)),
                    };
                    return Ok((id, outcome));
                }
                ServerFrame::Event(e) => self.remember(e),
                ServerFrame::Fatal(e) => return Err(self.conn.poison(Error::Fatal(e))),
                ServerFrame::Welcome(_) => {
                    return Err(self
                        .conn
                        .poison(Error::Protocol("a second welcome from the daemon".into())));
                }
            }
        }
    }
}

fn unexpected(expected: &str, got: &Reply) -> Error {
    Error::Protocol(format!("expected a {expected} reply, got {got:?}"))
}

/// The error for a kind operation answered with another kind's reply.
pub(crate) fn unexpected_kind(expected: &str, got: &KindReply) -> Error {
    Error::Protocol(format!("expected a {expected} reply, got {got:?}"))
}

/// `KIND:NAME` for a bare `NAME`; an address that already starts with
/// `KIND:` is kept as it is.
pub(crate) fn kind_address(kind: protocol::Kind, name: &str) -> std::borrow::Cow<'_, str> {
    match name.strip_prefix(kind.as_str()) {
        Some(rest) if rest.starts_with(':') => std::borrow::Cow::Borrowed(name),
        _ => std::borrow::Cow::Owned(format!("{kind}:{name}")),
    }
}

mod pipelined;
#[cfg(test)]
mod tests;
