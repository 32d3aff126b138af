//! TLS with `rustls`: loading certificates and keys, the listener's side ([`Acceptor`]) and
//! the side that dials servers ([`Connector`]).
//!
//! The proxy's tokio tasks read and write a [`Stream`], plain TCP or TLS, through the same
//! `AsyncRead`/`AsyncWrite` calls. The server's `mio` event loop drives a
//! [`rustls::ServerConnection`] itself through a [`Socket`], a non-blocking `Read + Write`
//! over the TCP socket.
//!
//! Certificates and keys are PEM files, as redis-server's `tls-cert-file`, `tls-key-file`
//! and `tls-ca-cert-file` take them. The crypto is `ring`'s.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider every config is built with (`ring`: no C toolchain beyond `cc`).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file.
fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| format!("reading a private key from {}", path.display()))
}

/// The certificate authorities in a PEM file, as trust roots.
fn load_roots(path: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).with_context(|| format!("adding a CA certificate from {}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The listener's TLS: its certificate and key, and optionally the CA that client
/// certificates must be signed by (then every client must present one).
#[derive(Clone)]
pub struct Acceptor {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Loads `cert` (the chain, leaf first) and `key`; with `client_ca`, clients must present
    /// a certificate it signed.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> anyhow::Result<Self> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("choosing TLS versions")?;
        let builder = match client_ca {
            Some(ca) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(load_roots(ca)?, provider())
                    .build()
                    .context("building the client certificate verifier")?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(load_certs(cert)?, load_key(key)?)
            .context("the TLS certificate and key do not make a pair")?;
        Ok(Self { config: Arc::new(config) })
    }

    /// A new server-side session for one accepted connection (for an event loop of its own;
    /// see [`Socket`]).
    pub fn session(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(self.config.clone())
    }

    /// Completes the handshake on an accepted connection, within [`HANDSHAKE_TIMEOUT`].
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        let accept = tokio_rustls::TlsAcceptor::from(self.config.clone()).accept(tcp);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
            Ok(stream) => Ok(Stream::Tls(Box::new(stream?.into()))),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
    }
}

/// TLS towards servers: the CA their certificates must be signed by, and optionally a
/// client certificate and key to present.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

impl Connector {
    /// Trusts the certificates `ca` signed; presents `client` (certificate, key) when given.
    pub fn load(ca: &Path, client: Option<(&Path, &Path)>) -> anyhow::Result<Self> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("choosing TLS versions")?
            .with_root_certificates(load_roots(ca)?);
        let config = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
                .context("the TLS client certificate and key do not make a pair")?,
            None => builder.with_no_client_auth(),
        };
        Ok(Self { config: Arc::new(config) })
    }

    /// Completes the handshake on a connection to `addr` (`host:port`): the server's
    /// certificate must name `host`, a DNS name or an IP address.
    pub async fn connect(&self, addr: &str, tcp: TcpStream) -> io::Result<Stream> {
        let name = server_name(addr)?;
        let stream = tokio_rustls::TlsConnector::from(self.config.clone()).connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(stream.into())))
    }
}

/// The name a server's certificate must carry: the host part of `host:port` (`[::1]:6379`
/// gives `::1`).
fn server_name(addr: &str) -> io::Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(host.to_string())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("'{host}' is not a valid TLS server name")))
}

/// A connection, plain TCP or TLS, for tokio tasks.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, either side (boxed: a TLS session is large).
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl From<TcpStream> for Stream {
    fn from(tcp: TcpStream) -> Self {
        Stream::Plain(tcp)
    }
}

