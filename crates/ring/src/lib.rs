//! The consistent-hash ring: seed-exact placement with virtual nodes, weights
//! and Dynamo-style preference lists.
//!
//! Placement is identical to the original Go demo, so every key routes to the
//! same server as it did there:
//!
//! - a key's position is the 32-bit FNV-1a hash of its bytes ([`fnv1a_32`]);
//! - server `A` with `r` virtual nodes (the seed's "replicas") and weight `w`
//!   owns the points `fnv1a_32("A#0")` ... `fnv1a_32("A#(w*r-1)")`;
//! - a key belongs to the server of the first point at or after its position,
//!   wrapping to the lowest point past the top;
//! - a point whose position is already taken keeps its first owner (the
//!   newcomer's point is skipped), and removing a server drops only the points
//!   it owns.
//!
//! The ring is a plain value: no locks, no I/O, no process-random hashers.
//! Membership changes (`add`, `remove`) rebuild the lookup structures; lookups
//! ([`HashRing::locate`]) only read them. A server shares it by cloning,
//! changing the clone and swapping it in atomically.
//!
//! ```
//! let mut ring = ring::HashRing::new(ring::DEFAULT_VNODES);
//! ring.add("127.0.0.1:6381");
//! ring.add("127.0.0.1:6382");
//! assert_eq!(ring.get(b"user:1001"), Some("127.0.0.1:6382"));
//! assert_eq!(ring.preference_list(b"user:1001", 2), ["127.0.0.1:6382", "127.0.0.1:6381"]);
//! ```
//!
//! # Layout
//!
//! Points are kept as one sorted `Vec<u64>`, each entry `position << 32 | owner`,
//! so comparing an entry with `hash << 32` compares positions and the owner
//! comes out of the same cache line. A final sentinel entry (position
//! `u32::MAX`, owner of the lowest point) makes the wrap-around free. A small
//! index on the top bits of the position (one `u32` per bucket, one bucket per
//! four to eight points) gives the first point of each bucket, so a lookup is
//! hash, one index load, and a scan of a few entries in one or two cache lines.
//! Memory is about 8.5 to 9 bytes per point plus the server table.
#![warn(missing_docs)]

pub mod dist;
pub mod hash;
mod hash_tag;
pub use dist::{Distribution, Member, Placement};
pub use hash::Hash;
pub use hash_tag::HashTag;

use std::fmt;
use std::iter::FusedIterator;
use std::sync::Arc;

/// Virtual nodes per server when none are given: the seed's default `-replicas 3`.
pub const DEFAULT_VNODES: usize = 3;

/// FNV-1a 32-bit offset basis (from the FNV specification, as in Go's `hash/fnv`).
const FNV_OFFSET_BASIS: u32 = 2_166_136_261;
/// FNV-1a 32-bit prime (from the FNV specification, as in Go's `hash/fnv`).
const FNV_PRIME: u32 = 16_777_619;

/// Servers a placement's preference list computes at first (the owner and
/// a replica or fallback); more are computed, doubling, only if taken.
const FIRST_LIST: usize = 2;

/// Points per index bucket: between this and twice this. Four to eight keep
/// the scan within one or two cache lines while the index costs 0.5 to 1 byte
/// per point (measured with `cargo bench -p ring`: 1 and 2 were no faster at
/// 1000 x 160, 8 was slower).
const POINTS_PER_BUCKET: usize = 4;

/// 32-bit FNV-1a hash of `bytes`: the position of a key (and of a virtual node)
/// on the ring.
///
/// ```
/// assert_eq!(ring::fnv1a_32(b""), 0x811c9dc5);
/// assert_eq!(ring::fnv1a_32(b"a"), 0xe40c292c);
/// assert_eq!(ring::fnv1a_32(b"foobar"), 0xbf9cf968);
/// ```
#[inline]
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    fnv1a_32_from(FNV_OFFSET_BASIS, bytes)
}

/// Continues an FNV-1a hash from `state`, so a common prefix is hashed once.
#[inline]
fn fnv1a_32_from(mut state: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        state ^= u32::from(b);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// Hashes the virtual node `"{prefix}{replica}"` where `prefix_state` is the
/// FNV-1a state after `"{server}#"` and `replica` is written in decimal.
#[inline]
fn vnode_position(prefix_state: u32, replica: u64) -> u32 {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = replica;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    fnv1a_32_from(prefix_state, &digits[at..])
}

/// A server's index in one ring value's server table.
///
/// Ids follow the servers' sorted order (`ServerId(0)` is the first server of
/// [`HashRing::servers`]). An id is stable for a server while that ring value
/// is not changed; after `add` or `remove` (in a new ring value, or the same
/// one mutated) ids may be reassigned, so translate with
/// [`HashRing::id_of`] / [`HashRing::server`] rather than keeping ids across
/// changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub u32);

/// The details of one lookup, from [`HashRing::route`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The key's position: `fnv1a_32(key)`.
    pub hash: u32,
    /// Position of the point the key landed on (the first point `>= hash`, or
    /// the lowest point when the key wrapped around).
    pub point: u32,
    /// Index of that point in [`HashRing::points`] order.
    pub index: usize,
    /// The server owning that point.
    pub server: ServerId,
}

