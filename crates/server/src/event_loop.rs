//! The server's event loop: Redis's `ae` shape on `mio`.
//!
//! One thread polls every client socket. Each round it reads what arrived on every ready
//! socket and runs those commands, and only then writes the replies, one `send` per client
//! (Redis's `beforeSleep`). Commands never wait on I/O (the store is in memory), so there is
//! no task to schedule per request, and the loop itself decides when it blocks, which
//! coalescing needs.
//!
//! Coalescing ([`service::coalesce`]): when a round found several sockets ready, the loop
//! sleeps [`Config::coalesce`] (10 µs by default) before polling without blocking, so the
//! clients' next requests cost them no wake-up of a blocked server. Measured with
//! redis-benchmark (50 clients, GET and SET) against redis-server on this 2-core machine:
//! 0.95-1.02x at pipeline 1 without the pause (as with tokio tasks), 1.10-1.18x with it; at
//! pipeline 16 the pause lifted GET from about 1.2x to 1.7x.
//!
//! Edge-triggered: a read shorter than the space offered means the socket was drained (a new
//! arrival raises a new event), so a request costs one `recv` and one `send`. A client whose
//! replies the socket will not take is not read from until they drain, so a client that
//! pipelines without reading holds at most [`OUTPUT_HIGH_WATER`] of replies plus one request.
//!
//! The greeting ([`service::greeting`]) is not written at accept: a new client's greeting is
//! due [`Config::greeting_delay`] later. Its first bytes settle it earlier: the greeting goes
//! out before the replies to an inline first request, and never to a client that opened with
//! `*`. Due greetings wait in accept order, so the poll's timeout is the oldest one's deadline.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use service::tls::Socket;
use service::{BUFFER_KEEP, READ_CHUNK};

use crate::cmd::{self, Flow};
use crate::{Config, Ctx};

/// Replies buffered for one client before its remaining requests wait for them to be sent.
const OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// Events taken per poll.
const EVENTS: usize = 1024;
/// Pause before accepting again after an accept error (such as running out of descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// Stops an event loop from another thread.
#[derive(Clone)]
pub struct Stopper(Arc<Waker>);

impl Stopper {
    /// Asks the loop to stop accepting, answer the requests its clients already sent, close
    /// them and return (within [`Config::shutdown_timeout`]).
    pub fn stop(&self) {
        if let Err(error) = self.0.wake() {
            tracing::warn!(%error, "could not wake the event loop to stop it");
        }
    }
}

/// One client's connection.
struct Conn<'a> {
    /// Plain, or TLS under `--tls-cert`: reads and writes go through the session.
    stream: Socket<TcpStream>,
    /// Received bytes not yet parsed into a whole request.
    input: BytesMut,
    /// Progress through a partial request in `input`, so a large one is not rescanned.
    parser: resp::RequestParser,
    /// Replies not yet sent.
    output: BytesMut,
    /// Already in the round's list of connections with replies to send.
    queued: bool,
    /// The socket would not take more: wait for a writable event before sending or reading.
    blocked: bool,
    /// Close once the replies are sent (QUIT, a protocol error, the client's end of input).
    closing: bool,
    /// The client shut down its side: read to the end rather than trusting a short read, as
    /// no further event will come.
    hung_up: bool,
    /// When the greeting is due if the client stays silent; `None` once it is settled (sent,
    /// never to be sent, or greetings off).
    greeting_due: Option<Instant>,
    /// Its name, id and protocol.
    client: service::common::ClientState,
    /// When the client last sent bytes or took replies (for the idle timeout).
    active: Instant,
    /// Refused by protected mode over TLS: once the handshake is done it gets Redis's
    /// `-DENIED` (encrypted, as Redis sends it) and is closed; it runs no command.
    denied: bool,
    /// Counts the client as connected while it lives.
    _client: service::ClientGuard<'a>,
}

