//! Distributions: how servers divide the key space, one module per
//! distribution as in twemproxy's `src/hashkit/`.
//!
//! Every distribution is a pair, as there: a slow [`Placement::build`] (twemproxy's
//! `*_update`) run when membership changes, and a pure, fast
//! [`Placement::dispatch`] run per key. [`Distribution`] is the one table of
//! names that the proxy's `--distribution` flag and a `nutcracker.yml`'s
//! `distribution:` parse through.
//!
//! The seed's ring ([`Distribution::Seed`]) is the [`HashRing`](crate::HashRing)'s
//! own point table (see [`seed`]); the others are built by this module and held
//! by the ring behind the [`Placement`] trait.

use std::fmt;
use std::sync::Arc;

use crate::ServerId;

pub mod ketama;
pub mod maglev;
pub mod modula;
pub mod random;
pub mod rendezvous;
pub mod seed;

/// One server as a distribution sees it, in twemproxy's pool order (see
/// [`HashRing::pool_order`](crate::HashRing::pool_order)).
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    /// The server's id in the ring value being built.
    pub id: ServerId,
    /// The label its points are hashed from: the `name` of a
    /// `host:port:weight name` entry, else `host:port` (`host` alone for port
    /// 11211, as libmemcached).
    pub label: &'a str,
    /// Its weight, at least 1.
    pub weight: u32,
}

/// A distribution's built state: maps a key's 32-bit hash to a server.
pub trait Placement: Send + Sync + fmt::Debug {
    /// Builds the lookup state from the pool's servers in pool order
    /// (twemproxy's `*_update`). `members` is not empty.
    fn build(members: &[Member<'_>]) -> Self
    where
        Self: Sized;

    /// The server for a key hash (twemproxy's `*_dispatch`). Never allocates.
    fn dispatch(&self, hash: u32) -> ServerId;

    /// The first `limit` servers (every server when `limit` is at least their
    /// number), each once, in the order a key with `hash` falls back to them:
    /// the [`dispatch`](Self::dispatch) owner first. Written into `out`
    /// (cleared first); a larger `limit` extends the same order. Used for
    /// replicas and for skipping servers marked down, so it is cheap for a
    /// small `limit`.
    fn preference(&self, hash: u32, limit: usize, out: &mut Vec<ServerId>);

    /// How many points (continuum entries, table slots) server `id` holds; 0
    /// when the distribution has none.
    fn points(&self, id: ServerId) -> usize;

    /// The fraction of the 2^32 hash space (or of keys, for `random`) that
    /// server `id` receives.
    fn share(&self, id: ServerId) -> f64;
}

/// Defines [`Distribution`] and its name table from one list (twemproxy's
/// `DIST_CODEC`).
macro_rules! distributions {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// How keys are divided among servers, by name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
        pub enum Distribution {
            $(
                #[doc = $doc]
                #[cfg_attr(feature = "clap", value(name = $name))]
                $variant,
            )*
        }

        impl Distribution {
            /// Every distribution.
            pub const ALL: &'static [Distribution] = &[$(Distribution::$variant),*];

            /// The name our flags and `nutcracker.yml` use.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Distribution::$variant => $name,)*
                }
            }
        }
    };
}

distributions! {
    Seed => "seed", "The seed's ring: FNV-1a-32 points `host:port#i`, `vnodes` per unit of weight (the default).";
    Ketama => "ketama", "twemproxy's and libmemcached's ketama: MD5 points `name-i`, 160 per server scaled by weight.";
    Modula => "modula", "twemproxy's modula: `hash % total weight` over the servers in order.";
    Random => "random", "twemproxy's random: any server, chosen per request.";
    Maglev => "maglev", "Google's Maglev lookup table: prime size, O(1) lookup, near-perfect balance.";
    Rendezvous => "rendezvous", "Weighted rendezvous (highest random weight) hashing: O(servers) lookup, minimal movement.";
}

#[allow(clippy::derivable_impls)] // the variants come from a macro table
impl Default for Distribution {
    fn default() -> Self {
        Distribution::Seed
    }
}

impl Distribution {
    /// twemproxy's default (`distribution:` absent from a pool).
    pub const TWEMPROXY_DEFAULT: Distribution = Distribution::Ketama;

    /// The distribution called `name`.
    pub fn from_name(name: &str) -> Option<Distribution> {
        Distribution::ALL.iter().copied().find(|d| d.name() == name)
    }

    /// Whether twemproxy has it (so a `nutcracker.yml` may name it).
    pub fn in_twemproxy(self) -> bool {
        matches!(self, Distribution::Ketama | Distribution::Modula | Distribution::Random)
    }

    /// Builds the placement for `members`; `None` for [`Distribution::Seed`]
    /// (the ring's own points) or when there are no members.
    pub fn build(self, members: &[Member<'_>]) -> Option<Arc<dyn Placement>> {
        if members.is_empty() {
            return None;
        }
        Some(match self {
            Distribution::Seed => return None,
            Distribution::Ketama => Arc::new(ketama::Ketama::build(members)),
            Distribution::Modula => Arc::new(modula::Modula::build(members)),
            Distribution::Random => Arc::new(random::Random::build(members)),
            Distribution::Maglev => Arc::new(maglev::Maglev::build(members)),
            Distribution::Rendezvous => Arc::new(rendezvous::Rendezvous::build(members)),
        })
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Distribution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Distribution::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = Distribution::ALL.iter().map(|d| d.name()).collect();
            format!("unknown distribution {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// Below this many wanted servers, `out.contains` beats allocating a bitmap.
const SMALL_LIMIT: usize = 16;

/// Walks `owners` cyclically from `start`, appending each server not yet seen,
/// until `min(limit, members)` are listed; servers the walk never meets follow
/// in id order (ids are dense `0..members`).
fn walk_distinct(owners: &[u32], start: usize, members: usize, limit: usize, out: &mut Vec<ServerId>) {
    out.clear();
    let want = limit.min(members);
    let mut seen = if want > SMALL_LIMIT { vec![false; members] } else { Vec::new() };
    let n = owners.len();
    for step in 0..n {
        if out.len() == want {
            return;
        }
        let owner = owners[(start + step) % n];
        let new = match seen.get_mut(owner as usize) {
            Some(slot) => !std::mem::replace(slot, true),
            None => !out.contains(&ServerId(owner)),
        };
        if new {
            out.push(ServerId(owner));
        }
    }
    for id in 0..members as u32 {
        if out.len() == want {
            return;
        }
        if !out.contains(&ServerId(id)) {
            out.push(ServerId(id));
        }
    }
}

/// A 64-bit finaliser (splitmix64's): mixes a seed and a key hash into a score.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
