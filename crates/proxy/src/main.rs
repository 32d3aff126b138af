//! `proxy`: the consistent-hashing proxy in front of the cache servers.

mod nutcracker;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// A sharding proxy that speaks the Redis protocol and spreads keys over cache servers with a
/// consistent-hash ring (32-bit FNV-1a, virtual nodes).
///
/// Start it with `proxy --port 6380`, then add servers with `ADD_SERVER 127.0.0.1:6381` over
/// `nc 127.0.0.1 6380`, or at start with `--servers`. The greeting goes to people only
/// (a client silent after connecting, or typing inline commands), so redis-cli, redis-benchmark
/// and client libraries work at default flags. The seed's Go-style flags work too:
/// `proxy -port 6380 -replicas 5`. Logs go to stderr; RUST_LOG filters them. A routing line per
/// request (`[proxy] SET k -> routing to ...`) is logged when stderr is a terminal or with
/// --log-requests, never under --no-log-requests.
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about)]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 6380)]
    port: u16,
    /// Virtual nodes per server on the ring (the seed calls them replicas); the seed
    /// distribution only (ketama always has 160 points per server, as twemproxy).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// How keys are divided among servers: seed (the seed's ring, exact to the Go demo),
    /// ketama (twemproxy's and libmemcached's, bit for bit), modula and random (twemproxy's),
    /// maglev (O(1) lookup, best balance), rendezvous (weighted highest random weight).
    #[arg(long, value_enum, default_value_t = ring::Distribution::Seed)]
    distribution: ring::Distribution,
    /// The key hash, by its twemproxy name. Default: the seed's FNV-1a-32 for
    /// --distribution seed, twemproxy's default fnv1a_64 for the others.
    #[arg(long, value_enum)]
    hash: Option<ring::Hash>,
    /// twemproxy's configuration file (nutcracker.yml; also -c, --conf-file): its pool sets
    /// the port, bind address, hash, distribution, hash tag, timeouts, ejection, pool size,
    /// AUTH and servers (with weights and names). Its keys win over the same flags. One pool
    /// per process.
    #[arg(short = 'c', long, alias = "conf-file")]
    config: Option<PathBuf>,
    /// The pool of --config to serve when the file has several.
    #[arg(long, requires = "config")]
    pool: Option<String>,
    /// Write the ring back to --config's pool (its servers: list, atomically) after every
    /// ADD_SERVER, REMOVE_SERVER and SET_DISTRIBUTION; without it only CONFIG REWRITE writes.
    #[arg(long, requires = "config")]
    write_config: bool,
    /// Check --config, print what it maps to, and exit (twemproxy's -t).
    #[arg(short = 't', long, requires = "config")]
    test_conf: bool,
    /// Serve twemproxy's stats JSON on this port (nutcracker's -s; it uses 22222): one JSON
    /// object per connection, with nutcracker's field names. Off unless given.
    #[arg(short = 's', long)]
    stats_port: Option<u16>,
    /// Address of the stats port (nutcracker's -a, whose default is 0.0.0.0).
    #[arg(short = 'a', long, default_value = "127.0.0.1")]
    stats_addr: String,
    /// Cache servers to add at start, comma separated: 127.0.0.1:6381,127.0.0.1:6382.
    #[arg(long, value_delimiter = ',', value_parser = server_address)]
    servers: Vec<String>,
    /// Milliseconds to wait when connecting to a cache server before replying -ERR.
    #[arg(long, default_value_t = 1000)]
    connect_timeout_ms: u64,
    /// Milliseconds a request may wait for a cache server's reply (twemproxy's `timeout:`);
    /// then the client gets `-ERR server host:port timed out after N ms`, the connection to
    /// that server is dropped and the timeout counts as a failed health check. 0: no limit.
    #[arg(long, default_value_t = 5000)]
    server_timeout_ms: u64,
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
    /// Hash only the part of a key between these two characters, when that part is not
    /// empty: with "{}", {user1}:cart and {user1}:orders land on one server (twemproxy's
    /// hash_tag, Redis Cluster's rule). Off by default: keys are hashed whole, as in the seed.
    #[arg(long, value_parser = parse_hash_tag, default_value = "")]
    hash_tag: ring::HashTag,
    /// Keys remembered per down server for hinted handoff: writes that land on another server
    /// while a server is down are copied back before it serves them again. Past this many, the
    /// returning server is flushed instead (it comes back cold, never stale).
    #[arg(long, default_value_t = 100_000)]
    max_hints: usize,
    /// Most blocking commands (BLPOP, BRPOP, XREAD BLOCK, ...) waiting at once through the
    /// proxy, each on a server connection of its own; past it they get -ERR at once.
    #[arg(long, default_value_t = 1000)]
    max_blocking_connections: usize,
    /// Password for the commands that change the ring or erase or reconfigure every server
    /// (ADD_SERVER, REMOVE_SERVER, REBALANCE, FLUSHALL, FLUSHDB, CONFIG SET...): a client
    /// gives it with `AUTH admin <password>`; without it they answer -NOPERM.
    #[arg(long)]
    admin_password: Option<String>,
    /// Password the proxy gives its cache servers (`AUTH <password>` when it opens a
    /// connection): their --requirepass, or a redis-server's requirepass.
    #[arg(long)]
    server_password: Option<String>,
    /// File that keeps the ring (servers and weights) across restarts: rewritten atomically
    /// after every ADD_SERVER, REMOVE_SERVER and REBALANCE, and read at start, where it takes
    /// precedence over --servers.
    #[arg(long)]
    state_file: Option<std::path::PathBuf>,
    /// Share the pool's topology with other proxies through etcd:
    /// `etcd://host:port[,host:port...]/prefix`. Ring changes on any proxy are written there
    /// (compare-and-swap on its revision) and applied by every proxy of the prefix; one proxy,
    /// elected, moves keys during a migration; a server is down for all only when a majority
    /// of the live proxies say so. Then --state-file is a cache, read only when etcd cannot be
    /// reached at start, and --servers only seeds a pool that etcd does not hold yet.
    #[arg(long, value_parser = parse_topology)]
    topology: Option<proxy::etcd::Spec>,
    /// Seconds a proxy's etcd lease lasts: a dead proxy's mover role and health reports end
    /// this long after it stops renewing it.
    #[arg(long, default_value_t = 5, requires = "topology")]
    topology_lease_secs: u64,
    #[command(flatten)]
    server_tls: service::tls::ServerTlsArgs,
    #[command(flatten)]
    serve: service::ServeArgs,
}

