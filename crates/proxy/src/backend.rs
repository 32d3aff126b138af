//! Connections to one cache server: pooled, pipelined and shared by every client.
//!
//! A [`Backend`] keeps a few long-lived [`Link`]s. A link is one TCP connection driven by two
//! tasks: a writer that takes jobs (a batch of encoded requests from one client) from a
//! queue and writes everything queued with one syscall, and a reader that matches replies to
//! jobs in order, as twemproxy multiplexes. Clients never wait on another client's round
//! trip, and never receive another client's reply, because replies are counted out per job.
//! A link that fails is dropped; the next request dials a new one.
//!
//! Links speak one protocol each: a backend keeps its RESP2 links and, made on first use by
//! a client that chose RESP3 with `HELLO 3`, as many RESP3 links (opened with `HELLO 3`), so
//! that every reply comes back in the protocol of the client that asked.
//!
//! With a request timeout (`--server-timeout-ms`, twemproxy's `timeout:`), the reader
//! watches the deadline of the oldest job in flight: a server that has not answered it in
//! time fails every job on the link with `-ERR server ... timed out`, the link is dropped
//! (replies still to come would be out of step), and the timeout counts as a failed health
//! check. Each server has its own links, so a hung server never delays the others.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use resp::{write, Frame, Limits, Protocol};

use crate::health::Health;
use service::tls::{Connector, ReadHalf, Stream, WriteHalf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Largest write the writer gathers from queued jobs before it writes.
const MAX_WRITE_BATCH: usize = 256 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// Why a job got no replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// Dialling or greeting the server failed.
    Connect {
        /// The server's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection broke with the job's replies outstanding.
    Lost {
        /// The server's address.
        addr: String,
    },
    /// The server was removed from the ring.
    Removed {
        /// The server's address.
        addr: String,
    },
    /// The server did not answer within the request timeout.
    Timeout {
        /// The server's address.
        addr: String,
        /// The request timeout.
        after: Duration,
    },
}

impl BackendError {
    /// The `-ERR` text a client receives.
    pub fn reply_text(&self) -> String {
        match self {
            BackendError::Connect { addr, reason } => format!("ERR connect to {addr}: {reason}"),
            BackendError::Lost { addr } => format!("ERR connection to {addr} lost"),
            BackendError::Removed { addr } => format!("ERR server {addr} was removed"),
            BackendError::Timeout { addr, after } => {
                format!("ERR server {addr} timed out after {} ms", after.as_millis())
            }
        }
    }
}

/// The replies to one job, in the order of its requests.
#[derive(Debug, Clone)]
pub struct Replies {
    buf: Bytes,
    ends: Vec<usize>,
}

impl Replies {
    /// The `i`-th reply's exact bytes.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// The `i`-th reply parsed into a frame.
    pub fn frame(&self, i: usize) -> Frame {
        let mut bytes = BytesMut::from(self.get(i));
        // The reader validated every reply with the same parser, so this cannot fail.
        Frame::parse(&mut bytes, &reply_limits()).ok().flatten().unwrap_or(Frame::Null)
    }
}

/// A batch of encoded requests for one server, and where its replies go.
struct Job {
    bytes: Bytes,
    count: usize,
    reply: oneshot::Sender<Result<Replies, BackendError>>,
    /// When its replies are overdue (the request timeout counts from the client's send).
    deadline: Option<Instant>,
    /// When it was sent, for the latency histogram (only while metrics are recorded).
    sent: Option<Instant>,
}

/// A job written to the socket whose replies are awaited.
struct InFlight {
    count: usize,
    reply: oneshot::Sender<Result<Replies, BackendError>>,
    deadline: Option<Instant>,
    sent: Option<Instant>,
}

/// Counters shown by SERVERS DETAIL and INFO.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Requests sent.
    pub requests: AtomicU64,
    /// Requests that got no reply (connect failure, lost connection).
    pub errors: AtomicU64,
    /// Error replies the server sent.
    pub error_replies: AtomicU64,
    /// Requests that waited past `--server-timeout-ms` (shared with the link's reader).
    pub timeouts: Arc<AtomicU64>,
    /// Time from sending a batch to its last reply, per batch (recorded only while metrics
    /// are on; shared with the link's reader).
    pub latency: Arc<service::metrics::Histogram>,
}

