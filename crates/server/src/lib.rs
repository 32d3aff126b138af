//! The cache server: an in-memory key-value store that speaks the Redis protocol, with the
//! seed's greeting and commands on top.
//!
//! `main.rs` parses flags and calls [`run`]; tests start the real binary.
#![warn(missing_docs)]

mod cmd;
mod glob;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resp::Limits;
use service::ClientConn;
use tokio::net::{TcpListener, TcpStream};

pub use service::Stats;
use store::Store;

/// How often the expiry sweep runs, and how many shards it visits each time: every shard
/// holding keys with a TTL is swept about every 0.8 s.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
const SHARDS_PER_SWEEP: usize = 8;

/// Everything [`run`] needs besides the listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// The name in the greeting, WHOAMI and logs (`cache-A`).
    pub name: String,
    /// Send `+OK <name> ready` on connect (the seed's nc sessions expect it; Redis clients do not).
    pub greeting: bool,
    /// Bounds on client input.
    pub limits: Limits,
    /// Most clients served at once.
    pub max_clients: usize,
}

/// What every connection of one server shares.
pub struct Ctx {
    /// The keyspace.
    pub store: Store,
    /// The server's name.
    pub name: String,
    /// Counters for INFO.
    pub stats: Stats,
    /// The port it listens on.
    pub port: u16,
    /// When it started.
    pub started: Instant,
}

/// Serves clients on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let ctx = Arc::new(Ctx {
        store: Store::new(),
        name: config.name.clone(),
        stats: Stats::default(),
        port,
        started: Instant::now(),
    });
    tokio::spawn(sweep_expired(Arc::downgrade(&ctx)));
    tracing::info!(
        "[{}] listening on {} (greeting={})",
        config.name,
        listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        config.greeting
    );
    let config = Arc::new(config);
    service::serve(listener, config.max_clients, shutdown, |stream, peer| {
        let (ctx, config) = (ctx.clone(), config.clone());
        async move {
            if let Err(error) = handle_client(&ctx, &config, stream).await {
                tracing::debug!(%peer, %error, "client connection ended");
            }
        }
    })
    .await;
}

async fn handle_client(ctx: &Ctx, config: &Config, stream: TcpStream) -> std::io::Result<()> {
    let _client = ctx.stats.client_connected();
    let mut conn = ClientConn::new(stream, config.limits);
    if config.greeting {
        resp::write::simple(conn.output(), format!("OK {} ready", ctx.name).as_bytes());
        conn.flush().await?;
    }
    let mut batch = Vec::new();
    while conn.next_batch(&mut batch).await? {
        for request in &batch {
            if cmd::execute(ctx, request, conn.output()) == cmd::Flow::Quit {
                return conn.flush().await;
            }
        }
        conn.flush().await?;
    }
    Ok(())
}

/// Sweeps one shard per tick so expired keys do not hold memory until they are read.
async fn sweep_expired(ctx: std::sync::Weak<Ctx>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    for round in 0usize.. {
        tick.tick().await;
        let Some(ctx) = ctx.upgrade() else { return };
        for shard in round * SHARDS_PER_SWEEP..(round + 1) * SHARDS_PER_SWEEP {
            ctx.store.sweep(shard);
        }
    }
}
