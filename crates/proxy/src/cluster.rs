//! Membership: the ring and the backends behind it, as one immutable snapshot.
//!
//! Lookups load the current [`Topology`] without locking (`arc-swap`); ADD_SERVER and
//! REMOVE_SERVER build a new ring from a copy and swap it in, so requests in flight keep the
//! snapshot they started with and never wait for a writer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use ring::{HashRing, HashTag, ServerId};

use crate::backend::Backend;
use crate::handoff::Hints;

/// Ring changes whose placement is remembered for migration (older ones are forgotten).
const MAX_HISTORY: usize = 16;

/// One consistent view: the ring, the backend of each of its servers, and what a migration
/// needs to find keys that are not where the ring says yet.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The consistent-hash ring.
    pub ring: HashRing,
    /// Backends indexed by [`ServerId`].
    backends: Vec<Arc<Backend>>,
    /// Copies of every key: the first `replication` distinct servers clockwise.
    pub replication: usize,
    /// Whether any server is marked down (shared by all snapshots; set by health checks).
    any_down: Arc<AtomicBool>,
    /// Rings used since the last complete rebalance: keys may still sit where they placed
    /// them.
    pub history: Vec<HashRing>,
    /// Servers removed with MIGRATE whose keys are still being moved away.
    pub draining: Vec<Arc<Backend>>,
    /// The part of a key that is hashed (`--hash-tag`).
    pub hash_tag: HashTag,
    /// Log a routing line per request (a plain field, read per request).
    pub log_requests: bool,
}

impl Topology {
    /// The backend of a server of this ring.
    pub fn backend(&self, id: ServerId) -> &Arc<Backend> {
        &self.backends[id.0 as usize]
    }

    /// Every backend of the ring, in its sorted server order.
    pub fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.ring.server_ids().map(|id| self.backend(id))
    }

    /// The ring's servers that are not marked down.
    pub fn up_servers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.ring.server_ids().filter(|id| self.backend(*id).health.is_up())
    }

    /// The server that serves `key`: its owner on the ring, or, while the owner is marked
    /// down, the next server clockwise that is up (twemproxy's auto-eject). `None` on an
    /// empty ring.
    pub fn primary(&self, key: &[u8]) -> Option<ServerId> {
        let key = self.hash_tag.routing_key(key);
        let owner = self.ring.locate(key)?;
        if !self.any_down.load(Relaxed) {
            return Some(owner);
        }
        Some(self.ring.preference(key).find(|id| self.backend(*id).health.is_up()).unwrap_or(owner))
    }

    /// The servers that hold copies of `key`: the first `replication` distinct servers
    /// clockwise that are up (the owner alone when nothing is up, so the client hears why).
    pub fn replicas(&self, key: &[u8]) -> Vec<ServerId> {
        let key = self.hash_tag.routing_key(key);
        let mut up: Vec<ServerId> =
            self.ring.preference(key).filter(|id| self.backend(*id).health.is_up()).take(self.replication).collect();
        if up.is_empty() {
            up.extend(self.ring.locate(key));
        }
        up
    }

    /// Servers other than `targets` where earlier rings placed `key` (sources to move it
    /// from). Empty when no ring change is waiting for a rebalance.
    pub fn stranded_sources(&self, key: &[u8], targets: &[ServerId]) -> Vec<Arc<Backend>> {
        let key = self.hash_tag.routing_key(key);
        let mut sources: Vec<Arc<Backend>> = Vec::new();
        for ring in &self.history {
            for addr in ring.preference(key).take(self.replication).map(|id| ring.server(id)) {
                let is_target = targets.iter().any(|t| self.ring.server(*t) == addr);
                if !is_target && !sources.iter().any(|s| s.addr() == addr) {
                    sources.extend(self.find(addr).cloned());
                }
            }
        }
        sources
    }

    /// The backend for `addr`, in the ring or draining.
    pub fn find(&self, addr: &str) -> Option<&Arc<Backend>> {
        match self.ring.id_of(addr) {
            Some(id) => Some(self.backend(id)),
            None => self.draining.iter().find(|b| b.addr() == addr),
        }
    }

    /// Whether any server is marked down.
    pub fn any_down(&self) -> bool {
        self.any_down.load(Relaxed)
    }

    /// The servers that hold `key` when every server is up: the first `replication`
    /// distinct servers clockwise.
    pub fn natural_replicas(&self, key: &[u8]) -> impl Iterator<Item = ServerId> + '_ {
        self.ring.preference(self.hash_tag.routing_key(key)).take(self.replication)
    }

    /// Whether earlier rings may have left keys away from their servers.
    pub fn has_history(&self) -> bool {
        !self.history.is_empty() || !self.draining.is_empty()
    }
}

