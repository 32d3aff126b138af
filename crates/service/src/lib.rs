//! What the server and the proxy share about serving clients: their flags and start-up
//! ([`ServeArgs`]), connection commands ([`common`]), when to greet a client ([`greeting`]),
//! counters ([`Stats`]) and [`coalesce`]. The proxy, built on tokio tasks, also uses the accept loop ([`serve`]: a
//! client limit, back-off on accept errors, shutdown) and [`ClientConn`], a client connection
//! with a bounded read buffer that hands out pipelined requests in batches and flushes their
//! replies once per batch; the server runs its own event loop instead.
//! Both use [`shutdown`] (graceful stop on SIGTERM/SIGINT), [`escape`] (binary bytes in
//! logs) and [`tls`] (certificates, and TLS streams for tokio and for an event loop).
#![warn(missing_docs)]

mod accept;
mod args;
pub mod auth;
pub mod coalesce;
pub mod common;
mod conn;
pub mod escape;
pub mod greeting;
pub mod shutdown;
mod stats;
pub mod tls;
pub mod trim;

pub use accept::{serve, Slot};
pub use args::ServeArgs;
pub use conn::{Batch, ClientConn, BUFFER_KEEP, READ_CHUNK};
pub use shutdown::{shutdown_signal, StopSender, Stopping};
pub use stats::{ClientGuard, Stats};

/// The number of threads to serve clients on: `threads` when given, else half the cores (at
/// least one).
pub fn default_threads(threads: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads.unwrap_or(cores / 2).max(1)
}

/// Builds the tokio runtime for a server process.
///
/// `threads` worker threads, by default half the cores (at least one): the proxy and the
/// cache server share their machine with the processes they talk to. One thread gets
/// tokio's current-thread scheduler, which skips work stealing and cross-thread wake-ups:
/// on a 2-core machine that is the fastest choice, as single-threaded Redis and twemproxy
/// show. A thread that served several clients pauses `coalesce` before it blocks (see
/// [`coalesce`]).
pub fn runtime(threads: Option<usize>, coalesce: std::time::Duration) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = default_threads(threads);
    let pauses = !coalesce.is_zero();
    let mut builder = if threads == 1 {
        // The current-thread runtime runs on the thread that calls `block_on`: this one.
        if pauses {
            coalesce::precise_sleeps();
        }
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        if pauses {
            builder.on_thread_start(coalesce::precise_sleeps);
        }
        builder
    };
    builder.on_thread_park(move || coalesce::before_blocking(coalesce)).enable_all().build()
}