/// An event loop and the clients it serves.
pub struct EventLoop<'a> {
    ctx: &'a Ctx,
    config: &'a Config,
    poll: Poll,
    listener: TcpListener,
    /// Clients by token.
    conns: Slots<Conn<'a>>,
    /// Connections with replies to send at the end of this round.
    pending: Vec<usize>,
    /// Shared scratch space for reads, so idle clients hold no read buffer.
    scratch: Box<[u8]>,
    /// Whether this loop runs the expiry sweep (one loop of several does).
    sweeps: bool,
    /// When accepting resumes after an accept error.
    accept_paused_until: Option<Instant>,
    /// Greetings that may fall due, in deadline order: (deadline, slot). An entry whose
    /// client settled its greeting or left is skipped when its deadline comes.
    greetings: VecDeque<(Instant, usize)>,
    /// `+OK <name> ready\r\n`.
    greeting: Vec<u8>,
    /// Shutting down: no new clients; each client's input is read to what the socket holds
    /// and answered, then closed. The loop returns when none is left or at this deadline.
    draining_until: Option<Instant>,
}

impl<'a> EventLoop<'a> {
    /// A loop accepting on `listener` (every loop of a server may share one listening socket).
    pub fn new(
        ctx: &'a Ctx,
        config: &'a Config,
        listener: std::net::TcpListener,
        sweeps: bool,
    ) -> io::Result<(Self, Stopper)> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let event_loop = EventLoop {
            ctx,
            config,
            poll,
            listener,
            conns: Slots::default(),
            pending: Vec::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            sweeps,
            accept_paused_until: None,
            greetings: VecDeque::new(),
            greeting: {
                let mut line = BytesMut::new();
                resp::write::simple(&mut line, format!("OK {} ready", ctx.name).as_bytes());
                line.to_vec()
            },
            draining_until: None,
        };
        Ok((event_loop, Stopper(waker)))
    }

    /// Serves clients until stopped, then answers the requests they already sent (see
    /// [`Stopper::stop`]) and returns.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS);
        let mut next_sweep = Instant::now() + crate::SWEEP_INTERVAL;
        let mut sweep_round = 0usize;
        if !self.config.coalesce.is_zero() {
            service::coalesce::precise_sleeps();
        }
        loop {
            let mut timeout = self.timeout(next_sweep);
            if timeout > Duration::ZERO
                && !self.config.coalesce.is_zero()
                && events.iter().count() >= service::coalesce::BUSY
            {
                // Several clients were active: let their next requests gather off the wait
                // queue (see the module's doc), then take them all without blocking.
                std::thread::sleep(self.config.coalesce);
                timeout = Duration::ZERO;
            }
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => self.start_draining(),
                    LISTENER => self.accept_all(),
                    Token(slot) => {
                        if event.is_writable() {
                            self.on_writable(slot);
                        }
                        if event.is_read_closed() || event.is_error() {
                            self.note_hang_up(slot);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.on_readable(slot);
                        }
                    }
                }
            }
            self.greet_silent_clients();
            self.send_pending();
            let now = Instant::now();
            if let Some(deadline) = self.draining_until {
                if self.conns.is_empty() {
                    return Ok(());
                }
                if now >= deadline {
                    tracing::warn!(
                        clients = self.conns.len(),
                        "shutdown timeout reached; closing the remaining clients"
                    );
                    return Ok(());
                }
            }
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_paused_until = None;
                self.accept_all();
            }
            if now >= next_sweep {
                next_sweep = now + crate::SWEEP_INTERVAL;
                self.close_idle(now);
                if self.sweeps {
                    crate::sweep_round(&self.ctx.store, sweep_round);
                    sweep_round += 1;
                }
            }
        }
    }

    /// How long the next poll may wait: until the next timer, or not at all when replies are
    /// still due.
    fn timeout(&self, next_sweep: Instant) -> Duration {
        if !self.pending.is_empty() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut until = next_sweep;
        if let Some(paused) = self.accept_paused_until {
            until = until.min(paused);
        }
        if let Some(&(due, _)) = self.greetings.front() {
            until = until.min(due);
        }
        if let Some(deadline) = self.draining_until {
            until = until.min(deadline);
        }
        until.saturating_duration_since(now)
    }

    /// Stops accepting and lets every client finish: what it already sent is read and
    /// answered, then it is closed.
    fn start_draining(&mut self) {
        if self.draining_until.is_some() {
            return;
        }
        // Clients already connected but not yet accepted have sent their requests too: a
        // listener closed on them would reset their connections.
        self.accept_paused_until = None;
        self.accept_all();
        self.draining_until = Some(Instant::now() + self.config.shutdown_timeout);
        if let Err(error) = self.poll.registry().deregister(&mut self.listener) {
            tracing::debug!(%error, "could not stop watching the listener");
        }
        let slots: Vec<usize> = self.conns.occupied().collect();
        for slot in slots {
            // Bytes that arrived before the stop raise no new event: read them now.
            self.on_readable(slot);
        }
    }

    /// Accepts every waiting client.
    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() || self.draining_until.is_some() {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // Edge-triggered: clients already waiting raise no new event, so retry on
                    // a timer.
                    tracing::warn!(%error, "accept failed; retrying in {ACCEPT_RETRY:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Registers a new client, or refuses it when the server is full.
    fn admit(&mut self, mut stream: TcpStream, peer: std::net::SocketAddr) {
        let tls = self.config.tls.is_some();
        if self.ctx.stats.clients() >= self.config.max_clients {
            tracing::warn!(%peer, max_clients = self.config.max_clients, "refusing client: max number of clients reached");
            // A TLS client expects a handshake, not plain text: it is closed with nothing
            // sent, as Redis does (a handshake per refused client would let a flood cost
            // CPU past the bound).
            if !tls {
                let mut refusal = BytesMut::new();
                resp::write::error(&mut refusal, b"ERR max number of clients reached");
                // Best effort: a fresh socket takes a few bytes without blocking.
                let _ = stream.write(&refusal);
            }
            return;
        }
        let denied = !self.ctx.auth.admits(&peer);
        if denied {
            tracing::debug!(%peer, "refusing client: protected mode (no --requirepass) admits loopback clients only");
            if !tls {
                // Best effort, as above.
                let _ = stream.write(&service::auth::denied_reply());
                return;
            }
            // Over TLS the refusal waits for the handshake (see `run_requests`).
        }
        let _ = stream.set_nodelay(true);
        let session = match self.config.tls.as_ref().map(service::tls::Acceptor::session).transpose() {
            Ok(session) => session,
            Err(error) => {
                tracing::warn!(%peer, %error, "could not start a TLS session");
                return;
            }
        };
        let slot = self.conns.vacant();
        if let Err(error) =
            self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)
        {
            tracing::warn!(%peer, %error, "could not watch a client socket");
            return;
        }
        let mut conn = Conn {
            stream: match session {
                Some(session) => Socket::tls(stream, session),
                None => Socket::Plain(stream),
            },
            input: BytesMut::new(),
            parser: resp::RequestParser::new(),
            output: BytesMut::new(),
            queued: false,
            blocked: false,
            closing: false,
            hung_up: false,
            greeting_due: None,
            client: service::common::ClientState::new(),
            active: Instant::now(),
            denied,
            _client: self.ctx.stats.client_connected(),
        };
        if self.config.greeting && !denied {
            let due = Instant::now() + self.config.greeting_delay;
            conn.greeting_due = Some(due);
            self.greetings.push_back((due, slot));
        }
        self.conns.fill(slot, conn);
        // Bytes sent with the connection raise no further edge: look now.
        self.on_readable(slot);
    }

    /// Reads what arrived and runs the whole requests in it.
    fn on_readable(&mut self, slot: usize) {
        loop {
            let Some(conn) = self.conns.get(slot) else { return };
            if conn.blocked || conn.closing || conn.output.len() >= OUTPUT_HIGH_WATER {
                // Read again once the replies are sent (see `on_writable`).
                return;
            }
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    // The client sent all it will: answer what it asked, then close.
                    conn.closing = true;
                    conn.input = BytesMut::new();
                    conn.parser.reset();
                    return self.queue(slot);
                }
                Ok(n) => {
                    conn.active = Instant::now();
                    conn.input.extend_from_slice(&self.scratch[..n]);
                    // Shutting down, a short read is not trusted either: no event may follow.
                    let drain = conn.hung_up || self.draining_until.is_some();
                    // TLS records the socket did not take yet (see `send`).
                    let flush = conn.stream.wants_write();
                    self.run_requests(slot);
                    if flush {
                        self.queue(slot);
                    }
                    if n < self.scratch.len() && !drain {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if conn.denied {
                        // The handshake may have just ended: time for the refusal.
                        return self.run_requests(slot);
                    }
                    if self.draining_until.is_some() {
                        // Everything the client sent before the stop is read: answer, close.
                        conn.closing = true;
                        self.queue(slot);
                    } else if conn.stream.wants_write() {
                        // TLS handshake records the socket did not take yet (see `send`).
                        self.queue(slot);
                    }
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    tracing::debug!(%error, "client connection ended");
                    return self.close(slot);
                }
            }
        }
    }

    /// Greets the clients that stayed silent until their greeting fell due.
    fn greet_silent_clients(&mut self) {
        let now = Instant::now();
        while let Some(&(due, slot)) = self.greetings.front() {
            if due > now {
                return;
            }
            self.greetings.pop_front();
            let Some(conn) = self.conns.get(slot) else { continue };
            // A later client in a reused slot has a later deadline of its own.
            if conn.greeting_due == Some(due) && conn.stream.is_handshaking() {
                // A TLS client's wait counts from the end of its handshake: a client that
                // speaks first must never get the greeting as the reply to its first request.
                // (At least a millisecond on, so this loop moves past the entry.)
                let due = now + self.config.greeting_delay.max(Duration::from_millis(1));
                conn.greeting_due = Some(due);
                self.greetings.push_back((due, slot));
            } else if conn.greeting_due == Some(due) {
                conn.greeting_due = None;
                conn.output.extend_from_slice(&self.greeting);
                self.queue(slot);
            }
        }
    }

    /// Remembers that a client shut down its side of the connection.
    fn note_hang_up(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get(slot) {
            conn.hung_up = true;
        }
    }

    /// Runs the whole requests in a client's input, until its replies reach the high water.
    fn run_requests(&mut self, slot: usize) {
        let Some(conn) = self.conns.get(slot) else { return };
        if conn.denied {
            // What it sends is never run; the refusal goes out once the session is up.
            conn.input = BytesMut::new();
            if !conn.stream.is_handshaking() && !conn.closing {
                conn.output.extend_from_slice(&service::auth::denied_reply());
                conn.closing = true;
            }
            // Handshake records the socket did not take yet, or the refusal.
            if conn.closing || conn.stream.wants_write() {
                self.queue(slot);
            }
            return;
        }
        if let (Some(_), Some(&first)) = (conn.greeting_due, conn.input.first()) {
            // The first bytes settle it: a person typing is greeted before the first reply.
            conn.greeting_due = None;
            if service::greeting::greets(first) {
                conn.output.extend_from_slice(&self.greeting);
            }
        }
        while conn.output.len() < OUTPUT_HIGH_WATER {
            match conn.parser.parse(&mut conn.input, &self.config.limits) {
                Ok(Some(request)) => {
                    if cmd::execute(self.ctx, &mut conn.client, &request, &mut conn.output) == Flow::Quit {
                        conn.closing = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // Answered after the replies already due; then the connection ends.
                    resp::write::error(&mut conn.output, error.reply_text().as_bytes());
                    conn.closing = true;
                    break;
                }
            }
        }
        if conn.closing || (conn.input.is_empty() && conn.input.capacity() > BUFFER_KEEP) {
            conn.input = BytesMut::new();
            conn.parser.reset();
        }
        if !conn.output.is_empty() || conn.closing {
            self.queue(slot);
        }
    }

    /// Closes the clients idle for longer than [`Config::idle_timeout`], silently, as Redis
    /// does; not those whose replies wait for the socket (the client is reading slowly, not
    /// idle). Called at every sweep tick: a client goes at most one tick past its timeout.
    fn close_idle(&mut self, now: Instant) {
        let timeout = self.config.idle_timeout;
        if timeout.is_zero() {
            return;
        }
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, conn)| !conn.blocked && now.saturating_duration_since(conn.active) > timeout)
            .map(|(slot, _)| slot)
            .collect();
        for slot in idle {
            tracing::debug!(?timeout, "closing an idle client");
            self.close(slot);
        }
    }

    /// Lists a connection for the end-of-round send.
    fn queue(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get(slot) {
            if !conn.queued && !conn.blocked {
                conn.queued = true;
                self.pending.push(slot);
            }
        }
    }

    /// Sends the replies of this round.
    fn send_pending(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        for &slot in &pending {
            if let Some(conn) = self.conns.get(slot) {
                conn.queued = false;
                self.send(slot, false);
            }
        }
        // Keep the list's allocation for the next round (sends may have queued new entries).
        pending.clear();
        if self.pending.is_empty() {
            self.pending = pending;
        }
    }

    /// The socket takes bytes again: send what waited, then run and read what waited.
    fn on_writable(&mut self, slot: usize) {
        let Some(conn) = self.conns.get(slot) else { return };
        if !conn.blocked {
            return;
        }
        conn.blocked = false;
        self.send(slot, true);
    }

    /// Writes a client's replies; once they are all out, resumes its input if it was held
    /// back (`resume`, or replies at the high water).
    fn send(&mut self, slot: usize, resume: bool) {
        let Some(conn) = self.conns.get(slot) else { return };
        let resume = resume || conn.output.len() >= OUTPUT_HIGH_WATER;
        while !conn.output.is_empty() {
            match conn.stream.write(&conn.output) {
                Ok(n) => {
                    conn.output.advance(n);
                    conn.active = Instant::now();
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    conn.blocked = true;
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    tracing::debug!(%error, "client connection ended");
                    return self.close(slot);
                }
            }
        }
        // TLS may hold encrypted bytes the socket has not taken (a no-op on plain TCP).
        match conn.stream.flush() {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                conn.blocked = true;
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "client connection ended");
                return self.close(slot);
            }
        }
        if conn.closing {
            return self.close(slot);
        }
        if conn.output.capacity() > BUFFER_KEEP {
            conn.output = BytesMut::new();
        }
        if resume {
            // Requests and bytes left waiting while the replies were full.
            self.run_requests(slot);
            self.on_readable(slot);
        }
    }

    /// Drops a client: its socket closes and leaves the poll.
    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns.take(slot) {
            let _ = self.poll.registry().deregister(conn.stream.get_mut());
        }
    }
}