/// Why a membership change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipError {
    /// The address is not `host:port`.
    BadAddress(String),
    /// ADD_SERVER of a server already in the ring.
    AlreadyPresent(String),
    /// REMOVE_SERVER of a server not in the ring.
    NotPresent(String),
    /// A ring change while keys are being moved.
    MigrationRunning,
    /// SET_DISTRIBUTION to the placement the ring already has.
    SamePlacement(String),
}

impl MembershipError {
    /// The `-ERR` text a client receives.
    pub fn reply_text(&self) -> String {
        format!("ERR {self}")
    }
}

impl std::fmt::Display for MembershipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MembershipError::BadAddress(a) => write!(f, "invalid server address '{a}': expected host:port"),
            MembershipError::AlreadyPresent(a) => write!(f, "{a} is already in the ring"),
            MembershipError::NotPresent(a) => write!(f, "{a} is not in the ring"),
            MembershipError::MigrationRunning => {
                f.write_str("a migration is running; wait for it to finish (MIGRATION)")
            }
            MembershipError::SamePlacement(p) => write!(f, "the ring already uses {p}"),
        }
    }
}

impl std::error::Error for MembershipError {}

/// How the cluster builds its backends and placements.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Virtual nodes per server per unit of weight.
    pub vnodes: usize,
    /// Copies of each key.
    pub replication: usize,
    /// Pooled connections per server.
    pub connections_per_backend: usize,
    /// Dial timeout.
    pub connect_timeout: Duration,
    /// The part of a key that is hashed.
    pub hash_tag: HashTag,
    /// Keys remembered per down server for hinted handoff; past it the server is flushed
    /// when it returns.
    pub max_hints: usize,
    /// Log a routing line per request.
    pub log_requests: bool,
    /// How long a request may wait for its reply (zero: no limit).
    pub request_timeout: Duration,
    /// Sent as AUTH on every new server connection (`--server-password`).
    pub server_password: Option<Arc<str>>,
    /// TLS on every new server connection (`--server-tls`).
    pub server_tls: Option<service::tls::Connector>,
    /// Distribution, key hash, and the weights and names servers were configured with.
    pub placement: PlacementConfig,
}

/// How the ring places keys (`--distribution`, `--hash`, a `nutcracker.yml`'s servers).
#[derive(Debug, Clone, Default)]
pub struct PlacementConfig {
    /// The distribution; the seed's ring by default.
    pub distribution: ring::Distribution,
    /// The key hash; `None`: the distribution's default (the seed's FNV-1a-32 for `seed`,
    /// twemproxy's `fnv1a_64` otherwise).
    pub hash: Option<ring::Hash>,
    /// Weights of the servers given at start, by address (absent: 1).
    pub weights: HashMap<String, u32>,
    /// Names of servers (`host:port:weight name`), by address: ketama hashes the name, not
    /// the address, so a server keeps its keys when it moves. Also used by ADD_SERVER of
    /// such an address.
    pub labels: HashMap<String, String>,
}

impl PlacementConfig {
    /// The configured weight of `addr` (1 when none was given).
    pub fn weight_of(&self, addr: &str) -> u32 {
        self.weights.get(addr).copied().unwrap_or(1)
    }

    /// The label ketama hashes for `addr`: its name if it has one, else `host:port`, or `host`
    /// alone for port 11211 (libmemcached's rule, which twemproxy keeps).
    pub fn label_of<'a>(&'a self, addr: &'a str) -> Option<&'a str> {
        if let Some(name) = self.labels.get(addr) {
            return Some(name);
        }
        match addr.rsplit_once(':') {
            Some((host, "11211")) => Some(host),
            _ => None,
        }
    }
}

