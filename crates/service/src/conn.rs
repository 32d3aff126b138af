//! A client connection: bounded reads, requests in batches, one flush per batch.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use resp::{Limits, ProtocolError, Request, RequestParser};

use crate::tls::Stream;
use crate::Stopping;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes asked of the socket per read.
pub const READ_CHUNK: usize = 16 * 1024;

/// A buffer that grew past this for a large request or reply is given back once empty, so
/// thousands of idle clients do not each keep the largest buffer they ever needed.
pub const BUFFER_KEEP: usize = 64 * 1024;

/// The most requests handed out in one batch: replies to a long pipeline are flushed in
/// parts, so the reply buffer stays bounded too.
const MAX_BATCH: usize = 1024;

/// The reply bytes a batch should stay under: after a batch with large replies, the next
/// batch is cut to this many bytes' worth of such replies (at least one request).
const REPLY_BUDGET: usize = 1024 * 1024;

/// Bytes of requests read ahead while the client waits on a long request ([`ClientConn::closed`]).
pub const MAX_UNREAD_WHILE_WAITING: usize = 1024 * 1024;

/// The most room a batch's reply buffer starts with; larger replies grow it as usual.
const OUTPUT_START_ROOM: usize = 16 * 1024;

/// Requests in a connection's first batch, before its replies have shown their size.
const FIRST_BATCH: usize = 64;

/// Shutting down, a client whose socket stays quiet this long has sent all it had sent.
const DRAIN_QUIET: Duration = Duration::from_millis(20);

/// A batch of pipelined requests, in the order they arrived.
pub type Batch = Vec<Request>;

/// One client's connection.
#[derive(Debug)]
pub struct ClientConn {
    stream: Stream,
    input: BytesMut,
    /// Progress through a partial request in `input`, so a large one is not rescanned.
    parser: RequestParser,
    output: BytesMut,
    limits: Limits,
    /// A protocol error found after requests that are still to be answered.
    pending_error: Option<ProtocolError>,
    /// Requests in the next batch at most: [`FIRST_BATCH`] at first, then up to
    /// [`MAX_BATCH`] as the replies' size allows.
    batch_limit: usize,
    /// Requests handed out since the last flush.
    unanswered: usize,
    /// Requests in the last batch and bytes of the last flush: the room a new batch list and
    /// reply buffer start with, so a pipeline's are allocated once instead of regrown from
    /// empty (both are given back whenever the client waits).
    last_batch: usize,
    last_flush: usize,
    /// Fires when the process shuts down.
    stopping: Stopping,
    /// The process is shutting down: no more waiting for input, only what already arrived.
    draining: bool,
    /// How long to wait for a request before closing the connection; zero: for ever.
    idle_timeout: Duration,
}

impl ClientConn {
    /// Wraps an accepted stream, plain TCP or TLS; once `stopping` fires, the connection
    /// hands out only the requests already received (see [`ClientConn::next_batch`]).
    pub fn new(stream: impl Into<Stream>, limits: Limits, stopping: Stopping) -> Self {
        Self {
            stream: stream.into(),
            // Allocated on first use and given back whenever the client goes quiet
            // (`wait_for_input`): an idle client holds no buffer.
            input: BytesMut::new(),
            parser: RequestParser::new(),
            output: BytesMut::new(),
            limits,
            pending_error: None,
            batch_limit: FIRST_BATCH,
            unanswered: 0,
            last_batch: 0,
            last_flush: 0,
            stopping,
            draining: false,
            idle_timeout: Duration::ZERO,
        }
    }

    /// Closes the connection after `timeout` without input (Redis's `timeout`); zero, the
    /// default, never does.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The reply buffer: write replies here with [`resp::write`], then [`ClientConn::flush`].
    pub fn output(&mut self) -> &mut BytesMut {
        &mut self.output
    }