impl Stream {
    /// Whether the connection is idle and still open: nothing arrived and the peer did not
    /// close it. A connection that fails this is not to be reused; any bytes it had are
    /// consumed.
    pub fn is_quiet(&mut self) -> bool {
        match self {
            Stream::Plain(tcp) => {
                let mut probe = [0u8; 1];
                matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Stream::Tls(tls) => {
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                let mut cx = Context::from_waker(std::task::Waker::noop());
                Pin::new(tls.as_mut()).poll_read(&mut cx, &mut buf).is_pending()
            }
        }
    }

    /// Splits the connection into halves that tasks may own: plain TCP without a lock, TLS
    /// through tokio's [`tokio::io::split`].
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                (ReadHalf::Plain(read), WriteHalf::Plain(write))
            }
            Stream::Tls(tls) => {
                let (read, write) = tokio::io::split(*tls);
                (ReadHalf::Tls(read), WriteHalf::Tls(write))
            }
        }
    }
}

/// The read half of a [`Stream`].
#[derive(Debug)]
pub enum ReadHalf {
    /// Plain TCP.
    Plain(tokio::net::tcp::OwnedReadHalf),
    /// TLS.
    Tls(tokio::io::ReadHalf<tokio_rustls::TlsStream<TcpStream>>),
}

/// The write half of a [`Stream`].
#[derive(Debug)]
pub enum WriteHalf {
    /// Plain TCP.
    Plain(tokio::net::tcp::OwnedWriteHalf),
    /// TLS.
    Tls(tokio::io::WriteHalf<tokio_rustls::TlsStream<TcpStream>>),
}

/// `AsyncRead` for an enum whose variants all implement it.
macro_rules! async_read {
    ($type:ty) => {
        impl AsyncRead for $type {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
                    Self::Tls(io) => Pin::new(io).poll_read(cx, buf),
                }
            }
        }
    };
}

/// `AsyncWrite` for an enum whose variants all implement it.
macro_rules! async_write {
    ($type:ty) => {
        impl AsyncWrite for $type {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
                    Self::Tls(io) => Pin::new(io).poll_write(cx, buf),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Plain(io) => Pin::new(io).poll_flush(cx),
                    Self::Tls(io) => Pin::new(io).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
                    Self::Tls(io) => Pin::new(io).poll_shutdown(cx),
                }
            }
        }
    };
}

async_read!(Stream);
async_write!(Stream);
async_read!(ReadHalf);
async_write!(WriteHalf);

/// A non-blocking connection for an event loop: plain, or TLS driven by hand with
/// `read_tls`/`process_new_packets`/`write_tls`.
///
/// It keeps the promise an edge-triggered loop relies on: a read returns fewer bytes than
/// asked only once the socket is drained (or at the end of input), and `WouldBlock` only
/// when the socket has nothing more. `write` takes bytes into the session and sends what
/// the socket takes; `flush` sends the rest, `WouldBlock` while the socket is full.
#[derive(Debug)]
pub enum Socket<S> {
    /// Plain TCP.
    Plain(S),
    /// TLS (boxed: a session is large).
    Tls(Box<TlsSocket<S>>),
}

/// A socket and the TLS session over it.
#[derive(Debug)]
pub struct TlsSocket<S> {
    socket: S,
    session: ServerConnection,
    /// The socket reached the end of input.
    eof: bool,
}

impl<S> Socket<S> {
    /// TLS over `socket` with `session`.
    pub fn tls(socket: S, session: ServerConnection) -> Self {
        Socket::Tls(Box::new(TlsSocket { socket, session, eof: false }))
    }

    /// The socket underneath (to register it with a poll).
    pub fn get_mut(&mut self) -> &mut S {
        match self {
            Socket::Plain(socket) => socket,
            Socket::Tls(tls) => &mut tls.socket,
        }
    }

    /// Whether bytes wait in the session for the socket: call `flush` when it is writable.
    pub fn wants_write(&self) -> bool {
        matches!(self, Socket::Tls(tls) if tls.session.wants_write())
    }

    /// Whether a TLS handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        matches!(self, Socket::Tls(tls) if tls.session.is_handshaking())
    }
}

