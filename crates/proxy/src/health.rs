//! Health checks: every server is PINGed at an interval; after `failure_limit` failures in a
//! row it is marked down and its keys go to the next server on the ring (twemproxy's
//! `auto_eject_hosts` with `server_failure_limit`); a down server is tried again every
//! `retry_timeout` (twemproxy's `server_retry_timeout`) and put back when it answers.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backend::Backend;
use crate::cluster::Cluster;

/// When and how servers are checked.
#[derive(Debug, Clone, Copy)]
pub struct HealthConfig {
    /// Check servers at all (`--no-auto-eject` turns it off).
    pub enabled: bool,
    /// Time between checks.
    pub interval: Duration,
    /// Failed checks in a row before a server is marked down.
    pub failure_limit: u32,
    /// How long a down server waits before it is checked again.
    pub retry_timeout: Duration,
}

/// One server's health as the checks see it.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    /// A quorum of the pool's proxies reports the server failing (`--topology etcd://...`):
    /// down for every proxy, even one that still reaches it.
    pool_down: AtomicBool,
    failures: AtomicU32,
    /// Times the server was marked down.
    ejections: AtomicU64,
    down_since: Mutex<Option<Instant>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            ejections: AtomicU64::new(0),
            pool_down: AtomicBool::new(false),
            down_since: Mutex::new(None),
        }
    }
}

impl Health {
    /// Whether the server takes traffic: this proxy's checks pass and the pool has not
    /// agreed that it is down.
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed) && !self.pool_down.load(Relaxed)
    }

    /// Whether this proxy's own checks pass (what it reports to the pool).
    pub fn is_locally_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Whether a quorum of the pool's proxies reports the server failing.
    pub fn is_pool_down(&self) -> bool {
        self.pool_down.load(Relaxed)
    }

    /// Records the pool's verdict; true when it changed.
    pub fn set_pool_down(&self, down: bool) -> bool {
        self.pool_down.swap(down, Relaxed) != down
    }

    /// The state for SERVERS DETAIL.
    pub fn state(&self) -> &'static str {
        match (self.is_locally_up(), self.pool_down.load(Relaxed)) {
            (true, false) => "up",
            (true, true) => "pool-down",
            (false, _) => "down",
        }
    }

    /// Times the server was marked down since it joined.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Relaxed)
    }

    /// Failed checks in a row.
    pub fn failures(&self) -> u32 {
        self.failures.load(Relaxed)
    }

    /// Whether a down server is due for another try.
    fn due(&self, retry_timeout: Duration) -> bool {
        let since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        since.is_none_or(|t| t.elapsed() >= retry_timeout)
    }

    /// Counts a failure seen outside the checks (a request that timed out): the next failed
    /// check is that much closer to the failure limit. The checks alone mark servers down
    /// or up.
    pub fn note_failure(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    /// Records a check with a failure limit of three (for tests of other modules).
    #[cfg(test)]
    pub(crate) fn record_for_test(&self, ok: bool) -> bool {
        self.record(ok, 3)
    }

    /// Records a check; true when the state changed.
    fn record(&self, ok: bool, failure_limit: u32) -> bool {
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            self.failures.store(0, Relaxed);
            *since = None;
            return !self.up.swap(true, Relaxed);
        }
        let failures = self.failures.fetch_add(1, Relaxed) + 1;
        if !self.is_locally_up() {
            *since = Some(Instant::now());
            return false;
        }
        if failures >= failure_limit {
            self.up.store(false, Relaxed);
            self.ejections.fetch_add(1, Relaxed);
            *since = Some(Instant::now());
            return true;
        }
        false
    }
}