fn parse_topology(spec: &str) -> Result<proxy::etcd::Spec, String> {
    spec.parse()
}

fn parse_hash_tag(spec: &str) -> Result<ring::HashTag, String> {
    ring::HashTag::parse(spec).ok_or_else(|| format!("a hash tag is two characters, such as \"{{}}\"; got {spec:?}"))
}

/// A `--servers` entry: `host:port`, checked as ADD_SERVER checks it.
fn server_address(addr: &str) -> Result<String, String> {
    match proxy::cluster::check_address(addr) {
        Ok(()) => Ok(addr.to_string()),
        Err(_) => Err("invalid server address, expected host:port".to_string()),
    }
}

fn main() -> std::process::ExitCode {
    cli::exit_code(run())
}

/// Reads `--config` into `args` (its keys win) and returns the placement it asks for, and
/// notes on keys that have no effect here (logged once tracing is up).
fn load_config(args: &mut Args) -> anyhow::Result<(proxy::cluster::PlacementConfig, Vec<String>, Option<String>)> {
    let mut placement =
        proxy::cluster::PlacementConfig { distribution: args.distribution, hash: args.hash, ..Default::default() };
    let Some(path) = args.config.clone() else {
        return Ok((placement, Vec::new(), None));
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let pool =
        nutcracker::parse(&path.display().to_string(), &text, args.pool.as_deref()).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        args.servers.is_empty(),
        "--servers and --config both list servers: keep them in {} only",
        path.display()
    );
    args.port = pool.port;
    args.serve.bind = pool.bind.clone();
    args.distribution = pool.distribution;
    args.hash = Some(pool.hash);
    args.hash_tag = pool.hash_tag;
    args.server_timeout_ms = pool.timeout_ms;
    args.server_connections = pool.server_connections;
    args.no_auto_eject = !pool.auto_eject_hosts;
    args.server_retry_timeout_ms = pool.server_retry_timeout_ms;
    args.server_failure_limit = pool.server_failure_limit;
    if pool.client_connections > 0 {
        args.serve.max_clients = pool.client_connections;
    }
    if let Some(password) = &pool.redis_auth {
        args.serve.requirepass = Some(password.clone());
        args.server_password = Some(password.clone());
    }
    placement.distribution = pool.distribution;
    placement.hash = Some(pool.hash);
    for server in &pool.servers {
        args.servers.push(server.addr.clone());
        placement.weights.insert(server.addr.clone(), server.weight);
        if let Some(name) = &server.name {
            placement.labels.insert(server.addr.clone(), name.clone());
        }
    }
    if args.test_conf {
        println!(
            "{}: pool {:?} is valid: listen {}:{}, distribution {}, hash {}, {} servers",
            path.display(),
            pool.name,
            pool.bind,
            pool.port,
            pool.distribution,
            pool.hash,
            pool.servers.len()
        );
    }
    let notes = pool.notes.iter().map(|note| format!("{}: {note}", path.display())).collect();
    Ok((placement, notes, Some(pool.name)))
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse_from(cli::go_style_args());
    if let Some(pools) = several_pools(&args)? {
        return run_pools(args, pools);
    }
    let mut args = args;
    let (placement, notes, pool) = load_config(&mut args)?;
    if args.test_conf {
        return Ok(());
    }
    let config = build_config(&args, placement, pool)?;
    args.serve.run(args.port, |listener| {
        for note in &notes {
            tracing::warn!("[proxy] {note}");
        }
        proxy::run(listener, config, service::shutdown_signal())
    })
}