/// One live connection.
struct Link {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Link {
    fn is_alive(&self) -> bool {
        !self.jobs.is_closed()
    }
}

/// A slot in the pool: a link, and a lock so that only one task dials it at a time.
#[derive(Default)]
struct Slot {
    link: Mutex<Option<Arc<Link>>>,
    dialing: tokio::sync::Mutex<()>,
}

impl Slot {
    /// The slot's link, while it is alive.
    fn live_link(&self) -> Option<Arc<Link>> {
        lock(&self.link).as_ref().filter(|l| l.is_alive()).cloned()
    }
}

/// A cache server as the proxy sees it: its address, its pooled links and its counters.
pub struct Backend {
    addr: String,
    /// RESP2 links.
    slots: Box<[Slot]>,
    /// RESP3 links, as many slots as RESP2's, made when a RESP3 client first needs one.
    resp3_slots: OnceLock<Box<[Slot]>>,
    next_slot: AtomicUsize,
    connect_timeout: Duration,
    /// How long a request may wait for its reply; zero waits for ever.
    request_timeout: Duration,
    /// Sent as `AUTH` when a link opens (`--server-password`).
    password: Option<Arc<str>>,
    /// TLS to the server (`--server-tls`).
    tls: Option<Connector>,
    removed: AtomicBool,
    /// Request and error counters.
    pub stats: BackendStats,
    /// What the health checks found (request timeouts count too).
    pub health: Arc<Health>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend for `addr` with `connections` pooled links, dialled on first use. A request
    /// not answered within `request_timeout` fails with [`BackendError::Timeout`] (zero:
    /// no limit).
    pub fn new(addr: &str, connections: usize, connect_timeout: Duration, request_timeout: Duration) -> Self {
        Self {
            addr: addr.to_string(),
            slots: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            resp3_slots: OnceLock::new(),
            next_slot: AtomicUsize::new(0),
            connect_timeout,
            request_timeout,
            password: None,
            tls: None,
            removed: AtomicBool::new(false),
            stats: BackendStats::default(),
            health: Arc::default(),
        }
    }

    /// The same backend, authenticating with `password` when it opens a link.
    pub fn with_password(mut self, password: Option<Arc<str>>) -> Self {
        self.password = password;
        self
    }

    /// The same backend, speaking TLS to its server when `tls` is given.
    pub fn with_tls(mut self, tls: Option<Connector>) -> Self {
        self.tls = tls;
        self
    }

    /// Opens one link and drops it: whether the server answers the handshake (AUTH, PING)
    /// within the connect timeout. ADD_SERVER checks what it adds with it.
    pub async fn check(&self) -> Result<(), BackendError> {
        self.dial(Protocol::Resp2).await.map(drop)
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every slot made so far, of both protocols.
    fn all_slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().chain(self.resp3_slots.get().into_iter().flat_map(|slots| slots.iter()))
    }

    /// The slots of the links that speak `protocol`.
    fn slots_of(&self, protocol: Protocol) -> &[Slot] {
        match protocol {
            Protocol::Resp2 => &self.slots,
            Protocol::Resp3 => self.resp3_slots.get_or_init(|| self.slots.iter().map(|_| Slot::default()).collect()),
        }
    }

    /// Links open now (of both protocols).
    pub fn open_connections(&self) -> usize {
        self.all_slots().filter(|s| s.live_link().is_some()).count()
    }

    /// Closes every link and refuses new work: the server left the ring.
    pub fn close(&self) {
        self.removed.store(true, Relaxed);
        for slot in self.all_slots() {
            lock(&slot.link).take();
        }
    }

    /// Sends `count` encoded requests on a RESP2 link; the receiver yields their replies in order.
    pub async fn send(&self, bytes: Bytes, count: usize) -> oneshot::Receiver<Result<Replies, BackendError>> {
        self.send_as(Protocol::Resp2, bytes, count).await
    }

    /// Sends `count` encoded requests on a link that speaks `protocol`; the receiver yields
    /// their replies, in that protocol, in order.
    pub async fn send_as(
        &self,
        protocol: Protocol,
        bytes: Bytes,
        count: usize,
    ) -> oneshot::Receiver<Result<Replies, BackendError>> {
        match self.try_send_as(protocol, bytes, count) {
            Ok(receiver) => receiver,
            // Boxed: the rare wait to dial a link stays out of every request's future.
            Err(bytes) => Box::pin(self.send_dialling(protocol, bytes, count)).await,
        }
    }

