//! Health agreement: a server is down for the whole pool only when a quorum (a majority) of
//! the live proxies report it failing. Each proxy writes `<prefix>/health/<server>/<id>`
//! under its lease while its own checks fail, and deletes it when they pass; a dead proxy's
//! reports go with its lease. A proxy that alone cannot reach a server still routes around
//! it itself (its own checks), but the others keep using it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{GetOptions, PutOptions};

use super::{timed, Shared};
use crate::Proxy;

/// Reports and reads the pool's verdicts every `interval`, until the proxy is gone.
pub async fn agree_forever(proxy: Weak<Proxy>, shared: Arc<Shared>, interval: Duration) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What this proxy has reported, and under which lease generation.
    let mut reported: HashSet<String> = HashSet::new();
    let mut generation = 0;
    loop {
        tick.tick().await;
        let Some(proxy) = proxy.upgrade() else { return };
        if shared.lease.generation() != generation {
            // A new lease: earlier reports went with the old one.
            reported.clear();
            generation = shared.lease.generation();
        }
        if let Err(error) = agree_once(&proxy, &shared, &mut reported).await {
            tracing::debug!(%error, "[proxy] health agreement: etcd unreachable; keeping the last verdicts");
        }
    }
}

/// One round: report changes of this proxy's view, then apply the pool's verdicts.
async fn agree_once(proxy: &Proxy, shared: &Shared, reported: &mut HashSet<String>) -> Result<(), String> {
    let Some(lease) = shared.lease.id() else { return Ok(()) };
    let topology = proxy.cluster.snapshot();
    let mut client = shared.client();
    // Reports on servers that left the ring go: one re-added later starts clean.
    for addr in reported.clone() {
        if topology.ring.id_of(&addr).is_none() {
            timed(client.delete(shared.key(&format!("health/{addr}/{}", shared.id)), None)).await?;
            reported.remove(&addr);
        }
    }
    for backend in topology.backends() {
        let addr = backend.addr();
        let failing = !backend.health.is_locally_up();
        if failing == reported.contains(addr) {
            continue;
        }
        let key = shared.key(&format!("health/{addr}/{}", shared.id));
        if failing {
            timed(client.put(key, "down", Some(PutOptions::new().with_lease(lease)))).await?;
            tracing::info!(backend = %addr, proxy = %shared.id, "[proxy] reported a failing server to the pool");
            reported.insert(addr.to_string());
        } else {
            timed(client.delete(key, None)).await?;
            reported.remove(addr);
        }
    }
    let prefix = GetOptions::new().with_prefix();
    let members = timed(client.get(shared.key("proxies/"), Some(prefix.clone()))).await?.kvs().len();
    let reports = timed(client.get(shared.key("health/"), Some(GetOptions::new().with_prefix()))).await?;
    let health_prefix = shared.key("health/");
    let mut votes: HashMap<&str, usize> = HashMap::new();
    for kv in reports.kvs() {
        let Ok(key) = std::str::from_utf8(kv.key()) else { continue };
        if let Some((server, _proxy)) = key.strip_prefix(&health_prefix).and_then(|rest| rest.rsplit_once('/')) {
            *votes.entry(server).or_default() += 1;
        }
    }
    let quorum = quorum(members);
    let marks_down = votes.values().any(|&count| count >= quorum);
    proxy.cluster.change_health(&topology, marks_down, || {
        for backend in topology.backends() {
            let count = votes.get(backend.addr()).copied().unwrap_or(0);
            if backend.health.set_pool_down(count >= quorum) {
                let verdict = if count >= quorum { "down" } else { "up" };
                tracing::warn!(backend = %backend.addr(), reports = count, members, quorum, "[proxy] the pool marks a server {verdict}");
            }
        }
    });
    Ok(())
}

/// A majority of `members` live proxies (one when none is registered).
fn quorum(members: usize) -> usize {
    members / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::quorum;

    #[test]
    fn a_majority_of_the_live_proxies() {
        assert_eq!(quorum(0), 1);
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(2), 2, "two proxies: both must agree");
        assert_eq!(quorum(3), 2, "one of three with a bad link is outvoted");
        assert_eq!(quorum(5), 3);
    }
}
