//! A small blocking Redis-protocol client: enough for a walkthrough that sends one command
//! at a time and looks at each reply.
//!
//! It speaks RESP2 through the `resp` crate (multibulk requests, one parsed [`Frame`] per
//! reply), works with and without the project's `+OK ... ready` greeting, and bounds every
//! wait with a timeout so a stuck peer can never hang the demo.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::BytesMut;
use resp::{Frame, Limits, ProtocolError};

/// How long to wait for a TCP connection before calling the peer unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for a reply (or for a write to drain) before giving up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Status lines tolerated before `+PONG` while connecting (the greeting is one of them).
const MAX_LINES_BEFORE_PONG: usize = 4;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Bounds on what a peer may send back: the demo's replies are short, so a reply larger
/// than this is a broken peer, not data.
const REPLY_LIMITS: Limits = Limits { max_inline_len: 64 * 1024, max_bulk_len: 1024 * 1024, max_args: 64 * 1024 };

/// What went wrong talking to a peer. Every variant names the peer's address.
#[derive(Debug)]
pub enum Error {
    /// Nothing accepted a connection at the address (refused, timed out, unresolvable).
    Unreachable {
        /// The address as given.
        addr: String,
        /// Why the connection failed.
        source: io::Error,
    },
    /// Reading or writing failed on an established connection (including timeouts).
    Io {
        /// The peer's address.
        addr: String,
        /// The failure.
        source: io::Error,
    },
    /// The peer closed the connection before a complete reply.
    Closed {
        /// The peer's address.
        addr: String,
    },
    /// The peer sent bytes that are not RESP2.
    Protocol {
        /// The peer's address.
        addr: String,
        /// What was wrong with them.
        source: ProtocolError,
    },
    /// The peer answered `PING` with something other than `+PONG`.
    Handshake {
        /// The peer's address.
        addr: String,
        /// The reply, as it looks on the wire.
        reply: String,
    },
}

impl Error {
    /// Whether the peer could not be reached at all (as opposed to misbehaving once reached).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unreachable { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            Error::Io { addr, source } => write!(f, "talking to {addr}: {source}"),
            Error::Closed { addr } => write!(f, "{addr} closed the connection"),
            Error::Protocol { addr, source } => {
                write!(f, "{addr} sent an invalid reply: {source}")
            }
            Error::Handshake { addr, reply } => {
                write!(f, "{addr} answered PING with {reply}, expected +PONG")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Unreachable { source, .. } | Error::Io { source, .. } => Some(source),
            Error::Protocol { source, .. } => Some(source),
            Error::Closed { .. } | Error::Handshake { .. } => None,
        }
    }
}

/// One connection to a server or proxy, used for one command at a time.
#[derive(Debug)]
pub struct Client {
    addr: String,
    stream: TcpStream,
    /// Bytes received but not yet parsed into a frame.
    buf: BytesMut,
}