/// A table whose indexes are poll tokens: freed slots are reused, so tokens stay small.
struct Slots<T> {
    items: Vec<Option<T>>,
    /// Indexes of empty slots.
    free: Vec<usize>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { items: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slots<T> {
    /// An empty slot to [`fill`](Self::fill); it stays free until filled.
    fn vacant(&self) -> usize {
        self.free.last().copied().unwrap_or(self.items.len())
    }

    /// Puts `item` in the slot [`vacant`](Self::vacant) gave.
    fn fill(&mut self, slot: usize, item: T) {
        if self.free.last() == Some(&slot) {
            self.free.pop();
        } else {
            self.items.push(None);
        }
        self.items[slot] = Some(item);
    }

    /// The item in `slot`, if any.
    fn get(&mut self, slot: usize) -> Option<&mut T> {
        self.items.get_mut(slot).and_then(Option::as_mut)
    }

    /// Whether every slot is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots holding an item.
    fn len(&self) -> usize {
        self.items.len() - self.free.len()
    }

    /// The indexes of the slots holding an item.
    fn occupied(&self) -> impl Iterator<Item = usize> + '_ {
        self.iter().map(|(slot, _)| slot)
    }

    /// The occupied slots and their items.
    fn iter(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        self.items.iter().enumerate().filter_map(|(slot, item)| item.as_ref().map(|item| (slot, item)))
    }

    /// Empties `slot`, returning what it held.
    fn take(&mut self, slot: usize) -> Option<T> {
        let item = self.items.get_mut(slot).and_then(Option::take);
        if item.is_some() {
            self.free.push(slot);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn slots_reuse_freed_indexes_and_keep_the_others() {
        let mut slots = Slots::default();
        for item in ["a", "b", "c"] {
            let slot = slots.vacant();
            slots.fill(slot, item);
        }
        assert_eq!(slots.take(1), Some("b"));
        assert_eq!(slots.take(1), None);
        assert_eq!(slots.get(1), None);
        assert_eq!(slots.vacant(), 1);
        slots.fill(1, "d");
        assert_eq!(slots.vacant(), 3);
        assert_eq!([0, 1, 2].map(|slot| slots.get(slot).copied()), [Some("a"), Some("d"), Some("c")]);
        assert_eq!(slots.get(7), None);
    }
}