/// The proxy's membership: the current snapshot, and the pooled backends it refers to.
pub struct Cluster {
    current: ArcSwap<Topology>,
    /// Backends by address (ring and draining); also serialises membership changes.
    pool: Mutex<HashMap<String, Arc<Backend>>>,
    config: ClusterConfig,
    any_down: Arc<AtomicBool>,
    /// Orders changes of servers' health against `any_down` (see [`Cluster::change_health`]).
    health_changes: Mutex<()>,
    /// Writes that landed elsewhere while their server was down.
    pub hints: Hints,
}

impl Cluster {
    /// An empty cluster.
    pub fn new(config: ClusterConfig) -> Self {
        let any_down = Arc::new(AtomicBool::new(false));
        let empty = Topology {
            ring: HashRing::with_placement(config.vnodes, config.placement.distribution, config.placement.hash),
            backends: Vec::new(),
            replication: config.replication.max(1),
            any_down: any_down.clone(),
            history: Vec::new(),
            draining: Vec::new(),
            hash_tag: config.hash_tag,
            log_requests: config.log_requests,
        };
        let hints = Hints::new(config.max_hints);
        Self {
            current: ArcSwap::from_pointee(empty),
            pool: Mutex::default(),
            config,
            any_down,
            health_changes: Mutex::default(),
            hints,
        }
    }

    /// The current snapshot: cheap, lock-free.
    pub fn load(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.current.load()
    }

    /// The current snapshot as an owned handle, for work that outlives a guard.
    pub fn snapshot(&self) -> Arc<Topology> {
        self.current.load_full()
    }

    /// A backend for `addr` as this cluster makes them (pool size, timeout, password), not
    /// yet in the ring: ADD_SERVER checks a server through one before adding it.
    pub fn new_backend(&self, addr: &str) -> Backend {
        Backend::new(
            addr,
            self.config.connections_per_backend,
            self.config.connect_timeout,
            self.config.request_timeout,
        )
        .with_password(self.config.server_password.clone())
        .with_tls(self.config.server_tls.clone())
    }

    /// Runs `change`, which may mark servers of `topology` up or, when `may_mark_down`, down
    /// (a health check's verdict, the pool's), and keeps the flag routing reads in step with
    /// it: routing looks at each server's health only while some server is down. The flag is
    /// raised before a change that may mark a server down, so nobody who sees a server down
    /// (SERVERS DETAIL, INFO) can still have a request routed to it, and set from the
    /// servers' states after it; changes from the health checks and from the pool's verdicts
    /// take turns.
    pub fn change_health<R>(&self, topology: &Topology, may_mark_down: bool, change: impl FnOnce() -> R) -> R {
        let _turn = self.health_changes.lock().unwrap_or_else(|p| p.into_inner());
        if may_mark_down {
            self.any_down.store(true, Relaxed);
        }
        let result = change();
        self.any_down.store(topology.backends().any(|b| !b.health.is_up()), Relaxed);
        result
    }

    /// Adds a server with `weight` units of virtual nodes.
    pub fn add(&self, addr: &str, weight: u32, migrating: bool) -> Result<(), MembershipError> {
        check_address(addr)?;
        self.change(migrating, None, |ring| {
            ring.add_labelled(addr, weight.max(1), self.config.placement.label_of(addr))
                .then_some(())
                .ok_or_else(|| MembershipError::AlreadyPresent(addr.into()))
        })
    }

    /// Rebuilds the ring with another distribution and key hash (`None`: the distribution's
    /// default hash), keeping its servers, weights, names and virtual nodes. The old ring
    /// joins the history, as after ADD_SERVER: a migration (or REBALANCE) then moves every
    /// key to where the new placement puts it.
    pub fn set_placement(
        &self,
        distribution: ring::Distribution,
        hash: Option<ring::Hash>,
        migrating: bool,
    ) -> Result<(), MembershipError> {
        self.change(migrating, None, |ring| {
            let mut rebuilt = HashRing::with_placement(ring.vnodes(), distribution, hash);
            if rebuilt.distribution() == ring.distribution() && rebuilt.hash_name() == ring.hash_name() {
                return Err(MembershipError::SamePlacement(format!(
                    "{} with {}",
                    distribution.name(),
                    ring.hash_name()
                )));
            }
            for id in ring.server_ids() {
                let addr = ring.server(id);
                rebuilt.add_labelled(addr, ring.weight(id), self.config.placement.label_of(addr));
            }
            *ring = rebuilt;
            Ok(())
        })
    }

