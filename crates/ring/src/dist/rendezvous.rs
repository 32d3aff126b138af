//! Weighted rendezvous (highest random weight) hashing: each server scores a
//! key by a hash of (its seed, the key's hash); the highest score wins. With
//! weights the score is `-weight / ln(u)` for `u` uniform in (0, 1)
//! (Schindelhauer and Schomaker's weighted HRW), so a server's share is its
//! weight over the total. Lookup is O(servers); only keys of a server that
//! leaves (or that a newcomer wins) move: the ideal `1/(n+1)`.

use super::{mix64, Member, Placement};
use crate::hash::md5_digest;
use crate::ServerId;

/// Servers with their seeds and weights.
#[derive(Debug, Clone)]
pub struct Rendezvous {
    /// `(seed, weight, id)` per server.
    servers: Vec<(u64, u32, u32)>,
    /// All weights equal: compare raw scores, no logarithm.
    uniform: bool,
    total_weight: u64,
}

impl Rendezvous {
    #[inline]
    fn score(&self, seed: u64, weight: u32, hash: u32) -> f64 {
        let x = mix64(seed ^ u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if self.uniform {
            return x as f64;
        }
        // u in (0, 1): the top 53 bits, shifted off zero.
        let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -f64::from(weight) / u.ln()
    }
}

impl Placement for Rendezvous {
    fn build(members: &[Member<'_>]) -> Self {
        let servers: Vec<(u64, u32, u32)> = members
            .iter()
            .map(|m| {
                let d = md5_digest(m.label.as_bytes());
                let seed = u64::from_le_bytes([d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]]);
                (seed, m.weight, m.id.0)
            })
            .collect();
        let uniform = servers.windows(2).all(|w| w[0].1 == w[1].1);
        let total_weight = servers.iter().map(|s| u64::from(s.1)).sum();
        Rendezvous { servers, uniform, total_weight }
    }

    #[inline]
    fn dispatch(&self, hash: u32) -> ServerId {
        let mut best = (f64::NEG_INFINITY, 0u32);
        for &(seed, weight, id) in &self.servers {
            let s = self.score(seed, weight, hash);
            if s > best.0 {
                best = (s, id);
            }
        }
        ServerId(best.1)
    }

    fn preference(&self, hash: u32, limit: usize, out: &mut Vec<ServerId>) {
        let mut scored: Vec<(f64, u32)> =
            self.servers.iter().map(|&(seed, weight, id)| (self.score(seed, weight, hash), id)).collect();
        // Highest first; ties keep server order, as `dispatch` breaks them.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.clear();
        out.extend(scored.into_iter().take(limit).map(|(_, id)| ServerId(id)));
    }

    fn points(&self, _id: ServerId) -> usize {
        0
    }

    fn share(&self, id: ServerId) -> f64 {
        let weight = self.servers.iter().find(|s| s.2 == id.0).map_or(0, |s| s.1);
        f64::from(weight) / self.total_weight as f64
    }
}