/// One entry of the server table.
#[derive(Clone, Debug)]
struct Server {
    /// The address string exactly as given (`127.0.0.1:6381`).
    name: Box<str>,
    /// Weight: the server asked for `weight * vnodes` points.
    weight: u32,
    /// Points it actually owns (fewer than asked when some collided).
    points: u32,
    /// The label its points are hashed from, when not its address (a
    /// twemproxy `host:port:weight name` entry's name).
    label: Option<Box<str>>,
}

/// A consistent-hash ring of servers, placed exactly as the seed places them.
///
/// See the [crate documentation](crate) for the placement rules. Cloning is a
/// plain copy of the (flat) lookup tables; the proxy clones, mutates and swaps
/// snapshots.
#[derive(Clone)]
pub struct HashRing {
    /// Virtual nodes per unit of weight, at least 1.
    vnodes: usize,
    /// Servers sorted by name; a server's index here is its [`ServerId`].
    servers: Vec<Server>,
    /// Sorted `position << 32 | owner` entries, then one sentinel entry
    /// `u32::MAX << 32 | owner of the lowest point`. Empty when the ring has
    /// no points. Positions are distinct.
    points: Vec<u64>,
    /// `index[b]` = index of the first point whose position is
    /// `>= b << shift`. Empty when the ring has no points.
    index: Vec<u32>,
    /// `32 - log2(index.len())`.
    shift: u32,
    /// Which distribution places keys; for all but [`Distribution::Seed`]
    /// `points` is empty and `placement` does the work.
    distribution: Distribution,
    /// The key hash; `None`: the seed's FNV-1a-32 ([`fnv1a_32`]).
    hash: Option<Hash>,
    /// The built placement of a distribution other than the seed's; `None`
    /// for the seed's or when no server is in the ring.
    placement: Option<Arc<dyn Placement>>,
}

impl fmt::Debug for HashRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashRing")
            .field("vnodes", &self.vnodes)
            .field("servers", &self.servers)
            .field("points", &self.points.len().saturating_sub(1))
            .field("buckets", &self.index.len())
            .field("distribution", &self.distribution)
            .field("hash", &self.hash)
            .finish()
    }
}

impl Default for HashRing {
    /// An empty ring with [`DEFAULT_VNODES`] virtual nodes per server.
    fn default() -> Self {
        Self::new(DEFAULT_VNODES)
    }
}

impl HashRing {
    /// An empty ring giving each server `vnodes` virtual nodes per unit of
    /// weight. `vnodes` is clamped to at least 1.
    pub fn new(vnodes: usize) -> Self {
        HashRing {
            vnodes: vnodes.max(1),
            servers: Vec::new(),
            points: Vec::new(),
            index: Vec::new(),
            shift: 31,
            distribution: Distribution::Seed,
            hash: None,
            placement: None,
        }
    }

    /// An empty ring placing keys by `distribution`, hashing keys with `hash`
    /// (`None`: the seed's FNV-1a-32 for [`Distribution::Seed`], twemproxy's
    /// default `fnv1a_64` for the others). `vnodes` applies to the seed's
    /// distribution only.
    pub fn with_placement(vnodes: usize, distribution: Distribution, hash: Option<Hash>) -> Self {
        let hash = match (distribution, hash) {
            (Distribution::Seed, h) => h,
            (_, h) => Some(h.unwrap_or(Hash::TWEMPROXY_DEFAULT)),
        };
        HashRing { distribution, hash, ..HashRing::new(vnodes) }
    }

    /// The distribution placing keys.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// The key hash: a twemproxy [`Hash`], or `None` for the seed's own FNV-1a-32.
    pub fn hash(&self) -> Option<Hash> {
        self.hash
    }

