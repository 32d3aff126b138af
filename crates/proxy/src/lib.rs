//! The sharding proxy: speaks Redis to clients and routes each key to the cache server the
//! consistent-hash ring names, over pooled, pipelined connections.
//!
//! `main.rs` parses flags and calls [`run`]; tests start the real binary.
#![warn(missing_docs)]

pub mod backend;
pub mod cluster;
mod combine;
pub mod health;
mod local;
mod membership;
pub mod migration;
mod plan;
mod replica;
mod session;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resp::Limits;
use service::{ClientConn, Stats, Stopping};
use tokio::net::{TcpListener, TcpStream};

use cluster::{Cluster, ClusterConfig};
use health::HealthConfig;
use migration::Migrator;

/// Everything [`run`] needs besides the listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// Virtual nodes per server (the seed's `replicas`).
    pub vnodes: usize,
    /// Servers in the ring at start.
    pub servers: Vec<String>,
    /// Send `+OK proxy ready (type HELP for commands)` on connect.
    pub greeting: bool,
    /// Bounds on client input.
    pub limits: Limits,
    /// Most clients served at once.
    pub max_clients: usize,
    /// How long dialling a server may take before the client gets `-ERR`.
    pub connect_timeout: Duration,
    /// How long a request may wait for a server's reply before the client gets `-ERR` and
    /// the connection to that server is dropped (zero: no limit).
    pub server_timeout: Duration,
    /// Pooled connections per server, shared by all clients.
    pub server_connections: usize,
    /// Copies of each key (the first R distinct servers clockwise).
    pub replication: usize,
    /// ADD_SERVER and REMOVE_SERVER migrate keys without being told `MIGRATE`.
    pub migrate: bool,
    /// Health checks and ejection.
    pub health: HealthConfig,
    /// How long a shutdown may spend answering the requests clients already sent.
    pub shutdown_timeout: Duration,
    /// Clients idle this long are closed (Redis's `timeout`); zero: never.
    pub idle_timeout: Duration,
}

/// The proxy's shared state.
pub struct Proxy {
    /// Membership and pooled connections.
    pub cluster: Arc<Cluster>,
    /// Moves keys when the ring changes.
    pub migrator: Migrator,
    /// Ring changes migrate by default (`--migrate`).
    pub migrate_by_default: bool,
    /// Counters for INFO.
    pub stats: Stats,
    /// The port it listens on.
    pub port: u16,
    /// When it started.
    pub started: Instant,
}

/// Serves clients on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let cluster = Arc::new(Cluster::new(ClusterConfig {
        vnodes: config.vnodes,
        replication: config.replication,
        connections_per_backend: config.server_connections,
        connect_timeout: config.connect_timeout,
        request_timeout: config.server_timeout,
    }));
    for server in &config.servers {
        // A command-line error, not a protocol one: no `ERR` prefix.
        cluster.add(server, 1, false).map_err(|error| anyhow::anyhow!("{error} (--servers)"))?;
        tracing::info!("[proxy] Added server: {server}");
    }
    // Servers given at start hold no keys yet: nothing to migrate.
    cluster.finish_migration();
    tokio::spawn(health::check_forever(Arc::downgrade(&cluster), config.health));
    let proxy = Arc::new(Proxy {
        cluster,
        migrator: Migrator::default(),
        migrate_by_default: config.migrate,
        stats: Stats::default(),
        port: local.port(),
        started: Instant::now(),
    });
    tracing::info!("[proxy] listening on {local} (replicas={})", config.vnodes);
    let config = Arc::new(config);
    service::serve(listener, config.max_clients, shutdown, config.shutdown_timeout, |stream, peer, stopping| {
        let (proxy, config) = (proxy.clone(), config.clone());
        async move {
            if let Err(error) = handle_client(&proxy, &config, stream, stopping).await {
                tracing::debug!(%peer, %error, "client connection ended");
            }
        }
    })
    .await;
    Ok(())
}

async fn handle_client(
    proxy: &Arc<Proxy>,
    config: &Config,
    stream: TcpStream,
    stopping: Stopping,
) -> std::io::Result<()> {
    let _client = proxy.stats.client_connected();
    let mut conn = ClientConn::new(stream, config.limits, stopping).with_idle_timeout(config.idle_timeout);
    if config.greeting {
        resp::write::simple(conn.output(), b"OK proxy ready (type HELP for commands)");
        conn.flush().await?;
    }
    let mut batch = Vec::new();
    while conn.next_batch(&mut batch).await? {
        let flow = session::run_batch(proxy, &batch, conn.output()).await;
        conn.flush().await?;
        if flow == local::Flow::Quit {
            break;
        }
    }
    Ok(())
}
