//! `proxy`: the consistent-hashing proxy in front of the cache servers.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use resp::Limits;

/// A sharding proxy that speaks the Redis protocol and spreads keys over cache servers with a
/// consistent-hash ring (32-bit FNV-1a, virtual nodes).
///
/// Start it with `proxy --port 6380`, then add servers with `ADD_SERVER 127.0.0.1:6381` over
/// `nc 127.0.0.1 6380`, or at start with `--servers`. Use `--no-greeting` for redis-cli,
/// redis-benchmark and client libraries. The seed's Go-style flags work too:
/// `proxy -port 6380 -replicas 5`. Logs go to stderr; RUST_LOG filters them (`RUST_LOG=warn`
/// silences the per-request routing lines under load).
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 6380)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Virtual nodes per server on the ring (the seed calls them replicas).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Cache servers to add at start, comma separated: 127.0.0.1:6381,127.0.0.1:6382.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Do not send the `+OK proxy ready` greeting on connect (for Redis clients and tools).
    #[arg(long)]
    no_greeting: bool,
    /// Most clients connected at once; one more gets -ERR and is closed.
    #[arg(long, default_value_t = 10_000)]
    max_clients: usize,
    /// Milliseconds to wait when connecting to a cache server before replying -ERR.
    #[arg(long, default_value_t = 1000)]
    connect_timeout_ms: u64,
    /// Pooled connections per cache server, shared by all clients (requests are pipelined on them).
    #[arg(long, default_value_t = 1)]
    server_connections: usize,
    /// Copies of each key: writes go to the first R distinct servers clockwise, reads to the
    /// first that is up, falling back to the next on an error or a miss.
    #[arg(long, default_value_t = 1)]
    replication_factor: usize,
    /// ADD_SERVER and REMOVE_SERVER move the affected keys (as if given MIGRATE); without it
    /// they keep the seed's behaviour and moved keys miss until REBALANCE.
    #[arg(long)]
    migrate: bool,
    /// Milliseconds between health checks (PING) of every server.
    #[arg(long, default_value_t = 500)]
    health_interval_ms: u64,
    /// Failed health checks in a row before a server is marked down and its keys go to the
    /// next server on the ring.
    #[arg(long, default_value_t = 3)]
    server_failure_limit: u32,
    /// Milliseconds before a server marked down is checked again (and put back when it answers).
    #[arg(long, default_value_t = 2000)]
    server_retry_timeout_ms: u64,
    /// Never mark servers down: a dead server's keys answer -ERR until it is back or removed.
    #[arg(long)]
    no_auto_eject: bool,
    /// Longest inline command line, in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_INLINE_LEN)]
    max_inline_len: usize,
    /// Largest bulk string (key or value), in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_BULK_LEN)]
    max_bulk_len: usize,
    /// Most arguments in one command.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_ARGS)]
    max_args: usize,
    /// Runtime worker threads [default: half the cores, at least 1; 1 runs everything on one thread].
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse_from(cli::go_style_args());
    cli::init_tracing();
    let runtime = service::runtime(args.threads).context("starting the runtime")?;
    runtime.block_on(async {
        let address = format!("{}:{}", args.bind, args.port);
        let listener =
            tokio::net::TcpListener::bind(&address).await.with_context(|| format!("listening on {address}"))?;
        let config = proxy::Config {
            vnodes: args.replicas.max(1),
            servers: args.servers,
            greeting: !args.no_greeting,
            limits: Limits {
                max_inline_len: args.max_inline_len,
                max_bulk_len: args.max_bulk_len,
                max_args: args.max_args,
            },
            max_clients: args.max_clients.max(1),
            connect_timeout: Duration::from_millis(args.connect_timeout_ms),
            server_connections: args.server_connections.max(1),
            replication: args.replication_factor.max(1),
            migrate: args.migrate,
            health: proxy::health::HealthConfig {
                enabled: !args.no_auto_eject,
                interval: Duration::from_millis(args.health_interval_ms.max(10)),
                failure_limit: args.server_failure_limit.max(1),
                retry_timeout: Duration::from_millis(args.server_retry_timeout_ms),
            },
        };
        proxy::run(listener, config, service::shutdown_signal()).await
    })
}