    /// The key hash's name: a twemproxy [`Hash`] name, or `fnv1a_32 (seed)`
    /// for the seed's own.
    pub fn hash_name(&self) -> &'static str {
        self.hash.map_or("fnv1a_32 (seed)", Hash::name)
    }

    /// The position of `key`: its hash by this ring's key hash. As twemproxy,
    /// an empty key hashes to 0 under any distribution but the seed's.
    #[inline]
    pub fn key_hash(&self, key: &[u8]) -> u32 {
        match self.hash {
            None => fnv1a_32(key),
            Some(_) if key.is_empty() && self.distribution != Distribution::Seed => 0,
            Some(h) => h.hash(key),
        }
    }

    /// Adds `server` with `weight`, its points hashed from `label` instead of
    /// its address when given (twemproxy's `host:port:weight name`). Returns
    /// `false`, changing nothing, if it is already in the ring or `weight` is 0.
    pub fn add_labelled(&mut self, server: &str, weight: u32, label: Option<&str>) -> bool {
        self.add_batch([(server, weight, label)]) == 1
    }

    /// The label server `id`'s points are hashed from: its name when it was
    /// added with one, else its address.
    ///
    /// # Panics
    ///
    /// If `id` is not a server of this ring value.
    pub fn label(&self, id: ServerId) -> &str {
        let s = &self.servers[id.0 as usize];
        s.label.as_deref().unwrap_or(&s.name)
    }

    /// Server ids in twemproxy's pool order: by [`label`](Self::label), shorter labels
    /// first, then bytewise (twemproxy sorts a pool's servers so by name when it loads its
    /// configuration, and modula and ketama's tie-breaking follow that order). The order
    /// servers were added in does not matter.
    pub fn pool_order(&self) -> Vec<ServerId> {
        let mut ids: Vec<ServerId> = self.server_ids().collect();
        ids.sort_by(|a, b| {
            let (a, b) = (self.label(*a), self.label(*b));
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        });
        ids
    }

    /// Rebuilds the placement of a distribution other than the seed's after a
    /// membership change.
    fn rebuild(&mut self) {
        if self.distribution == Distribution::Seed {
            return;
        }
        let members: Vec<Member<'_>> = self
            .pool_order()
            .into_iter()
            .map(|id| Member { id, label: self.label(id), weight: self.servers[id.0 as usize].weight })
            .collect();
        self.placement = self.distribution.build(&members);
    }

    /// Virtual nodes per server (per unit of weight).
    pub fn vnodes(&self) -> usize {
        self.vnodes
    }

    /// Adds `server` with weight 1. Returns `false`, changing nothing, if it
    /// is already in the ring.
    pub fn add(&mut self, server: &str) -> bool {
        self.add_weighted(server, 1)
    }

    /// Adds `server` with `weight * vnodes` points. Returns `false`, changing
    /// nothing, if it is already in the ring or `weight` is 0.
    ///
    /// Points whose position is already taken stay with their owner; the
    /// newcomer's are skipped. Cost: hashing its points plus one pass over
    /// the ring.
    pub fn add_weighted(&mut self, server: &str, weight: u32) -> bool {
        self.add_all_weighted([(server, weight)]) == 1
    }

    /// Adds several servers with weight 1, in order, as if by repeated
    /// [`add`](Self::add) (same collision winners), but rebuilding the ring
    /// once. Returns how many were added; duplicates are skipped.
    pub fn add_all<I, S>(&mut self, servers: I) -> usize
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.add_all_weighted(servers.into_iter().map(|s| (s, 1)))
    }

    /// Adds several `(server, weight)` pairs in order, as if by repeated
    /// [`add_weighted`](Self::add_weighted), rebuilding the ring once.
    /// Returns how many were added; duplicates and zero weights are skipped.
    ///
    /// # Panics
    ///
    /// If the ring would hold `u32::MAX` points or more.
    pub fn add_all_weighted<I, S>(&mut self, servers: I) -> usize
    where
        I: IntoIterator<Item = (S, u32)>,
        S: AsRef<str>,
    {
        let servers: Vec<(S, u32)> = servers.into_iter().collect();
        self.add_batch(servers.iter().map(|(s, w)| (s.as_ref(), *w, None)))
    }

    /// Adds `(server, weight, label)` triples in order, rebuilding once.
    fn add_batch<'s>(&mut self, servers: impl IntoIterator<Item = (&'s str, u32, Option<&'s str>)>) -> usize {
        // New servers in insertion order (their batch index `j` is used below).
        let mut fresh: Vec<(Box<str>, u32)> = Vec::new();
        let mut labels: Vec<Option<Box<str>>> = Vec::new();
        for (name, weight, label) in servers {
            if weight == 0 || self.contains(name) || fresh.iter().any(|(n, _)| &**n == name) {
                continue;
            }
            fresh.push((name.into(), weight));
            labels.push(label.map(Into::into));
        }
        if fresh.is_empty() {
            return 0;
        }
        // Only the seed's distribution keeps points in this table.
        let vnodes = if self.distribution == Distribution::Seed { self.vnodes as u64 } else { 0 };

        let asked: u64 = fresh.iter().map(|(_, weight)| u64::from(*weight) * vnodes).sum();
        assert!(asked + (self.real_points().len() as u64) < u64::from(u32::MAX), "too many ring points");

        // Candidate points `position << 32 | sequence`, the sequence being the
        // order the seed would insert them in: server by server, replica by
        // replica. Sorting puts equal positions together, earliest first.
        let mut candidates: Vec<u64> = Vec::with_capacity(asked as usize);
        let mut candidate_owner: Vec<u32> = Vec::with_capacity(asked as usize);
        for (j, (name, weight)) in fresh.iter().enumerate() {
            let count = u64::from(*weight) * vnodes;
            let prefix = fnv1a_32_from(fnv1a_32(name.as_bytes()), b"#");
            for replica in 0..count {
                let seq = candidates.len() as u32; // < u32::MAX, checked above
                let pos = vnode_position(prefix, replica);
                candidates.push(u64::from(pos) << 32 | u64::from(seq));
                candidate_owner.push(j as u32);
            }
        }
        candidates.sort_unstable();

        // Winners: the first candidate of each position not already taken.
        let mut existing = std::mem::take(&mut self.points);
        existing.pop(); // the sentinel
        let mut e = 0;
        let mut winners: Vec<(u32, u32)> = Vec::with_capacity(candidates.len());
        let mut won = vec![0u32; fresh.len()];
        let mut last: Option<u32> = None;
        for &c in &candidates {
            let pos = (c >> 32) as u32;
            if last == Some(pos) {
                continue;
            }
            last = Some(pos);
            while e < existing.len() && ((existing[e] >> 32) as u32) < pos {
                e += 1;
            }
            if e < existing.len() && (existing[e] >> 32) as u32 == pos {
                continue;
            }
            let j = candidate_owner[c as u32 as usize];
            won[j as usize] += 1;
            winners.push((pos, j));
        }
        drop(candidates);
        drop(candidate_owner);

        // New server table, sorted by name; map old ids and batch indexes to
        // new ids.
        let added = fresh.len();
        let mut order: Vec<usize> = (0..added).collect();
        order.sort_unstable_by(|&a, &b| fresh[a].0.cmp(&fresh[b].0));
        let old = std::mem::take(&mut self.servers);
        let mut table = Vec::with_capacity(old.len() + added);
        let mut old_map = vec![0u32; old.len()];
        let mut new_map = vec![0u32; added];
        let mut old_iter = old.into_iter().enumerate().peekable();
        let mut fresh_slots: Vec<Option<(Box<str>, u32)>> = fresh.into_iter().map(Some).collect();
        let mut order_iter = order.into_iter().peekable();
        loop {
            let take_old = match (old_iter.peek(), order_iter.peek()) {
                (Some((_, s)), Some(&j)) => s.name < fresh_slots[j].as_ref().expect("each slot taken once").0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let id = table.len() as u32;
            if take_old {
                let (i, s) = old_iter.next().expect("peeked");
                old_map[i] = id;
                table.push(s);
            } else {
                let j = order_iter.next().expect("peeked");
                let (name, weight) = fresh_slots[j].take().expect("each slot taken once");
                new_map[j] = id;
                table.push(Server { name, weight, points: won[j], label: labels[j].take() });
            }
        }
        self.servers = table;

        // Merge the existing points (owners renumbered) with the winners.
        let total = existing.len() + winners.len();
        let mut merged: Vec<u64> = Vec::with_capacity(total + 1);
        let mut a = existing.iter().map(|&p| p >> 32 << 32 | u64::from(old_map[p as u32 as usize])).peekable();
        let mut b = winners.iter().map(|&(pos, j)| u64::from(pos) << 32 | u64::from(new_map[j as usize])).peekable();
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&x), Some(&y)) => {
                    if x < y {
                        a.next()
                    } else {
                        b.next()
                    }
                }
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        self.set_points(merged);
        self.rebuild();
        added
    }

    /// Removes `server` and exactly the points it owns. Returns `false` if it
    /// is not in the ring. Points of other servers that were skipped because
    /// `server` held their position are not brought back (as in the seed).
    /// Ids of servers sorted after it shift down by one.
    pub fn remove(&mut self, server: &str) -> bool {
        let Some(ServerId(gone)) = self.id_of(server) else {
            return false;
        };
        self.servers.remove(gone as usize);
        let mut points = std::mem::take(&mut self.points);
        points.pop(); // the sentinel
        points.retain(|&p| p as u32 != gone);
        for p in &mut points {
            if (*p as u32) > gone {
                *p -= 1;
            }
        }
        self.set_points(points);
        self.rebuild();
        true
    }

    /// Whether `server` is in the ring.
    pub fn contains(&self, server: &str) -> bool {
        self.id_of(server).is_some()
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether the ring has no servers.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The owner of `key`: the server of the first point at or after
    /// `fnv1a_32(key)`, wrapping to the lowest point. `None` when the ring has
    /// no points (no servers, or, only after contrived collisions, servers
    /// whose every point was skipped).
    ///
    /// This is the hot path: one hash, one index load, a short scan; no
    /// allocation.
    #[inline]
    pub fn locate(&self, key: &[u8]) -> Option<ServerId> {
        if let Some(placement) = &self.placement {
            return Some(placement.dispatch(self.key_hash(key)));
        }
        let slot = self.slot(self.key_hash(key))?;
        Some(ServerId(self.points[slot] as u32))
    }

    /// The owner's address for `key`; see [`locate`](Self::locate).
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&str> {
        self.locate(key).map(|id| self.server(id))
    }

    /// The address of server `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a server of this ring value.
    pub fn server(&self, id: ServerId) -> &str {
        &self.servers[id.0 as usize].name
    }

    /// The id of `server` in this ring value, if present.
    pub fn id_of(&self, server: &str) -> Option<ServerId> {
        self.servers.binary_search_by(|s| (*s.name).cmp(server)).ok().map(|i| ServerId(i as u32))
    }

    /// The weight server `id` was added with.
    ///
    /// # Panics
    ///
    /// If `id` is not a server of this ring value.
    pub fn weight(&self, id: ServerId) -> u32 {
        self.servers[id.0 as usize].weight
    }

    /// Server addresses, sorted as strings (byte order, like Go's `sort.Strings`).
    pub fn servers(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.servers.iter().map(|s| &*s.name)
    }

    /// Server ids in the same order as [`servers`](Self::servers).
    pub fn server_ids(&self) -> impl ExactSizeIterator<Item = ServerId> {
        (0..self.servers.len() as u32).map(ServerId)
    }

    /// The ring's points as `(position, owner)`, in ascending position.
    pub fn points(&self) -> impl ExactSizeIterator<Item = (u32, &str)> + '_ {
        self.real_points().iter().map(|&p| ((p >> 32) as u32, &*self.servers[p as u32 as usize].name))
    }

    /// Total number of points on the ring.
    pub fn point_total(&self) -> usize {
        self.real_points().len()
    }

    /// Number of points server `id` actually owns: `weight * vnodes` minus the
    /// ones skipped on collision.
    ///
    /// # Panics
    ///
    /// If `id` is not a server of this ring value.
    pub fn point_count(&self, id: ServerId) -> usize {
        if let Some(placement) = &self.placement {
            return placement.points(id);
        }
        self.servers[id.0 as usize].points as usize
    }

    /// Fraction of the 2^32 key positions that server `id` owns (0.0 to 1.0).
    /// Scans the ring: meant for inspection, not for the request path.
    ///
    /// # Panics
    ///
    /// If `id` is not a server of this ring value.
    pub fn share(&self, id: ServerId) -> f64 {
        assert!((id.0 as usize) < self.servers.len(), "no server {id:?}");
        if let Some(placement) = &self.placement {
            return placement.share(id);
        }
        let points = self.real_points();
        let Some(&last) = points.last() else {
            return 0.0;
        };
        // Point i owns the positions (previous point, point i].
        let mut previous = (last >> 32) as i64 - (1i64 << 32);
        let mut owned: u64 = 0;
        for &p in points {
            let pos = (p >> 32) as i64;
            if p as u32 == id.0 {
                owned += (pos - previous) as u64;
            }
            previous = pos;
        }
        owned as f64 / (1u64 << 32) as f64
    }

    /// The details of `key`'s lookup: its hash, the point it landed on and
    /// the owner. `None` exactly when [`locate`](Self::locate) is.
    pub fn route(&self, key: &[u8]) -> Option<Route> {
        let hash = self.key_hash(key);
        if let Some(placement) = &self.placement {
            return Some(Route { hash, point: hash, index: 0, server: placement.dispatch(hash) });
        }
        let mut index = self.slot(hash)?;
        if index == self.points.len() - 1 {
            index = 0; // the sentinel stands for the lowest point
        }
        let p = self.points[index];
        Some(Route { hash, point: (p >> 32) as u32, index, server: ServerId(p as u32) })
    }

    /// The distinct servers met walking clockwise from `key`'s position: the
    /// owner first, then each next server not yet seen (a Dynamo preference
    /// list). Take `n` for `n` replicas. In total it yields every server
    /// exactly once: the ones reached on the ring, then any that own no point
    /// at all (only possible after collisions) in sorted order. Empty when
    /// [`locate`](Self::locate) is `None`.
    pub fn preference(&self, key: &[u8]) -> Preference<'_> {
        if let Some(placement) = &self.placement {
            let hash = self.key_hash(key);
            let mut list = Vec::with_capacity(FIRST_LIST.min(self.servers.len()));
            placement.preference(hash, FIRST_LIST, &mut list);
            return Preference {
                ring: self,
                next: 0,
                walk: hash as usize,
                left: self.servers.len(),
                tail: u32::MAX,
                seen: Seen::Inline(0),
                list: Some(list),
            };
        }
        let route = self.route(key);
        let servers = self.servers.len();
        Preference {
            list: None,
            ring: self,
            next: route.map_or(0, |r| r.index),
            walk: route.map_or(0, |_| self.real_points().len()),
            left: if route.is_some() { servers } else { 0 },
            tail: 0,
            seen: Seen::new(servers),
        }
    }

    /// The addresses of the first `n` servers of [`preference`](Self::preference):
    /// `min(n, len())` distinct servers, the owner first.
    pub fn preference_list(&self, key: &[u8], n: usize) -> Vec<&str> {
        self.preference(key).take(n).map(|id| self.server(id)).collect()
    }

    /// Approximate heap bytes of the ring: the point table (8 bytes per point),
    /// the bucket index (0.5 to 1 byte per point) and the server table (about
    /// 24 bytes plus the address per server).
    pub fn memory_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<u64>()
            + self.index.capacity() * std::mem::size_of::<u32>()
            + self.servers.capacity() * std::mem::size_of::<Server>()
            + self.servers.iter().map(|s| s.name.len()).sum::<usize>()
    }

    /// The points without the sentinel.
    #[inline]
    fn real_points(&self) -> &[u64] {
        match self.points.split_last() {
            Some((_, rest)) => rest,
            None => &[],
        }
    }

    /// Index into `points` of the first entry at or after `hash` (possibly the
    /// sentinel, whose owner is the lowest point's). `None` when no points.
    #[inline]
    fn slot(&self, hash: u32) -> Option<usize> {
        let start = *self.index.get((hash >> self.shift) as usize)? as usize;
        let target = u64::from(hash) << 32;
        // The sentinel (position u32::MAX, owner bits) is >= any target, so
        // the scan always stops inside `points`.
        let mut i = start;
        while self.points[i] < target {
            i += 1;
        }
        Some(i)
    }

    /// Installs sorted, distinct real points: appends the sentinel, rebuilds
    /// the bucket index.
    fn set_points(&mut self, mut points: Vec<u64>) {
        if points.is_empty() {
            self.points = Vec::new();
            self.index = Vec::new();
            return;
        }
        let n = points.len();
        let lowest_owner = points[0] as u32;
        points.push(u64::from(u32::MAX) << 32 | u64::from(lowest_owner));
        points.shrink_to_fit();

        // 2^bits buckets, bits in 1..=31, about n / POINTS_PER_BUCKET buckets.
        let want = (n / POINTS_PER_BUCKET).max(2);
        let bits = (usize::BITS - 1 - want.leading_zeros()).clamp(1, 31);
        let shift = 32 - bits;
        let buckets = 1usize << bits;
        let mut index = Vec::with_capacity(buckets);
        let mut i = 0usize;
        for b in 0..buckets as u64 {
            let start = b << shift << 32;
            while i < n && points[i] < start {
                i += 1;
            }
            index.push(i as u32);
        }
        self.points = points;
        self.index = index;
        self.shift = shift;
    }
}

