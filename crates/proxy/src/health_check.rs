//! Health checks: every server is PINGed at an interval; after `failure_limit` failures in a
//! row it is marked down and its keys go to the next server on the ring (twemproxy's
//! `auto_eject_hosts` with `server_failure_limit`); a down server is tried again every
//! `retry_timeout` (twemproxy's `server_retry_timeout`) and put back when it answers.

use std::sync::Arc;
use std::time::Duration;

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
                    let topology = cluster.snapshot();
                    let changed =
                        cluster.change_health(&topology, !ok, || backend.health.record(ok, config.failure_limit));
                    if changed {
                        if backend.health.is_locally_up() {
                            tracing::info!(backend = %backend.addr(), "[proxy] server {} is up again", backend.addr());
                        } else {
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