impl Client {
    /// Connects to `addr` (`host:port`) and checks that it speaks the protocol: sends `PING`
    /// and skips any status line (such as the `+OK cache-A ready` greeting) before `+PONG`,
    /// so it works whether the peer greets or not.
    pub fn connect(addr: &str) -> Result<Client, Error> {
        let stream = open(addr).map_err(|source| Error::Unreachable { addr: addr.to_string(), source })?;
        let io_error = |source| Error::Io { addr: addr.to_string(), source };
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_error)?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_error)?;
        // One command, one reply: no reason to let Nagle delay the next request.
        stream.set_nodelay(true).map_err(io_error)?;
        let mut client = Client { addr: addr.to_string(), stream, buf: BytesMut::with_capacity(READ_CHUNK) };
        client.send(&[b"PING"])?;
        for _ in 0..MAX_LINES_BEFORE_PONG {
            match client.read_frame()? {
                Frame::Simple(text) if text.eq_ignore_ascii_case(b"PONG") => return Ok(client),
                Frame::Simple(_) => continue,
                other => return Err(Error::Handshake { addr: client.addr, reply: describe(&other) }),
            }
        }
        Err(Error::Handshake { addr: client.addr, reply: format!("{MAX_LINES_BEFORE_PONG} status lines and no +PONG") })
    }

    /// The address this client connected to, as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one command as a multibulk array and returns its reply.
    ///
    /// An error reply (`-ERR ...`) is a reply like any other: it comes back as
    /// [`Frame::Error`]. Only I/O and protocol failures are errors.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Frame, Error> {
        self.send(args)?;
        self.read_frame()
    }

    fn send(&mut self, args: &[&[u8]]) -> Result<(), Error> {
        let mut out = BytesMut::new();
        resp::write::command(&mut out, args);
        self.stream.write_all(&out).map_err(|source| Error::Io { addr: self.addr.clone(), source })
    }

    /// Reads until exactly one complete frame is buffered, then takes it off the buffer.
    fn read_frame(&mut self) -> Result<Frame, Error> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match Frame::parse(&mut self.buf, &REPLY_LIMITS) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(source) => return Err(Error::Protocol { addr: self.addr.clone(), source }),
            }
            let n = loop {
                match self.stream.read(&mut chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => return Err(Error::Io { addr: self.addr.clone(), source }),
                }
            };
            if n == 0 {
                return Err(Error::Closed { addr: self.addr.clone() });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Connects to the first address `addr` resolves to that accepts within [`CONNECT_TIMEOUT`].
fn open(addr: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing");
    for socket in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A frame as it looks on the wire, on one line, for messages: `+OK`, `-ERR no servers
/// available`, `$-1`, `:1`, `*2 [+a, +b]`. Long or binary payloads are shortened and escaped.
pub fn describe(frame: &Frame) -> String {
    match frame {
        Frame::Simple(text) => format!("+{}", printable(text)),
        Frame::Error(text) => format!("-{}", printable(text)),
        Frame::Integer(n) => format!(":{n}"),
        Frame::Bulk(data) => format!("${} \"{}\"", data.len(), printable(data)),
        Frame::Null => "$-1".to_string(),
        Frame::NullArray => "*-1".to_string(),
        Frame::Array(items) => aggregate('*', items),
        Frame::Set(items) => aggregate('~', items),
        Frame::Push(items) => aggregate('>', items),
        Frame::Map(pairs) => {
            let shown: Vec<String> =
                pairs.iter().take(4).map(|(k, v)| format!("{} => {}", describe(k), describe(v))).collect();
            let more = if pairs.len() > shown.len() { ", ..." } else { "" };
            format!("%{} {{{}{more}}}", pairs.len(), shown.join(", "))
        }
        Frame::Resp3Null => "_".to_string(),
        Frame::Boolean(b) => format!("#{}", if *b { 't' } else { 'f' }),
        Frame::Double(text) => format!(",{}", printable(text)),
        Frame::BigNumber(digits) => format!("({}", printable(digits)),
        Frame::Verbatim { format, text } => {
            format!("={} \"{}:{}\"", format.len() + 1 + text.len(), printable(format), printable(text))
        }
        Frame::BlobError(text) => format!("!{} \"{}\"", text.len(), printable(text)),
    }
}

/// An aggregate on one line: its type byte, its length and its first elements.
fn aggregate(kind: char, items: &[Frame]) -> String {
    let shown: Vec<String> = items.iter().take(8).map(describe).collect();
    let more = if items.len() > shown.len() { ", ..." } else { "" };
    format!("{kind}{} [{}{more}]", items.len(), shown.join(", "))
}

/// Text for a message: lossy UTF-8, control characters escaped, at most 120 characters.
fn printable(bytes: &[u8]) -> String {
    const MAX_CHARS: usize = 120;
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(MAX_CHARS).flat_map(char::escape_debug).collect();
    if text.chars().count() > MAX_CHARS {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A one-connection fake peer: sends `greeting`, then answers each request in turn with
    /// the next canned reply, returning the requests it saw.
    fn fake_peer(greeting: &'static [u8], replies: Vec<&'static [u8]>) -> (String, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let handle = thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            socket.write_all(greeting).expect("greet");
            let mut seen = Vec::new();
            let mut buf = BytesMut::new();
            let mut chunk = [0u8; 1024];
            for reply in replies {
                // Wait for one complete request frame, then answer it.
                loop {
                    if let Some(frame) = Frame::parse(&mut buf, &Limits::default()).expect("parse") {
                        seen.extend_from_slice(&frame.to_bytes());
                        break;
                    }
                    let n = socket.read(&mut chunk).expect("read");
                    if n == 0 {
                        return seen;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                socket.write_all(reply).expect("reply");
            }
            seen
        });
        (addr, handle)
    }

    #[test]
    fn connects_with_a_greeting_and_calls() {
        let (addr, peer) = fake_peer(b"+OK cache-A ready\r\n", vec![b"+PONG\r\n", b"$5\r\nAlice\r\n"]);
        let mut client = Client::connect(&addr).expect("connect");
        let reply = client.call(&[b"GET", b"user:1001"]).expect("call");
        assert_eq!(reply, Frame::bulk("Alice"));
        drop(client);
        let seen = peer.join().expect("peer");
        assert_eq!(seen, b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$9\r\nuser:1001\r\n");
    }

    #[test]
    fn connects_without_a_greeting_and_returns_error_replies() {
        let (addr, peer) = fake_peer(b"", vec![b"+PONG\r\n", b"-ERR no servers available\r\n"]);
        let mut client = Client::connect(&addr).expect("connect");
        let reply = client.call(&[b"ROUTE", b"k"]).expect("call");
        assert_eq!(reply, Frame::error("ERR no servers available"));
        drop(client);
        peer.join().expect("peer");
    }

    #[test]
    fn a_peer_that_does_not_pong_is_rejected() {
        let (addr, peer) = fake_peer(b"", vec![b"-ERR unknown command\r\n"]);
        let err = Client::connect(&addr).expect_err("handshake must fail");
        assert!(matches!(err, Error::Handshake { .. }), "{err}");
        assert!(err.to_string().contains("-ERR unknown command"), "{err}");
        peer.join().expect("peer");
    }

    #[test]
    fn a_closed_port_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let err = Client::connect(&addr).expect_err("nothing listens");
        assert!(err.is_unreachable(), "{err}");
        assert!(err.to_string().contains(&addr), "{err}");
    }

    #[test]
    fn describe_looks_like_the_wire() {
        assert_eq!(describe(&Frame::simple("OK")), "+OK");
        assert_eq!(describe(&Frame::error("ERR x")), "-ERR x");
        assert_eq!(describe(&Frame::Null), "$-1");
        assert_eq!(describe(&Frame::Integer(1)), ":1");
        assert_eq!(describe(&Frame::bulk("a\r\n")), r#"$3 "a\r\n""#);
        let list = Frame::Array(vec![Frame::simple("a"), Frame::simple("b")]);
        assert_eq!(describe(&list), "*2 [+a, +b]");
    }
}