/// Checks every server of the current ring at each interval, until the cluster is gone.
pub async fn check_forever(cluster: std::sync::Weak<Cluster>, config: HealthConfig) {
    if !config.enabled {
        return;
    }
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(cluster) = cluster.upgrade() else { return };
        let topology = cluster.snapshot();
        let checks =
            topology.backends().filter(|b| b.health.is_up() || b.health.due(config.retry_timeout)).map(|backend| {
                let backend = backend.clone();
                let cluster = cluster.clone();
                async move {
                    let timeout = config.interval.max(Duration::from_millis(500));
                    let mut ok = ping(&backend, timeout).await;
                    if ok && !backend.health.is_locally_up() && cluster.hints.overflowed(backend.addr()) {
                        ok = flush_before_return(&cluster, &backend, timeout).await;
                    }
                    if backend.health.record(ok, config.failure_limit) {
                        if backend.health.is_locally_up() {
                            tracing::info!(backend = %backend.addr(), "[proxy] server {} is up again", backend.addr());
                        } else {
                            // Route around it from now on, not from the end of the round.
                            cluster.set_any_down(true);
                            tracing::warn!(
                                backend = %backend.addr(),
                                "[proxy] server {} is down after {} failed checks; its keys go to the next server",
                                backend.addr(),
                                config.failure_limit
                            );
                        }
                    }
                }
            });
        // All servers are checked at once: one slow server does not delay the others.
        let running: Vec<_> = checks.map(tokio::spawn).collect();
        for check in running {
            let _ = check.await;
        }
        cluster.set_any_down(topology.backends().any(|b| !b.health.is_up()));
    }
}

/// A server whose hint log overflowed while it was down may hold values older than writes
/// it cannot be told about: it is flushed before it takes traffic again (it comes back cold,
/// never stale). True when the flush succeeded.
async fn flush_before_return(cluster: &Cluster, backend: &Arc<Backend>, timeout: Duration) -> bool {
    let reply = backend.send(Bytes::from_static(b"*1\r\n$8\r\nFLUSHALL\r\n"), 1).await;
    let flushed = matches!(
        tokio::time::timeout(timeout, reply).await,
        Ok(Ok(Ok(replies))) if replies.get(0) == b"+OK\r\n"
    );
    if flushed {
        cluster.hints.clear(backend.addr());
        tracing::warn!(
            backend = %backend.addr(),
            "[proxy] server {} flushed on its return: more writes went elsewhere while it was down than --max-hints",
            backend.addr()
        );
    }
    flushed
}

/// One PING over the pool; true on `+PONG` within `timeout`.
async fn ping(backend: &Arc<Backend>, timeout: Duration) -> bool {
    let reply = backend.send(Bytes::from_static(b"PING\r\n"), 1).await;
    match tokio::time::timeout(timeout, reply).await {
        Ok(Ok(Ok(replies))) => replies.get(0) == b"+PONG\r\n",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_the_failure_limit_and_up_after_one_success() {
        let health = Health::default();
        assert!(!health.record(false, 3));
        assert!(!health.record(false, 3));
        assert!(health.is_up(), "two failures are below the limit");
        assert!(health.record(false, 3), "the third failure marks it down");
        assert_eq!(health.state(), "down");
        assert!(!health.record(false, 3), "still down: no change to report");
        assert!(!health.due(Duration::from_secs(60)), "a down server waits for the retry timeout");
        assert!(health.due(Duration::ZERO));
        assert!(health.record(true, 3), "one success puts it back");
        assert!(health.is_up());
        assert_eq!(health.failures(), 0);
    }

    #[test]
    fn request_timeouts_count_towards_the_limit() {
        let health = Health::default();
        health.note_failure();
        health.note_failure();
        assert!(health.is_up(), "timeouts alone do not mark a server down");
        assert!(health.record(false, 3), "one failed check after two timeouts reaches the limit");
        assert!(!health.is_up());
    }

    #[test]
    fn a_success_resets_the_count() {
        let health = Health::default();
        health.record(false, 2);
        health.record(true, 2);
        assert!(!health.record(false, 2));
        assert!(health.is_up());
    }
}
