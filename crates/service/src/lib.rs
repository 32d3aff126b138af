//! What the server and the proxy share about serving clients: the accept loop (a client
//! limit, back-off on accept errors, shutdown) and [`ClientConn`], a client connection with a
//! bounded read buffer that hands out pipelined requests in batches and flushes their
//! replies once per batch.
#![warn(missing_docs)]

mod accept;
pub mod common;
mod conn;
mod stats;

pub use accept::{serve, shutdown_signal};
pub use conn::{Batch, ClientConn};
pub use stats::{ClientGuard, Stats};
