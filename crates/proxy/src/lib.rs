//! The sharding proxy: speaks Redis to clients and routes each key to the cache server the
//! consistent-hash ring names, over pooled, pipelined connections.
//!
//! `main.rs` parses flags and calls [`run`]; tests start the real binary.
#![warn(missing_docs)]

pub mod backend;
pub mod cluster;
mod combine;
pub mod config_file;
pub mod dedicated;
pub mod etcd;
mod flow;
pub mod handoff;
pub mod health;
pub mod health_check;
mod jobs;
mod learned;
mod local;
mod membership;
pub mod metrics;
pub mod migration;
pub mod nc_stats;
mod owners;
mod plan;
pub mod preview;
mod pubsub;
mod repair;
mod replica;
mod session;
pub mod state_file;
pub mod web;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resp::Limits;
use service::tls::Stream;
use service::{ClientConn, Stats, Stopping};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use cluster::{Cluster, ClusterConfig};
use flow::Flow;
use health_check::HealthConfig;
use migration::Migrator;

/// Everything [`run`] needs besides the listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// Virtual nodes per server (the seed's `replicas`).
    pub vnodes: usize,
    /// Servers in the ring at start.
    pub servers: Vec<String>,
    /// Send `+OK proxy ready (type HELP for commands)` to a new client when it stays silent for
    /// `greeting_delay` or opens with an inline command; never to a client that opens with a
    /// multibulk array (see [`service::greeting`]).
    pub greeting: bool,
    /// How long a new client may stay silent before it is greeted.
    pub greeting_delay: Duration,
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
    /// The part of a key that is hashed (`--hash-tag "{}"`); none by default.
    pub hash_tag: ring::HashTag,
    /// Keys remembered per down server for hinted handoff (`--max-hints`).
    pub max_hints: usize,
    /// Log a routing line per request (`[proxy] SET k -> routing to host:port`): see
    /// `service::ServeArgs::log_requests`.
    pub log_requests: bool,
    /// Most blocking commands (`BLPOP`, `XREAD BLOCK`) waiting at once, each on a server
    /// connection of its own.
    pub max_blocking_connections: usize,
    /// How long a shutdown may spend answering the requests clients already sent.
    pub shutdown_timeout: Duration,
    /// Clients idle this long are closed (Redis's `timeout`); zero: never.
    pub idle_timeout: Duration,
    /// Who may connect and run what (`--requirepass`, `--admin-password`, `--protected-mode`).
    pub auth: service::auth::Auth,
    /// Where the ring is kept across restarts (`--state-file`); it wins over `servers`.
    pub state_file: Option<std::path::PathBuf>,
    /// The `nutcracker.yml` the proxy was started from (`-c`), for `CONFIG REWRITE` and
    /// `--write-config`.
    pub config_file: Option<config_file::ConfigFile>,
    /// The password the proxy gives its servers (`--server-password`), sent as AUTH when it
    /// opens a connection.
    pub server_password: Option<String>,
    /// TLS on the listener (`--tls-cert`, `--tls-key`, `--tls-ca`): then clients speak TLS only.
    pub tls: Option<service::tls::Acceptor>,
    /// TLS to the servers (`--server-tls`, `--server-tls-ca`, `--server-tls-cert`/`-key`).
    pub server_tls: Option<service::tls::Connector>,
    /// How keys are placed: distribution, key hash, servers' weights and names.
    pub placement: cluster::PlacementConfig,
    /// twemproxy's stats port (`--stats-port`), when asked for.
    pub stats: Option<nc_stats::StatsConfig>,
    /// Where to serve metrics and the ring page (`--metrics-port`); `None`: nothing is
    /// recorded.
    pub metrics: Option<String>,
    /// The pool's shared topology in etcd (`--topology`); `None`: this proxy's own ring.
    pub topology: Option<etcd::EtcdConfig>,
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
    /// How long dialling a server may take.
    pub connect_timeout: Duration,
    /// Idle dedicated connections (blocking commands, WATCH), by server.
    pub dedicated: dedicated::Pool,
    /// One permit per blocking command waiting on a dedicated connection.
    pub blocking: Arc<Semaphore>,
    /// The number of those permits, for the error past the bound.
    pub max_blocking_connections: usize,
    /// Who may connect and run what.
    pub auth: service::auth::Auth,
    /// Where ring changes are written (`--state-file`); with `shared`, a cache of the pool's
    /// topology for a start without etcd.
    pub state_file: Option<std::path::PathBuf>,
    /// The `nutcracker.yml` to write the ring back to (`CONFIG REWRITE`, `--write-config`).
    pub config_file: Option<config_file::ConfigFile>,
    /// The pool's topology store in etcd (`--topology`): ring changes go there.
    pub shared: Option<Arc<etcd::Shared>>,
    /// Commands learned from the servers' `COMMAND INFO`.
    learned: learned::Learned,
    /// Per-command counters for `/metrics`.
    pub metrics: metrics::Metrics,
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
        request_timeout: config.server_timeout,
        server_password: config.server_password.as_deref().map(Arc::from),
        server_tls: config.server_tls.clone(),
        placement: config.placement.clone(),
    }));
    let mut servers: Vec<(String, u32)> =
        config.servers.iter().map(|s| (s.clone(), config.placement.weight_of(s))).collect();
    let mut placement = None;
    if let Some(path) = &config.state_file {
        if let Some(state) = state_file::load(path)? {
            placement = state_file::placement(&state)?;
            tracing::info!(
                "[proxy] ring loaded from the state file {} ({} servers); it takes precedence over --servers",
                path.display(),
                state.servers.len()
            );
            servers = state.servers.into_iter().map(|s| (s.addr, s.weight)).collect();
        }
    }
    for (server, weight) in &servers {
        // A command-line error, not a protocol one: no `ERR` prefix.
        cluster.add(server, *weight, false).map_err(|error| anyhow::anyhow!("{error} (--servers)"))?;
        tracing::info!("[proxy] Added server: {server}");
    }
    if let Some((distribution, hash)) = placement {
        // SET_DISTRIBUTION changed it before the restart; an error only says it is the same.
        if cluster.set_placement(distribution, hash, false).is_ok() {
            let ring = &cluster.load().ring;
            tracing::info!(
                "[proxy] keys placed by {} with {}, as the state file says",
                distribution.name(),
                ring.hash_name()
            );
        }
    }
    // Servers given at start hold no keys yet: nothing to migrate.
    cluster.finish_migration();
    tokio::spawn(health_check::check_forever(Arc::downgrade(&cluster), config.health));
    let shared = match &config.topology {
        Some(topology) => {
            let id = format!("{local}-{}", std::process::id());
            Some(Arc::new(etcd::Shared::new(topology, id, pool_placement(&config)).await?))
        }
        None => None,
    };
    let proxy = Arc::new(Proxy {
        cluster,
        migrator: Migrator::new(migration::Transport::for_servers(
            config.server_password.as_deref().map(Arc::from),
            config.server_tls.is_some(),
        )),
        migrate_by_default: config.migrate,
        stats: Stats::default(),
        port: local.port(),
        listen: local,
        started: Instant::now(),
        connect_timeout: config.connect_timeout,
        dedicated: dedicated::Pool::new(config.server_password.as_deref().map(Arc::from))
            .with_tls(config.server_tls.clone()),
        blocking: Arc::new(Semaphore::new(config.max_blocking_connections)),
        max_blocking_connections: config.max_blocking_connections,
        auth: config.auth.clone(),
        state_file: config.state_file.clone(),
        config_file: config.config_file.clone(),
        shared: shared.clone(),
        learned: learned::Learned::default(),
        metrics: metrics::Metrics::default(),
    });
    if let Some(shared) = &shared {
        etcd::join(&proxy, shared).await?;
        etcd::start(&proxy, shared, config.health.interval);
    }
    // The file exists from the start, with the ring the proxy serves.
    state_file::save_ring(&proxy);
    tokio::spawn(repair::repair_forever(Arc::downgrade(&proxy), config.health.interval));
    let weak = Arc::downgrade(&proxy);
    tokio::spawn(service::trim::after_floods(move || weak.upgrade().map(|proxy| proxy.stats.clients())));
    if let Some(stats) = config.stats.clone() {
        tokio::spawn(nc_stats::serve(stats, Arc::downgrade(&proxy)));
    }
    if let Some(addr) = &config.metrics {
        let listener =
            TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("listening on {addr} (--metrics-port): {e}"))?;
        service::metrics::enable();
        tokio::spawn(service::metrics::serve(listener, web::router(proxy.clone()), std::future::pending()));
    }
    let tls = if config.tls.is_some() { ", TLS only" } else { "" };
    tracing::info!("[proxy] listening on {local} (replicas={}{tls})", config.vnodes);
    let config = Arc::new(config);
    service::serve(listener, config.max_clients, config.tls.is_some(), shutdown, config.shutdown_timeout, |stream, peer, stopping, slot| {
        let (proxy, config) = (proxy.clone(), config.clone());
        async move {
            let _slot = slot;
            let mut stream = match &config.tls {
                // Boxed: a TLS handshake's state is large, and a plain client's task must not
                // carry room for it.
                Some(tls) => match boxed_handshake(tls, stream).await {
                    Ok(stream) => stream,
                    Err(error) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed; closing the client");
                        return;
                    }
                },
                None => Stream::from(stream),
            };
            if !proxy.auth.admits(&peer) {
                tracing::debug!(%peer, "refusing client: protected mode (no --requirepass) admits loopback clients only");
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, &service::auth::denied_reply()).await;
                let _ = tokio::io::AsyncWriteExt::flush(&mut stream).await;
                return;
            }
            // Awaited in place, never bound to a name first: a future held in a local and then
            // awaited gets room twice in this task (rustc keeps storage for moved-from
            // locals), and a boxed one costs a second allocation per client. Measured idle
            // client: 1.97 KiB this way, 2.2 KiB boxed, 3.2 KiB through a local.
            if let Err(error) = handle_client(&proxy, &config, stream, stopping).await {
                tracing::debug!(%peer, %error, "client connection ended");
            }
        }
    })
    .await;
    Ok(())
}

