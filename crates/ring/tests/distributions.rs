//! Every distribution through the ring's API: owners, preference lists,
//! movement on membership changes, balance, twemproxy's quirks.

use ring::{Distribution, Hash, HashRing, ServerId};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.0.{}.{}:6379", i / 250, i % 250)).collect()
}

fn ring(distribution: Distribution, servers: &[String]) -> HashRing {
    let mut ring = HashRing::with_placement(160, distribution, None);
    ring.add_all(servers);
    ring
}

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("key:{i}").into_bytes()).collect()
}

fn max_over_mean(ring: &HashRing, keys: &[Vec<u8>]) -> f64 {
    let mut counts = vec![0usize; ring.len()];
    for key in keys {
        counts[ring.locate(key).unwrap().0 as usize] += 1;
    }
    *counts.iter().max().unwrap() as f64 / (keys.len() as f64 / ring.len() as f64)
}

#[test]
fn preference_lists_every_server_once_owner_first() {
    let servers = names(7);
    for &d in Distribution::ALL {
        let ring = ring(d, &servers);
        for key in keys(200) {
            let pref: Vec<ServerId> = ring.preference(&key).collect();
            assert_eq!(pref.len(), 7, "{d}");
            // Lists are computed lazily (2, then 4, then 8): the prefix never changes.
            let short: Vec<ServerId> = ring.preference(&key).take(3).collect();
            assert_eq!(short, pref[..3], "{d}");
            let mut sorted = pref.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 7, "{d}: distinct");
            if d != Distribution::Random {
                assert_eq!(Some(pref[0]), ring.locate(&key), "{d}: owner first");
                assert_eq!(ring.route(&key).map(|r| r.server), ring.locate(&key), "{d}");
            }
        }
    }
}

#[test]
fn defaults_and_names() {
    let seed = HashRing::with_placement(3, Distribution::Seed, None);
    assert_eq!(seed.hash_name(), "fnv1a_32 (seed)");
    let ketama = HashRing::with_placement(3, Distribution::Ketama, None);
    assert_eq!(ketama.hash_name(), "fnv1a_64", "twemproxy's default hash");
    assert_eq!(ketama.key_hash(b""), 0, "twemproxy hashes an empty key to 0");
    for &d in Distribution::ALL {
        assert_eq!(d.name().parse::<Distribution>(), Ok(d));
    }
    assert!("consistent".parse::<Distribution>().unwrap_err().contains("ketama"));
}

#[test]
fn seed_default_is_unchanged() {
    let mut a = HashRing::new(3);
    let mut b = HashRing::with_placement(3, Distribution::Seed, None);
    for r in [&mut a, &mut b] {
        r.add("127.0.0.1:6381");
        r.add("127.0.0.1:6382");
    }
    assert_eq!(b.get(b"user:1001"), Some("127.0.0.1:6382"));
    for key in keys(1000) {
        assert_eq!(a.get(&key), b.get(&key));
    }
}

#[test]
fn ketama_uses_labels_and_pool_order() {
    let mut named = HashRing::with_placement(160, Distribution::Ketama, Some(Hash::Fnv1a_64));
    named.add_labelled("127.0.0.1:7001", 1, Some("server1"));
    named.add_labelled("127.0.0.1:7002", 1, Some("server2"));
    let mut moved = HashRing::with_placement(160, Distribution::Ketama, Some(Hash::Fnv1a_64));
    moved.add_labelled("127.0.0.9:9001", 1, Some("server1"));
    moved.add_labelled("127.0.0.9:9002", 1, Some("server2"));
    // Same names, other addresses: same placement (names are what is hashed).
    for key in keys(1000) {
        let a = named.locate(&key).map(|id| named.label(id).to_string());
        let b = moved.locate(&key).map(|id| moved.label(id).to_string());
        assert_eq!(a, b);
    }
    let order: Vec<&str> = named.pool_order().into_iter().map(|id| named.server(id)).collect();
    assert_eq!(order, ["127.0.0.1:7001", "127.0.0.1:7002"]);
    // twemproxy's order: labels by length, then bytes; not the order of adding.
    let mut ring = HashRing::with_placement(1, Distribution::Modula, None);
    for s in ["10.0.0.10:6379", "10.0.0.9:6379", "10.0.0.1:6379"] {
        ring.add(s);
    }
    let order: Vec<&str> = ring.pool_order().into_iter().map(|id| ring.server(id)).collect();
    assert_eq!(order, ["10.0.0.1:6379", "10.0.0.9:6379", "10.0.0.10:6379"]);
    // Weights scale points over the pool's total weight: 2 of 3 -> 320 * ... per twemproxy.
    let mut weighted = HashRing::with_placement(160, Distribution::Ketama, None);
    weighted.add_weighted("a:1", 2);
    weighted.add_weighted("b:1", 1);
    assert_eq!(weighted.point_count(weighted.id_of("a:1").unwrap()), 212);
    assert_eq!(weighted.point_count(weighted.id_of("b:1").unwrap()), 104);
}

