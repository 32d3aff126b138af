//! Balance and movement of every placement: `cargo run --release -p ring@0.1.0 --example placements`.
//!
//! Balance is the largest server's share over the mean, exact from the ring's own shares
//! (rendezvous has no table: measured over 4,000,000 keys, so it includes sampling noise of
//! about 1 % at 100 servers). Movement is the fraction of 200,000 keys that change server
//! when one server joins, against the ideal `1/(n+1)`.

use ring::{Distribution, HashRing};

fn ring(distribution: Distribution, vnodes: usize, servers: &[String]) -> HashRing {
    let mut ring = HashRing::with_placement(vnodes, distribution, None);
    ring.add_all(servers);
    ring
}

fn max_over_mean(ring: &HashRing, n: usize) -> f64 {
    if ring.distribution() != Distribution::Rendezvous {
        return ring.server_ids().map(|id| ring.share(id)).fold(0.0, f64::max) * n as f64;
    }
    let keys = 4_000_000usize;
    let mut counts = vec![0usize; n];
    for i in 0..keys {
        if let Some(id) = ring.locate(format!("key:{i}").as_bytes()) {
            counts[id.0 as usize] += 1;
        }
    }
    counts.iter().copied().max().unwrap_or(0) as f64 / (keys as f64 / n as f64)
}

fn main() {
    let placements = [
        (Distribution::Seed, 3),
        (Distribution::Seed, 160),
        (Distribution::Ketama, 160),
        (Distribution::Modula, 1),
        (Distribution::Maglev, 1),
        (Distribution::Rendezvous, 1),
    ];
    println!("{:<12} {:>7} {:>10} {:>10} {:>10}", "placement", "vnodes", "n=10", "n=100", "n=1000");
    let pools: Vec<Vec<String>> = [10usize, 100, 1000]
        .iter()
        .map(|&n| (0..n).map(|i| format!("10.0.{}.{}:6379", i / 250, i % 250)).collect())
        .collect();
    for (distribution, vnodes) in placements {
        let cells: Vec<String> = pools
            .iter()
            .map(|servers| format!("{:.3}", max_over_mean(&ring(distribution, vnodes, servers), servers.len())))
            .collect();
        println!(
            "{:<12} {:>7} {:>10} {:>10} {:>10}  max/mean",
            distribution.name(),
            vnodes,
            cells[0],
            cells[1],
            cells[2]
        );
    }
    for (distribution, vnodes) in placements {
        let cells: Vec<String> = pools
            .iter()
            .map(|servers| {
                let before = ring(distribution, vnodes, servers);
                let mut after = before.clone();
                after.add("10.9.9.9:6379");
                let keys = 200_000;
                let moved = (0..keys)
                    .filter(|i| {
                        let key = format!("key:{i}");
                        before.get(key.as_bytes()) != after.get(key.as_bytes())
                    })
                    .count();
                format!("{:.2}x", moved as f64 / keys as f64 * (servers.len() + 1) as f64)
            })
            .collect();
        println!(
            "{:<12} {:>7} {:>10} {:>10} {:>10}  keys moved on a join / ideal",
            distribution.name(),
            vnodes,
            cells[0],
            cells[1],
            cells[2]
        );
    }
}
