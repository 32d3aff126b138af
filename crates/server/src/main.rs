//! `server`: one cache server of the demo cluster.

use clap::Parser;

/// An in-memory cache server speaking the Redis protocol (RESP2 and inline commands).
///
/// Start three for the demo: `server --port 6381 --name cache-A`, then 6382/cache-B and
/// 6383/cache-C. Connect with `nc 127.0.0.1 6381` or `redis-cli -p 6381` (the greeting goes
/// to people only: a client silent after connecting, or typing inline commands). The seed's
/// Go-style flags work too: `server -port 6381 -name cache-A`. Logs go to stderr; RUST_LOG
/// filters them. A line per command (`[cache-A] SET k = v`) is logged when stderr is a
/// terminal or with --log-requests, never under --no-log-requests.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 6381)]
    port: u16,
    /// Name shown in the greeting, WHOAMI and logs [default: cache-<port>].
    #[arg(long)]
    name: Option<String>,
    /// Bound on the keys' memory: bytes, or with a unit (100mb, 2gb; k/m/g are powers of
    /// 1000, kb/mb/gb of 1024). 0: no bound. Changed at run time with CONFIG SET maxmemory.
    #[arg(long, default_value = "0", value_parser = parse_maxmemory)]
    maxmemory: usize,
    /// What to evict at --maxmemory: Redis's noeviction, allkeys-lru, allkeys-lfu,
    /// allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl, or our
    /// allkeys-sieve (SIEVE, NSDI '24: a higher hit ratio than LRU).
    #[arg(long, default_value = "allkeys-sieve", value_parser = parse_policy)]
    maxmemory_policy: server::store::Policy,
    /// Warm restart: on SIGTERM or SIGINT, once clients are answered, write every key (with
    /// its TTL) to FILE, atomically; at start, load FILE if it exists. A corrupt or truncated
    /// file is refused (the server does not start) and never half-loaded. Off unless given.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<std::path::PathBuf>,
    #[command(flatten)]
    serve: service::ServeArgs,
}

fn main() -> std::process::ExitCode {
    cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse_from(cli::go_style_args());
    let config = server::Config {
        name: args.name.clone().unwrap_or_else(|| format!("cache-{}", args.port)),
        greeting: !args.serve.no_greeting,
        greeting_delay: args.serve.greeting_delay(),
        limits: args.serve.limits(),
        max_clients: args.serve.max_clients.max(1),
        threads: service::default_threads(args.serve.threads),
        coalesce: args.serve.coalesce(),
        log_requests: args.serve.log_requests(),
        shutdown_timeout: args.serve.shutdown_timeout(),
        idle_timeout: args.serve.idle_timeout(),
        auth: args.serve.auth(None),
        tls: args.serve.tls.acceptor()?,
        maxmemory: args.maxmemory,
        policy: args.maxmemory_policy,
        snapshot: args.snapshot.clone(),
    };
    // Clients are served on the event loops' own threads: the runtime only waits for signals.
    let serve = service::ServeArgs { threads: Some(1), ..args.serve };
    serve.run(args.port, |listener| async {
        server::run(listener, config, service::shutdown_signal()).await?;
        Ok(())
    })
}

fn parse_maxmemory(text: &str) -> Result<usize, String> {
    server::store::parse_memory(text)
        .ok_or_else(|| format!("not a memory size: {text} (examples: 1048576, 100mb, 2gb)"))
}

fn parse_policy(text: &str) -> Result<server::store::Policy, String> {
    server::store::Policy::parse(text).ok_or_else(|| {
        let names: Vec<&str> = server::store::Policy::ALL.iter().map(|p| p.name()).collect();
        format!("unknown policy {text}; one of: {}", names.join(", "))
    })
}