#[test]
fn removal_moves_only_the_leavers_keys_on_consistent_placements() {
    let servers = names(20);
    let keys = keys(20_000);
    for d in [Distribution::Seed, Distribution::Ketama, Distribution::Rendezvous, Distribution::Maglev] {
        let before = ring(d, &servers);
        let mut after = before.clone();
        let gone = servers[7].as_str();
        after.remove(gone);
        let mut moved = 0usize;
        for key in &keys {
            let (b, a) = (before.get(key).unwrap(), after.get(key).unwrap());
            if b != a {
                moved += 1;
                if d != Distribution::Maglev {
                    assert_eq!(b, gone, "{d}: only the leaver's keys move");
                }
            }
        }
        let ideal = keys.len() as f64 / 20.0;
        assert!((moved as f64) < ideal * 1.6, "{d}: moved {moved}, ideal {ideal}");
    }
}

#[test]
fn balance_at_100_servers() {
    let servers = names(100);
    let keys = keys(400_000);
    let maglev = max_over_mean(&ring(Distribution::Maglev, &servers), &keys);
    assert!(maglev <= 1.03 + 0.05, "maglev {maglev}"); // key sampling noise: ~4000 keys per server
    let modula = max_over_mean(&ring(Distribution::Modula, &servers), &keys);
    assert!(modula < 1.1, "modula {modula}");
    let ketama = max_over_mean(&ring(Distribution::Ketama, &servers), &keys);
    assert!(ketama < 1.4, "ketama {ketama}");
}

#[test]
fn maglev_table_shares_are_within_one_percent() {
    let ring = ring(Distribution::Maglev, &names(100));
    let shares: Vec<f64> = ring.server_ids().map(|id| ring.share(id)).collect();
    let max = shares.iter().cloned().fold(0.0, f64::max);
    assert!(max * 100.0 <= 1.03, "{max}");
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn rendezvous_weights_scale_shares() {
    let mut ring = HashRing::with_placement(1, Distribution::Rendezvous, None);
    ring.add_weighted("a:1", 3);
    ring.add_weighted("b:1", 1);
    let keys = keys(40_000);
    let a = keys.iter().filter(|k| ring.get(k) == Some("a:1")).count() as f64 / keys.len() as f64;
    assert!((a - 0.75).abs() < 0.02, "{a}");
}

#[test]
fn a_join_at_1000_servers_moves_few_keys_on_maglev_and_rendezvous() {
    let servers = names(1000);
    let keys = keys(20_000);
    for (d, bound) in [(Distribution::Maglev, 10.0), (Distribution::Rendezvous, 2.0)] {
        let before = ring(d, &servers);
        let mut after = before.clone();
        after.add("10.9.9.9:6379");
        let moved = keys.iter().filter(|k| before.get(k) != after.get(k)).count() as f64;
        let ideal = keys.len() as f64 / 1001.0;
        assert!(moved < ideal * bound, "{d}: moved {moved}, ideal {ideal:.0}");
    }
}