    /// Sends on a pooled link of `protocol` without waiting, when one is at hand; else hands
    /// the bytes back for [`Backend::send_as`] to dial a link.
    pub fn try_send_as(
        &self,
        protocol: Protocol,
        bytes: Bytes,
        count: usize,
    ) -> Result<oneshot::Receiver<Result<Replies, BackendError>>, Bytes> {
        let Some(link) = self.pooled_link(protocol) else { return Err(bytes) };
        let (job, receiver) = self.job(bytes, count);
        match link.jobs.send(job) {
            Ok(()) => {
                self.stats.requests.fetch_add(count as u64, Relaxed);
                Ok(receiver)
            }
            Err(mpsc::error::SendError(returned)) => Err(returned.bytes),
        }
    }

    /// A job for `count` encoded requests, and where its replies will arrive.
    fn job(&self, bytes: Bytes, count: usize) -> (Job, oneshot::Receiver<Result<Replies, BackendError>>) {
        let (reply, receiver) = oneshot::channel();
        let deadline = (!self.request_timeout.is_zero()).then(|| Instant::now() + self.request_timeout);
        let sent = service::metrics::enabled().then(Instant::now);
        (Job { bytes, count, reply, deadline, sent }, receiver)
    }

    /// [`Backend::send_as`] when no pooled link was at hand: dials one (or waits for the task
    /// dialling it).
    async fn send_dialling(
        &self,
        protocol: Protocol,
        bytes: Bytes,
        count: usize,
    ) -> oneshot::Receiver<Result<Replies, BackendError>> {
        self.stats.requests.fetch_add(count as u64, Relaxed);
        let (mut job, receiver) = self.job(bytes, count);
        // A link that died since it was pooled hands the job back; dial once more then.
        for _ in 0..2 {
            let link = match self.link(protocol).await {
                Ok(link) => link,
                Err(error) => {
                    self.stats.errors.fetch_add(count as u64, Relaxed);
                    let _ = job.reply.send(Err(error));
                    return receiver;
                }
            };
            match link.jobs.send(job) {
                Ok(()) => return receiver,
                Err(mpsc::error::SendError(returned)) => job = returned,
            }
        }
        self.stats.errors.fetch_add(count as u64, Relaxed);
        let _ = job.reply.send(Err(BackendError::Lost { addr: self.addr.clone() }));
        receiver
    }

    /// The live link of the next slot of `protocol`, if that slot has one.
    fn pooled_link(&self, protocol: Protocol) -> Option<Arc<Link>> {
        if self.removed.load(Relaxed) {
            return None;
        }
        let slots = self.slots_of(protocol);
        let slot = &slots[self.next_slot.load(Relaxed) % slots.len()];
        let link = slot.live_link();
        if link.is_some() {
            self.next_slot.fetch_add(1, Relaxed);
        }
        link
    }

    /// A live link of the next slot of `protocol`, dialled if needed.
    async fn link(&self, protocol: Protocol) -> Result<Arc<Link>, BackendError> {
        if self.removed.load(Relaxed) {
            return Err(BackendError::Removed { addr: self.addr.clone() });
        }
        let slots = self.slots_of(protocol);
        let slot = &slots[self.next_slot.fetch_add(1, Relaxed) % slots.len()];
        if let Some(link) = slot.live_link() {
            return Ok(link);
        }
        let _dialing = slot.dialing.lock().await;
        if let Some(link) = slot.live_link() {
            return Ok(link);
        }
        let link = Arc::new(self.dial(protocol).await?);
        if self.removed.load(Relaxed) {
            return Err(BackendError::Removed { addr: self.addr.clone() });
        }
        *lock(&slot.link) = Some(link.clone());
        Ok(link)
    }

    async fn dial(&self, protocol: Protocol) -> Result<Link, BackendError> {
        let connect = open(&self.addr, self.tls.as_ref(), protocol, self.password.as_deref());
        let (stream, leftover) = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(error)) => return Err(self.connect_error(describe(&error))),
            Err(_) => return Err(self.connect_error(format!("timed out after {:?}", self.connect_timeout))),
        };
        tracing::debug!(backend = %self.addr, ?protocol, "connected");
        let (reader, writer) = stream.into_split();
        let (jobs, job_queue) = mpsc::unbounded_channel();
        let (in_flight, in_flight_queue) = mpsc::unbounded_channel();
        let addr: Arc<str> = Arc::from(self.addr.as_str());
        tokio::spawn(write_jobs(writer, job_queue, in_flight, addr.clone()));
        let timeout = RequestTimeout {
            after: self.request_timeout,
            health: self.health.clone(),
            timeouts: self.stats.timeouts.clone(),
            latency: self.stats.latency.clone(),
        };
        tokio::spawn(read_replies(reader, leftover, in_flight_queue, addr, timeout));
        Ok(Link { jobs })
    }

    fn connect_error(&self, reason: String) -> BackendError {
        BackendError::Connect { addr: self.addr.clone(), reason }
    }
}

