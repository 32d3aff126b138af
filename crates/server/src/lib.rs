//! The cache server: an in-memory key-value store that speaks the Redis protocol, with the
//! seed's greeting and commands on top.
//!
//! `main.rs` parses flags and calls [`run`]; tests start the real binary.
#![warn(missing_docs)]

mod cmd;
pub mod event_loop;
mod glob;
pub mod metrics;
pub mod sieve;
pub mod snapshot;
pub mod stop;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resp::Limits;
use tokio::net::TcpListener;

pub use service::Stats;
use store::Store;

/// How often active expiry runs (Redis's `hz` 10), and the time one cycle may take: Redis's
/// slow cycle may use 25% of a tick; ours bounds each lock hold too (see
/// [`Store::active_expire`]).
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
const EXPIRE_BUDGET: Duration = Duration::from_millis(10);

/// Everything [`run`] needs besides the listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// The name in the greeting, WHOAMI and logs (`cache-A`).
    pub name: String,
    /// Send `+OK <name> ready` to a new client (the seed's nc sessions expect it), when it
    /// stays silent for `greeting_delay` or opens with an inline command; never to a client
    /// that opens with a multibulk array (see [`service::greeting`]).
    pub greeting: bool,
    /// How long a new client may stay silent before it is greeted.
    pub greeting_delay: Duration,
    /// Bounds on client input.
    pub limits: Limits,
    /// Most clients served at once.
    pub max_clients: usize,
    /// Event loops serving clients, each on its own thread.
    pub threads: usize,
    /// The pause that lets requests of several busy clients gather before a poll (see
    /// [`event_loop`]); zero blocks in the poll at once, like Redis.
    pub coalesce: Duration,
    /// Log a line per command (`[cache-A] SET k = v`): see `service::ServeArgs::log_requests`.
    pub log_requests: bool,
    /// How long a shutdown may spend answering the requests clients already sent.
    pub shutdown_timeout: Duration,
    /// Clients idle this long are closed (Redis's `timeout`); zero: never.
    pub idle_timeout: Duration,
    /// Who may connect and what they must AUTH with (`--requirepass`, `--protected-mode`).
    pub auth: service::auth::Auth,
    /// TLS on the listener (`--tls-cert`, `--tls-key`, `--tls-ca`): then clients speak TLS only.
    pub tls: Option<service::tls::Acceptor>,
    /// Bound on the keyspace's memory in bytes (`--maxmemory`); 0: none.
    pub maxmemory: usize,
    /// What to evict when `maxmemory` is reached (`--maxmemory-policy`).
    pub policy: store::Policy,
    /// Where to serve Prometheus metrics (`--metrics-port`), on the runtime that waits for
    /// signals, not on the event loops.
    pub metrics: Option<String>,
    /// Warm restart (`--snapshot FILE`): the keys are loaded from it at start and written to
    /// it on a clean stop (see [`snapshot`]).
    pub snapshot: Option<std::path::PathBuf>,
}

/// What every connection of one server shares.
pub struct Ctx {
    /// The keyspace.
    pub store: Store,
    /// The server's name.
    pub name: String,
    /// Log a line per command (read per request: a plain field, no tracing call when off).
    pub log_requests: bool,
    /// Counters for INFO.
    pub stats: Stats,
    /// The port it listens on.
    pub port: u16,
    /// When it started.
    pub started: Instant,
    /// Who may connect and run commands.
    pub auth: service::auth::Auth,
    /// SHUTDOWN from a client.
    pub stop: stop::StopRequest,
    /// Whether the server writes a snapshot when it stops (`--snapshot`).
    pub has_snapshot: bool,
}

