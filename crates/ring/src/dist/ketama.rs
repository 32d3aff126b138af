//! Ketama, bit for bit as twemproxy's `nc_ketama.c` (libmemcached's
//! continuum).
//!
//! For each server, in pool order: `pct = weight / total_weight` (as `float`),
//! `points = floorf(pct * 160 / 4 * nservers + 1e-10) * 4`, and for
//! `i in 0..points/4` the MD5 digest of `"{label}-{i}"` gives four points (its
//! four little-endian words). Points are sorted stably by value, so equal
//! values keep pool order (glibc's `qsort` is a stable merge sort), and a hash
//! goes to the first point `>= hash`, wrapping to the first point.

use super::{walk_distinct, Member, Placement};
use crate::hash::md5_digest;
use crate::ServerId;

/// twemproxy's `KETAMA_POINTS_PER_SERVER`: points per server at the mean weight.
pub const POINTS_PER_SERVER: u32 = 160;
/// Points from one MD5 digest (its four 32-bit words).
pub const POINTS_PER_HASH: u32 = 4;
/// twemproxy's `KETAMA_MAX_HOSTLEN` less its terminating NUL: longer labels
/// are cut to this many bytes, as `snprintf` cuts them.
const MAX_LABEL: usize = 272;
/// Points per index bucket, as the seed ring's (see the crate documentation).
const POINTS_PER_BUCKET: usize = 4;

/// The ketama continuum.
#[derive(Debug, Clone)]
pub struct Ketama {
    /// Point values, ascending.
    values: Vec<u32>,
    /// `owners[i]` owns `values[i]`.
    owners: Vec<u32>,
    /// `index[b]`: the first point `>= b << shift`.
    index: Vec<u32>,
    shift: u32,
    /// Points per server id.
    counts: Vec<u32>,
}

/// Points a server of `weight` gets in a pool of `servers` servers of
/// `total_weight`, with twemproxy's `float` arithmetic.
pub fn points_for(weight: u32, total_weight: u32, servers: u32) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let per_hash = (pct * POINTS_PER_SERVER as f32 / POINTS_PER_HASH as f32 * servers as f32) as f64 + 0.000_000_000_1;
    ((per_hash as f32).floor() * POINTS_PER_HASH as f32) as u32
}

impl Placement for Ketama {
    fn build(members: &[Member<'_>]) -> Self {
        let total: u32 = members.iter().map(|m| m.weight).sum();
        let n = members.len() as u32;
        let mut points: Vec<(u32, u32)> = Vec::new();
        let mut counts = vec![0u32; members.len()];
        let mut label = String::new();
        for m in members {
            let count = points_for(m.weight, total, n);
            counts[m.id.0 as usize] = count;
            for i in 0..count / POINTS_PER_HASH {
                label.clear();
                use std::fmt::Write;
                let _ = write!(label, "{}-{i}", m.label);
                let bytes = &label.as_bytes()[..label.len().min(MAX_LABEL)];
                let digest = md5_digest(bytes);
                for w in digest.chunks_exact(4) {
                    points.push((u32::from_le_bytes([w[0], w[1], w[2], w[3]]), m.id.0));
                }
            }
        }
        points.sort_by_key(|p| p.0); // stable: equal values keep pool order
        let values: Vec<u32> = points.iter().map(|p| p.0).collect();
        let owners = points.iter().map(|p| p.1).collect();
        let (index, shift) = bucket_index(&values);
        Ketama { values, owners, index, shift, counts }
    }

    #[inline]
    fn dispatch(&self, hash: u32) -> ServerId {
        ServerId(self.owners[self.slot(hash)])
    }

    fn preference(&self, hash: u32, limit: usize, out: &mut Vec<ServerId>) {
        walk_distinct(&self.owners, self.slot(hash), self.counts.len(), limit, out);
    }

    fn points(&self, id: ServerId) -> usize {
        self.counts[id.0 as usize] as usize
    }

    fn share(&self, id: ServerId) -> f64 {
        arc_share(&self.values, &self.owners, id.0)
    }
}

impl Ketama {
    /// The continuum index a hash lands on (first value `>= hash`, else 0).
    #[inline]
    fn slot(&self, hash: u32) -> usize {
        let mut i = self.index[(hash >> self.shift) as usize] as usize;
        while i < self.values.len() && self.values[i] < hash {
            i += 1;
        }
        if i == self.values.len() {
            0
        } else {
            i
        }
    }