    /// Removes a server. Plain removal closes its connections at once (its keys are left
    /// behind, as in the seed); with `drain` it stays reachable until a migration has moved
    /// its keys away.
    pub fn remove(&self, addr: &str, drain: bool, migrating: bool) -> Result<(), MembershipError> {
        let keep = drain.then(|| addr.to_string());
        self.change(migrating, keep, |ring| {
            ring.remove(addr).then_some(()).ok_or_else(|| MembershipError::NotPresent(addr.into()))
        })
    }

    /// The ring as `ADD_SERVER addr weight` (`Some(weight)`) or `REMOVE_SERVER addr` (`None`)
    /// would make it, without changing anything: for PREVIEW.
    pub fn preview_ring(&self, addr: &str, weight: Option<u32>) -> Result<HashRing, MembershipError> {
        check_address(addr)?;
        let mut ring = self.current.load().ring.clone();
        let changed = match weight {
            Some(weight) => ring.add_labelled(addr, weight.max(1), self.config.placement.label_of(addr)),
            None => ring.remove(addr),
        };
        match (changed, weight) {
            (true, _) => Ok(ring),
            (false, Some(_)) => Err(MembershipError::AlreadyPresent(addr.into())),
            (false, None) => Err(MembershipError::NotPresent(addr.into())),
        }
    }

    /// Swaps in an identical copy of the snapshot and returns the old one, so a migration
    /// that does not change the ring (REBALANCE) can wait for the requests planned before it.
    pub fn refresh(&self) -> Arc<Topology> {
        let _pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current.load_full();
        self.current.store(Arc::new((*current).clone()));
        current
    }

    /// After a complete migration: forget the old rings and close drained servers.
    pub fn finish_migration(&self) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current.load();
        for backend in &current.draining {
            backend.close();
            pool.remove(backend.addr());
        }
        self.current.store(Arc::new(Topology { history: Vec::new(), draining: Vec::new(), ..(**current).clone() }));
    }

    /// Applies `edit` to a copy of the ring and swaps in the new snapshot; the old ring
    /// joins the history. `keep` names a removed server to keep as draining.
    fn change(
        &self,
        migrating: bool,
        keep: Option<String>,
        edit: impl FnOnce(&mut HashRing) -> Result<(), MembershipError>,
    ) -> Result<(), MembershipError> {
        if migrating {
            return Err(MembershipError::MigrationRunning);
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current.load();
        let mut ring = current.ring.clone();
        edit(&mut ring)?;
        let backends = (0..ring.len() as u32)
            .map(|id| {
                let addr = ring.server(ServerId(id));
                pool.entry(addr.to_string()).or_insert_with(|| Arc::new(self.new_backend(addr))).clone()
            })
            .collect();
        let mut draining = current.draining.clone();
        if let Some(backend) = keep.as_deref().and_then(|addr| pool.get(addr)) {
            draining.push(backend.clone());
        }
        pool.retain(|addr, backend| {
            let keep = ring.contains(addr) || draining.iter().any(|d| d.addr() == addr);
            if !keep {
                backend.close();
            }
            keep
        });
        let mut history = current.history.clone();
        if !current.ring.is_empty() {
            history.push(current.ring.clone());
        }
        if history.len() > MAX_HISTORY {
            history.remove(0);
        }
        self.current.store(Arc::new(Topology {
            ring,
            backends,
            replication: current.replication,
            any_down: self.any_down.clone(),
            history,
            draining,
            hash_tag: current.hash_tag,
            log_requests: current.log_requests,
        }));
        Ok(())
    }
}

