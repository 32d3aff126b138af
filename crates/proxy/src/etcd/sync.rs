//! Keeping a proxy's ring in step with the pool's document: read it, apply it, then watch
//! `<prefix>/topology` from the next revision and apply every version in order. When the
//! watch breaks (etcd gone, or the revision compacted), the proxy keeps its ring and starts
//! over from the current revision once etcd answers.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};

use super::doc::{Placement, PoolDoc};
use super::{timed, Shared};
use crate::cluster::{Cluster, MembershipError};
use crate::Proxy;

/// Pause before reading etcd again after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// Follows the pool's document until the proxy is gone.
pub async fn watch_forever(proxy: Weak<Proxy>, shared: Arc<Shared>) {
    loop {
        match follow(&proxy, &shared).await {
            Ok(()) => return,
            Err(error) => {
                if shared.reachable.swap(false, Relaxed) {
                    tracing::warn!(%error, "[proxy] lost the topology watch; serving the last topology");
                } else {
                    tracing::debug!(%error, "[proxy] etcd still unreachable");
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Reads the document (creating it from this proxy's ring if the pool has none yet and this
/// proxy has servers), applies it, then applies each new version the watch delivers. `Ok`
/// when the proxy is gone.
async fn follow(proxy: &Weak<Proxy>, shared: &Arc<Shared>) -> Result<(), String> {
    let Some(strong) = proxy.upgrade() else { return Ok(()) };
    let (doc, revision, store_revision) = loop {
        let read = shared.read().await?;
        let ring = strong.cluster.snapshot();
        if read.0.is_some() || ring.ring.is_empty() {
            // A proxy without servers waits for the pool's first topology in the watch.
            break read;
        }
        let first = shared.first_doc(&strong);
        let created = shared.write_if(&first, 0).await?;
        tracing::info!(
            servers = first.servers.len(),
            created = created.is_some(),
            "[proxy] pool topology created in etcd"
        );
    };
    if !shared.reachable.swap(true, Relaxed) {
        tracing::info!(revision, "[proxy] following the pool's topology in etcd");
    }
    if let Some(doc) = doc {
        apply(&strong, shared, doc, revision).await;
    }
    drop(strong);
    let mut client = shared.client();
    let options = WatchOptions::new().with_start_revision(store_revision + 1);
    let mut stream = timed(client.watch(shared.key("topology"), Some(options))).await?;
    loop {
        let Some(reply) = stream.message().await.map_err(|e| e.to_string())? else {
            return Err("etcd closed the watch".into());
        };
        if reply.canceled() {
            return Err(format!("etcd cancelled the watch: {}", reply.cancel_reason()));
        }
        for event in reply.events() {
            let Some(kv) = event.kv() else { continue };
            if event.event_type() != EventType::Put {
                tracing::warn!(
                    revision = kv.mod_revision(),
                    "[proxy] the pool's topology was deleted; keeping the last one"
                );
                continue;
            }
            let doc: PoolDoc = match serde_json::from_slice(kv.value()) {
                Ok(doc) => doc,
                Err(error) => {
                    tracing::error!(%error, revision = kv.mod_revision(), "[proxy] ignoring an invalid pool topology");
                    continue;
                }
            };
            let Some(strong) = proxy.upgrade() else { return Ok(()) };
            apply(&strong, shared, doc, kv.mod_revision()).await;
        }
    }
}

/// Makes the proxy's ring match `doc` (at `revision`), unless it already applied that
/// revision or a later one.
pub async fn apply(proxy: &Arc<Proxy>, shared: &Arc<Shared>, doc: PoolDoc, revision: i64) {
    let _turn = shared.applying.lock().await;
    let known = shared.known.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if revision <= known.revision {
        return;
    }
    if !doc.placement.admits(&shared.placement) || doc.placement.ring().is_none() {
        tracing::error!(
            pool = ?doc.placement,
            ours = ?shared.placement,
            revision,
            "[proxy] the pool places keys differently from this proxy's flags (or names a distribution or hash \
             this build does not know); not applying its topology"
        );
        return;
    }
    let cluster = &proxy.cluster;
    let before = cluster.snapshot();
    let running_before = known.doc.as_ref().and_then(|d| d.migration.as_ref()).map(|m| m.id);
    if let Some(migration) = &doc.migration {
        // Clients move stranded keys from now on: before the ring changes.
        proxy.migrator.set_shared(true);
        if before.ring.is_empty() {
            // Joining mid-migration: the old ring first (placed as it was), so keys are
            // looked for there too.
            if let Some(previous) = &migration.previous_placement {
                place(cluster, previous, revision);
            }
            for server in &migration.previous {
                let _ = cluster.add(&server.addr, server.weight, false);
            }
        }
    }
    let ring = cluster.snapshot().ring.clone();
    let draining = |addr: &str| doc.migration.as_ref().is_some_and(|m| m.draining.iter().any(|d| d == addr));
    for addr in ring.server_ids().map(|id| ring.server(id).to_string()) {
        if !doc.contains(&addr) {
            match cluster.remove(&addr, draining(&addr), false) {
                Ok(()) => tracing::info!(revision, "[proxy] Removed server: {addr}"),
                Err(error) => tracing::warn!(%error, revision, "[proxy] could not apply a removal"),
            }
        }
    }
    for server in &doc.servers {
        if !ring.contains(&server.addr) {
            match cluster.add(&server.addr, server.weight, false) {
                Ok(()) => tracing::info!(revision, "[proxy] Added server: {}", server.addr),
                Err(error) => tracing::warn!(%error, revision, "[proxy] could not apply an addition"),
            }
        }
    }
    // SET_DISTRIBUTION: the same servers, placed anew (the old ring joins the history).
    place(cluster, &doc.placement, revision);
    let mut new_migration = false;
    match &doc.migration {
        None => {
            if running_before.is_some() || known.revision == 0 {
                // The mover finished (or this proxy just joined): forget the old rings.
                cluster.finish_migration();
            }
            proxy.migrator.set_shared(false);
        }
        Some(migration) => {
            new_migration = running_before != Some(migration.id) && known.revision != 0;
            if new_migration {
                // A fresh copy, so that `before` is not the current snapshot when the ring
                // did not change (REBALANCE).
                cluster.refresh();
            }
        }
    }
    tracing::info!(revision, epoch = doc.epoch, servers = doc.servers.len(), "[proxy] pool topology applied");
    *shared.known.lock().unwrap_or_else(|p| p.into_inner()) = super::Known { doc: Some(doc), revision };
    crate::state_file::save_ring(proxy);
    if !new_migration {
        acknowledge(shared, revision).await;
        return;
    }
    // The mover starts once every proxy acknowledged the change: by then none has a request
    // in flight that was routed by the old ring alone. (Waited for apart: the client that
    // asked for the change may hold the old snapshot until it is answered.)
    let shared = shared.clone();
    tokio::spawn(async move {
        crate::migration::wait_for_requests_on(before).await;
        acknowledge(&shared, revision).await;
    });
}

/// Makes the ring place keys as `placement` says; nothing when it already does.
fn place(cluster: &Cluster, placement: &Placement, revision: i64) {
    let Some((distribution, hash)) = placement.ring() else { return };
    match cluster.set_placement(distribution, hash, false) {
        Ok(()) => tracing::info!(revision, distribution = distribution.name(), "[proxy] Distribution set"),
        Err(MembershipError::SamePlacement(_)) => {}
        Err(error) => tracing::warn!(%error, revision, "[proxy] could not apply a placement"),
    }
}

/// Records in etcd that this proxy applied `revision`.
async fn acknowledge(shared: &Shared, revision: i64) {
    shared.applied.fetch_max(revision, Relaxed);
    if let Err(error) = shared.register().await {
        tracing::debug!(%error, "[proxy] could not record the applied revision in etcd");
    }
}