/// Serves clients on `listener` until `shutdown` resolves.
///
/// The clients are served by `config.threads` event loops (see [`event_loop`]) on threads of
/// their own; this future only waits for `shutdown`, then stops them and waits until they
/// have answered what their clients already sent and closed them (at most
/// `config.shutdown_timeout`). It waits without blocking its runtime, so other tasks (a
/// second signal's) still run.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let address = listener.local_addr()?;
    let store = Store::new();
    store.set_policy(config.policy);
    store.set_maxmemory(config.maxmemory);
    if let Some(path) = &config.snapshot {
        // Before any event loop runs: clients wait in the listen queue until the cache is warm.
        let started = Instant::now();
        match snapshot::load(path, &store) {
            Ok(Some(loaded)) => tracing::info!(
                "[{}] loaded {} keys from the snapshot {} in {:?} ({} had expired)",
                config.name,
                loaded.keys,
                path.display(),
                started.elapsed(),
                loaded.expired
            ),
            Ok(None) => tracing::info!("[{}] no snapshot at {} yet: starting empty", config.name, path.display()),
            Err(error) => {
                return Err(std::io::Error::other(format!(
                    "the snapshot {} is refused: {error}; nothing was loaded. Move it away to start with an \
                     empty cache (--snapshot)",
                    path.display()
                )))
            }
        }
    }
    let ctx = Arc::new(Ctx {
        store,
        name: config.name.clone(),
        log_requests: config.log_requests,
        stats: Stats::default(),
        port: address.port(),
        started: Instant::now(),
        auth: config.auth.clone(),
        stop: stop::StopRequest::default(),
        has_snapshot: config.snapshot.is_some(),
    });
    if let Some(addr) = &config.metrics {
        let metrics = TcpListener::bind(addr).await?;
        tokio::spawn(service::metrics::serve(metrics, metrics::router(ctx.clone()), std::future::pending()));
    }
    let tls = if config.tls.is_some() { ", TLS only" } else { "" };
    tracing::info!("[{}] listening on {} (greeting={}{tls})", config.name, address, config.greeting);
    let config = Arc::new(config);
    let (stoppers_tx, stoppers) = std::sync::mpsc::channel();
    // A loop that ends on its own (its poll failed) stops the whole server rather than leave
    // it listening with nobody serving.
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut threads = Vec::new();
    for index in 0..config.threads.max(1) {
        let (ctx, config, listener) = (ctx.clone(), config.clone(), listener.try_clone()?);
        let (stoppers_tx, ended_tx) = (stoppers_tx.clone(), ended_tx.clone());
        let thread = std::thread::Builder::new().name(format!("event-loop-{index}")).spawn(move || {
            let _ended = NotifyOnDrop(ended_tx);
            let (event_loop, stopper) = event_loop::EventLoop::new(&ctx, &config, listener, index == 0)?;
            let _ = stoppers_tx.send(stopper);
            // `run` below collects the stoppers until every sender is gone.
            drop(stoppers_tx);
            event_loop.run()
        })?;
        threads.push(thread);
    }
    drop((stoppers_tx, ended_tx));
    let stoppers: Vec<_> = stoppers.iter().collect();
    let mut running = threads.len();
    if stoppers.len() == threads.len() {
        tokio::select! {
            _ = shutdown => {}
            _ = ctx.stop.asked() => {}
            _ = ended.recv() => {
                tracing::error!("an event loop ended; stopping the server");
                running -= 1;
            }
        }
    }
    for stopper in &stoppers {
        stopper.stop();
    }
    // Each loop returns once its clients are answered or its shutdown deadline passed.
    for _ in 0..running {
        if ended.recv().await.is_none() {
            break;
        }
    }
    for thread in threads {
        match thread.join() {
            Ok(result) => result?,
            Err(_) => return Err(std::io::Error::other("an event loop panicked")),
        }
    }
    if let (Some(path), stop::Save::NoSave) = (&config.snapshot, ctx.stop.save()) {
        tracing::warn!(
            "[{}] SHUTDOWN NOSAVE: the snapshot {} is not written; the next start loads what an earlier stop wrote there",
            config.name,
            path.display()
        );
    } else if let Some(path) = &config.snapshot {
        // Every client is answered and gone: the keys are final.
        let started = Instant::now();
        let count = snapshot::save(path, &ctx.store)
            .map_err(|error| std::io::Error::other(format!("writing the snapshot {}: {error}", path.display())))?;
        tracing::info!(
            "[{}] wrote {count} keys to the snapshot {} in {:?}",
            config.name,
            path.display(),
            started.elapsed()
        );
    }
    Ok(())
}

/// Sends a message when dropped: when its thread ends, also by a panic.
struct NotifyOnDrop(tokio::sync::mpsc::UnboundedSender<()>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Called every [`SWEEP_INTERVAL`]: advances the LRU/LFU clock and runs one bounded
/// active-expiry cycle, so expired keys do not hold memory until they are read.
fn sweep_round(store: &Store, _round: usize) {
    store.tick();
    store.active_expire(EXPIRE_BUDGET);
}
