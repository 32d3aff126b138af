//! Dedicated connections: one TCP connection to one server, owned by one client, for what
//! must never travel on the shared pipelined links of [`crate::backend`]: a blocking command
//! (`BLPOP`, `XREAD BLOCK`), a transaction under `WATCH`, and subscriptions.
//!
//! A [`Dedicated`] is plain request/reply. For subscriptions it becomes a [`PushLink`]: the
//! client keeps the write half, and a reader task turns everything the server sends into
//! [`Push`]es on the client's channel.
//!
//! Idle connections go back to a small per-server [`Pool`] only after a complete reply (as
//! pingora's pool does); one that errored, or that received bytes or EOF while idle, is
//! dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp::Frame;
use service::tls::{Connector, Stream, WriteHalf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backend::{describe, open, reply_limits, BackendError};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Idle dedicated connections kept per server; more are closed.
pub const MAX_IDLE_PER_SERVER: usize = 4;

/// One connection to one server, used by one client at a time.
#[derive(Debug)]
pub struct Dedicated {
    addr: Arc<str>,
    stream: Stream,
    /// Bytes read but not yet handed out as a reply.
    buf: BytesMut,
}

impl Dedicated {
    /// Dials `addr` within `timeout` and greets it with PING, as the shared links do, so it
    /// works with our server's greeting and with redis-server; over TLS with `tls`.
    pub async fn connect(
        addr: &str,
        timeout: Duration,
        password: Option<&str>,
        tls: Option<&Connector>,
    ) -> Result<Dedicated, BackendError> {
        let error = |reason| BackendError::Connect { addr: addr.to_string(), reason };
        // RESP2: replies pass through unchanged to RESP2 and RESP3 clients alike (a RESP3
        // parser reads RESP2); subscriber messages reach RESP3 clients as arrays.
        let connect = open(addr, tls, resp::Protocol::Resp2, password);
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok((stream, buf))) => Ok(Dedicated { addr: Arc::from(addr), stream, buf }),
            Ok(Err(e)) => Err(error(describe(&e))),
            Err(_) => Err(error(format!("timed out after {timeout:?}"))),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn lost(&self) -> BackendError {
        BackendError::Lost { addr: self.addr.to_string() }
    }

    /// Writes encoded requests.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        let written = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        written.await.map_err(|_| self.lost())
    }

    /// Reads one complete reply, its exact bytes.
    pub async fn reply(&mut self) -> Result<Bytes, BackendError> {
        loop {
            match resp::frame_len(&self.buf, &reply_limits()) {
                Ok(Some(len)) => return Ok(self.buf.split_to(len).freeze()),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(backend = %self.addr, %error, "bad reply on a dedicated connection");
                    return Err(self.lost());
                }
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(self.lost()),
                Ok(_) => {}
            }
        }
    }

    /// Sends `count` encoded requests and reads their replies; the last one's bytes.
    pub async fn call(&mut self, bytes: &[u8], count: usize) -> Result<Bytes, BackendError> {
        self.send(bytes).await?;
        let mut last = Bytes::new();
        for _ in 0..count {
            last = self.reply().await?;
        }
        Ok(last)
    }

    /// Whether the connection can serve another client: nothing unread, nothing arrived,
    /// not closed by the server.
    fn is_reusable(&mut self) -> bool {
        self.buf.is_empty() && self.stream.is_quiet()
    }

    /// Turns the connection into a subscriber link: everything the server sends arrives as
    /// [`Push`]es tagged `link` on `pushes`, and the link's owner keeps the write half.
    pub fn into_push_link(self, link: usize, pushes: mpsc::Sender<Push>) -> PushLink {
        let (mut reader, writer) = self.stream.into_split();
        let (addr, mut buf) = (self.addr, self.buf);
        let task_addr = addr.clone();
        let task = tokio::spawn(async move {
            loop {
                loop {
                    match Frame::parse(&mut buf, &reply_limits()) {
                        Ok(Some(frame)) => {
                            if pushes.send(Push { link, frame: Some(frame) }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(backend = %task_addr, %error, "bad push on a subscriber connection");
                            let _ = pushes.send(Push { link, frame: None }).await;
                            return;
                        }
                    }
                }
                buf.reserve(READ_CHUNK);
                match reader.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = pushes.send(Push { link, frame: None }).await;
                        return;
                    }
                    Ok(_) => {}
                }
            }
        });
        PushLink { addr, writer, task }
    }
}

/// What a subscriber connection's reader hands its client.
#[derive(Debug)]
pub struct Push {
    /// Which of the client's links it came from.
    pub link: usize,
    /// The frame; `None` when the connection closed or broke.
    pub frame: Option<Frame>,
}

/// A subscriber connection: its write half, and the task reading it. Dropping it closes
/// the connection.
#[derive(Debug)]
pub struct PushLink {
    addr: Arc<str>,
    writer: WriteHalf,
    task: JoinHandle<()>,
}

impl PushLink {
    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Writes encoded requests; their replies arrive as pushes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        let written = async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        };
        written.await.map_err(|_| BackendError::Lost { addr: self.addr.to_string() })
    }
}

impl Drop for PushLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Idle dedicated connections by server address, a few per server.
#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<Dedicated>>>,
    /// Sent as AUTH when a connection opens (`--server-password`).
    password: Option<Arc<str>>,
    /// TLS to the servers (`--server-tls`).
    tls: Option<Connector>,
}

impl Pool {
    /// An empty pool whose connections authenticate with `password`.
    pub fn new(password: Option<Arc<str>>) -> Self {
        Self { idle: Mutex::default(), password, tls: None }
    }

    /// The same pool, dialling its servers over TLS when `tls` is given.
    pub fn with_tls(mut self, tls: Option<Connector>) -> Self {
        self.tls = tls;
        self
    }

    /// The TLS new connections speak, if any.
    pub fn tls(&self) -> Option<&Connector> {
        self.tls.as_ref()
    }

    /// The password new connections give their server.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// An idle connection to `addr` that is still good, or a new one.
    pub async fn checkout(&self, addr: &str, timeout: Duration) -> Result<Dedicated, BackendError> {
        loop {
            let idle = self.lock().get_mut(addr).and_then(Vec::pop);
            match idle {
                Some(mut conn) => {
                    if conn.is_reusable() {
                        return Ok(conn);
                    }
                }
                None => return Dedicated::connect(addr, timeout, self.password(), self.tls()).await,
            }
        }
    }

    /// Gives back a connection whose last reply was read completely.
    pub fn checkin(&self, mut conn: Dedicated) {
        if !conn.is_reusable() {
            return;
        }
        let mut idle = self.lock();
        let list = idle.entry(conn.addr.to_string()).or_default();
        if list.len() < MAX_IDLE_PER_SERVER {
            list.push(conn);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Dedicated>>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
