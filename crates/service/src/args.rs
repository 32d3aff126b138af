//! The command-line flags every listening binary shares, and its start-up.

use std::future::Future;

use anyhow::Context;
use resp::Limits;
use tokio::net::TcpListener;

impl ServeArgs {
    /// `host:port` of the metrics server, when `--metrics-port` was given.
    pub fn metrics_addr(&self) -> Option<String> {
        self.metrics_port.map(|port| format!("{}:{port}", self.metrics_bind))
    }

    /// Logs a warning when listening beyond loopback without a password: protected mode then
    /// refuses every other address, or, under `--protected-mode no`, anyone may connect.
    /// Warns when the listener is reachable beyond loopback without a password.
    pub fn warn_if_exposed(&self) {
        if crate::auth::is_loopback_bind(&self.bind) || self.requirepass.as_deref().is_some_and(|p| !p.is_empty()) {
            return;
        }
        if self.protected_mode == "yes" {
            tracing::warn!(
                bind = %self.bind,
                "listening beyond loopback without --requirepass: protected mode refuses clients other than \
                 127.0.0.1 and ::1; set --requirepass to serve them"
            );
        } else {
            tracing::warn!(
                bind = %self.bind,
                "listening beyond loopback without --requirepass and with --protected-mode no: anyone who can \
                 reach this address can read, write and erase every key"
            );
        }
    }
}

/// Where to listen and what to accept: flattened into the server's and the proxy's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Serve Prometheus metrics at /metrics (and, on the proxy, the live ring page at /) on
    /// this port. Off unless given: then nothing is recorded.
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Address of the metrics port.
    #[arg(long, default_value = "127.0.0.1")]
    pub metrics_bind: String,
    /// Never send the `+OK ... ready` greeting. Without it, a client is greeted when it stays
    /// silent for --greeting-delay-ms after connecting or opens with an inline command (a
    /// person), never when it opens with a multibulk array (a Redis client or tool).
    #[arg(long)]
    pub no_greeting: bool,
    /// Milliseconds a new client may stay silent before it gets the greeting.
    #[arg(long, default_value_t = crate::greeting::DEFAULT_DELAY.as_millis() as u64)]
    pub greeting_delay_ms: u64,
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
    /// Log one line per request (the seed's `[proxy] SET k -> routing to ...`,
    /// `[cache-A] SET k = v`) [default: on when stderr is a terminal].
    #[arg(long, overrides_with = "no_log_requests")]
    pub log_requests: bool,
    /// Never log one line per request, even on a terminal.
    #[arg(long, overrides_with = "log_requests")]
    pub no_log_requests: bool,
    /// Seconds a shutdown (SIGTERM, SIGINT) may spend answering the requests clients already
    /// sent before the process exits anyway; a second signal exits at once.
    #[arg(long, default_value_t = crate::shutdown::DEFAULT_TIMEOUT_SECS)]
    pub shutdown_timeout: u64,
    /// Close a client after this many seconds without a request (Redis's `timeout`); 0 never.
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,
    /// Password clients must give (`AUTH <password>`, `AUTH default <password>`, `HELLO 3
    /// AUTH default <password>`) before any other command; Redis's `requirepass`.
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Redis's protected mode: with no --requirepass, clients from other addresses than
    /// 127.0.0.1 and ::1 get -DENIED and are closed. `no` turns it off (trusted networks only).
    #[arg(long, default_value = "yes", value_parser = ["yes", "no"])]
    pub protected_mode: String,
    #[command(flatten)]
    /// TLS on the listener (`--tls-cert`, `--tls-key`, `--tls-ca`).
    pub tls: crate::tls::TlsArgs,
}

impl ServeArgs {
    /// The input limits the flags set.
    pub fn limits(&self) -> Limits {
        Limits { max_inline_len: self.max_inline_len, max_bulk_len: self.max_bulk_len, max_args: self.max_args }
    }

    /// How long a new client may stay silent before it is greeted.
    pub fn greeting_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.greeting_delay_ms)
    }

    /// The access rules the flags set; `admin_password` is the proxy's `--admin-password`.
    pub fn auth(&self, admin_password: Option<&str>) -> crate::auth::Auth {
        crate::auth::Auth::new(self.requirepass.as_deref(), admin_password, self.protected_mode == "yes")
    }

    /// The coalescing pause the flags set.
    pub fn coalesce(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.coalesce_us)
    }

    /// Whether to log one line per request: the one place this is decided, once at start-up.
    ///
    /// The seed's per-request lines are for a person watching a terminal (the five-terminal
    /// way), so they are on when stderr is one. A program that sends stderr to a file or a
    /// pipe gets lifecycle lines only: formatting and writing a line per request would cost
    /// it a large share of its throughput. `--log-requests` and `--no-log-requests` decide
    /// instead of the terminal (the last one given wins); `RUST_LOG` still filters the lines.
    pub fn log_requests(&self) -> bool {
        use std::io::IsTerminal;
        if self.log_requests {
            true
        } else if self.no_log_requests {
            false
        } else {
            std::io::stderr().is_terminal()
        }
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
        self.run_in_runtime(|| async {
            let address = format!("{}:{}", self.bind, port);
            let listener = TcpListener::bind(&address).await.with_context(|| format!("listening on {address}"))?;
            self.warn_if_exposed();
            serve(listener).await
        })
    }

    /// Starts tracing and the runtime and runs `work` on it: for a process that binds its
    /// listeners itself (the proxy serving several pools of one file).
    pub fn run_in_runtime<F, Fut>(&self, work: F) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        cli::init_tracing();
        let runtime = crate::runtime(self.threads, self.coalesce()).context("starting the runtime")?;
        runtime.block_on(work())
    }
}