    /// The continuum as `(value, server)` pairs, ascending.
    pub fn continuum(&self) -> impl Iterator<Item = (u32, ServerId)> + '_ {
        self.values.iter().zip(&self.owners).map(|(&v, &o)| (v, ServerId(o)))
    }
}

/// A bucket index over sorted `values`: `index[b]` is the first value
/// `>= b << shift`; about [`POINTS_PER_BUCKET`] values per bucket.
pub(crate) fn bucket_index(values: &[u32]) -> (Vec<u32>, u32) {
    let want = (values.len() / POINTS_PER_BUCKET).max(2);
    let bits = (usize::BITS - 1 - want.leading_zeros()).clamp(1, 31);
    let shift = 32 - bits;
    let mut index = Vec::with_capacity(1 << bits);
    let mut i = 0usize;
    for b in 0..(1u64 << bits) {
        let start = b << shift;
        while i < values.len() && u64::from(values[i]) < start {
            i += 1;
        }
        index.push(i as u32);
    }
    (index, shift)
}

/// The fraction of the hash space owned by `id`: a point owns the hashes
/// after the previous point up to itself.
pub(crate) fn arc_share(values: &[u32], owners: &[u32], id: u32) -> f64 {
    let Some(&last) = values.last() else { return 0.0 };
    let mut previous = i64::from(last) - (1i64 << 32);
    let mut owned = 0u64;
    for (&v, &o) in values.iter().zip(owners) {
        if o == id {
            owned += (i64::from(v) - previous) as u64;
        }
        previous = i64::from(v);
    }
    owned as f64 / (1u64 << 32) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members<'a>(labels: &'a [&'a str], weights: &[u32]) -> Vec<Member<'a>> {
        labels
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(i, (l, &w))| Member { id: ServerId(i as u32), label: l, weight: w })
            .collect()
    }

    #[test]
    fn points_follow_twemproxys_float_rounding() {
        assert_eq!(points_for(1, 3, 3), 160);
        assert_eq!(points_for(1, 1, 1), 160);
        assert_eq!(points_for(2, 4, 3), 240);
        assert_eq!(points_for(1, 4, 3), 120);
        // Values from twemproxy's expression compiled with gcc: float rounding
        // shows at 1/100 (39.99... per hash, so 156 points, not 160).
        assert_eq!(points_for(1, 7, 7), 160);
        assert_eq!(points_for(1, 3, 2), 104);
        assert_eq!(points_for(5, 17, 6), 280);
        assert_eq!(points_for(1, 100, 100), 156);
        assert_eq!(points_for(7, 13, 3), 256);
        assert_eq!(points_for(3, 10, 4), 192);
    }

    #[test]
    fn continuum_is_md5_of_label_dash_index() {
        let ms = members(&["127.0.0.1:6379", "127.0.0.1:6380"], &[1, 1]);
        let k = Ketama::build(&ms);
        assert_eq!(k.values.len(), 320);
        let d = md5_digest(b"127.0.0.1:6379-0");
        let first = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        assert!(k.continuum().any(|(v, s)| v == first && s == ServerId(0)));
        assert!(k.values.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(k.dispatch(0), ServerId(k.owners[0]));
        assert_eq!(k.dispatch(u32::MAX), ServerId(k.owners[0]), "wraps");
        let total: f64 = (0..2).map(|i| k.share(ServerId(i))).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}