/// What this proxy's flags say about where keys land, as the pool's document records it.
fn pool_placement(config: &Config) -> etcd::doc::Placement {
    etcd::doc::Placement {
        vnodes: config.vnodes,
        distribution: etcd::doc::Placement::distribution_name(config.placement.distribution),
        hash: etcd::doc::Placement::hash_name(config.placement.hash),
        replication: config.replication,
        hash_tag: format!("{:?}", config.hash_tag),
    }
}

/// A TLS handshake's future, boxed outside the client's task for the same reason: its state
/// is large, and a plain client's task must not carry room for it.
fn boxed_handshake(
    tls: &service::tls::Acceptor,
    stream: tokio::net::TcpStream,
) -> Pin<Box<impl Future<Output = std::io::Result<Stream>> + Send + '_>> {
    Box::pin(tls.accept(stream))
}

async fn handle_client(proxy: &Arc<Proxy>, config: &Config, stream: Stream, stopping: Stopping) -> std::io::Result<()> {
    let _client = proxy.stats.client_connected();
    let mut conn = ClientConn::new(stream, config.limits, stopping).with_idle_timeout(config.idle_timeout);
    if config.greeting {
        let greeting: &[u8] = b"OK proxy ready (type HELP for commands)";
        // Boxed: the timer lives only until the first input, the task for the connection's life.
        match Box::pin(tokio::time::timeout(config.greeting_delay, conn.read_input())).await {
            // Silent: a person reading the screen.
            Err(_) => {
                resp::write::simple(conn.output(), greeting);
                conn.flush().await?;
            }
            Ok(read) => {
                if !read? {
                    return Ok(());
                }
                // Sent with the reply to the first request, unless that came from a program.
                if conn.first_input_byte().is_some_and(service::greeting::greets) {
                    resp::write::simple(conn.output(), greeting);
                }
            }
        }
    }
    let mut session = session::Session::default();
    let mut batch = Vec::new();
    loop {
        // A subscribed client also gets what its servers push.
        let event = tokio::select! {
            more = conn.next_batch(&mut batch) => Ok(more?),
            Some(push) = session.next_push() => Err(push),
        };
        let failures = session.client.auth_failures;
        let flow = match event {
            Ok(true) => session::run_batch(proxy, &mut session, &batch, &mut conn).await,
            Ok(false) => break,
            Err(push) => session.on_push(push, conn.output()),
        };
        if let Some(pause) = service::auth::throttle(failures, &session.client) {
            Box::pin(tokio::time::sleep(pause)).await;
        }
        conn.flush().await?;
        if flow == Flow::Quit || service::auth::must_close(&session.client) {
            break;
        }
    }
    Ok(())
}
