//! `server`: one cache server of the demo cluster.

use anyhow::Context;
use clap::Parser;
use resp::Limits;

/// An in-memory cache server speaking the Redis protocol (RESP2 and inline commands).
///
/// Start three for the demo: `server --port 6381 --name cache-A`, then 6382/cache-B and
/// 6383/cache-C. Connect with `nc 127.0.0.1 6381` or `redis-cli -p 6381`. The seed's Go-style
/// flags work too: `server -port 6381 -name cache-A`. Logs go to stderr; RUST_LOG filters them
/// (`RUST_LOG=warn` silences the per-command lines under load).
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 6381)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Name shown in the greeting, WHOAMI and logs [default: cache-<port>].
    #[arg(long)]
    name: Option<String>,
    /// Do not send the `+OK <name> ready` greeting on connect (for Redis clients and tools).
    #[arg(long)]
    no_greeting: bool,
    /// Most clients connected at once; one more gets -ERR and is closed.
    #[arg(long, default_value_t = 10_000)]
    max_clients: usize,
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
        let config = server::Config {
            name: args.name.unwrap_or_else(|| format!("cache-{}", args.port)),
            greeting: !args.no_greeting,
            limits: Limits {
                max_inline_len: args.max_inline_len,
                max_bulk_len: args.max_bulk_len,
                max_args: args.max_args,
            },
            max_clients: args.max_clients.max(1),
        };
        server::run(listener, config, service::shutdown_signal()).await;
        Ok(())
    })
}