/// Dials `addr`, over TLS when `tls` is given, and opens the connection with [`handshake`].
pub(crate) async fn open(
    addr: &str,
    tls: Option<&Connector>,
    protocol: Protocol,
    password: Option<&str>,
) -> io::Result<(Stream, BytesMut)> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let stream = match tls {
        Some(tls) => tls.connect(addr, tcp).await?,
        None => Stream::Plain(tcp),
    };
    handshake(stream, protocol, password).await
}

/// Opens a connection so that it works with and without a greeting: a status line before
/// the answer (a greeting such as `+OK cache-A ready`) is skipped. A RESP2 link opens with
/// PING and waits for `+PONG`; a RESP3 link opens with `HELLO 3` and waits for its map. With
/// a `password`, `AUTH` goes first; its `+OK` is skipped like a greeting, and its error is
/// the handshake's. Returns any bytes read past the answer.
pub(crate) async fn handshake(
    mut stream: Stream,
    protocol: Protocol,
    password: Option<&str>,
) -> io::Result<(Stream, BytesMut)> {
    let mut opening = BytesMut::new();
    if let Some(password) = password {
        write::command(&mut opening, &[&b"AUTH"[..], password.as_bytes()]);
    }
    opening.extend_from_slice(match protocol {
        Protocol::Resp2 => b"PING\r\n",
        Protocol::Resp3 => b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
    });
    let name = match (password.is_some(), protocol) {
        (true, _) => "AUTH",
        (false, Protocol::Resp2) => "PING",
        (false, Protocol::Resp3) => "HELLO 3",
    };
    stream.write_all(&opening).await?;
    stream.flush().await?;
    let mut buf = BytesMut::with_capacity(256);
    loop {
        match Frame::parse(&mut buf, &reply_limits()) {
            Ok(Some(Frame::Simple(s))) if protocol == Protocol::Resp2 && &s[..] == b"PONG" => return Ok((stream, buf)),
            Ok(Some(Frame::Map(_))) if protocol == Protocol::Resp3 => return Ok((stream, buf)),
            Ok(Some(Frame::Simple(_))) => continue,
            Ok(Some(Frame::Error(e))) => {
                return Err(io::Error::other(format!("{name} refused: {}", String::from_utf8_lossy(&e))));
            }
            Ok(Some(other)) => return Err(io::Error::other(format!("unexpected reply to {name}: {other:?}"))),
            Ok(None) => {}
            Err(error) => return Err(io::Error::new(io::ErrorKind::InvalidData, error)),
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during handshake"));
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "greeting too long"));
        }
    }
}

