//! Repairing hinted keys (see [`crate::handoff`]) once their server is back: on demand, when
//! a client's request touches one, and in the background for the rest.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::cluster::Topology;
use crate::Proxy;

/// Hinted keys repaired per round of the background task.
const KEYS_PER_ROUND: usize = 256;
/// Longest a key's repair may hold its lock: the server may stop again mid-repair.
const REPAIR_TIMEOUT: Duration = Duration::from_secs(1);

/// Repairs the hints of `key` whose server is back (the caller holds the key's lock).
pub async fn repair_key(proxy: &Proxy, topology: &Topology, key: &Bytes) -> Result<(), String> {
    let hints = &proxy.cluster.hints;
    let is_up = |addr: &str| topology.find(addr).is_some_and(|b| b.health.is_up());
    for (server, holder) in hints.for_key(key, is_up) {
        let repair = proxy.migrator.repair_hint(topology, &server, &holder, key);
        match tokio::time::timeout(REPAIR_TIMEOUT, repair).await {
            Ok(result) => result?,
            Err(_) => return Err(format!("no answer from {server} or {holder} within {REPAIR_TIMEOUT:?}")),
        }
        hints.done(&server, key);
    }
    Ok(())
}

/// Records hints for a write of `key` while a server that should hold it is down (the
/// caller holds the key's lock and sends the write right after).
pub fn record_write(proxy: &Proxy, topology: &Topology, key: &Bytes) {
    let Some(holder) = topology.replicas(key).first().map(|id| topology.backend(*id).addr().to_string()) else {
        return;
    };
    for id in topology.natural_replicas(key) {
        let backend = topology.backend(id);
        if !backend.health.is_up() {
            proxy.cluster.hints.record(backend.addr(), key, &holder);
        }
    }
}

/// Repairs hinted keys of servers that are back, until the proxy is gone.
pub async fn repair_forever(proxy: Weak<Proxy>, interval: Duration) {
    let mut tick = tokio::time::interval(interval.min(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        let Some(proxy) = proxy.upgrade() else { return };
        if proxy.cluster.hints.pending() {
            repair_round(&proxy).await;
        }
    }
}

async fn repair_round(proxy: &Arc<Proxy>) {
    let topology = proxy.cluster.snapshot();
    for server in proxy.cluster.hints.servers() {
        let Some(backend) = topology.find(&server) else {
            proxy.cluster.hints.clear(&server);
            continue;
        };
        if !backend.health.is_up() {
            continue;
        }
        for key in proxy.cluster.hints.some_keys(&server, KEYS_PER_ROUND) {
            let _lock = proxy.migrator.lock(std::iter::once(&key[..])).await;
            if let Err(error) = repair_key(proxy, &topology, &key).await {
                tracing::warn!(backend = %server, %error, "[proxy] repairing a hinted key failed; retrying later");
                break;
            }
        }
    }
}
