//! The command-line flags every listening binary shares, and its start-up.

use std::future::Future;

use anyhow::Context;
use resp::Limits;
use tokio::net::TcpListener;

/// Where to listen and what to accept: flattened into the server's and the proxy's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Do not send the `+OK ... ready` greeting on connect (for Redis clients and tools).
    #[arg(long)]
    pub no_greeting: bool,
    /// Most clients connected at once; one more gets -ERR and is closed.
    #[arg(long, default_value_t = 10_000)]
    pub max_clients: usize,
    /// Longest inline command line, in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_INLINE_LEN)]
    pub max_inline_len: usize,
    /// Largest bulk string (key or value), in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_BULK_LEN)]
    pub max_bulk_len: usize,
    /// Most arguments in one command.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_ARGS)]
    pub max_args: usize,
    /// Microseconds to let requests gather when several clients are busy, instead of being
    /// woken by each one; 0 turns it off. A lone client never waits for it.
    #[arg(long, default_value_t = crate::coalesce::DEFAULT_PAUSE_US)]
    pub coalesce_us: u64,
    /// Threads serving clients: the server's event loops, the proxy's runtime workers [default:
    /// half the cores, at least 1].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds a shutdown (SIGTERM, SIGINT) may spend answering the requests clients already
    /// sent before the process exits anyway; a second signal exits at once.
    #[arg(long, default_value_t = crate::shutdown::DEFAULT_TIMEOUT_SECS)]
    pub shutdown_timeout: u64,
    /// Close a client after this many seconds without a request (Redis's `timeout`); 0 never.
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,
}

impl ServeArgs {
    /// The input limits the flags set.
    pub fn limits(&self) -> Limits {
        Limits { max_inline_len: self.max_inline_len, max_bulk_len: self.max_bulk_len, max_args: self.max_args }
    }

    /// The coalescing pause the flags set.
    pub fn coalesce(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.coalesce_us)
    }

    /// The shutdown timeout the flags set.
    pub fn shutdown_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_timeout)
    }

    /// The idle client timeout the flags set; zero: never.
    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout)
    }

    /// Starts tracing and the runtime, binds `bind:port`, and runs `serve` on the listener
    /// with Ctrl-C / SIGTERM as its shutdown signal.
    pub fn run<F, Fut>(&self, port: u16, serve: F) -> anyhow::Result<()>
    where
        F: FnOnce(TcpListener) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        cli::init_tracing();
        let runtime = crate::runtime(self.threads, self.coalesce()).context("starting the runtime")?;
        runtime.block_on(async {
            let address = format!("{}:{}", self.bind, port);
            let listener = TcpListener::bind(&address).await.with_context(|| format!("listening on {address}"))?;
            serve(listener).await
        })
    }
}
