//! Random, as twemproxy's `nc_random.c`: every request goes to any server,
//! whatever its key (weights are ignored, as there). Only for pools where any
//! server can answer (read-only replicas of one data set).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{walk_distinct, Member, Placement};
use crate::ServerId;

/// The servers, and a shared xorshift state (no process-random hasher: the
/// sequence is the same in every run, which is all `random` promises).
#[derive(Debug)]
pub struct Random {
    servers: Vec<u32>,
    state: AtomicU64,
}

impl Placement for Random {
    fn build(members: &[Member<'_>]) -> Self {
        Random { servers: members.iter().map(|m| m.id.0).collect(), state: AtomicU64::new(0x9e37_79b9_7f4a_7c15) }
    }

    #[inline]
    fn dispatch(&self, _hash: u32) -> ServerId {
        // A racy read-modify-write is fine: any value is a valid pick.
        let mut x = self.state.load(Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Relaxed);
        ServerId(self.servers[(x % self.servers.len() as u64) as usize])
    }

    /// Fallbacks need a stable order (the list may be extended): the servers
    /// from `hash % n` on. Requests themselves go through `dispatch`.
    fn preference(&self, hash: u32, limit: usize, out: &mut Vec<ServerId>) {
        let start = hash as usize % self.servers.len();
        walk_distinct(&self.servers, start, self.servers.len(), limit, out);
    }

    fn points(&self, _id: ServerId) -> usize {
        1
    }

    fn share(&self, _id: ServerId) -> f64 {
        1.0 / self.servers.len() as f64
    }
}