/// The pools of `--config` when it has several and `--pool` picks none: then each becomes a
/// listener of this process, as under nutcracker.
fn several_pools(args: &Args) -> anyhow::Result<Option<Vec<String>>> {
    let (Some(path), None) = (&args.config, &args.pool) else { return Ok(None) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let names = nutcracker::pool_names(&path.display().to_string(), &text).map_err(anyhow::Error::msg)?;
    Ok((names.len() > 1).then_some(names))
}

/// Serves every pool of `--config` from this process: a listener and a ring each, one
/// shutdown for all.
fn run_pools(args: Args, names: Vec<String>) -> anyhow::Result<()> {
    let file = args.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    // These name one thing per process: one pool's.
    let single = [
        (args.state_file.is_some(), "--state-file"),
        (args.stats_port.is_some(), "--stats-port"),
        (args.serve.metrics_port.is_some(), "--metrics-port"),
        (args.topology.is_some(), "--topology"),
    ];
    for (given, flag) in single {
        anyhow::ensure!(
            !given,
            "{flag} serves one pool, and {file} has {} ({}): run a proxy per pool with --pool NAME",
            names.len(),
            names.join(", ")
        );
    }
    let mut pools = Vec::new();
    for name in &names {
        let mut pool_args = args.clone();
        pool_args.pool = Some(name.clone());
        let (placement, notes, pool) = load_config(&mut pool_args)?;
        let config = build_config(&pool_args, placement, pool)?;
        pools.push((pool_args, config, notes));
    }
    if args.test_conf {
        return Ok(());
    }
    args.serve.run_in_runtime(|| async move {
        // One signal stops every pool.
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let signal = service::shutdown_signal();
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
        let mut running = tokio::task::JoinSet::new();
        for (pool_args, config, notes) in pools {
            let address = format!("{}:{}", pool_args.serve.bind, pool_args.port);
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("listening on {address} (pool {:?})", pool_args.pool.unwrap_or_default()))?;
            pool_args.serve.warn_if_exposed();
            for note in &notes {
                tracing::warn!("[proxy] {note}");
            }
            let mut stopping = stopping.clone();
            running.spawn(proxy::run(listener, config, async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            }));
        }
        while let Some(ended) = running.join_next().await {
            ended.context("a pool's proxy panicked")??;
        }
        Ok(())
    })
}

/// The proxy's configuration from the flags (and `--config`'s pool, already read into them).
fn build_config(
    args: &Args,
    placement: proxy::cluster::PlacementConfig,
    pool: Option<String>,
) -> anyhow::Result<proxy::Config> {
    let pool_name = pool.clone().unwrap_or_else(|| "proxy".into());
    Ok(proxy::Config {
        vnodes: args.replicas.max(1),
        servers: args.servers.clone(),
        greeting: !args.serve.no_greeting,
        greeting_delay: args.serve.greeting_delay(),
        limits: args.serve.limits(),
        max_clients: args.serve.max_clients.max(1),
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        server_timeout: Duration::from_millis(args.server_timeout_ms),
        server_connections: args.server_connections.max(1),
        replication: args.replication_factor.max(1),
        migrate: args.migrate,
        hash_tag: args.hash_tag,
        max_hints: args.max_hints.max(1),
        max_blocking_connections: args.max_blocking_connections,
        health: proxy::health_check::HealthConfig {
            enabled: !args.no_auto_eject,
            interval: Duration::from_millis(args.health_interval_ms.max(10)),
            failure_limit: args.server_failure_limit.max(1),
            retry_timeout: Duration::from_millis(args.server_retry_timeout_ms),
        },
        log_requests: args.serve.log_requests(),
        shutdown_timeout: args.serve.shutdown_timeout(),
        idle_timeout: args.serve.idle_timeout(),
        auth: args.serve.auth(args.admin_password.as_deref()),
        server_password: args.server_password.clone().filter(|p| !p.is_empty()),
        state_file: args.state_file.clone(),
        config_file: match (&args.config, &pool) {
            (Some(path), Some(pool)) => Some(proxy::config_file::ConfigFile {
                path: path.clone(),
                pool: pool.clone(),
                write_on_change: args.write_config,
            }),
            _ => None,
        },
        tls: args.serve.tls.acceptor()?,
        server_tls: args.server_tls.connector()?,
        placement,
        stats: args
            .stats_port
            .map(|port| proxy::nc_stats::StatsConfig { addr: format!("{}:{port}", args.stats_addr), pool: pool_name }),
        metrics: args.serve.metrics_addr(),
        topology: args.topology.clone().map(|spec| proxy::etcd::EtcdConfig {
            spec,
            lease_ttl: Duration::from_secs(args.topology_lease_secs.max(1)),
        }),
    })
}