/// `host:port` with a numeric port and a non-empty host.
/// Checks that `addr` reads as `host:port` (a port from 1 to 65535).
pub fn check_address(addr: &str) -> Result<(), MembershipError> {
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => Ok(()),
        _ => Err(MembershipError::BadAddress(addr.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(replication: usize) -> Cluster {
        Cluster::new(ClusterConfig {
            hash_tag: HashTag::NONE,
            max_hints: 1000,
            vnodes: 160,
            replication,
            connections_per_backend: 1,
            connect_timeout: Duration::from_millis(100),
            log_requests: false,
            request_timeout: Duration::ZERO,
            server_password: None,
            server_tls: None,
            placement: PlacementConfig::default(),
        })
    }

    #[test]
    fn addresses_must_be_host_and_port() {
        assert!(check_address("127.0.0.1:6381").is_ok());
        assert!(check_address("cache.local:6379").is_ok());
        for bad in ["nonsense", ":6379", "host:", "host:0", "host:99999", "host:port"] {
            assert_eq!(check_address(bad), Err(MembershipError::BadAddress(bad.into())), "{bad}");
        }
    }

    #[test]
    fn changes_keep_history_until_a_migration_finishes() {
        let cluster = cluster(1);
        cluster.add("127.0.0.1:1", 1, false).unwrap();
        cluster.add("127.0.0.1:2", 1, false).unwrap();
        assert_eq!(cluster.add("127.0.0.1:2", 1, false), Err(MembershipError::AlreadyPresent("127.0.0.1:2".into())));
        assert_eq!(cluster.add("127.0.0.1:3", 1, true), Err(MembershipError::MigrationRunning));
        assert_eq!(cluster.load().history.len(), 1, "the one-server ring is remembered");
        cluster.remove("127.0.0.1:1", true, false).unwrap();
        let topology = cluster.snapshot();
        assert_eq!(topology.draining.len(), 1, "a server removed with MIGRATE drains");
        assert!(topology.find("127.0.0.1:1").is_some());
        cluster.finish_migration();
        let topology = cluster.snapshot();
        assert!(!topology.has_history());
        assert!(topology.find("127.0.0.1:1").is_none());
    }

    #[test]
    fn stranded_sources_are_the_old_owners() {
        let cluster = cluster(1);
        cluster.add("127.0.0.1:1", 1, false).unwrap();
        cluster.add("127.0.0.1:2", 1, false).unwrap();
        cluster.finish_migration();
        let before = cluster.snapshot();
        cluster.add("127.0.0.1:3", 1, false).unwrap();
        let after = cluster.snapshot();
        let mut moved = 0;
        for i in 0..2000 {
            let key = format!("key:{i}");
            let (old, new) = (before.primary(key.as_bytes()).unwrap(), after.primary(key.as_bytes()).unwrap());
            let sources = after.stranded_sources(key.as_bytes(), &[new]);
            if before.ring.server(old) == after.ring.server(new) {
                assert!(sources.is_empty(), "{key} did not move");
            } else {
                moved += 1;
                let names: Vec<&str> = sources.iter().map(|b| b.addr()).collect();
                assert_eq!(names, [before.ring.server(old)], "{key}");
            }
        }
        assert!(moved > 0);
    }

    #[test]
    fn replicas_are_distinct_and_skip_servers_marked_down() {
        let cluster = cluster(2);
        for port in 1..=3 {
            cluster.add(&format!("127.0.0.1:{port}"), 1, false).unwrap();
        }
        let topology = cluster.snapshot();
        let replicas = topology.replicas(b"user:1001");
        assert_eq!(replicas.len(), 2);
        assert_ne!(replicas[0], replicas[1]);
        assert_eq!(topology.primary(b"user:1001"), Some(replicas[0]));
        // Mark the primary down: the key is served by the next server clockwise.
        let down = topology.backend(replicas[0]);
        cluster.change_health(&topology, true, || {
            for _ in 0..3 {
                down.health.record_for_test(false);
            }
        });
        assert_eq!(topology.primary(b"user:1001"), Some(replicas[1]));
        assert!(!topology.replicas(b"user:1001").contains(&replicas[0]));
    }
}
