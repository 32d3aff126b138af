//! The accept loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Accepts clients until `shutdown` resolves, running `handle` on its own task for each.
///
/// At most `max_clients` connections are served at once; one more gets
/// `-ERR max number of clients reached` and is closed, as Redis does. Accept errors (such as
/// running out of file descriptors) are logged and retried with a growing pause.
pub async fn serve<H, F>(listener: TcpListener, max_clients: usize, shutdown: impl Future, handle: H)
where
    H: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max_clients));
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(1);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(1);
                pair
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let served = handle(stream, peer);
                tokio::spawn(async move {
                    served.await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(%peer, max_clients, "refusing client: max number of clients reached");
                tokio::spawn(refuse(stream));
            }
        }
    }
}

async fn refuse(mut stream: TcpStream) {
    let mut out = BytesMut::new();
    resp::write::error(&mut out, b"ERR max number of clients reached");
    let _ = stream.write_all(&out).await;
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
