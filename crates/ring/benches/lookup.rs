//! `cargo bench -p ring`: lookup time of the ring against two references on
//! the same keys and servers, build time, FNV-1a alone, memory per point.
//!
//! - `ours`: `ring::HashRing::locate` (FNV-1a, bucket index, short scan).
//! - `plain`: the seed's structure, a sorted `Vec<(u32, String)>` searched by
//!   binary search (FNV-1a of the key included).
//! - `hashring`: the `hashring` crate (0.3), one node per virtual node, its own
//!   SipHash placement.
//!
//! Criterion prints its usual estimates; at the end the bench prints a
//! summary table of the medians criterion recorded in this run.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, BatchSize, Criterion};
use ring::{fnv1a_32, Distribution, Hash, HashRing};

/// Keys pre-generated per run; a power of two so the index is a mask.
const KEYS: usize = 4096;
const SERVERS: [usize; 3] = [10, 100, 1000];
const VNODES: [usize; 2] = [3, 160];

/// Keys of 10 to 20 bytes like `user:123456` (deterministic, splitmix64).
fn keys() -> Vec<Vec<u8>> {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let prefixes = ["user:", "session:", "order:", "cart:", "product:"];
    (0..KEYS)
        .map(|_| {
            let prefix = prefixes[(next() % prefixes.len() as u64) as usize];
            let len = 10 + (next() % 11) as usize;
            let mut key = prefix.as_bytes().to_vec();
            while key.len() < len {
                key.push(b'0' + (next() % 10) as u8);
            }
            key
        })
        .collect()
}

fn server_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.0.{}.{}:6379", i / 256, i % 256)).collect()
}

/// The seed's ring as the Go original holds it: sorted (position, server).
struct Plain {
    points: Vec<(u32, String)>,
}

impl Plain {
    fn new(servers: &[String], vnodes: usize) -> Self {
        let mut points: Vec<(u32, String)> = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for s in servers {
            for r in 0..vnodes {
                let pos = fnv1a_32(format!("{s}#{r}").as_bytes());
                if taken.insert(pos) {
                    points.push((pos, s.clone()));
                }
            }
        }
        points.sort_by_key(|p| p.0);
        Plain { points }
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let h = fnv1a_32(key);
        let i = match self.points.binary_search_by_key(&h, |p| p.0) {
            Ok(i) | Err(i) => i,
        };
        let i = if i == self.points.len() { 0 } else { i };
        Some(&self.points[i].1)
    }

    fn memory_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<(u32, String)>()
            + self.points.iter().map(|p| p.1.capacity()).sum::<usize>()
    }
}

/// A virtual node for the `hashring` crate: (server, replica).
#[derive(Clone, Debug, Hash, PartialEq)]
struct VNode {
    server: Arc<str>,
    replica: u32,
}

fn hashring_ring(servers: &[String], vnodes: usize) -> hashring::HashRing<VNode> {
    let mut ring = hashring::HashRing::new();
    let mut nodes = Vec::with_capacity(servers.len() * vnodes);
    for s in servers {
        let server: Arc<str> = s.as_str().into();
        for replica in 0..vnodes as u32 {
            nodes.push(VNode { server: server.clone(), replica });
        }
    }
    ring.batch_add(nodes);
    ring
}

fn ours(servers: &[String], vnodes: usize) -> HashRing {
    let mut ring = HashRing::new(vnodes);
    ring.add_all(servers);
    ring
}

fn bench_lookup(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("lookup");
    for &vnodes in &VNODES {
        for &n in &SERVERS {
            let servers = server_names(n);
            let size = format!("{n}x{vnodes}");

            let ring = ours(&servers, vnodes);
            let plain = Plain::new(&servers, vnodes);
            let reference = hashring_ring(&servers, vnodes);
            // Same keys, same answers (sanity check, outside the timing).
            for key in keys.iter().take(256) {
                assert_eq!(ring.get(key), plain.get(key));
            }

            group.bench_function(format!("ours/{size}"), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    let key = &keys[i & (KEYS - 1)];
                    i = i.wrapping_add(1);
                    black_box(ring.locate(black_box(key)))
                })
            });
            group.bench_function(format!("plain/{size}"), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    let key = &keys[i & (KEYS - 1)];
                    i = i.wrapping_add(1);
                    black_box(plain.get(black_box(key)))
                })
            });
            group.bench_function(format!("hashring/{size}"), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    let key = keys[i & (KEYS - 1)].as_slice();
                    i = i.wrapping_add(1);
                    black_box(reference.get(black_box(&key)))
                })
            });
        }
    }
    group.finish();
}

/// Servers for the per-distribution group: the seed ring's worst case
/// (1000 x 160) and twemproxy's (ketama's 160 points per server).
const DIST_SERVERS: usize = 1000;

fn placed(servers: &[String], distribution: Distribution) -> HashRing {
    let mut ring = HashRing::with_placement(160, distribution, None);
    ring.add_all(servers);
    ring
}

