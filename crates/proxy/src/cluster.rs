//! Membership: the ring and the backends behind it, as one immutable snapshot.
//!
//! Lookups load the current [`Topology`] without locking (`arc-swap`); ADD_SERVER and
//! REMOVE_SERVER build a new ring from a copy and swap it in, so requests in flight keep the
//! snapshot they started with and never wait for a writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use ring::{HashRing, ServerId};

use crate::backend::Backend;

/// One consistent view: the ring and, for each of its servers, the backend.
#[derive(Debug)]
pub struct Topology {
    /// The consistent-hash ring.
    pub ring: HashRing,
    /// Backends indexed by [`ServerId`].
    backends: Vec<Arc<Backend>>,
}

impl Topology {
    /// The backend of a server of this ring.
    pub fn backend(&self, id: ServerId) -> &Arc<Backend> {
        &self.backends[id.0 as usize]
    }

    /// The backend that owns `key`, if any server is in the ring.
    pub fn owner(&self, key: &[u8]) -> Option<&Arc<Backend>> {
        self.ring.locate(key).map(|id| self.backend(id))
    }

    /// Every backend, in the ring's sorted server order.
    pub fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.ring.server_ids().map(|id| self.backend(id))
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
}

impl MembershipError {
    /// The `-ERR` text a client receives.
    pub fn reply_text(&self) -> String {
        match self {
            MembershipError::BadAddress(a) => {
                format!("ERR invalid server address '{a}': expected host:port")
            }
            MembershipError::AlreadyPresent(a) => format!("ERR {a} is already in the ring"),
            MembershipError::NotPresent(a) => format!("ERR {a} is not in the ring"),
        }
    }
}

/// The proxy's membership: the current snapshot, and the pooled backends it refers to.
pub struct Cluster {
    current: ArcSwap<Topology>,
    /// Backends by address; also serialises membership changes.
    pool: Mutex<HashMap<String, Arc<Backend>>>,
    connections_per_backend: usize,
    connect_timeout: Duration,
}

impl Cluster {
    /// An empty cluster whose ring gives each server `vnodes` points per unit of weight.
    pub fn new(vnodes: usize, connections_per_backend: usize, connect_timeout: Duration) -> Self {
        let empty = Topology {
            ring: HashRing::new(vnodes),
            backends: Vec::new(),
        };
        Self {
            current: ArcSwap::from_pointee(empty),
            pool: Mutex::default(),
            connections_per_backend,
            connect_timeout,
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

    /// Adds a server with `weight` units of virtual nodes.
    pub fn add(&self, addr: &str, weight: u32) -> Result<(), MembershipError> {
        check_address(addr)?;
        self.change(|ring| {
            ring.add_weighted(addr, weight.max(1))
                .then_some(())
                .ok_or_else(|| MembershipError::AlreadyPresent(addr.into()))
        })
    }

    /// Removes a server and closes its pooled connections.
    pub fn remove(&self, addr: &str) -> Result<(), MembershipError> {
        self.change(|ring| {
            ring.remove(addr)
                .then_some(())
                .ok_or_else(|| MembershipError::NotPresent(addr.into()))
        })
    }

    /// Applies `edit` to a copy of the ring and swaps in the new snapshot.
    fn change(
        &self,
        edit: impl FnOnce(&mut HashRing) -> Result<(), MembershipError>,
    ) -> Result<(), MembershipError> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let mut ring = self.current.load().ring.clone();
        edit(&mut ring)?;
        let backends = (0..ring.len() as u32)
            .map(|id| {
                let addr = ring.server(ServerId(id));
                pool.entry(addr.to_string())
                    .or_insert_with(|| {
                        Arc::new(Backend::new(
                            addr,
                            self.connections_per_backend,
                            self.connect_timeout,
                        ))
                    })
                    .clone()
            })
            .collect();
        pool.retain(|addr, backend| {
            let keep = ring.contains(addr);
            if !keep {
                backend.close();
            }
            keep
        });
        self.current.store(Arc::new(Topology { ring, backends }));
        Ok(())
    }
}

/// `host:port` with a numeric port and a non-empty host.
fn check_address(addr: &str) -> Result<(), MembershipError> {
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(MembershipError::BadAddress(addr.to_string())),
    }
}
