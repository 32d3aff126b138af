//! Modula, as twemproxy's `nc_modula.c`: the continuum lists each server
//! `weight` times in pool order, and a hash goes to entry `hash % entries`.
//! Balanced, but adding or removing a server moves almost every key.

use super::{walk_distinct, Member, Placement};
use crate::ServerId;

/// The modula continuum: one entry per unit of weight.
#[derive(Debug, Clone)]
pub struct Modula {
    entries: Vec<u32>,
    servers: usize,
}

impl Placement for Modula {
    fn build(members: &[Member<'_>]) -> Self {
        let entries = members.iter().flat_map(|m| std::iter::repeat_n(m.id.0, m.weight as usize)).collect();
        Modula { entries, servers: members.len() }
    }

    #[inline]
    fn dispatch(&self, hash: u32) -> ServerId {
        ServerId(self.entries[hash as usize % self.entries.len()])
    }

    fn preference(&self, hash: u32, limit: usize, out: &mut Vec<ServerId>) {
        walk_distinct(&self.entries, hash as usize % self.entries.len(), self.servers, limit, out);
    }

    fn points(&self, id: ServerId) -> usize {
        self.entries.iter().filter(|&&e| e == id.0).count()
    }

    fn share(&self, id: ServerId) -> f64 {
        self.points(id) as f64 / self.entries.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_repeats_in_pool_order() {
        let ms = [Member { id: ServerId(1), label: "b", weight: 2 }, Member { id: ServerId(0), label: "a", weight: 1 }];
        let m = Modula::build(&ms);
        assert_eq!(m.entries, [1, 1, 0]);
        assert_eq!(m.dispatch(0), ServerId(1));
        assert_eq!(m.dispatch(2), ServerId(0));
        assert_eq!(m.dispatch(5), ServerId(0));
        let mut pref = Vec::new();
        m.preference(2, 10, &mut pref);
        assert_eq!(pref, [ServerId(0), ServerId(1)]);
    }
}