/// Servers already yielded by a [`Preference`]: a bitset, inline up to 128
/// servers.
#[derive(Clone, Debug)]
enum Seen {
    Inline(u128),
    Heap(Vec<u64>),
}

impl Seen {
    fn new(servers: usize) -> Self {
        if servers <= 128 {
            Seen::Inline(0)
        } else {
            Seen::Heap(vec![0; servers.div_ceil(64)])
        }
    }

    /// Marks `id`; returns whether it was new.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        match self {
            Seen::Inline(bits) => {
                let bit = 1u128 << id;
                let new = *bits & bit == 0;
                *bits |= bit;
                new
            }
            Seen::Heap(words) => {
                let word = &mut words[(id / 64) as usize];
                let bit = 1u64 << (id % 64);
                let new = *word & bit == 0;
                *word |= bit;
                new
            }
        }
    }
}

/// Lazy iterator over the distinct servers clockwise from a key; see
/// [`HashRing::preference`].
#[derive(Clone, Debug)]
pub struct Preference<'a> {
    ring: &'a HashRing,
    /// Next point index to look at.
    next: usize,
    /// Points not yet looked at.
    walk: usize,
    /// Servers not yet yielded.
    left: usize,
    /// Next server id to consider once the walk is done.
    tail: u32,
    seen: Seen,
    /// The order so far, from a [`Placement`] (then `next` indexes it and
    /// `walk` holds the key's hash); extended by doubling as it is consumed.
    list: Option<Vec<ServerId>>,
}

