//! The sharding proxy: speaks Redis to clients and routes each key to the cache server the
//! consistent-hash ring names, over pooled, pipelined connections.
//!
//! `main.rs` parses flags and calls [`run`]; tests start the real binary.
#![warn(missing_docs)]

pub mod backend;
pub mod cluster;
mod combine;
pub mod handoff;
pub mod health;
mod local;
mod membership;
pub mod migration;
mod plan;
mod repair;
mod replica;
mod session;
pub mod state_file;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resp::Limits;
use service::{ClientConn, Stats};
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
    /// Pooled connections per server, shared by all clients.
    pub server_connections: usize,
    /// Copies of each key (the first R distinct servers clockwise).
    pub replication: usize,
    /// ADD_SERVER and REMOVE_SERVER migrate keys without being told `MIGRATE`.
    pub migrate: bool,
    /// Health checks and ejection.
    pub health: HealthConfig,
    /// The part of a key that is hashed (`--hash-tag "{}"`); none by default.
    pub hash_tag: ring::HashTag,
    /// Keys remembered per down server for hinted handoff (`--max-hints`).
    pub max_hints: usize,
    /// Log a routing line per request (`[proxy] SET k -> routing to host:port`): see
    /// `service::ServeArgs::log_requests`.
    pub log_requests: bool,
    /// Who may connect and run what (`--requirepass`, `--admin-password`, `--protected-mode`).
    pub auth: service::auth::Auth,
    /// Where the ring is kept across restarts (`--state-file`); it wins over `servers`.
    pub state_file: Option<std::path::PathBuf>,
    /// The password the proxy gives its servers (`--server-password`), sent as AUTH when it
    /// opens a connection.
    pub server_password: Option<String>,
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
    /// The address it listens on (ADD_SERVER refuses it).
    pub listen: std::net::SocketAddr,
    /// When it started.
    pub started: Instant,
    /// Who may connect and run what.
    pub auth: service::auth::Auth,
    /// Where ring changes are written (`--state-file`).
    pub state_file: Option<std::path::PathBuf>,
}

/// Serves clients on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let cluster = Arc::new(Cluster::new(ClusterConfig {
        vnodes: config.vnodes,
        replication: config.replication,
        connections_per_backend: config.server_connections,
        connect_timeout: config.connect_timeout,
        hash_tag: config.hash_tag,
        max_hints: config.max_hints,
        log_requests: config.log_requests,
        server_password: config.server_password.as_deref().map(Arc::from),
    }));
    let mut servers: Vec<(String, u32)> = config.servers.iter().map(|s| (s.clone(), 1)).collect();
    if let Some(path) = &config.state_file {
        if let Some(state) = state_file::load(path)? {
            tracing::info!(
                "[proxy] ring loaded from the state file {} ({} servers); it takes precedence over --servers",
                path.display(),
                state.servers.len()
            );
            servers = state.servers.into_iter().map(|s| (s.addr, s.weight)).collect();
        }
    }
    for (server, weight) in &servers {
        cluster.add(server, *weight, false).map_err(|e| anyhow::anyhow!(e.reply_text()))?;
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
        listen: local,
        started: Instant::now(),
        auth: config.auth.clone(),
        state_file: config.state_file.clone(),
    });
    // The file exists from the start, with the ring the proxy serves.
    state_file::save_ring(&proxy);
    tokio::spawn(repair::repair_forever(Arc::downgrade(&proxy), config.health.interval));
    tracing::info!("[proxy] listening on {local} (replicas={})", config.vnodes);
    let config = Arc::new(config);
    service::serve(listener, config.max_clients, shutdown, |stream, peer| {
        let (proxy, config) = (proxy.clone(), config.clone());
        async move {
            if !proxy.auth.admits(&peer) {
                tracing::debug!(%peer, "refusing client: protected mode (no --requirepass) admits loopback clients only");
                let mut stream = stream;
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, &service::auth::denied_reply()).await;
                return;
            }
            if let Err(error) = handle_client(&proxy, &config, stream).await {
                tracing::debug!(%peer, %error, "client connection ended");
            }
        }
    })
    .await;
    Ok(())
}

async fn handle_client(proxy: &Arc<Proxy>, config: &Config, stream: TcpStream) -> std::io::Result<()> {
    let _client = proxy.stats.client_connected();
    let mut conn = ClientConn::new(stream, config.limits);
    if config.greeting {
        resp::write::simple(conn.output(), b"OK proxy ready (type HELP for commands)");
        conn.flush().await?;
    }
    let mut session = session::Session::default();
    let mut batch = Vec::new();
    while conn.next_batch(&mut batch).await? {
        let failures = session.client.auth_failures;
        let flow = session::run_batch(proxy, &mut session, &batch, conn.output()).await;
        if let Some(pause) = service::auth::throttle(failures, &session.client) {
            tokio::time::sleep(pause).await;
        }
        conn.flush().await?;
        if flow == local::Flow::Quit || service::auth::must_close(&session.client) {
            break;
        }
    }
    Ok(())
}
