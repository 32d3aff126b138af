//! Graceful shutdown: the first SIGTERM or SIGINT stops accepting and lets every client's
//! already-received requests be answered; a second one exits at once.

use tokio::sync::watch;

/// The default `--shutdown-timeout`, in seconds: how long answering the clients' last
/// requests may take before the process exits anyway.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;

/// The exit status after a second signal cut a shutdown short.
const FORCED_EXIT: i32 = 1;

/// Tells client tasks that the process is stopping: held by every connection, cheap to clone.
#[derive(Debug, Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// A handle that never fires (for connections outside a server's accept loop).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // The value stays `false` once the sender is gone; waiters then wait forever.
        drop(tx);
        Stopping(rx)
    }

    /// Whether the stop has been announced.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is announced (at once if it already was); never if it cannot be.
    pub async fn wait(&mut self) {
        if self.0.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Announces the stop to every [`Stopping`] handle made from it.
#[derive(Debug)]
pub struct StopSender(watch::Sender<bool>);

impl StopSender {
    /// A sender and the first handle.
    pub fn new() -> (Self, Stopping) {
        let (tx, rx) = watch::channel(false);
        (StopSender(tx), Stopping(rx))
    }

    /// Tells every handle to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM, after logging it. From then on a second
/// signal ends the process at once (status 1), without waiting for clients.
///
/// The handlers are installed when this is called, not when the future is first polled, so a
/// signal that arrives between start-up and serving is not fatal. Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let signals = Signals::install();
    async move {
        let Some(mut signals) = signals else {
            return std::future::pending().await;
        };
        let name = signals.next().await;
        tracing::info!(
            signal = name,
            "shutting down: no new clients, answering what the connected ones sent; a second signal exits at once"
        );
        tokio::spawn(async move {
            let name = signals.next().await;
            tracing::warn!(signal = name, "second signal: exiting now");
            std::process::exit(FORCED_EXIT);
        });
    }
}

/// The watched signals.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; `None` (logged) if they cannot be.
    fn install() -> Option<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                (Ok(int), Ok(term)) => Some(Signals { int, term }),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "cannot watch SIGINT and SIGTERM");
                    None
                }
            }
        }
        #[cfg(not(unix))]
        Some(Signals {})
    }

    /// The name of the next signal received.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