    /// Reads what the client sent, once, into the input buffer (cancel safe: a read that does
    /// not finish loses nothing). `Ok(false)` when the client closed the connection.
    pub async fn read_input(&mut self) -> io::Result<bool> {
        Ok(read_when_ready(&mut self.stream, &mut self.input, &mut self.output).await? > 0)
    }

    /// The first byte received and not yet handed out as a request.
    pub fn first_input_byte(&self) -> Option<u8> {
        self.input.first().copied()
    }

    /// Waits for the next batch: every complete request already received (at least one).
    ///
    /// `Ok(false)` when the client closed the connection, sent nothing for the idle timeout,
    /// or when the process is shutting down and every complete request the socket had
    /// already received has been handed out. A protocol error is answered with
    /// `-ERR Protocol error: ...` after the replies already due, and ends the connection
    /// (`Err` with kind `InvalidData`).
    pub async fn next_batch(&mut self, batch: &mut Batch) -> io::Result<bool> {
        batch.clear();
        if let Some(error) = self.pending_error.take() {
            return Box::pin(self.fail(error)).await;
        }
        loop {
            while batch.len() < self.batch_limit {
                match self.parser.parse(&mut self.input, &self.limits) {
                    Ok(Some(request)) => {
                        if batch.capacity() == 0 {
                            batch.reserve(self.last_batch.clamp(1, self.batch_limit));
                        }
                        batch.push(request);
                    }
                    Ok(None) => break,
                    Err(error) if batch.is_empty() => return Box::pin(self.fail(error)).await,
                    Err(error) => {
                        // Answer what came before the bad bytes first.
                        self.pending_error = Some(error);
                        return Ok(true);
                    }
                }
            }
            if !batch.is_empty() {
                if self.input.is_empty() && self.input.capacity() > BUFFER_KEEP {
                    self.input = BytesMut::new();
                }
                crate::coalesce::note_batch();
                self.unanswered += batch.len();
                self.last_batch = batch.len();
                if self.output.capacity() == 0 {
                    self.output.reserve(self.last_flush.min(OUTPUT_START_ROOM));
                }
                return Ok(true);
            }
            // About to wait: an idle client keeps no room for requests either (a new batch
            // costs one small allocation; an idle one would keep it for its whole life).
            if batch.capacity() > 0 {
                *batch = Vec::new();
            }
            let read = if self.draining {
                self.input.reserve(READ_CHUNK);
                // Take what the socket already holds. Not `try_read`: it trusts readiness
                // the runtime may not have polled yet, and would call a full socket empty.
                // Boxed, as every rare wait here: the future of `next_batch` is part of every
                // idle client's task.
                match Box::pin(tokio::time::timeout(DRAIN_QUIET, self.stream.read_buf(&mut self.input))).await {
                    Ok(read) => read?,
                    Err(_) => return Ok(false),
                }
            } else {
                tokio::select! {
                    read = read_when_ready(&mut self.stream, &mut self.input, &mut self.output) => read?,
                    _ = self.stopping.wait() => {
                        self.draining = true;
                        continue;
                    }
                    _ = idle(self.idle_timeout) => {
                        tracing::debug!(timeout = ?self.idle_timeout, "closing an idle client");
                        return Ok(false);
                    }
                }
            };
            if read == 0 {
                return Ok(false);
            }
        }
    }

    /// Resolves when the client closes its connection (or it breaks), for a request that
    /// waits long on a server (a blocking command): the caller drops that wait. Requests the
    /// client pipelines meanwhile stay buffered for [`ClientConn::next_batch`]; past
    /// [`MAX_UNREAD_WHILE_WAITING`] bytes of them it stops reading until the wait is over.
    pub async fn closed(&mut self) {
        while self.input.len() < MAX_UNREAD_WHILE_WAITING {
            self.input.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.input).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        std::future::pending::<()>().await
    }

    /// Answers a protocol error and ends the connection.
    async fn fail(&mut self, error: ProtocolError) -> io::Result<bool> {
        resp::write::error(&mut self.output, error.reply_text().as_bytes());
        self.flush().await?;
        Err(io::Error::new(io::ErrorKind::InvalidData, error))
    }