/// The writer task: gathers queued jobs into one buffer and writes them together.
async fn write_jobs(
    mut writer: WriteHalf,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    in_flight: mpsc::UnboundedSender<InFlight>,
    addr: Arc<str>,
) {
    let mut out = BytesMut::with_capacity(MAX_WRITE_BATCH);
    loop {
        // The reader gone (the link failed or timed out): stop taking jobs, so the link
        // counts as dead and the next request dials a new one.
        let job = tokio::select! {
            job = jobs.recv() => job,
            _ = in_flight.closed() => None,
        };
        let Some(job) = job else { return };
        // Let the other ready tasks run first: clients woken by the same poll of the event
        // loop add their requests, and one write carries them all, as twemproxy's event loop
        // batches. At pipeline 1 this halves the proxy's syscalls per request.
        tokio::task::yield_now().await;
        let mut next = Some(job);
        while let Some(job) = next.take() {
            out.extend_from_slice(&job.bytes);
            // The reader learns of a job before its bytes can reach the server.
            let in_flight_job = InFlight { count: job.count, reply: job.reply, deadline: job.deadline, sent: job.sent };
            if in_flight.send(in_flight_job).is_err() {
                return;
            }
            if out.len() < MAX_WRITE_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        // A hung server stops reading: the write may never finish, so it ends with the reader.
        let written = tokio::select! {
            written = async { writer.write_all(&out).await?; writer.flush().await } => written,
            _ = in_flight.closed() => return,
        };
        if let Err(error) = written {
            tracing::warn!(backend = %addr, %error, "write failed; dropping the connection");
            return;
        }
        out.clear();
    }
}

/// The request timeout of a link, and the health record a timeout counts against.
struct RequestTimeout {
    after: Duration,
    health: Arc<Health>,
    /// The backend's timeout counter.
    timeouts: Arc<AtomicU64>,
    /// The backend's latency histogram.
    latency: Arc<service::metrics::Histogram>,
}

/// The reader task: parses replies and hands each job its own, in order.
async fn read_replies(
    mut reader: ReadHalf,
    mut buf: BytesMut,
    mut in_flight: mpsc::UnboundedReceiver<InFlight>,
    addr: Arc<str>,
    timeout: RequestTimeout,
) {
    let limits = reply_limits();
    let mut current: Option<(InFlight, Vec<usize>, usize)> = None;
    loop {
        // Count out complete replies to the jobs waiting for them.
        loop {
            if current.is_none() {
                match in_flight.try_recv() {
                    Ok(job) => current = Some(started(job)),
                    Err(_) => break,
                }
            }
            let Some((job, ends, offset)) = current.as_mut() else {
                break;
            };
            let len = match resp::frame_len(&buf[*offset..], &limits) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(backend = %addr, %error, "bad reply; dropping the connection");
                    return fail_all(current, &mut in_flight, lost(&addr));
                }
            };
            *offset += len;
            ends.push(*offset);
            if ends.len() == job.count {
                if let Some((job, ends, offset)) = current.take() {
                    // Copied out, so the read buffer stays unshared and is reused for the
                    // next read instead of being reallocated.
                    let replies = Replies { buf: Bytes::copy_from_slice(&buf[..offset]), ends };
                    buf.advance(offset);
                    if let Some(sent) = job.sent {
                        timeout.latency.record(sent.elapsed());
                    }
                    let _ = job.reply.send(Ok(replies));
                }
            }
        }
        if current.is_none() && !buf.is_empty() {
            // Bytes nobody asked for: the stream is out of step.
            if let Ok(job) = in_flight.try_recv() {
                current = Some(started(job));
                continue;
            }
            tracing::warn!(backend = %addr, "unexpected bytes from server; dropping the connection");
            return fail_all(current, &mut in_flight, lost(&addr));
        }
        // The oldest job in flight is `current`: its deadline is the link's.
        let deadline = current.as_ref().and_then(|(job, _, _)| job.deadline);
        buf.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            // Learn of a new job at once, to watch its deadline; `None`: nothing in flight
            // and the writer gone, so the link was dropped.
            job = in_flight.recv(), if current.is_none() => match job {
                Some(job) => {
                    current = Some(started(job));
                    continue;
                }
                None => return,
            },
            _ = sleep_until(deadline) => {
                tracing::warn!(
                    backend = %addr,
                    timeout_ms = timeout.after.as_millis() as u64,
                    "request timed out; dropping the connection"
                );
                timeout.health.note_failure();
                timeout.timeouts.fetch_add(1, Relaxed);
                let error = BackendError::Timeout { addr: addr.to_string(), after: timeout.after };
                return fail_all(current, &mut in_flight, error);
            }
        };
        match read {
            Ok(0) | Err(_) => {
                tracing::debug!(backend = %addr, "connection closed");
                return fail_all(current, &mut in_flight, lost(&addr));
            }
            Ok(_) => {}
        }
    }
}

/// The most reply ends a job's list starts with room for; a larger job grows it.
const MAX_ENDS_ROOM: usize = 1024;

/// A job whose replies are about to be counted out: room for the end of each, so a pipeline's
/// list is allocated once instead of regrown (a `Vec` push from empty regrew it three times
/// for 16 replies: 2.5% of the proxy's instructions at pipeline 16, by callgrind).
fn started(job: InFlight) -> (InFlight, Vec<usize>, usize) {
    let ends = Vec::with_capacity(job.count.min(MAX_ENDS_ROOM));
    (job, ends, 0)
}

/// Sleeps until `deadline`; never without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn lost(addr: &str) -> BackendError {
    BackendError::Lost { addr: addr.to_string() }
}

/// Answers every job of a failed link with `error`, and refuses new ones.
fn fail_all(
    current: Option<(InFlight, Vec<usize>, usize)>,
    in_flight: &mut mpsc::UnboundedReceiver<InFlight>,
    error: BackendError,
) {
    if let Some((job, _, _)) = current {
        let _ = job.reply.send(Err(error.clone()));
    }
    in_flight.close();
    while let Ok(job) = in_flight.try_recv() {
        let _ = job.reply.send(Err(error.clone()));
    }
}

/// Replies are trusted more than requests but still bounded.
pub(crate) fn reply_limits() -> Limits {
    Limits { max_inline_len: Limits::DEFAULT_MAX_BULK_LEN, ..Limits::default() }
}

pub(crate) fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => error.to_string(),
        kind => kind.to_string(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
