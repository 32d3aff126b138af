//! The shared topology (`--topology etcd://host:port[,host:port...]/prefix`): many proxies
//! serve one pool, and etcd holds what they must agree on.
//!
//! Keys under the prefix:
//! - `topology`: the [`doc::PoolDoc`] (servers, weights, placement, migration). Changes are
//!   written with a compare-and-swap on its revision ([`Shared::propose`]); every proxy
//!   watches it and applies the revisions in order ([`sync`]).
//! - `proxies/<id>`: one per live proxy, under its lease, holding the revision it applied.
//! - `mover`: the proxy that moves keys during a migration, under its lease ([`mover`]).
//! - `health/<server>/<id>`: a proxy's report that it cannot reach a server, under its lease
//!   ([`quorum`]).
//!
//! Routing never waits for etcd: a proxy serves from its own snapshot, so losing etcd stops
//! topology changes, not traffic.

pub mod doc;
mod lease;
mod mover;
mod quorum;
mod sync;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, Txn, TxnOp};

use crate::Proxy;
use doc::{Change, Placement, PoolDoc};

/// How long one etcd request may take before the proxy treats etcd as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the pool's topology lives: `etcd://host:port[,host:port...]/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// etcd's client URLs (`http://host:port`).
    pub endpoints: Vec<String>,
    /// The key prefix of this pool, `/name` (no trailing slash).
    pub prefix: String,
}

impl std::str::FromStr for Spec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("expected etcd://host:port[,host:port...]/prefix, got {text:?}");
        let rest = text.strip_prefix("etcd://").ok_or_else(usage)?;
        let (hosts, prefix) = rest.split_once('/').ok_or_else(usage)?;
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            return Err(usage());
        }
        let endpoints: Vec<String> = hosts.split(',').map(|h| format!("http://{h}")).collect();
        if hosts.split(',').any(|h| crate::cluster::check_address(h).is_err()) {
            return Err(usage());
        }
        Ok(Spec { endpoints, prefix: format!("/{prefix}") })
    }
}

/// The shared-topology settings of [`crate::Config`].
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Where the topology lives.
    pub spec: Spec,
    /// Lifetime of this proxy's lease: its mover role and health reports last this long
    /// after it dies (`--topology-lease-secs`).
    pub lease_ttl: Duration,
}

/// The last document this proxy applied, and its revision in etcd.
#[derive(Debug, Clone, Default)]
struct Known {
    doc: Option<PoolDoc>,
    /// `mod_revision` of `<prefix>/topology` (0: none applied yet).
    revision: i64,
}

/// A proxy's handle on the shared topology.
pub struct Shared {
    client: Client,
    prefix: String,
    /// This proxy, among the pool's (`host:port-pid`).
    id: String,
    /// What this proxy's flags say about placement; the pool's document must agree on
    /// virtual nodes, replication and hash tag ([`Placement::admits`]).
    placement: Placement,
    lease_ttl: Duration,
    known: Mutex<Known>,
    /// The revision applied last (what this proxy's member key reports).
    applied: std::sync::atomic::AtomicI64,
    /// Held while a revision is applied: the watch and a change of this proxy's own take
    /// turns, and a revision older than the one applied is skipped.
    applying: tokio::sync::Mutex<()>,
    /// The current lease (0: none).
    lease: lease::LeaseCell,
    /// Whether etcd answered the last request.
    reachable: AtomicBool,
}

