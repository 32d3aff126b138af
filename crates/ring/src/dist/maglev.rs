//! Maglev hashing (Eisenbud et al., NSDI 2016): a lookup table of prime size
//! `M`, filled by the servers in turn, each from its own permutation of the
//! slots; a hash goes to slot `hash % M`, so lookup is O(1) and every server
//! holds `M / n` slots within one. Weighted by giving a server `weight` turns
//! per round. Adding or removing a server moves slightly more than the ideal
//! `1/(n+1)` of keys.

use super::{walk_distinct, Member, Placement};
use crate::hash::md5_digest;
use crate::ServerId;

/// Table slots per unit of weight, at least: the paper's `M >> n` (100x
/// keeps each server within about 1 % of its share).
pub const SLOTS_PER_WEIGHT: u64 = 100;
/// The smallest table: 65,537 is prime, and makes small pools balanced to 0.01 %.
pub const MIN_TABLE: u64 = 65_537;
/// Table sizes grow in steps of this factor (the smallest prime at or above
/// `65,536 * 4^k`), never with each server: a new size moves almost every key,
/// so it may only happen when the pool's weight crosses a step.
pub const TABLE_GROWTH: u64 = 4;

/// The Maglev lookup table.
#[derive(Debug, Clone)]
pub struct Maglev {
    table: Vec<u32>,
    counts: Vec<u32>,
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// The smallest prime `>= n`.
pub fn next_prime(mut n: u64) -> u64 {
    while !is_prime(n) {
        n += 1;
    }
    n
}

/// The table size for a pool of `total_weight`: the first step
/// (`next_prime(65,536 * 4^k)`) with at least [`SLOTS_PER_WEIGHT`] slots per
/// unit of weight.
pub fn table_size(total_weight: u64) -> u64 {
    let want = total_weight.saturating_mul(SLOTS_PER_WEIGHT);
    let mut base = MIN_TABLE - 1;
    while base < want {
        base = base.saturating_mul(TABLE_GROWTH);
    }
    next_prime(base)
}

impl Placement for Maglev {
    fn build(members: &[Member<'_>]) -> Self {
        let total: u64 = members.iter().map(|m| u64::from(m.weight)).sum();
        let size = table_size(total);
        let perms: Vec<(u64, u64)> = members
            .iter()
            .map(|m| {
                let d = md5_digest(m.label.as_bytes());
                let offset = u64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]])) % size;
                let skip = u64::from(u32::from_le_bytes([d[4], d[5], d[6], d[7]])) % (size - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; members.len()];
        let mut table = vec![u32::MAX; size as usize];
        let mut counts = vec![0u32; members.len()];
        let mut filled = 0u64;
        'fill: loop {
            for (i, m) in members.iter().enumerate() {
                for _ in 0..m.weight {
                    let (offset, skip) = perms[i];
                    let mut slot = (offset + next[i] * skip) % size;
                    while table[slot as usize] != u32::MAX {
                        next[i] += 1;
                        slot = (offset + next[i] * skip) % size;
                    }
                    table[slot as usize] = m.id.0;
                    counts[m.id.0 as usize] += 1;
                    next[i] += 1;
                    filled += 1;
                    if filled == size {
                        break 'fill;
                    }
                }
            }
        }
        Maglev { table, counts }
    }

    #[inline]
    fn dispatch(&self, hash: u32) -> ServerId {
        ServerId(self.table[hash as usize % self.table.len()])
    }

    fn preference(&self, hash: u32, limit: usize, out: &mut Vec<ServerId>) {
        walk_distinct(&self.table, hash as usize % self.table.len(), self.counts.len(), limit, out);
    }

    fn points(&self, id: ServerId) -> usize {
        self.counts[id.0 as usize] as usize
    }

    fn share(&self, id: ServerId) -> f64 {
        f64::from(self.counts[id.0 as usize]) / self.table.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_prime_and_balanced() {
        let labels: Vec<String> = (0..10).map(|i| format!("10.0.0.{i}:6379")).collect();
        let ms: Vec<Member> =
            labels.iter().enumerate().map(|(i, l)| Member { id: ServerId(i as u32), label: l, weight: 1 }).collect();
        let m = Maglev::build(&ms);
        assert!(is_prime(m.table.len() as u64));
        let (lo, hi) = (m.counts.iter().min().unwrap(), m.counts.iter().max().unwrap());
        assert!(hi - lo <= 1, "{lo}..{hi}");
        assert_eq!(next_prime(65_536), 65_537);
        assert_eq!(table_size(1), 65_537);
        assert_eq!(table_size(655), 65_537);
        // The size is a step function of the weight: adding one server keeps it.
        assert_eq!(table_size(1000), table_size(1001));
        assert!(table_size(1000) >= 100_000 && is_prime(table_size(1000)));
    }
}