fn bench_distributions(c: &mut Criterion) {
    let keys = keys();
    let servers = server_names(DIST_SERVERS);
    let mut group = c.benchmark_group("distribution");
    for &distribution in Distribution::ALL {
        let ring = placed(&servers, distribution);
        group.bench_function(format!("{distribution}/{DIST_SERVERS}"), |b| {
            let mut i = 0usize;
            b.iter(|| {
                let key = &keys[i & (KEYS - 1)];
                i = i.wrapping_add(1);
                black_box(ring.locate(black_box(key)))
            })
        });
    }
    for &hash in Hash::ALL {
        group.bench_function(format!("hash/{hash}"), |b| {
            let mut i = 0usize;
            b.iter(|| {
                let key = &keys[i & (KEYS - 1)];
                i = i.wrapping_add(1);
                black_box(hash.hash(black_box(key)))
            })
        });
    }
    group.finish();
}

/// Max / mean keys per server over `keys`.
fn balance(ring: &HashRing, keys: &[Vec<u8>]) -> f64 {
    let mut counts = vec![0usize; ring.len()];
    for key in keys {
        if let Some(id) = ring.locate(key) {
            counts[id.0 as usize] += 1;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    max / (keys.len() as f64 / ring.len() as f64)
}

fn bench_fnv(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("hash");
    group.bench_function("fnv1a_32", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let key = &keys[i & (KEYS - 1)];
            i = i.wrapping_add(1);
            black_box(fnv1a_32(black_box(key)))
        })
    });
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let servers = server_names(1000);
    let mut group = c.benchmark_group("build");
    group.bench_function("ours/1000x160", |b| b.iter(|| black_box(ours(black_box(&servers), 160))));
    group.bench_function("plain/1000x160", |b| b.iter(|| black_box(Plain::new(black_box(&servers), 160))));
    // The proxy's ADD_SERVER: clone the live snapshot, add one server.
    let base = ours(&servers[..999], 160);
    group.bench_function("ours/add_1_to_999x160", |b| {
        b.iter_batched(
            || base.clone(),
            |mut ring| {
                ring.add(&servers[999]);
                ring
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn configured() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = configured();
    targets = bench_lookup, bench_fnv, bench_build, bench_distributions
}

/// Where criterion writes its results (its own rule: `$CRITERION_HOME`,
/// `$CARGO_TARGET_DIR/criterion`, else `<target>/criterion` beside this
/// executable, which lives in `<target>/release/deps/`).
fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The median (ns per iteration) criterion recorded for `id` in this run.
fn median_ns(dir: &std::path::Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(id).join("new").join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None; // not measured in this run (filtered out)
    }
    let json = std::fs::read_to_string(path).ok()?;
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

fn format_ns(ns: Option<f64>) -> String {
    match ns {
        None => "-".into(),
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        Some(ns) => format!("{ns:.1} ns"),
    }
}

fn summary(since: SystemTime) {
    let Some(dir) = criterion_dir() else {
        return;
    };
    println!("\n== summary: criterion medians from this run ==");
    println!(
        "{:<12} {:>10} {:>10} {:>11} {:>12} {:>14}",
        "lookup", "ours", "plain", "hashring", "plain/ours", "hashring/ours"
    );
    for &vnodes in &VNODES {
        for &n in &SERVERS {
            let size = format!("{n}x{vnodes}");
            let get = |name: &str| median_ns(&dir, &format!("lookup/{name}_{size}"), since);
            let (o, p, h) = (get("ours"), get("plain"), get("hashring"));
            let ratio = |x: Option<f64>| match (x, o) {
                (Some(x), Some(o)) => format!("{:.1}x", x / o),
                _ => "-".into(),
            };
            println!(
                "{:<12} {:>10} {:>10} {:>11} {:>12} {:>14}",
                size,
                format_ns(o),
                format_ns(p),
                format_ns(h),
                ratio(p),
                ratio(h)
            );
        }
    }
    let fnv = median_ns(&dir, "hash/fnv1a_32", since);
    println!("fnv1a_32 of a key alone: {}", format_ns(fnv));
    for id in ["ours_1000x160", "plain_1000x160", "ours_add_1_to_999x160"] {
        println!("build/{id}: {}", format_ns(median_ns(&dir, &format!("build/{id}"), since)));
    }

    println!("\n{:<12} {:>10} {:>14} {:>14}", "distribution", "lookup", "max/mean n=10", "max/mean n=100");
    println!("(balance over 200,000 keys, sampling noise included; exact shares: --example placements)");
    let many: Vec<Vec<u8>> = (0..200_000).map(|i| format!("key:{i}").into_bytes()).collect();
    for &distribution in Distribution::ALL {
        let ns = median_ns(&dir, &format!("distribution/{distribution}_{DIST_SERVERS}"), since);
        let b10 = balance(&placed(&server_names(10), distribution), &many);
        let b100 = balance(&placed(&server_names(100), distribution), &many);
        println!("{:<12} {:>10} {:>14.3} {:>14.3}", distribution.name(), format_ns(ns), b10, b100);
    }

    println!("\nmemory (heap bytes / points):");
    for &vnodes in &VNODES {
        for &n in &SERVERS {
            let servers = server_names(n);
            let ring = ours(&servers, vnodes);
            let plain = Plain::new(&servers, vnodes);
            let points = ring.point_total();
            println!(
                "  {:<10} points {:>7}  ours {:>6.2} B/point  plain {:>6.2} B/point",
                format!("{n}x{vnodes}"),
                points,
                ring.memory_bytes() as f64 / points as f64,
                plain.memory_bytes() as f64 / points as f64,
            );
        }
    }
}

fn main() {
    let since = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary(since);
}