impl Shared {
    /// A handle on `config`'s etcd (connections are made when first used).
    pub async fn new(config: &EtcdConfig, id: String, placement: Placement) -> anyhow::Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(1))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(&config.spec.endpoints, Some(options)).await?;
        Ok(Self {
            client,
            prefix: config.spec.prefix.clone(),
            id,
            placement,
            lease_ttl: config.lease_ttl.max(Duration::from_secs(1)),
            known: Mutex::default(),
            applied: std::sync::atomic::AtomicI64::new(0),
            applying: tokio::sync::Mutex::new(()),
            lease: lease::LeaseCell::default(),
            reachable: AtomicBool::new(false),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// A client to send one request with (clones share the connection).
    fn client(&self) -> Client {
        self.client.clone()
    }

    /// The document as etcd has it now, with its revision (0 and `None`: no document yet)
    /// and the store's revision.
    pub async fn read(&self) -> Result<(Option<PoolDoc>, i64, i64), String> {
        let mut client = self.client();
        let reply = timed(client.get(self.key("topology"), None)).await?;
        let store_revision = reply.header().map_or(0, |h| h.revision());
        let Some(kv) = reply.kvs().first() else { return Ok((None, 0, store_revision)) };
        let doc = serde_json::from_slice(kv.value()).map_err(|e| format!("the pool's topology is not valid: {e}"))?;
        Ok((Some(doc), kv.mod_revision(), store_revision))
    }

    /// Writes `doc` if the document is still at `revision` (0: absent). `Ok(Some(rev))`:
    /// written at `rev`; `Ok(None)`: someone else changed it first.
    async fn write_if(&self, doc: &PoolDoc, revision: i64) -> Result<Option<i64>, String> {
        let key = self.key("topology");
        let value = serde_json::to_vec(doc).map_err(|e| e.to_string())?;
        let guard = match revision {
            0 => Compare::create_revision(key.clone(), CompareOp::Equal, 0),
            r => Compare::mod_revision(key.clone(), CompareOp::Equal, r),
        };
        let txn = Txn::new().when([guard]).and_then([TxnOp::put(key, value, None)]);
        let mut client = self.client();
        let reply = timed(client.txn(txn)).await?;
        Ok(reply.succeeded().then(|| reply.header().map_or(0, |h| h.revision())))
    }

    /// Writes `change` to the pool and applies it to `proxy` before answering (the other
    /// proxies apply it from their watch). The error is the client's `-ERR` text: a refused
    /// change, a lost race (retry), or etcd unreachable.
    pub async fn propose(self: &Arc<Self>, proxy: &Arc<Proxy>, change: &Change) -> Result<(), String> {
        let unreachable = |error: String| {
            self.reachable.store(false, Relaxed);
            tracing::warn!(%error, "[proxy] topology change refused: etcd unreachable");
            format!(
                "ERR the topology store (etcd) is unreachable ({error}); topology changes are refused until it is back"
            )
        };
        // The change is checked against the pool's current document (not this proxy's copy,
        // which may lag by a watch event), and written only if nobody wrote in between.
        let (doc, read_at, _) = self.read().await.map_err(unreachable)?;
        // No topology yet: the change creates the pool's first one, from this proxy's ring.
        let doc = doc.unwrap_or_else(|| self.first_doc(proxy));
        let next = doc.apply(change).map_err(|e| e.reply_text())?;
        let Some(revision) = self.write_if(&next, read_at).await.map_err(unreachable)? else {
            tracing::info!(revision = read_at, "[proxy] topology change lost a race with another proxy");
            return Err(format!(
                "ERR the topology changed on another proxy since revision {read_at}; nothing was changed, retry"
            ));
        };
        tracing::info!(revision, epoch = next.epoch, "[proxy] topology change written to etcd");
        // The document written is the pool's newest (the compare-and-swap says so): applying
        // it here now is what the watch will do, which then skips it.
        sync::apply(proxy, self, next, revision).await;
        Ok(())
    }

    /// A first document for the pool: this proxy's ring (its `--servers` or state file).
    fn first_doc(&self, proxy: &Proxy) -> PoolDoc {
        let servers = crate::state_file::State::of(&proxy.cluster.snapshot()).servers;
        PoolDoc::new(self.placement.clone(), servers)
    }

    /// Whether etcd answered the last request (for INFO).
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Relaxed)
    }

    /// The revision of the topology applied last.
    pub fn applied_revision(&self) -> i64 {
        self.applied.load(Relaxed)
    }

    /// The `topology` section of INFO.
    pub fn report(&self) -> String {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner()).clone();
        format!(
            "topology_store:etcd\r\ntopology_prefix:{}\r\ntopology_proxy_id:{}\r\ntopology_etcd_reachable:{}\r\n\
             topology_revision:{}\r\ntopology_epoch:{}\r\ntopology_migration:{}\r\n",
            self.prefix,
            self.id,
            u8::from(self.is_reachable()),
            known.revision,
            known.doc.as_ref().map_or(0, |d| d.epoch),
            known.doc.as_ref().and_then(|d| d.migration.as_ref()).map_or("none".into(), |m| m.id.to_string()),
        )
    }
}

