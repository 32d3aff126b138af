//! This proxy's lease: while it lives, the proxy is a member of the pool
//! (`<prefix>/proxies/<id>`), and its mover role and health reports stand. A proxy that dies
//! or loses etcd for longer than the lease's TTL drops out of all three at once.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::PutOptions;

use super::{timed, Shared};

/// The current lease of a proxy.
#[derive(Debug, Default)]
pub struct LeaseCell {
    /// etcd's lease id (0: none).
    id: AtomicI64,
    /// Counts the leases granted: a holder of a role compares it to see that it lost it.
    generation: AtomicU64,
}

impl LeaseCell {
    /// The lease id, if there is one.
    pub fn id(&self) -> Option<i64> {
        Some(self.id.load(Relaxed)).filter(|id| *id != 0)
    }

    /// Which lease this is (changes when a new one is granted).
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }
}

impl Shared {
    /// Writes (or refreshes) this proxy's member key with the revision it applied.
    pub(super) async fn register(&self) -> Result<(), String> {
        let Some(lease) = self.lease.id() else { return Ok(()) };
        let mut client = self.client();
        let options = PutOptions::new().with_lease(lease);
        let value = self.applied_revision().to_string();
        timed(client.put(self.key(&format!("proxies/{}", self.id)), value, Some(options))).await.map(drop)
    }
}

/// Grants a lease, registers the proxy, keeps the lease alive; on loss, starts over.
pub async fn keep_forever(shared: Arc<Shared>) {
    let ttl = shared.lease_ttl;
    loop {
        if let Err(error) = keep_one(&shared, ttl).await {
            tracing::warn!(%error, proxy = %shared.id, "[proxy] etcd lease lost; renewing");
        }
        shared.lease.id.store(0, Relaxed);
        shared.reachable.store(false, Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// One lease, from grant to loss.
async fn keep_one(shared: &Shared, ttl: Duration) -> Result<(), String> {
    let mut client = shared.client();
    let grant = timed(client.lease_grant(ttl.as_secs().max(1) as i64, None)).await?;
    shared.lease.id.store(grant.id(), Relaxed);
    shared.lease.generation.fetch_add(1, Relaxed);
    shared.register().await?;
    shared.reachable.store(true, Relaxed);
    tracing::info!(lease = grant.id(), proxy = %shared.id, ttl_s = ttl.as_secs(), "[proxy] joined the pool in etcd");
    let (mut keeper, mut replies) = timed(client.lease_keep_alive(grant.id())).await?;
    let mut tick = tokio::time::interval(ttl / 3);
    loop {
        tick.tick().await;
        timed(keeper.keep_alive()).await?;
        match timed(replies.message()).await? {
            Some(reply) if reply.ttl() > 0 => shared.reachable.store(true, Relaxed),
            _ => return Err("the lease expired".into()),
        }
    }
}