impl Iterator for Preference<'_> {
    type Item = ServerId;

    fn next(&mut self) -> Option<ServerId> {
        if self.left == 0 {
            return None;
        }
        if let Some(list) = &mut self.list {
            if self.next == list.len() {
                // Extend the same order: ask for twice as many.
                if let Some(placement) = &self.ring.placement {
                    placement.preference(self.walk as u32, list.len().max(1) * 2, list);
                }
            }
            let id = list.get(self.next).copied();
            self.next += 1;
            self.left -= 1;
            return id;
        }
        let points = self.ring.real_points();
        while self.walk > 0 {
            let owner = points[self.next] as u32;
            self.next += 1;
            if self.next == points.len() {
                self.next = 0;
            }
            self.walk -= 1;
            if self.seen.insert(owner) {
                self.left -= 1;
                return Some(ServerId(owner));
            }
        }
        // Servers that own no point at all.
        while (self.tail as usize) < self.ring.servers.len() {
            let id = self.tail;
            self.tail += 1;
            if self.seen.insert(id) {
                self.left -= 1;
                return Some(ServerId(id));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Preference<'_> {}
impl FusedIterator for Preference<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "127.0.0.1:6381";
    const B: &str = "127.0.0.1:6382";
    const C: &str = "127.0.0.1:6383";

    /// Two names whose `#` prefixes hash alike, so every virtual node of one
    /// lands on the same position as the other's: fnv1a_32("10.0.107.237:6379#")
    /// == fnv1a_32("10.2.219.40:6379#"). FNV-1a is a bijection per byte, so
    /// equal states stay equal.
    const CLASH_1: &str = "10.0.107.237:6379";
    const CLASH_2: &str = "10.2.219.40:6379";
    /// Two names with two clashing virtual nodes among their first 16:
    /// `P1#10` == `P2#8` and `P1#11` == `P2#9`.
    const PARTIAL_1: &str = "10.1.29.213:6379";
    const PARTIAL_2: &str = "10.1.205.30:6379";

    #[test]
    fn ring_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<HashRing>();
    }

    #[test]
    #[should_panic(expected = "too many ring points")]
    fn absurd_weights_are_refused_before_allocating() {
        HashRing::new(160).add_weighted(A, u32::MAX);
    }

    #[test]
    fn fnv1a_32_test_vectors() {
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn vnode_positions_hash_the_decimal_name() {
        let prefix = fnv1a_32_from(fnv1a_32(A.as_bytes()), b"#");
        for r in [0u64, 1, 9, 10, 99, 100, 12345, u64::from(u32::MAX)] {
            assert_eq!(vnode_position(prefix, r), fnv1a_32(format!("{A}#{r}").as_bytes()));
        }
    }

    #[test]
    fn golden_seed_routes() {
        let mut ring = HashRing::new(DEFAULT_VNODES);
        assert!(ring.add(A));
        assert!(ring.add(B));
        assert_eq!(ring.get(b"session:abc"), Some(A));
        assert_eq!(ring.get(b"user:1001"), Some(B));
        assert!(ring.add(C));
        assert_eq!(ring.get(b"user:1001"), Some(C));
    }

    #[test]
    fn points_are_the_seed_vnodes() {
        let mut ring = HashRing::new(3);
        ring.add(A);
        ring.add_weighted(B, 2);
        let mut expected: Vec<(u32, &str)> = (0..3)
            .map(|i| (fnv1a_32(format!("{A}#{i}").as_bytes()), A))
            .chain((0..6).map(|i| (fnv1a_32(format!("{B}#{i}").as_bytes()), B)))
            .collect();
        expected.sort();
        assert_eq!(ring.points().collect::<Vec<_>>(), expected);
        assert_eq!(ring.point_count(ring.id_of(A).unwrap()), 3);
        assert_eq!(ring.point_count(ring.id_of(B).unwrap()), 6);
        assert_eq!(ring.weight(ring.id_of(B).unwrap()), 2);
        assert_eq!(ring.point_total(), 9);
    }

    #[test]
    fn empty_ring() {
        let ring = HashRing::default();
        assert_eq!(ring.vnodes(), DEFAULT_VNODES);
        assert!(ring.is_empty());
        assert_eq!(ring.len(), 0);
        assert_eq!(ring.locate(b"k"), None);
        assert_eq!(ring.get(b"k"), None);
        assert_eq!(ring.route(b"k"), None);
        assert_eq!(ring.preference(b"k").count(), 0);
        assert!(ring.preference_list(b"k", 3).is_empty());
        assert_eq!(ring.points().count(), 0);
    }

    #[test]
    fn vnodes_clamped_to_one() {
        let mut ring = HashRing::new(0);
        assert_eq!(ring.vnodes(), 1);
        ring.add(A);
        assert_eq!(ring.point_total(), 1);
    }

    #[test]
    fn add_remove_contains() {
        let mut ring = HashRing::new(3);
        assert!(ring.add(A));
        assert!(!ring.add(A), "already present");
        assert!(!ring.add_weighted(B, 0), "weight 0 is refused");
        assert!(!ring.contains(B));
        assert!(ring.contains(A));
        assert_eq!(ring.len(), 1);
        assert!(!ring.remove(B));
        assert!(ring.remove(A));
        assert!(ring.is_empty());
        assert_eq!(ring.get(b"x"), None);
        assert_eq!(ring.add_all([A, B, A, C]), 3);
        assert_eq!(ring.add_all([A, B]), 0);
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn servers_sorted_as_strings() {
        let mut ring = HashRing::new(3);
        for s in ["9.0.0.1:80", "10.0.0.1:80", "10.0.0.1:8080", "1.2.3.4:5"] {
            ring.add(s);
        }
        let listed: Vec<&str> = ring.servers().collect();
        assert_eq!(listed, ["1.2.3.4:5", "10.0.0.1:80", "10.0.0.1:8080", "9.0.0.1:80"]);
        let by_id: Vec<&str> = ring.server_ids().map(|id| ring.server(id)).collect();
        assert_eq!(by_id, listed);
        for (i, s) in listed.iter().enumerate() {
            assert_eq!(ring.id_of(s), Some(ServerId(i as u32)));
        }
        assert_eq!(ring.id_of("nope"), None);
    }

    fn position(server: &str, replica: u32) -> u32 {
        fnv1a_32(format!("{server}#{replica}").as_bytes())
    }

    fn owner_at(ring: &HashRing, pos: u32) -> Option<&str> {
        ring.points().find(|&(p, _)| p == pos).map(|(_, s)| s)
    }

    #[test]
    fn partial_collision_keeps_first_owner_and_removal_does_not_resurrect() {
        assert_eq!(position(PARTIAL_1, 10), position(PARTIAL_2, 8));
        assert_eq!(position(PARTIAL_1, 11), position(PARTIAL_2, 9));

        let mut ring = HashRing::new(12);
        ring.add(PARTIAL_1);
        ring.add(PARTIAL_2);
        assert_eq!(ring.point_total(), 22);
        assert_eq!(ring.point_count(ring.id_of(PARTIAL_1).unwrap()), 12);
        assert_eq!(ring.point_count(ring.id_of(PARTIAL_2).unwrap()), 10);
        assert_eq!(owner_at(&ring, position(PARTIAL_2, 8)), Some(PARTIAL_1));
        let shares: f64 = ring.server_ids().map(|id| ring.share(id)).sum();
        assert!((shares - 1.0).abs() < 1e-9);

        // Insertion order decides, not name order.
        let mut reversed = HashRing::new(12);
        reversed.add(PARTIAL_2);
        reversed.add(PARTIAL_1);
        assert_eq!(owner_at(&reversed, position(PARTIAL_2, 8)), Some(PARTIAL_2));
        assert_eq!(reversed.point_count(reversed.id_of(PARTIAL_1).unwrap()), 10);

        // A batch add picks the same winners as one-by-one adds.
        let mut batch = HashRing::new(12);
        batch.add_all([PARTIAL_1, PARTIAL_2]);
        assert!(batch.points().eq(ring.points()));

        // Removing the owner drops its points; the skipped ones stay skipped.
        ring.remove(PARTIAL_1);
        assert_eq!(ring.point_total(), 10);
        assert_eq!(ring.point_count(ring.id_of(PARTIAL_2).unwrap()), 10);
        assert_eq!(owner_at(&ring, position(PARTIAL_2, 8)), None);
        assert_eq!(ring.share(ring.id_of(PARTIAL_2).unwrap()), 1.0);
        // Coming back, it gets all its points again.
        ring.add(PARTIAL_1);
        assert_eq!(ring.point_count(ring.id_of(PARTIAL_1).unwrap()), 12);
        assert_eq!(owner_at(&ring, position(PARTIAL_2, 8)), Some(PARTIAL_1));
    }

    #[test]
    fn full_collision_leaves_a_server_without_points() {
        for vnodes in [1, 3, 160] {
            let mut ring = HashRing::new(vnodes);
            ring.add(CLASH_1);
            ring.add(CLASH_2);
            ring.add(A);
            let clash2 = ring.id_of(CLASH_2).unwrap();
            assert_eq!(ring.point_count(clash2), 0);
            assert_eq!(ring.share(clash2), 0.0);
            assert_eq!(ring.point_total(), 2 * vnodes);
            for key in ["a", "b", "user:1001", "session:abc"] {
                let pref: Vec<&str> = ring.preference_list(key.as_bytes(), 5);
                assert_eq!(pref.len(), 3);
                assert_eq!(pref[0], ring.get(key.as_bytes()).unwrap());
                assert_eq!(pref[2], CLASH_2, "point-less servers come last");
            }
            ring.remove(CLASH_1);
            ring.remove(A);
            assert_eq!(ring.len(), 1);
            assert_eq!(ring.point_total(), 0);
            assert_eq!(ring.get(b"k"), None, "its points were all skipped");
            assert_eq!(ring.route(b"k"), None);
            assert_eq!(ring.preference(b"k").count(), 0);
        }
    }

    #[test]
    fn route_details() {
        let mut ring = HashRing::new(3);
        ring.add_all([A, B, C]);
        let points: Vec<(u32, &str)> = ring.points().collect();
        for key in ["user:1001", "session:abc", "x", ""] {
            let route = ring.route(key.as_bytes()).unwrap();
            assert_eq!(route.hash, fnv1a_32(key.as_bytes()));
            assert_eq!(points[route.index].0, route.point);
            assert_eq!(points[route.index].1, ring.server(route.server));
            assert_eq!(ring.locate(key.as_bytes()), Some(route.server));
            if route.hash <= points.last().unwrap().0 {
                assert!(route.point >= route.hash);
                assert!(route.index == 0 || points[route.index - 1].0 < route.hash);
            } else {
                assert_eq!(route.index, 0, "wraps to the lowest point");
            }
        }
    }

    #[test]
    fn wrap_around_at_the_extremes() {
        let mut ring = HashRing::new(160);
        ring.add_all([A, B, C]);
        let points: Vec<(u32, &str)> = ring.points().collect();
        let (lowest, highest) = (points[0], points[points.len() - 1]);
        // A key hash above the highest point goes to the lowest point's owner.
        let slot = ring.slot(u32::MAX).unwrap();
        assert_eq!(ring.points[slot] as u32, ring.id_of(lowest.1).unwrap().0);
        assert_eq!(ring.slot(highest.0), Some(points.len() - 1));
        assert_eq!(ring.slot(highest.0 + 1), Some(points.len()));
        assert_eq!(ring.slot(0), Some(0));
        assert_eq!(ring.slot(lowest.0), Some(0));
    }

    #[test]
    fn shares_sum_to_one() {
        let mut ring = HashRing::new(40);
        ring.add_all_weighted([(A, 1), (B, 2), (C, 3)]);
        let total: f64 = ring.server_ids().map(|id| ring.share(id)).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let mut single = HashRing::new(1);
        single.add(A);
        assert_eq!(single.share(ServerId(0)), 1.0);
    }

    #[test]
    fn preference_lists() {
        let mut ring = HashRing::new(3);
        ring.add_all([A, B, C]);
        let list = ring.preference_list(b"user:1001", 2);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], ring.get(b"user:1001").unwrap());
        assert_ne!(list[0], list[1]);
        let all = ring.preference_list(b"user:1001", 10);
        assert_eq!(all.len(), 3);
        let pref = ring.preference(b"user:1001");
        assert_eq!(pref.len(), 3);
    }

    #[test]
    fn ids_follow_membership() {
        let mut ring = HashRing::new(3);
        ring.add_all([B, C]);
        assert_eq!(ring.id_of(C), Some(ServerId(1)));
        let snapshot = ring.clone();
        ring.add(A);
        assert_eq!(ring.id_of(C), Some(ServerId(2)));
        assert_eq!(snapshot.id_of(C), Some(ServerId(1)), "clones are independent");
        ring.remove(B);
        assert_eq!(ring.id_of(C), Some(ServerId(1)));
        for (_, owner) in ring.points() {
            assert!(owner == A || owner == C);
        }
    }

    #[test]
    fn memory_is_near_eight_bytes_per_point() {
        let mut ring = HashRing::new(160);
        ring.add_all((0..100).map(|i| format!("10.0.0.{i}:6379")));
        let points = ring.point_total();
        let lookup = ring.points.capacity() * 8 + ring.index.capacity() * 4;
        let per_point = lookup as f64 / points as f64;
        assert!((8.0..=9.1).contains(&per_point), "{per_point}");
        assert!(ring.memory_bytes() >= lookup);
    }
}