    /// Writes every buffered reply.
    pub async fn flush(&mut self) -> io::Result<()> {
        if let Some(per_request) = self.output.len().checked_div(self.unanswered) {
            self.batch_limit = (REPLY_BUDGET / per_request.max(1)).clamp(1, MAX_BATCH);
            self.unanswered = 0;
        }
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            crate::metrics::note_bytes_out(self.output.len());
            self.last_flush = self.output.len();
            // TLS may hold back the end of what it encrypted (a no-op on plain TCP).
            self.stream.flush().await?;
            self.output.clear();
            if self.output.capacity() > BUFFER_KEEP {
                self.output = BytesMut::new();
            }
        }
        Ok(())
    }
}

/// Reads once into `input`, holding no buffer while the socket has nothing: empty buffers are
/// given back before waiting, and a read into an empty buffer goes through the stack and
/// allocates only what arrived. A client that sits idle between requests (most of them, most
/// of the time) thus costs no buffer memory, and a small request leaves no 16 KiB block behind
/// to pin heap pages. Cancel safe: nothing is read until the socket is ready, and that read
/// does not wait.
///
/// A TLS connection reads through its session as usual (the session keeps buffers of its own).
async fn read_when_ready(stream: &mut Stream, input: &mut BytesMut, output: &mut BytesMut) -> io::Result<usize> {
    if input.is_empty() && input.capacity() > 0 {
        *input = BytesMut::new();
    }
    if output.is_empty() && output.capacity() > 0 {
        *output = BytesMut::new();
    }
    let stream = match stream {
        Stream::Plain(tcp) => tcp,
        Stream::Tls(tls) => {
            input.reserve(READ_CHUNK);
            let read = tls.read_buf(input).await?;
            crate::metrics::note_bytes_in(read);
            return Ok(read);
        }
    };
    // Into the buffer's spare room when a request is partly there (a large one arrives in
    // many reads), else through a per-thread block (`poll_read_scratch`).
    let read = if input.is_empty() {
        std::future::poll_fn(|cx| poll_read_scratch(stream, input, cx)).await?
    } else {
        input.reserve(READ_CHUNK);
        stream.read_buf(input).await?
    };
    crate::metrics::note_bytes_in(read);
    Ok(read)
}

/// Reads what the socket holds through a per-thread block, and appends it to `input`.
///
/// Both reads go through tokio's `poll_read`, not `readable` + `try_read`: a read that fills
/// less than it was offered shows the socket drained (epoll is edge-triggered), and
/// `poll_read` then forgets the readiness, so the next wait blocks at once. `try_read` kept
/// it, and every wait began with a read that failed with `EAGAIN`: one wasted syscall per
/// request at pipeline 1, 46% of the proxy's `recvfrom` calls (`perf trace -s`).
fn poll_read_scratch(
    stream: &mut tokio::net::TcpStream,
    input: &mut BytesMut,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<io::Result<usize>> {
    use tokio::io::{AsyncRead, ReadBuf};
    // One zeroed block per thread, reused: a fresh `[0u8; READ_CHUNK]` per read cost a 16 KiB
    // memset per request (3% of the proxy's CPU at pipeline 1, by `perf record`).
    thread_local! {
        static SCRATCH: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
    }
    SCRATCH.with(|scratch| {
        let mut chunk = scratch.borrow_mut();
        let mut room = ReadBuf::new(&mut chunk);
        std::task::ready!(std::pin::Pin::new(stream).poll_read(cx, &mut room))?;
        input.extend_from_slice(room.filled());
        std::task::Poll::Ready(Ok(room.filled().len()))
    })
}

/// Resolves after `timeout` (a new wait each call); never when it is zero. The timer is
/// boxed: it lives only while a timeout is set, not in every client's task.
async fn idle(timeout: Duration) {
    if timeout.is_zero() {
        std::future::pending::<()>().await;
    }
    Box::pin(tokio::time::sleep(timeout)).await;
}