impl<S: Read + Write> TlsSocket<S> {
    /// Sends what the session holds; `WouldBlock` when the socket would not take it all.
    fn send_tls(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends what the session holds, leaving the rest for a writable event.
    fn send_tls_some(&mut self) -> io::Result<()> {
        match self.send_tls() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            // Decrypted bytes first: they must be handed out before the socket is read again.
            match self.session.reader().read(&mut buf[filled..]) {
                Ok(0) if filled < buf.len() => return Ok(filled), // close_notify: end of input
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: the end of input all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(filled);
            }
            match self.session.read_tls(&mut self.socket) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return if filled > 0 { Ok(filled) } else { Err(e) };
                }
                Err(e) => return Err(e),
            }
            if let Err(error) = self.session.process_new_packets() {
                // Tell the peer why (best effort), then end the connection.
                let _ = self.send_tls();
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            // Handshake messages, alerts, key updates.
            self.send_tls_some()?;
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Older bytes go first; while the socket is full, take no more.
        self.send_tls()?;
        let n = self.session.writer().write(buf)?;
        self.send_tls_some()?;
        if n == 0 && !buf.is_empty() {
            // The session's buffer is full (a handshake not yet done): wait for the socket.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}

impl<S: Read + Write> Read for Socket<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(socket) => socket.read(buf),
            Socket::Tls(tls) => tls.read(buf),
        }
    }
}

impl<S: Read + Write> Write for Socket<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(socket) => socket.write(buf),
            Socket::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Plain(socket) => socket.flush(),
            Socket::Tls(tls) => tls.send_tls(),
        }
    }
}

/// The TLS flags of a listener, as given: `--tls-cert`, `--tls-key`, `--tls-ca`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Serve TLS only, with this certificate (PEM, leaf first): like redis-server's
    /// `--tls-port`, a plain-text client is disconnected. Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM), and verify them.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The listener's TLS, when the flags ask for it.
    pub fn acceptor(&self) -> anyhow::Result<Option<Acceptor>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Acceptor::load(cert, key, self.tls_ca.as_deref()).map(Some),
            _ => Ok(None),
        }
    }
}

/// The TLS flags for connections to servers: `--server-tls`, `--server-tls-ca`,
/// `--server-tls-cert`, `--server-tls-key`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServerTlsArgs {
    /// Speak TLS to the cache servers (a redis-server's `--tls-port`); their certificates must
    /// be signed by --server-tls-ca and name the host of their address.
    #[arg(long, requires = "server_tls_ca")]
    pub server_tls: bool,
    /// The CA (PEM) that signs the servers' certificates.
    #[arg(long, value_name = "FILE", requires = "server_tls")]
    pub server_tls_ca: Option<PathBuf>,
    /// The certificate (PEM) the proxy presents to servers that ask for one (redis-server's
    /// default `tls-auth-clients yes`). Needs --server-tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["server_tls", "server_tls_key"])]
    pub server_tls_cert: Option<PathBuf>,
    /// The private key of --server-tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["server_tls", "server_tls_cert"])]
    pub server_tls_key: Option<PathBuf>,
}

impl ServerTlsArgs {
    /// The TLS towards servers, when the flags ask for it.
    pub fn connector(&self) -> anyhow::Result<Option<Connector>> {
        match (&self.server_tls_ca, self.server_tls) {
            (Some(ca), true) => {
                let client = self.server_tls_cert.as_deref().zip(self.server_tls_key.as_deref());
                Connector::load(ca, client).map(Some)
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_part() {
        assert_eq!(server_name("127.0.0.1:6379").unwrap(), ServerName::try_from("127.0.0.1").unwrap());
        assert_eq!(server_name("[::1]:6379").unwrap(), ServerName::try_from("::1").unwrap());
        assert_eq!(server_name("cache.example:6379").unwrap(), ServerName::try_from("cache.example").unwrap());
        assert!(server_name("bad name:1").is_err());
    }
}