/// Starts the tasks that keep `proxy` in step with the pool: the watch, the lease (with
/// this proxy's registration), the mover election and the health agreement.
pub fn start(proxy: &Arc<Proxy>, shared: &Arc<Shared>, health_interval: Duration) {
    tokio::spawn(sync::watch_forever(Arc::downgrade(proxy), shared.clone()));
    tokio::spawn(lease::keep_forever(shared.clone()));
    tokio::spawn(mover::elect_forever(Arc::downgrade(proxy), shared.clone()));
    tokio::spawn(quorum::agree_forever(Arc::downgrade(proxy), shared.clone(), health_interval));
}

/// Reads the pool's topology before the proxy serves. A proxy whose `--replicas`,
/// `--replication-factor` or `--hash-tag` differ from the pool's refuses to start (its
/// distribution and hash are the pool's, which SET_DISTRIBUTION may have changed); when
/// etcd cannot be reached, it serves the ring of its state file (or `--servers`) and joins
/// once etcd answers.
pub async fn join(proxy: &Arc<Proxy>, shared: &Arc<Shared>) -> anyhow::Result<()> {
    match shared.read().await {
        Ok((Some(doc), revision, _)) => {
            anyhow::ensure!(
                doc.placement.admits(&shared.placement),
                "the pool's topology in etcd places keys with {:?}, but this proxy's flags say {:?}: \
                 start it with the pool's --replicas, --replication-factor and --hash-tag",
                doc.placement,
                shared.placement
            );
            tracing::info!(revision, servers = doc.servers.len(), "[proxy] joined the pool's topology in etcd");
            sync::apply(proxy, shared, doc, revision).await;
        }
        Ok((None, _, _)) if proxy.cluster.snapshot().ring.is_empty() => {
            tracing::info!("[proxy] no pool topology in etcd yet: waiting for the first change")
        }
        Ok((None, _, _)) => {
            // This proxy's ring starts the pool (unless another proxy's was first: then the
            // watch brings that one).
            let first = shared.first_doc(proxy);
            match shared.write_if(&first, 0).await {
                Ok(Some(revision)) => {
                    tracing::info!(revision, servers = first.servers.len(), "[proxy] pool topology created in etcd");
                    sync::apply(proxy, shared, first, revision).await;
                }
                Ok(None) => tracing::info!("[proxy] another proxy created the pool's topology first"),
                Err(error) => tracing::warn!(%error, "[proxy] could not create the pool's topology; the watch will"),
            }
        }
        Err(error) => tracing::warn!(
            %error,
            "[proxy] etcd unreachable at start: serving the last topology known here (state file or --servers); \
             topology changes wait for etcd"
        ),
    }
    Ok(())
}

/// Runs one etcd request with [`REQUEST_TIMEOUT`]; the error as text.
async fn timed<T>(request: impl std::future::Future<Output = Result<T, etcd_client::Error>>) -> Result<T, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} ms", REQUEST_TIMEOUT.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::Spec;

    #[test]
    fn specs_name_endpoints_and_a_prefix() {
        let spec: Spec = "etcd://127.0.0.1:2379,10.0.0.2:2379/pool/a/".parse().unwrap();
        assert_eq!(spec.endpoints, ["http://127.0.0.1:2379", "http://10.0.0.2:2379"]);
        assert_eq!(spec.prefix, "/pool/a");
        for bad in ["127.0.0.1:2379/p", "etcd://127.0.0.1:2379", "etcd://127.0.0.1:2379/", "etcd://nonsense/p"] {
            assert!(bad.parse::<Spec>().is_err(), "{bad}");
        }
    }
}
