//! The accept loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::shutdown::{StopSender, Stopping};

/// Accepts clients until `shutdown` resolves, running `handle` on its own task for each.
///
/// At most `max_clients` connections are served at once; one more gets
/// `-ERR max number of clients reached` and is closed, as Redis does. Under TLS (`tls`) it
/// is closed with nothing sent: it expects a handshake, not plain text (Redis does the same). Accept errors (such as
/// running out of file descriptors) are logged and retried with a growing pause.
///
/// When `shutdown` resolves, the listener closes and every handler's [`Stopping`] fires: a
/// handler answers the requests its client already sent, then ends. `serve` returns when
/// they all have, or after `drain_timeout`.
pub async fn serve<H, F>(
    listener: TcpListener,
    max_clients: usize,
    tls: bool,
    shutdown: impl Future,
    drain_timeout: Duration,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, Stopping, Slot) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    // Every permit back means every handler has ended (the semaphore counts in u32).
    let max_clients = max_clients.clamp(1, u32::MAX as usize);
    let permits = Arc::new(Semaphore::new(max_clients));
    let (stop, stopping) = StopSender::new();
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(1);
    let mut stopping_now = false;
    loop {
        let accepted = if stopping_now {
            // Shutting down: take the clients already connected (their requests count as
            // received; closing the listener on them would reset them), without waiting.
            let waiting = std::future::poll_fn(|cx| match listener.poll_accept(cx) {
                Poll::Ready(accepted) => Poll::Ready(accepted.ok()),
                Poll::Pending => Poll::Ready(None),
            });
            match waiting.await {
                Some(pair) => Ok(pair),
                None => break,
            }
        } else {
            tokio::select! {
                accepted = listener.accept() => accepted,
                _ = &mut shutdown => {
                    stopping_now = true;
                    continue;
                }
            }
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
                // The handler's future is the task itself, holding its slot: no wrapper
                // around it, which would cost every idle client a box or a second copy.
                tokio::spawn(handle(stream, peer, stopping.clone(), Slot(permit)));
            }
            Err(_) => {
                tracing::warn!(%peer, max_clients, "refusing client: max number of clients reached");
                if !tls {
                    tokio::spawn(refuse(stream));
                }
            }
        }
    }
    drop(listener);
    let connected = max_clients - permits.available_permits();
    tracing::info!(clients = connected, "stopped accepting; answering the requests already received");
    stop.stop();
    let all = u32::try_from(max_clients).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(drain_timeout, permits.acquire_many(all)).await;
    match drained {
        Ok(_) => tracing::info!("every client answered and closed"),
        Err(_) => {
            let left = max_clients - permits.available_permits();
            tracing::warn!(
                clients = left,
                "shutdown timeout of {drain_timeout:?} reached; closing the remaining clients"
            );
        }
    }
}

/// A client's place among `max_clients`: the handler holds it for the client's whole life,
/// and the place is free again when it drops.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

async fn refuse(mut stream: TcpStream) {
    let mut out = BytesMut::new();
    resp::write::error(&mut out, b"ERR max number of clients reached");
    let _ = stream.write_all(&out).await;
}
