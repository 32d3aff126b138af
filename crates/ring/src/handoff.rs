//! What a ring change moves: the share of the key space that changes owner, from whom to
//! whom. Pure arithmetic on two rings, for `PREVIEW` and the ring page.

use crate::{Distribution, HashRing};

/// Positions probed per ring when a distribution has no points to compare (maglev,
/// rendezvous, ketama's and modula's placements): evenly spaced, so the shares are exact to
/// about 1/65536.
const PROBES: u32 = 1 << 16;

/// A part of the key space that changes owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    /// Its owner before the change.
    pub from: String,
    /// Its owner after.
    pub to: String,
    /// Its size, as a fraction of the 2^32 key positions (0.0 to 1.0).
    pub share: f64,
}

/// The parts of the key space whose owner differs between `before` and `after`, one entry
/// per (from, to) pair, largest first. Positions either ring leaves without an owner (an
/// empty ring) are not counted.
///
/// For the seed's ring the answer is exact: between two consecutive points of either ring
/// every position has one owner in each, so the owner of an interval's last position is the
/// owner of all of it. Other distributions are probed at 65,536 evenly spaced positions.
pub fn handoff(before: &HashRing, after: &HashRing) -> Vec<Handoff> {
    let mut pairs: Vec<Handoff> = Vec::new();
    let mut add = |at: u32, positions: u64| {
        let (Some(from), Some(to)) = (before.owner_at(at), after.owner_at(at)) else { return };
        let (from, to) = (before.server(from), after.server(to));
        if from == to || positions == 0 {
            return;
        }
        let share = positions as f64 / (1u64 << 32) as f64;
        match pairs.iter_mut().find(|h| h.from == from && h.to == to) {
            Some(pair) => pair.share += share,
            None => pairs.push(Handoff { from: from.to_string(), to: to.to_string(), share }),
        }
    };
    let exact = before.distribution() == Distribution::Seed
        && after.distribution() == Distribution::Seed
        && before.placement.is_none()
        && after.placement.is_none();
    if exact {
        let mut bounds: Vec<u32> = before.points().chain(after.points()).map(|(p, _)| p).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut previous: Option<u32> = None;
        for &bound in &bounds {
            // (previous, bound], or [0, bound] for the first.
            let positions = match previous {
                None => u64::from(bound) + 1,
                Some(p) => u64::from(bound - p),
            };
            add(bound, positions);
            previous = Some(bound);
        }
        if let Some(last) = previous {
            add(u32::MAX, u64::from(u32::MAX - last));
        }
    } else {
        let step = (1u64 << 32) / u64::from(PROBES);
        for i in 0..u64::from(PROBES) {
            add((i * step + step / 2) as u32, step);
        }
    }
    pairs.sort_by(|a, b| b.share.total_cmp(&a.share).then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to))));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(servers: &[&str], vnodes: usize) -> HashRing {
        let mut ring = HashRing::new(vnodes);
        for server in servers {
            ring.add(server);
        }
        ring
    }

    /// The share of `n` sampled keys whose owner changes from `from` to `to`.
    fn sampled(before: &HashRing, after: &HashRing, from: &str, to: &str, n: usize) -> f64 {
        let moved = (0..n)
            .filter(|i| {
                let key = format!("key:{i}");
                before.get(key.as_bytes()) == Some(from) && after.get(key.as_bytes()) == Some(to)
            })
            .count();
        moved as f64 / n as f64
    }

    #[test]
    fn a_joining_server_takes_exactly_its_share_and_only_it_receives() {
        let before = ring(&["127.0.0.1:6381", "127.0.0.1:6382"], 3);
        let after = ring(&["127.0.0.1:6381", "127.0.0.1:6382", "127.0.0.1:6383"], 3);
        let moves = handoff(&before, &after);
        assert!(!moves.is_empty());
        assert!(moves.iter().all(|h| h.to == "127.0.0.1:6383"), "{moves:?}");
        let total: f64 = moves.iter().map(|h| h.share).sum();
        let joined = after.share(after.id_of("127.0.0.1:6383").unwrap());
        assert!((total - joined).abs() < 1e-12, "{total} vs {joined}");
        for h in &moves {
            let seen = sampled(&before, &after, &h.from, &h.to, 50_000);
            assert!((seen - h.share).abs() < 0.01, "{h:?}: sampled {seen}");
        }
    }

    #[test]
    fn a_leaving_server_gives_away_exactly_its_share() {
        let before = ring(&["a:1", "b:2", "c:3", "d:4"], 160);
        let after = ring(&["a:1", "b:2", "d:4"], 160);
        let moves = handoff(&before, &after);
        assert!(moves.iter().all(|h| h.from == "c:3"), "{moves:?}");
        assert!(moves.len() >= 2, "its arcs go to the others: {moves:?}");
        let total: f64 = moves.iter().map(|h| h.share).sum();
        assert!((total - before.share(before.id_of("c:3").unwrap())).abs() < 1e-12);
        assert!(moves.windows(2).all(|w| w[0].share >= w[1].share), "largest first");
    }

    #[test]
    fn nothing_moves_between_equal_rings_and_an_empty_ring_gives_nothing() {
        let a = ring(&["a:1", "b:2"], 3);
        assert!(handoff(&a, &a.clone()).is_empty());
        assert!(handoff(&HashRing::new(3), &a).is_empty());
    }

    #[test]
    fn other_distributions_are_probed() {
        let mut before = HashRing::with_placement(3, Distribution::Maglev, None);
        before.add_all(["a:1", "b:2", "c:3"]);
        let mut after = before.clone();
        after.add("d:4");
        let moves = handoff(&before, &after);
        let to_new: f64 = moves.iter().filter(|h| h.to == "d:4").map(|h| h.share).sum();
        assert!((to_new - 0.25).abs() < 0.02, "{to_new}");
        // Maglev reshuffles a little between the others too (its table is rebuilt).
        let between_others: f64 = moves.iter().filter(|h| h.to != "d:4").map(|h| h.share).sum();
        assert!(between_others < 0.01, "{moves:?}");
    }
}
