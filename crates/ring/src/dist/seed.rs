//! The seed's distribution, kept by [`HashRing`](crate::HashRing) itself.
//!
//! Server `A` with weight `w` owns the points `fnv1a_32("A#0")` ...
//! `fnv1a_32("A#(w*vnodes-1)")` (the seed's Go FNV-1a, bytes unsigned); a key
//! belongs to the first point at or after its hash, wrapping; a position already
//! taken keeps its first owner. It is the default because the teaching demo and
//! every existing deployment route by it, and it is exact to the Go original.
//! Its balance is poor at few virtual nodes (FNV mixes the last characters of
//! the label poorly): prefer [`ketama`](super::ketama) to follow twemproxy,
//! [`maglev`](super::maglev) for balance.
//!
//! The points live in the ring's sorted table with a bucket index (see the
//! crate documentation), so this module only names the pieces.

pub use crate::fnv1a_32 as key_hash;
pub use crate::DEFAULT_VNODES;
