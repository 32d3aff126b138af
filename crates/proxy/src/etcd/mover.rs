//! The mover election: while the pool's document names a migration, exactly one proxy moves
//! the keys. It is the one that created `<prefix>/mover` under its lease; if it dies, the key
//! goes with its lease and another proxy takes over, scanning again from the start (moves
//! are idempotent: RESTORE without REPLACE, then DEL on the source).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};

use super::{timed, Shared};
use crate::migration::Migrator;
use crate::Proxy;

/// How long the mover waits for every live proxy to apply the change before it starts.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Campaigns for the mover role whenever a migration is pending, and runs it when elected.
pub async fn elect_forever(proxy: Weak<Proxy>, shared: Arc<Shared>) {
    let pause = (shared.lease_ttl / 4).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(pause).await;
        let Some(proxy) = proxy.upgrade() else { return };
        let known = shared.known.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(migration) = known.doc.as_ref().and_then(|d| d.migration.clone()) else { continue };
        let Some(lease) = shared.lease.id() else { continue };
        match campaign(&shared, lease, migration.id).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::debug!(%error, "[proxy] mover election: etcd unreachable");
                continue;
            }
        }
        let generation = shared.lease.generation();
        tracing::info!(migration = migration.id, proxy = %shared.id, "[proxy] elected to move the pool's keys");
        wait_for_acks(&shared, known.revision).await;
        if !proxy.migrator.try_begin() {
            continue;
        }
        let ok = Migrator::run_claimed(&proxy, None).await;
        let finished = ok && shared.lease.generation() == generation && finish(&shared, migration.id).await;
        proxy.migrator.abort();
        resign(&shared, lease).await;
        if !finished {
            tracing::warn!(migration = migration.id, "[proxy] migration not finished; trying again");
            tokio::time::sleep(shared.lease_ttl).await;
        }
    }
}

/// Takes `<prefix>/mover` under `lease` if it is free; true when this proxy holds it.
async fn campaign(shared: &Shared, lease: i64, migration: u64) -> Result<bool, String> {
    let key = shared.key("mover");
    let value = format!("{} migration={migration}", shared.id);
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.clone(), value, Some(PutOptions::new().with_lease(lease)))])
        .or_else([TxnOp::get(key, None)]);
    let mut client = shared.client();
    let reply = timed(client.txn(txn)).await?;
    if reply.succeeded() {
        return Ok(true);
    }
    let holder = reply.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.lease()),
        _ => None,
    });
    Ok(holder == Some(lease))
}

/// Waits until every live proxy has applied `revision` (or [`ACK_TIMEOUT`] passes): then no
/// proxy writes a key by the old ring alone.
async fn wait_for_acks(shared: &Shared, revision: i64) {
    let deadline = Instant::now() + ACK_TIMEOUT;
    let members = shared.key("proxies/");
    loop {
        let mut client = shared.client();
        if let Ok(reply) = timed(client.get(members.clone(), Some(GetOptions::new().with_prefix()))).await {
            let behind = reply
                .kvs()
                .iter()
                .filter(|kv| {
                    std::str::from_utf8(kv.value()).ok().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) < revision
                })
                .count();
            if behind == 0 {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(behind, revision, "[proxy] proxies have not applied the change; moving keys anyway");
                return;
            }
        }
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clears migration `id` from the document; true once it is gone.
async fn finish(shared: &Shared, id: u64) -> bool {
    for _ in 0..10 {
        match shared.read().await {
            Ok((Some(doc), revision, _)) => match doc.finished(id) {
                None => return true,
                Some(next) => match shared.write_if(&next, revision).await {
                    Ok(Some(revision)) => {
                        tracing::info!(migration = id, revision, "[proxy] migration finished for the pool");
                        return true;
                    }
                    Ok(None) => continue,
                    Err(error) => tracing::warn!(%error, "[proxy] could not record the end of the migration"),
                },
            },
            Ok((None, _, _)) => return true,
            Err(error) => tracing::warn!(%error, "[proxy] could not read the topology to end the migration"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// Gives the mover role back (if this lease still holds it).
async fn resign(shared: &Shared, lease: i64) {
    let key = shared.key("mover");
    let txn =
        Txn::new().when([Compare::lease(key.clone(), CompareOp::Equal, lease)]).and_then([TxnOp::delete(key, None)]);
    let mut client = shared.client();
    if let Err(error) = timed(client.txn(txn)).await {
        tracing::debug!(%error, "[proxy] could not give the mover role back; it ends with the lease");
    }
}
